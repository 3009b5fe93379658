# vmoffset-trace — build, test, demo, bench.
#   make            build ./vmoffset-trace (BPF objects + skeletons + user space)
#   make test       install deps, unit tests (cmocka) and guest-booting tests
#   make demo       boot a small Debian guest and discover its offsets end to end
#   make SAN=1 ...  build/run everything with ASan+UBSan
#   make V=1 ...    show the commands
#   make install    install binary, man page, systemd unit and /etc/default file ([DESTDIR=] [PREFIX=/usr/local]
#                   [SYSCONFDIR=/etc] [SYSTEMD_UNITDIR=$(PREFIX)/lib/systemd/system]); make uninstall removes them
#   make deb        build the Debian package from this tree (uncommitted work included) into $(OUT)/deb/
.DELETE_ON_ERROR:
.SECONDARY:
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
ifeq ($(SAN),1)
# the sanitized binary never replaces ./vmoffset-trace
BIN        := $(OUT)/vmoffset-trace
endif
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
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -Ibpf -c $< -o $@

$(BIN): $(USER_OBJS)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# the synthetic-guest generator (tests/synth/), built once and linked into the tests and tools
SYNTH_OBJ := $(OUT)/tests/synth/synth.o
$(SYNTH_OBJ): tests/synth/synth.c tests/synth/synth.h $(shell find user -name '*.h')
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) $(SYNTH_OBJ) $(wildcard tests/unit/*.h tests/synth/*.h tests/tools/*.h)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  TEST-CC $@")
	$(Q)$(CC) $(CFLAGS) -Itests/unit $< $(LIB_OBJS) $(SYNTH_OBJ) $(LDFLAGS) $(LDLIBS) -lcmocka -o $@

$(OUT)/tools/%: tests/tools/%.c $(LIB_OBJS) $(SYNTH_OBJ) $(wildcard tests/synth/*.h tests/tools/*.h)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  TOOL-CC $@")
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) $(SYNTH_OBJ) $(LDFLAGS) $(LDLIBS) -o $@

# vmlinux.h is checked in; regenerate it from a kernel's BTF with `make vmlinux`.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
vmlinux:
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > vmlinux/vmlinux.h

deps:
	$(Q)scripts/install-deps.sh

unit-test: $(UNIT_BINS)
	$(Q)scripts/run-tests.sh --no-guest $(UNIT_BINS)

guest-test: all
	$(Q)VMOT_BIN=$(abspath $(BIN)) VMOT_TOOLS=$(abspath $(OUT)/tools) scripts/run-tests.sh

test: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS)
	$(Q)VMOT_BIN=$(abspath $(BIN)) VMOT_TOOLS=$(abspath $(OUT)/tools) scripts/run-tests.sh $(UNIT_BINS)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: all
	$(Q)scripts/bench.sh

clean:
	rm -rf build build-san build-fuzz vmoffset-trace

# ---- install (issue 15) ---------------------------------------------------------------------------
# Paths as the GNU conventions name them; DESTDIR stages an install (packaging). The defaults file goes to
# /etc whatever PREFIX is (the unit reads it from there, and /etc/default is where operators look); the unit
# goes where systemd looks for system units under /usr and /usr/local. The unit is generated from
# dist/vmoffset-trace.service.in with the installed binary's path. An existing defaults file is never
# overwritten, and uninstall removes it only when unchanged from dist/vmoffset-trace.default.
PREFIX          ?= /usr/local
BINDIR          ?= $(PREFIX)/bin
MANDIR          ?= $(PREFIX)/share/man
SYSCONFDIR      ?= /etc
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL         ?= install
UNIT            := vmoffset-trace.service
DEFAULTS        := $(DESTDIR)$(SYSCONFDIR)/default/vmoffset-trace

install: $(BIN)
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMD_UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/default
	$(Q)$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/vmoffset-trace
	$(Q)$(INSTALL) -m 0644 vmoffset-trace.8 $(DESTDIR)$(MANDIR)/man8/vmoffset-trace.8
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/vmoffset-trace.service.in \
		> $(DESTDIR)$(SYSTEMD_UNITDIR)/$(UNIT) && chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$(UNIT)
	$(Q)if [ -e $(DEFAULTS) ]; then echo "install: $(DEFAULTS) exists, kept"; \
	else $(INSTALL) -m 0644 dist/vmoffset-trace.default $(DEFAULTS); fi
	$(Q)echo "installed $(DESTDIR)$(BINDIR)/vmoffset-trace, $(DESTDIR)$(SYSTEMD_UNITDIR)/$(UNIT)$(if $(DESTDIR),, (systemctl daemon-reload; systemctl enable --now vmoffset-trace))"

uninstall:
	$(Q)rm -f $(DESTDIR)$(BINDIR)/vmoffset-trace $(DESTDIR)$(MANDIR)/man8/vmoffset-trace.8 \
		$(DESTDIR)$(SYSTEMD_UNITDIR)/$(UNIT)
	$(Q)if [ -e $(DEFAULTS) ] && ! cmp -s $(DEFAULTS) dist/vmoffset-trace.default; then \
		echo "uninstall: $(DEFAULTS) was changed, kept"; else rm -f $(DEFAULTS); fi
	$(Q)echo "removed vmoffset-trace from $(DESTDIR)$(PREFIX)$(if $(DESTDIR),, (systemctl daemon-reload))"

# The Debian package (debian/): the tree's files (tracked and untracked, not ignored) copied to
# $(OUT)/deb/src and built there with dpkg-buildpackage; the .deb lands in $(OUT)/deb/.
deb:
	$(Q)OUT=$(OUT) scripts/make-deb.sh

.PHONY: all vmlinux deps unit-test guest-test test demo bench clean install uninstall deb

# ---- fuzzing (issue 7) ----------------------------------------------------------------------------
# `make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="elfcore qmp"]` builds every libFuzzer target of tests/fuzz/
# (clang, -fsanitize=fuzzer,address,undefined) into build-fuzz/ and runs each for FUZZ_SECONDS on its seed
# corpus tests/fuzz/corpus/<target>/; new inputs and crashes go to fuzz-out/<target>/, and the executions
# are appended to tests/fuzz/EXECUTIONS.md. `make fuzz-build` only builds.
FUZZ_OUT      := build-fuzz
FUZZ_SECONDS  ?= 60
FUZZ_CC       ?= clang
FUZZ_CFLAGS   := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iuser -Itests/unit $(shell pkg-config --cflags json-c 2>/dev/null) \
		 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIB_SRCS := $(sort $(wildcard user/mem/*.c user/arch/*.c user/discovery/*.c user/common/*.c user/session/*.c)) \
		 tests/synth/synth.c
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OUT)/%.o,$(FUZZ_LIB_SRCS))
# Walk-heavy targets are built without CMP tracing (trace-cmp): every step of a page-table or list walk
# compares pointers, and the hooks took 70-75 % of their time for little guidance (their seeds are
# realistic guests already). Measured: x86 2,500 -> 9,600 exec/s, discovery 180 -> 660. ASan/UBSan stay.
FUZZ_NOCMP    := x86 arm64 discovery
FUZZ_NOCMP_CFLAGS := -fno-sanitize-coverage=trace-cmp
FUZZ_NOCMP_OBJS := $(patsubst %.c,$(FUZZ_OUT)/nocmp/%.o,$(FUZZ_LIB_SRCS))
FUZZ_ALL      := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_TARGETS  ?= $(FUZZ_ALL)
FUZZ_BINS     := $(patsubst %,$(FUZZ_OUT)/fuzz_%,$(FUZZ_ALL))
fuzz_objs      = $(if $(filter $(1),$(FUZZ_NOCMP)),$(FUZZ_NOCMP_OBJS),$(FUZZ_LIB_OBJS))
fuzz_cov       = $(if $(filter $(1),$(FUZZ_NOCMP)),$(FUZZ_NOCMP_CFLAGS))

$(FUZZ_OUT)/user/%.o: user/%.c $(shell find user -name '*.h')
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ-CC $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/nocmp/user/%.o: user/%.c $(shell find user -name '*.h')
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ-CC $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_NOCMP_CFLAGS) -c $< -o $@

$(FUZZ_OUT)/tests/synth/%.o: tests/synth/%.c tests/synth/synth.h $(shell find user -name '*.h')
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ-CC $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/nocmp/tests/synth/%.o: tests/synth/%.c tests/synth/synth.h $(shell find user -name '*.h')
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ-CC $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_NOCMP_CFLAGS) -c $< -o $@

.SECONDEXPANSION:
$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_objs,$$*) $(wildcard tests/synth/*.[ch] tests/unit/*.h)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ-LD $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(call fuzz_cov,$*) $< $(call fuzz_objs,$*) -ljson-c -lz -lm -o $@

# seed corpus generator (checked-in output; rerun `make fuzz-seeds` after changing it)
$(FUZZ_OUT)/gen_seeds: tests/fuzz/gen_seeds.c $(FUZZ_LIB_OBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $< $(FUZZ_LIB_OBJS) -ljson-c -lz -lm -o $@

.SECONDARY: $(FUZZ_LIB_OBJS) $(FUZZ_NOCMP_OBJS)

fuzz-build: $(FUZZ_BINS)

fuzz-seeds: $(FUZZ_OUT)/gen_seeds
	$(Q)$(FUZZ_OUT)/gen_seeds tests/fuzz/corpus

fuzz: $(FUZZ_BINS)
	$(Q)scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

.PHONY: fuzz fuzz-build fuzz-seeds
