/*
 * libFuzzer target for the control socket's request line (daemon/ctl/ctl.c).
 * Besides "no crash", it checks what iketcpctl relies on: the words a line
 * splits into, joined again by ctl_join, split into the same words.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

#define MAX_WORDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[CTL_REQUEST_MAX + 1], again[CTL_REQUEST_MAX + 1];
	char *argv[MAX_WORDS], *argv2[MAX_WORDS];

	if (size > CTL_REQUEST_MAX)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	int argc = ctl_split(line, argv, MAX_WORDS);
	if (argc < -1 || argc > MAX_WORDS)
		abort();
	if (argc <= 0)
		return 0;
	int n = ctl_join(again, sizeof(again), argc, argv);
	if (n < 0)
		return 0; /* longer once quoted than a request may be */
	if ((size_t)n != strlen(again))
		abort();
	if (ctl_split(again, argv2, MAX_WORDS) != argc)
		abort();
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], argv2[i]))
			abort();
	return 0;
}
