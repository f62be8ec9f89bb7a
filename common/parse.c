/*
 * Sizes, durations and bounded integers as people write them on the command
 * line, in the environment and in policy files.
 *
 * The grammar is strict on purpose: a limit that silently parses as
 * something else ("5 M" as 5 bytes, "-1" as 16 EiB) weakens the jail, so
 * anything unexpected is an error that quotes the input and shows the
 * expected form. *out is written only on success.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"

/* Fraction digits that take part in the result; 10^19 still fits in a
 * uint64_t, and later digits are worth less than 1e-19 of the unit. */
#define FRAC_DIGITS_MAX 19
/* Input bytes echoed back in a message, and the room that needs. */
#define QUOTE_INPUT_MAX 64
#define QUOTED_SIZE (QUOTE_INPUT_MAX * 4 + sizeof("..."))

#define SIZE_FORM "a number with an optional unit K, M, G or T (e.g. 64M)"
#define FRACTION_FORM "a fraction needs a unit K, M, G or T (e.g. 1.5G)"
#define DURATION_FORM "a number with a unit us, ms, s, m or h (e.g. 200ms, 3s)"

typedef unsigned __int128 u128;

/* A decimal number "123" or "123.45", split up; see scan_decimal(). */
struct decimal {
	uint64_t whole;
	bool whole_overflow;
	bool has_frac;
	uint64_t frac; /* the first `frac_digits` digits after the point */
	unsigned frac_digits;
	const char *end; /* the first byte after the number */
};

struct duration_unit {
	const char *suffix;
	uint64_t us;
};

/* No "": a bare number is refused (parse_duration_us). */
static const struct duration_unit duration_units[] = {
	{ "us", 1 },
	{ "ms", 1000 },
	{ "s", 1000000 },
	{ "m", UINT64_C(60) * 1000000 },
	{ "h", UINT64_C(3600) * 1000000 },
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* tolower() follows the locale, where 'I' need not become 'i'. */
static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Echo input back safely: printable ASCII as is, '"' and '\' escaped,
 * anything else as \xNN, at most QUOTE_INPUT_MAX bytes. Input may come from
 * a hostile file, and the message ends up on a terminal.
 */
static const char *quote_input(const char *s, char out[QUOTED_SIZE])
{
	size_t i, w = 0;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && i < QUOTE_INPUT_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[w++] = '\\';
			out[w++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			out[w++] = (char)c;
		} else {
			snprintf(out + w, 5, "\\x%02x", c);
			w += 4;
		}
	}
	if (s[i] != '\0') {
		memcpy(out + w, "...", 3);
		w += 3;
	}
	out[w] = '\0';
	return out;
}

/*
 * Digits, optionally followed by "." and more digits. No sign, no space,
 * no leading or trailing point. Returns false when that is not what `s`
 * starts with; an integer part past UINT64_MAX is flagged, not rejected,
 * so that "99999999999999999999x" is reported as malformed, not too large.
 */
static bool scan_decimal(const char *s, struct decimal *d)
{
	const char *p = s;

	memset(d, 0, sizeof(*d));
	if (s == NULL || !is_digit(*p))
		return false;
	for (; is_digit(*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (d->whole > (UINT64_MAX - digit) / 10)
			d->whole_overflow = true;
		else
			d->whole = d->whole * 10 + digit;
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return false;
		d->has_frac = true;
		for (; is_digit(*p); p++) {
			if (d->frac_digits == FRAC_DIGITS_MAX)
				continue;
			d->frac = d->frac * 10 + (uint64_t)(*p - '0');
			d->frac_digits++;
		}
	}
	d->end = p;
	return true;
}

/* d * mult, rounded down to a whole number; false when past UINT64_MAX. */
static bool scale_decimal(const struct decimal *d, uint64_t mult, uint64_t *out)
{
	u128 pow10 = 1, v;
	unsigned i;

	if (d->whole_overflow)
		return false;
	for (i = 0; i < d->frac_digits; i++)
		pow10 *= 10;
	/* At most 2^64 * 2^40 plus the fraction: no u128 overflow. */
	v = (u128)d->whole * mult + (u128)d->frac * mult / pow10;
	if (v > UINT64_MAX)
		return false;
	*out = (uint64_t)v;
	return true;
}

/*
 * The multiplier for a size suffix, 0 when it is not one: "", "B", or
 * K/M/G/T followed by an optional "i" and an optional "B", in any case.
 */
static uint64_t size_unit(const char *u)
{
	static const char letters[] = "kmgt";
	const char *hit = NULL;
	uint64_t mult = 1;

	if (*u != '\0')
		hit = strchr(letters, ascii_lower(*u));
	if (hit != NULL) {
		mult = UINT64_C(1) << (10 * (hit - letters + 1));
		u++;
		if (ascii_lower(*u) == 'i')
			u++;
	}
	if (ascii_lower(*u) == 'b')
		u++;
	return *u == '\0' ? mult : 0;
}

int parse_size(const char *s, uint64_t *out, struct al_error *err)
{
	char q[QUOTED_SIZE];
	struct decimal d;
	uint64_t mult, v;

	if (!scan_decimal(s, &d) || (mult = size_unit(d.end)) == 0)
		return al_error_set(err, EINVAL,
				    "invalid size \"%s\": expected %s",
				    quote_input(s, q), SIZE_FORM);
	if (d.has_frac && mult == 1)
		return al_error_set(err, EINVAL,
				    "invalid size \"%s\": fractional bytes; %s",
				    quote_input(s, q), FRACTION_FORM);
	if (!scale_decimal(&d, mult, &v))
		return al_error_set(err, ERANGE, "size \"%s\" is too large",
				    quote_input(s, q));
	*out = v;
	return 0;
}

int parse_duration_us(const char *s, uint64_t *out, struct al_error *err)
{
	const struct duration_unit *unit = NULL;
	char q[QUOTED_SIZE];
	struct decimal d;
	uint64_t v;
	size_t i;

	bool number = scan_decimal(s, &d);
	if (number) {
		for (i = 0; i < ARRAY_SIZE(duration_units); i++)
			if (strcmp(d.end, duration_units[i].suffix) == 0)
				unit = &duration_units[i];
	}
	bool bare = number && unit == NULL && *d.end == '\0';
	/* a bare number is ambiguous (milliseconds? seconds?): refused,
	 * except 0, which is the same in every unit */
	if (bare && !d.has_frac && !d.whole_overflow && d.whole == 0) {
		*out = 0;
		return 0;
	}
	if (bare)
		return al_error_set(err, EINVAL,
				    "invalid duration \"%s\": a number needs a "
				    "unit (%sms or %ss?): us, ms, s, m or h",
				    quote_input(s, q), quote_input(s, q),
				    quote_input(s, q));
	if (unit == NULL)
		return al_error_set(err, EINVAL,
				    "invalid duration \"%s\": expected %s",
				    quote_input(s, q), DURATION_FORM);
	if (!scale_decimal(&d, unit->us, &v))
		return al_error_set(err, ERANGE, "duration \"%s\" is too large",
				    quote_input(s, q));
	*out = v;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
	       struct al_error *err)
{
	char q[QUOTED_SIZE];
	struct decimal d;

	if (!scan_decimal(s, &d) || d.has_frac || *d.end != '\0' ||
	    d.whole_overflow || d.whole < min || d.whole > max)
		return al_error_set(err, EINVAL,
				    "invalid number \"%s\": expected an "
				    "integer from %" PRIu64 " to %" PRIu64,
				    quote_input(s, q), min, max);
	*out = d.whole;
	return 0;
}

/* The largest binary unit not above `bytes`, one decimal (rounded down)
 * only when the count is not a whole number of that unit. */
void format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B",   "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	unsigned i = 0, shift;
	uint64_t whole, rest;

	if (buf == NULL || len == 0)
		return;
	while (i + 1 < ARRAY_SIZE(units) && (bytes >> (10 * (i + 1))) != 0)
		i++;
	shift = 10 * i;
	whole = bytes >> shift;
	rest = bytes - (whole << shift);
	if (rest == 0)
		snprintf(buf, len, "%" PRIu64 " %s", whole, units[i]);
	else /* rest < 2^60, so rest * 10 fits */
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " %s", whole,
			 (rest * 10) >> shift, units[i]);
}
