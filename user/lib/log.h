/* SPDX-License-Identifier: MIT */
/* log.h -- structured logs in logfmt to stderr
 *
 * log_info("queue: segment rotated", "seg=%u bytes=%llu", seg, bytes) prints
 *	ts=2026-11-27T10:00:00.123Z level=info msg="queue: segment rotated" seg=7 bytes=1048576
 * The message is a fixed string (greppable); fields are printf-formatted key=value pairs.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the minimum level printed; returns -EINVAL for an unknown name. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

void log_emit(enum log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print a raw printf-style line (library log passthrough). */
void log_vprintf_raw(const char *fmt, va_list ap);

#define log_debug(msg, ...) log_emit(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_emit(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_emit(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_emit(LOG_ERROR, msg, __VA_ARGS__)

#endif /* SLUICE_LOG_H */
