# vmoffset-trace — build, test, demo, bench.
#   make            build ./vmoffset-trace (BPF objects + skeletons + user space)
#   make test       install deps, unit tests (cmocka) and guest-booting tests
#   make demo       boot a small Debian guest and discover its offsets end to end
#   make SAN=1 ...  build/run everything with ASan+UBSan
#   make V=1 ...    show the commands
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

OUT      ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := x86

ifeq ($(V),1)
Q :=
else
Q := @
endif

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -Iuser -I$(OUT) $(shell pkg-config --cflags json-c 2>/dev/null)
LDLIBS   += -lbpf -lelf -lz -ljson-c -lpthread
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
OUT      := build-san
endif
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux -Ibpf -I$(OUT) -Wall -Wno-unused-function

BIN        := vmoffset-trace
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS  := $(shell find user -name '*.c' | sort)
USER_OBJS  := $(patsubst %.c,$(OUT)/%.o,$(USER_SRCS))
LIB_OBJS   := $(filter-out $(OUT)/user/main.o,$(USER_OBJS))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(OUT)/tools/%,$(TOOL_SRCS))

all: $(BIN) $(TOOL_BINS)

$(OUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux/vmlinux.h
	@mkdir -p $(@D)
	$(if $(Q),@echo "  BPF     $@")
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(if $(Q),@echo "  GEN-SKEL $@")
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUT)/user/%.o: user/%.c $(SKELS) $(shell find user -name '*.h') $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -Ibpf -c $< -o $@

$(BIN): $(USER_OBJS)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  TEST-CC $@")
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -lcmocka -o $@

$(OUT)/tools/%: tests/tools/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  TOOL-CC $@")
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -o $@

# vmlinux.h is checked in; regenerate it from a kernel's BTF with `make vmlinux`.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
vmlinux:
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > vmlinux/vmlinux.h

deps:
	$(Q)scripts/install-deps.sh

unit-test: $(UNIT_BINS)
	$(Q)scripts/run-unit-tests.sh $(UNIT_BINS)

guest-test: all
	$(Q)scripts/run-guest-tests.sh

test: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS)
	$(Q)$(MAKE) --no-print-directory unit-test guest-test

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: all
	$(Q)scripts/bench.sh

clean:
	rm -rf build build-san $(BIN)

.PHONY: all vmlinux deps unit-test guest-test test demo bench clean
