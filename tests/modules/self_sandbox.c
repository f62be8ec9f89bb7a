/*
 * self_sandbox: a program that sandboxes itself with libseccomp, as
 * man-db and others do: it asks which API the kernel offers, builds a
 * filter of its own and loads it, and carries on without one when the
 * kernel says no. Built by tests/integration/test_jail.py (cc -lseccomp).
 *
 * Prints "self_sandbox: api N load ERRNAME|ok" and exits 0 either way:
 * in a jail, the load must be refused with an error the program can
 * handle, not end the run.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		puts("self_sandbox: seccomp_init failed");
		return 1;
	}
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) <
	    0) {
		puts("self_sandbox: seccomp_rule_add failed");
		return 1;
	}
	/* the probes libseccomp makes: seccomp(2) modes, flags, actions */
	unsigned int api = seccomp_api_get();
	errno = 0;
	int rc = seccomp_load(ctx);
	int err = errno;
	seccomp_release(ctx);
	printf("self_sandbox: api %u load %s\n", api,
	       rc == 0 ? "ok" : err == EINVAL ? "EINVAL" : strerror(err));
	return 0;
}
