/* Levelled logging to stderr; journald reads the <N> priority prefix. */
#ifndef IKETCP_LOG_H
#define IKETCP_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include "compiler.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* 0 and *level set, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *level);
void log_msg(enum log_level level, const char *fmt, ...) printf_like(2, 3);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/*
 * At most one line per interval for peer-triggered events, so a flood cannot
 * flood the journal too; the next line that passes says how many were held back.
 */
struct log_ratelimit {
	uint64_t last_ms;
	uint64_t suppressed;
};
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t interval_ms, uint64_t *suppressed);

#define log_rl(rl, level, fmt, ...)                                                  \
	do {                                                                         \
		uint64_t _held;                                                      \
		if (log_ratelimit_pass((rl), 1000, &_held))                          \
			log_msg((level), fmt "%s", ##__VA_ARGS__,                    \
				_held ? " (more suppressed)" : "");                  \
	} while (0)

#endif
