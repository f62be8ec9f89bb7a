/*
 * Time in and out: the database stores milliseconds since the epoch; people
 * read and write ISO 8601 in UTC, or an age ("2h" ago).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manifest/internal.h"

#define TIME_FORM                                                              \
	"expected ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or an age "      \
	"(90s, 30m, 2h, 7d)"

int64_t manifest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void manifest_time_format(int64_t ms, bool millis, char buf[MANIFEST_TIME_MAX])
{
	/* floor division: -1 ms is 1969-12-31T23:59:59.999Z */
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int frac = (int)(ms - secs * 1000);
	time_t t = (time_t)secs;
	struct tm tm;
	char date[24];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, MANIFEST_TIME_MAX, "?");
		return;
	}
	if (millis)
		snprintf(buf, MANIFEST_TIME_MAX, "%s.%03dZ", date, frac);
	else
		snprintf(buf, MANIFEST_TIME_MAX, "%sZ", date);
}

/* Exactly `n` digits at *p; advances. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* "90s", "30m", "2h", "7d": an age before now. */
static bool parse_age(const char *s, int64_t now_ms, int64_t *out)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = { { 's', 1000 },
		      { 'm', 60000 },
		      { 'h', AL_HOUR_MS },
		      { 'd', AL_DAY_MS } };
	int64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > INT64_MAX / 10 / AL_DAY_MS)
			return false;
		n = n * 10 + (*p - '0');
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (p[0] == units[i].unit && p[1] == '\0') {
			*out = now_ms - n * units[i].ms;
			return true;
		}
	return false;
}

/* [+-]HH[:]MM or Z at the end; the offset in seconds east of UTC. */
static bool parse_zone(const char *p, int *offset)
{
	int sign, hh, mm;

	*offset = 0;
	if (*p == '\0' || (p[0] == 'Z' && p[1] == '\0'))
		return true;
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	if (!digits(&p, 2, &hh))
		return false;
	(void)expect(&p, ':');
	if (!digits(&p, 2, &mm) || *p != '\0' || hh > 23 || mm > 59)
		return false;
	*offset = sign * (hh * 3600 + mm * 60);
	return true;
}

static bool parse_iso(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int year, mon, day, hh = 0, mi = 0, ss = 0, ms = 0, offset;
	const char *p = s;
	time_t t;

	if (!digits(&p, 4, &year) || !expect(&p, '-') || !digits(&p, 2, &mon) ||
	    !expect(&p, '-') || !digits(&p, 2, &day))
		return false;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &hh) || !expect(&p, ':') ||
		    !digits(&p, 2, &mi))
			return false;
		if (expect(&p, ':')) {
			if (!digits(&p, 2, &ss))
				return false;
			if (expect(&p, '.')) {
				int scale = 100, d;
				if (*p < '0' || *p > '9')
					return false;
				while (*p >= '0' && *p <= '9') {
					digits(&p, 1, &d);
					ms += d * scale;
					scale /= 10;
				}
			}
		}
	}
	if (!parse_zone(p, &offset) || mon < 1 || mon > 12 || day < 1 ||
	    day > 31 || hh > 23 || mi > 59 || ss > 60)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mi;
	tm.tm_sec = ss;
	t = timegm(&tm);
	/* timegm() normalizes 2024-02-31 into March: refuse that */
	if (tm.tm_mday != day || tm.tm_mon != mon - 1)
		return false;
	*out = ((int64_t)t - offset) * 1000 + ms;
	return true;
}

int manifest_time_parse(const char *s, int64_t now_ms, int64_t *out,
			struct al_error *err)
{
	char shown[40];

	if (s != NULL && (parse_age(s, now_ms, out) || parse_iso(s, out)))
		return 0;
	return al_error_set(err, EINVAL, "invalid time \"%s\": %s",
			    text_cut(s ? s : "", sizeof(shown) - 1, shown),
			    TIME_FORM);
}
