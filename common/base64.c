/*
 * base64 (RFC 4648, standard alphabet, '=' padding) for the protocol's
 * "content" member; the encoder serves clients and the tests. Decoding is
 * strict: a client's bytes either are base64 or are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>

#include "common/common.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t base64_decode(const char *in, size_t len, unsigned char *out,
		      struct al_error *err)
{
	size_t o = 0;

	if (len % 4 != 0)
		return al_error_set(err, EINVAL,
				    "invalid base64: length %zu is not a "
				    "multiple of 4",
				    len);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64_value(c)) < 0)
				return al_error_set(err, EINVAL,
						    "invalid base64 at byte "
						    "%zu",
						    i + (size_t)k);
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)w;
	}
	return (ssize_t)o;
}

char *base64_encode(const void *in, size_t len)
{
	const unsigned char *s = in;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)s[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < len)
			w |= s[i + 2];
		out[o++] = b64[(w >> 18) & 63];
		out[o++] = b64[(w >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64[w & 63] : '=';
	}
	out[o] = '\0';
	return out;
}
