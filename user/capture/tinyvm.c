/* tinyvm: see tinyvm.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "capture/tinyvm.h"

#define MEM_SIZE    0x200000ULL   /* 2 MiB of guest RAM at GPA 0 */
#define CODE_GPA    0x1000ULL
#define TABLE_GPA   0x3000ULL     /* u64 roots[K] for the guest loop */
#define PDPT_GPA    0x4000ULL
#define PD_GPA      0x5000ULL
#define ROOT0_GPA   0x10000ULL    /* root i at ROOT0_GPA + i * 0x1000 */
#define STACK_GPA   0x80000ULL

/*
 * Guest (64-bit): r11 = writes, rsi = &roots[0], r12 = K, r9 = S (sync period, 0 = none).
 * r8 = root index, r10 = writes since the last sync. 0x300000 (TINYVM_MMIO_GPA) is mapped but not RAM.
 */
__asm__(".pushsection .rodata\n"
	".global vmot_tinyvm_guest, vmot_tinyvm_guest_end\n"
	".code64\n"
	"vmot_tinyvm_guest:\n"
	"	mov $0xc0000101, %ecx\n"      /* wrmsr GS_BASE = TINYVM_GS_BASE */
	"	mov $0x1000, %eax\n"
	"	xor %edx, %edx\n"
	"	wrmsr\n"
	"	movb $1, 0x300000\n"          /* MMIO: no memslot there */
	"	xor %r8, %r8\n"
	"	xor %r10, %r10\n"
	"	test %r11, %r11\n"
	"	jz 3f\n"
	"1:	mov (%rsi,%r8,8), %rax\n"
	"	mov %rax, %cr3\n"
	"	inc %r8\n"
	"	cmp %r12, %r8\n"
	"	jb 2f\n"
	"	xor %r8, %r8\n"
	"2:	test %r9, %r9\n"
	"	jz 4f\n"
	"	inc %r10\n"
	"	cmp %r9, %r10\n"
	"	jb 4f\n"
	"	xor %r10, %r10\n"
	"	out %al, $0xf1\n"
	"4:	dec %r11\n"
	"	jnz 1b\n"
	"3:	hlt\n"
	"	jmp 3b\n"
	"vmot_tinyvm_guest_end:\n"
	".popsection\n");
extern const unsigned char vmot_tinyvm_guest[], vmot_tinyvm_guest_end[];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->db = code ? 0 : 1;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

int tinyvm_run(const struct tinyvm_opts *opts, struct tinyvm_result *res)
{
	struct kvm_userspace_memory_region region;
	struct kvm_run *run = MAP_FAILED;
	uint8_t *mem = MAP_FAILED;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int kvm = -1, vm = -1, vcpu = -1, err;
	unsigned int nroots = opts->nroots ? opts->nroots : 4;
	uint64_t *tbl, t0;
	long run_size = 0;

	memset(res, 0, sizeof(*res));
	if (nroots < 2 || nroots > TINYVM_MAX_ROOTS)
		return -EINVAL;
	res->nroots = nroots;
	res->writes = opts->writes;
#define TRY(expr) do { if ((expr) < 0) { err = -errno; goto out; } } while (0)
	TRY(kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC));
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		err = -ENODEV;
		goto out;
	}
	TRY(vm = ioctl(kvm, KVM_CREATE_VM, 0));
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	res->mem_hva = (uintptr_t)mem;
	res->mem_size = MEM_SIZE;
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem,
	};
	TRY(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region));
	TRY(vcpu = ioctl(vm, KVM_CREATE_VCPU, 0));
	TRY(run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		err = -errno;
		goto out;
	}

	/* root i -> PDPT -> PD with two 2 MiB identity pages (present, writable, PS): RAM, then MMIO space */
	memcpy(mem + CODE_GPA, vmot_tinyvm_guest, (size_t)(vmot_tinyvm_guest_end - vmot_tinyvm_guest));
	*(uint64_t *)(mem + PD_GPA) = 0x83;
	*(uint64_t *)(mem + PD_GPA + 8) = 0x200000 | 0x83;
	*(uint64_t *)(mem + PDPT_GPA) = PD_GPA | 0x3;
	tbl = (uint64_t *)(mem + TABLE_GPA);
	for (unsigned int i = 0; i < nroots; i++) {
		tbl[i] = ROOT0_GPA + i * 0x1000ULL;
		*(uint64_t *)(mem + tbl[i]) = PDPT_GPA | 0x3;
		res->roots[i] = tbl[i];
	}

	TRY(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	set_seg(&sregs.cs, 0x8, 11, 1);
	set_seg(&sregs.ds, 0x10, 3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr3 = tbl[0];
	sregs.cr4 = 1u << 5;                     /* PAE */
	sregs.cr0 = 0x80000011u;                 /* PG | ET | PE */
	sregs.efer = (1u << 8) | (1u << 10);     /* LME | LMA */
	TRY(ioctl(vcpu, KVM_SET_SREGS, &sregs));
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = CODE_GPA;
	regs.rsp = STACK_GPA;
	regs.r11 = opts->writes;
	regs.rsi = TABLE_GPA;
	regs.r12 = nroots;
	regs.r9 = opts->sync_every;
	TRY(ioctl(vcpu, KVM_SET_REGS, &regs));
	if (opts->on_ready && opts->on_ready(opts->ctx)) {
		err = -ECANCELED;
		goto out;
	}

	t0 = now_ns();
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_MMIO)
			continue;   /* the write goes nowhere */
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == TINYVM_SYNC_PORT) {
			res->syncs++;
			TRY(ioctl(vcpu, KVM_GET_SREGS, &sregs));
			if (opts->on_sync)
				opts->on_sync(opts->ctx, sregs.cr3);
			continue;
		}
		res->bad_exit = run->exit_reason;
		err = -EPROTO;   /* shutdown (triple fault), internal error, ... */
		goto out;
	}
	res->elapsed_ns = now_ns() - t0;
	TRY(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	res->final_cr3 = sregs.cr3;
	err = 0;
#undef TRY
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, MEM_SIZE);
	if (kvm >= 0)
		close(kvm);
	return err;
}
