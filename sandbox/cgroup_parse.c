/*
 * Where the cgroup v1 controllers are, read from the kernel's own tables.
 *
 * /proc/self/mountinfo says where each v1 hierarchy is mounted and which
 * controllers it carries; /proc/self/cgroup says which cgroup of each
 * hierarchy this process is in. Reading both takes a fraction of a
 * millisecond, where libcgroup's cgroup_init() takes about 5 ms on this
 * project's machines: a cost every `airlock run` would pay. libcgroup stays
 * the fallback for layouts these plain parsers do not recognise.
 *
 * Pure text parsing: unit-tested in tests/unit/test_cgroup_parse.c.
 */
#include <stdio.h>
#include <string.h>

#include "sandbox/internal.h"

/* Whether `list` ("rw,memory" or "cpu,cpuacct") has the token `want`. */
static bool has_token(const char *list, size_t len, const char *want)
{
	size_t n = strlen(want);
	const char *end = list + len;
	for (const char *p = list; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t tlen = comma ? (size_t)(comma - p) : (size_t)(end - p);
		if (tlen == n && strncmp(p, want, n) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* The n-th space-separated field of a line (0-based), with its length. */
static const char *field(const char *line, const char *end, int n, size_t *len)
{
	const char *p = line;
	for (int i = 0; i < n && p < end; i++) {
		p = memchr(p, ' ', (size_t)(end - p));
		if (!p)
			return NULL;
		p++;
	}
	const char *stop = memchr(p, ' ', (size_t)(end - p));
	*len = (size_t)((stop ? stop : end) - p);
	return p;
}

int cgroup_v1_mount_of(const char *mountinfo, const char *controller, char *out,
		       size_t len)
{
	for (const char *line = mountinfo; line && *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		const char *sep = strstr(line, " - ");
		if (sep && sep < end) {
			size_t tlen, mlen, olen;
			const char *type = field(sep + 3, end, 0, &tlen);
			const char *opts = field(sep + 3, end, 2, &olen);
			const char *mnt = field(line, end, 4, &mlen);
			/* the mount point is field 5 of the part before " - " */
			if (type && opts && mnt && mnt + mlen <= sep &&
			    tlen == 6 && strncmp(type, "cgroup", 6) == 0 &&
			    has_token(opts, olen, controller)) {
				if (mlen >= len)
					return -1;
				memcpy(out, mnt, mlen);
				out[mlen] = '\0';
				return 0;
			}
		}
		line = *end ? end + 1 : NULL;
	}
	return -1;
}

int cgroup_v1_path_of(const char *proc_cgroup, const char *controller,
		      char *out, size_t len)
{
	for (const char *line = proc_cgroup; line && *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		/* "4:memory:/path", or "2:cpu,cpuacct:/path" */
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':',
					     (size_t)(end - c1 - 1))
				    : NULL;
		if (c2 &&
		    has_token(c1 + 1, (size_t)(c2 - c1 - 1), controller)) {
			size_t plen = (size_t)(end - c2 - 1);
			if (plen == 0 || plen >= len)
				return -1;
			memcpy(out, c2 + 1, plen);
			out[plen] = '\0';
			return 0;
		}
		line = *end ? end + 1 : NULL;
	}
	return -1;
}
