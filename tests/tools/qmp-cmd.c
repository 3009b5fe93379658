/*
 * qmp-cmd: run one QMP command (or an HMP command line) against a QEMU QMP socket and print the result,
 * through the project's QMP client (user/mem/qmp.c). For tests and scripts.
 *
 *   qmp-cmd SOCK EXECUTE [ARGS-JSON]      e.g. qmp-cmd q.sock stop
 *                                              qmp-cmd q.sock dump-guest-memory '{"paging":false,"protocol":"file:/tmp/c"}'
 *   qmp-cmd SOCK --hmp 'COMMAND LINE' [CPU]   e.g. qmp-cmd q.sock --hmp 'info registers -a'
 *   env QMP_TIMEOUT_MS (default 5000; dump-guest-memory of a big guest needs more)
 * Prints the "return" value as JSON (HMP: its text). Exit 0 ok, 1 error (one line on stderr), 64 usage.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "mem/qmp.h"

int main(int argc, char **argv)
{
	const char *t = getenv("QMP_TIMEOUT_MS");
	struct json_object *args = NULL, *ret = NULL;
	struct qmp *q;
	int err;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: qmp-cmd SOCK EXECUTE [ARGS-JSON] | qmp-cmd SOCK --hmp 'CMD' [CPU]\n");
		return 64;
	}
	if (qmp_open(argv[1], t ? atoi(t) : 0, &q))
		return 1;
	if (!strcmp(argv[2], "--hmp")) {
		char *text;

		if (argc < 4)
			return 64;
		err = qmp_hmp(q, argv[3], argc > 4 ? atoi(argv[4]) : -1, &text);
		if (!err) {
			fputs(text, stdout);
			free(text);
		}
	} else {
		if (argc > 3) {
			args = json_tokener_parse(argv[3]);
			if (!args) {
				p_err("arguments are not valid JSON: %s", argv[3]);
				qmp_close(q);
				return 64;
			}
		}
		err = qmp_command(q, argv[2], args, &ret);
		if (!err)
			printf("%s\n", json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN));
		json_object_put(ret);
		json_object_put(args);
	}
	qmp_close(q);
	return err ? 1 : 0;
}
