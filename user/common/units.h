/* Command-line units shared by every subcommand. */
#ifndef VMOT_COMMON_UNITS_H
#define VMOT_COMMON_UNITS_H
#include <stdint.h>
#include <sys/types.h>

/* Parse "123", "0x1000", "64K", "64M", "1G" -> bytes. -EINVAL when malformed or out of range. */
int parse_size(const char *s, uint64_t *out);
/* A process id: decimal, 1..INT_MAX. -EINVAL otherwise. */
int parse_pid(const char *s, pid_t *out);
/* A duration in seconds: a number with an optional unit, ns, us, ms, s (the default), m or h ("500ms",
 * "1.5", "10s", "2m"), within lo..hi seconds. -EINVAL otherwise. */
int parse_duration(const char *s, double lo, double hi, double *seconds);
/* A number (strtod syntax) in lo..hi. -EINVAL otherwise (NaN included). */
int parse_number(const char *s, double lo, double hi, double *out);

#endif
