/* Command-line units shared by every subcommand. */
#ifndef VMOT_COMMON_UNITS_H
#define VMOT_COMMON_UNITS_H
#include <stdint.h>

/* Parse "123", "0x1000", "64K", "64M", "1G" -> bytes. -EINVAL when malformed or out of range. */
int parse_size(const char *s, uint64_t *out);

#endif
