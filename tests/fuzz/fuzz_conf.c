/* libFuzzer target for the configuration loader: any bytes in, a config or messages out, nothing leaked. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *conf = NULL;
	struct conf_diag diag;
	int r = conf_load_string("fuzz.conf", (const char *)data, size, &conf, &diag);

	if (r == 0) {
		/* what the daemon will rely on */
		if (!conf || diag.n != 0)
			__builtin_trap();
		for (size_t i = 0; i < conf->n_phase2; i++)
			if (conf->phase2[i].phase1_index >= conf->n_phase1)
				__builtin_trap();
		for (size_t i = 0; i < conf->n_phase1; i++)
			if (conf_find_phase1(conf, conf->phase1[i].name) != &conf->phase1[i] ||
			    !conf->phase1[i].interface || conf->phase1[i].n_proposals == 0 ||
			    conf->phase1[i].n_dhgrp == 0)
				__builtin_trap();
	} else {
		if (conf || diag.n == 0)
			__builtin_trap();
		for (size_t i = 0; i < diag.n; i++)
			if (strncmp(diag.lines[i], "fuzz.conf:", 10) != 0)
				__builtin_trap();
	}
	conf_free(conf);
	conf_diag_free(&diag);
	return 0;
}
