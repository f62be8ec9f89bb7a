/*
 * Logging: one JSON object per line on stderr (LOG_PRETTY=true: a plain
 * line for people). Every line carries the function, and the request id
 * and run id it concerns when there is one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "supervisor/internal.h"

static int min_level = LOG_INFO;
static bool pretty;

void log_setup(int level, bool pretty_lines)
{
	min_level = level;
	pretty = pretty_lines;
}

void log_line(int level, const char *func, const char *req, int64_t run,
	      const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char msg[2048], ts[MANIFEST_TIME_MAX];
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	manifest_time_format(manifest_now_ms(), true, ts);
	if (pretty) {
		char run_text[32] = "";
		if (run)
			snprintf(run_text, sizeof(run_text), " run=%lld",
				 (long long)run);
		fprintf(stderr, "%s %-5s %s%s%s%s: %s\n", ts, names[level],
			func, req ? " req=" : "", req ? req : "", run_text,
			msg);
		return;
	}
	struct json_buf jb;
	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_string(&jb, "time", ts);
	json_kv_string(&jb, "level", names[level]);
	json_kv_string(&jb, "func", func);
	if (req)
		json_kv_string(&jb, "request", req);
	if (run)
		json_kv_int(&jb, "run", run);
	json_kv_string(&jb, "msg", msg);
	json_object_close(&jb);
	if (!json_buf_failed(&jb))
		fprintf(stderr, "%s\n", jb.data);
	json_buf_free(&jb);
}
