// SPDX-License-Identifier: MIT
/* log.c -- structured logs in logfmt to stderr
 *
 * One line per call, written with a single write(2) so lines from several threads never
 * interleave. The level is a process-wide atomic, settable at run time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static int min_level = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

int log_set_level_name(const char *name)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (!strcmp(name, names[i])) {
			log_set_level(i);
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	__atomic_store_n(&min_level, (int)level, __ATOMIC_RELAXED);
}

bool log_enabled(enum log_level level)
{
	return (int)level >= __atomic_load_n(&min_level, __ATOMIC_RELAXED);
}

void log_emit(enum log_level level, const char *msg, const char *fields_fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s msg=\"%s\"",
		      (long)tv.tv_usec / 1000, names[level], msg);
	if (n < sizeof(line) - 2 && fields_fmt && *fields_fmt) {
		line[n++] = ' ';
		va_start(ap, fields_fmt);
		vsnprintf(line + n, sizeof(line) - n, fields_fmt, ap);
		va_end(ap);
		n = strlen(line);
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return; /* nowhere left to report it */
}

void log_vprintf_raw(const char *fmt, va_list ap)
{
	vfprintf(stderr, fmt, ap);
}
