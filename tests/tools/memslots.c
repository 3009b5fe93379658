/* memslots PID: print the KVM memslots of a QEMU (or kvm-tiny) process via capture_read_memslots(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "capture/capture.h"
#include "common/log.h"

int main(int argc, char **argv)
{
	struct memslot slots[256];
	int n;

	if (argc > 2 && !strcmp(argv[1], "-v")) {
		log_verbose = 2;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: memslots [-v] PID\n");
		return 1;
	}
	n = capture_read_memslots((pid_t)strtol(argv[1], NULL, 0), slots, 256);
	if (n < 0) {
		fprintf(stderr, "memslots: %s\n", strerror(-n));
		return 1;
	}
	for (int i = 0; i < n && i < 256; i++)
		printf("slot %u as %u gpa 0x%llx size 0x%llx hva 0x%llx flags 0x%x\n", slots[i].id, slots[i].as_id,
		       (unsigned long long)slots[i].gpa, (unsigned long long)slots[i].size,
		       (unsigned long long)slots[i].hva, slots[i].flags);
	return 0;
}
