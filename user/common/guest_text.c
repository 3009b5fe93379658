/* Guest strings as printable text and JSON arrays; see guest_text.h. */
#include <string.h>
#include "common/guest_text.h"

char *guest_text(const char *s, size_t len, char nul_as, char *out, size_t cap)
{
	size_t k = 0;

	if (!cap)
		return out;
	for (size_t i = 0; i < len && k + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!ch && !nul_as)
			break;
		out[k++] = !ch ? nul_as : (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	while (nul_as && k && out[k - 1] == nul_as)
		k--;
	out[k] = 0;
	return out;
}

void jsonw_nul_strings(json_writer_t *w, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	jsonw_start_array(w);
	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));

		jsonw_string_len(w, p, l);
		p += l + 1;
	}
	jsonw_end_array(w);
}
