/*
 * seccomp: compile a policy's filter once in the parent with libseccomp,
 * load the raw program in each jail.
 *
 * Compiling (libseccomp's rule database, its optimiser, the export) costs
 * milliseconds and allocates; loading a ready sock_fprog costs a fraction
 * of one and allocates nothing, which is all a freshly cloned child should
 * do. The filter's default action is SECCOMP_RET_USER_NOTIF: a denied call
 * blocks and the parent, holding the listener, learns the syscall's number
 * before it kills the run, so the verdict can name it. Should the parent
 * die, the kernel fails notified calls with ENOSYS: closed, not open.
 * Calls through another ABI (i386's int $0x80, x32) are notified too,
 * named after their ABI: a kill would end only the thread that made one,
 * and a module that forked first would never hear of it.
 *
 * A notification is the weakest action that stops a call, so the module
 * must not add filters of its own: the kernel takes the most restrictive
 * action of all a process's filters, and one answering ERRNO or TRAP
 * would turn every denial into a quiet error. Installing a filter is
 * refused under every policy (below, with the terminal requests).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Namespace flags: a module that could create namespaces could build its
 * own mount or user namespace and leave the jail's view behind. */
#define CLONE_NS_FLAGS                                                         \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |           \
	 CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

/*
 * What socket() may open, in every network mode. The network
 * namespace, not the filter, decides what a socket can reach: with mode
 * none no interface is up (connect and bind to 127.0.0.1 fail with
 * ENETUNREACH and EADDRNOTAVAIL), with loopback only the jail's own `lo`
 * is; abstract AF_UNIX names are per network namespace, so the host's are
 * out of reach in both, and path names resolve in the jail's own mounts.
 * So AF_UNIX, AF_INET and AF_INET6 are process plumbing in every mode
 * (asyncio's self-pipe, multiprocessing, a test server on loopback). The
 * rest (packet, alg, vsock, bluetooth, ...) is kernel attack surface with
 * no use in a jail (they fail with EAFNOSUPPORT, below). Netlink is
 * filtered by protocol: NETLINK_ROUTE reads
 * the jail's own interfaces and addresses (getifaddrs, getaddrinfo's
 * AI_ADDRCONFIG, Node's os.networkInterfaces()) and, without
 * CAP_NET_ADMIN, changes nothing; NETLINK_KOBJECT_UEVENT would hand the
 * host's device events to a root-mode jail (a netns owned by the initial
 * user namespace receives them), and the audit, xfrm, netfilter and
 * diagnostic families are host-wide or attack surface, so every other
 * protocol stops the run, naming socket.
 */
struct socket_rule {
	int family;
	int protocol; /* -1: any; else the only protocol allowed */
};

/* The same in both network modes: what a socket can reach is the
 * namespace's business, and NETLINK_ROUTE is what either mode's programs
 * read their (jail-own) interfaces with. */
/* clang-format off */
static const struct socket_rule socket_rules[] = {
	{ AF_UNIX, -1 }, { AF_INET, -1 }, { AF_INET6, -1 },
	{ AF_NETLINK, NETLINK_ROUTE }, { -1, -1 },
};
/* clang-format on */

/* The kernel reads family and protocol as ints: compare the low 32 bits
 * only, so a module cannot pass a value whose upper half differs. */
#define ARG_INT_EQ(n, v)                                                       \
	SCMP_CMP((n), SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)(v))

/* Families above this are not known to this kernel's headers: the
 * default action (naming socket) takes them. */
#define FAMILY_LAST AF_MAX

static bool family_listed(int family)
{
	for (const struct socket_rule *r = socket_rules; r->family >= 0; r++)
		if (r->family == family)
			return true;
	return false;
}

/*
 * Listed families are allowed (netlink for its one protocol; any other
 * netlink protocol takes the default action and stops the run). Every
 * other family fails with EAFNOSUPPORT, the answer of a kernel built
 * without it: runtimes and test suites probe for AF_CAN, AF_TIPC, AF_ALG
 * and the like and carry on without them, and nothing is opened.
 */
static int add_socket_rules(scmp_filter_ctx ctx, int nr)
{
	int rc = 0;
	for (const struct socket_rule *r = socket_rules;
	     rc == 0 && r->family >= 0; r++)
		rc = r->protocol < 0
			     ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
						ARG_INT_EQ(0, r->family))
			     : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 2,
						ARG_INT_EQ(0, r->family),
						ARG_INT_EQ(2, r->protocol));
	for (int family = 0; rc == 0 && family < FAMILY_LAST; family++)
		if (!family_listed(family))
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
					      nr, 1, ARG_INT_EQ(0, family));
	return rc;
}

/* What the jail's init itself does after loading the filter (send the
 * listener, close fds, exec the airlock-init helper, vfork, execve, reap,
 * exit): allowed whatever the policy says, or no module could start.
 * execveat is execve from a directory fd: no more than execve of
 * /proc/self/fd/N, which every policy allows. */
/* clang-format off */
static const char *const init_needs[] = {
	"sendmsg", "close", "close_range", "execveat", "vfork", "setsid",
	"execve", "wait4", "exit", "exit_group",
#ifdef __SANITIZE_ADDRESS__
	/* make SAN=1 only: the sanitizer runtime in init maps memory and
	 * sets up a signal stack around vfork; a learned allow-list that
	 * holds only the module's calls would otherwise stop init */
	"sigaltstack", "mmap", "munmap", "madvise",
#endif
	NULL,
};
/* clang-format on */

const char *const *seccomp_init_calls(void)
{
	return init_needs;
}

static int add_rule(scmp_filter_ctx ctx, const struct policy_syscall *s,
		    struct al_error *err)
{
	int nr = seccomp_syscall_resolve_name(s->name);
	if (nr == __NR_SCMP_ERROR)
		return al_error_set(err, EINVAL,
				    "seccomp: unknown syscall \"%s\" on this "
				    "architecture",
				    s->name);
	int rc;
	if (s->action == POLICY_SYS_ERRNO)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)s->errnum),
				      nr, 0);
	else if (strcmp(s->name, "clone") == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ,
					      CLONE_NS_FLAGS, 0));
	else if (strcmp(s->name, "socket") == 0)
		rc = add_socket_rules(ctx, nr);
	/* a pair is always AF_UNIX: the jail's own plumbing, nothing else */
	else if (strcmp(s->name, "socketpair") == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
				      ARG_INT_EQ(0, AF_UNIX));
	else
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (rc < 0)
		return al_error_sys(err, -rc, "seccomp: rule for %s", s->name);
	return 0;
}

/*
 * Refusals that hold whatever the policy allows, checked by a few
 * instructions ahead of the policy's program (libseccomp cannot express
 * "the low 32 bits differ", which allowing every other request needs,
 * and its allow-all rule for a call would swallow conditional ones):
 *
 * - installing a seccomp filter: prctl(PR_SET_SECCOMP) and
 *   seccomp(SECCOMP_SET_MODE_FILTER) fail with EINVAL, the answer of a
 *   kernel without CONFIG_SECCOMP_FILTER, which programs that sandbox
 *   themselves (man-db, libseccomp users) take as "no filters here" and
 *   carry on. Strict mode is refused by the kernel itself once a filter
 *   is in, and seccomp()'s queries (SECCOMP_GET_ACTION_AVAIL,
 *   SECCOMP_GET_NOTIF_SIZES) are left to the policy;
 * - terminal requests no module needs: TIOCSETD (a line discipline of
 *   the module's choosing, and the kernel autoloads rare ones as modules:
 *   n_hdlc, n_gsm and the like, a known attack surface), TIOCSTI (typing
 *   into a terminal's input) and TIOCLINUX (a virtual console's selection
 *   and paste) fail with EPERM, so a program that probes them carries on.
 *
 * The kernel reads all three arguments as ints: only the low 32 bits are
 * compared. Calls of another ABI go on to the policy's program, whose
 * architecture check takes them.
 */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG_LOW(n) (offsetof(struct seccomp_data, args[n]) + 4)
#else
#define ARG_LOW(n) offsetof(struct seccomp_data, args[n])
#endif

enum {
	R_ARCH,
	R_IS_NATIVE,
	R_NR,
	R_IS_IOCTL,
	R_IS_PRCTL,
	R_IS_SECCOMP,
	R_IOCTL_CMD,
	R_TIOCSETD,
	R_TIOCSTI,
	R_TIOCLINUX,
	R_PRCTL_OPTION,
	R_PR_SET_SECCOMP,
	R_SECCOMP_OP,
	R_SET_MODE_FILTER,
	R_EPERM,
	R_EINVAL,
	R_LEN /* the policy's program starts here */
};

/* a jump from instruction `from` to `to`, both within the refusals or
 * R_LEN (the policy's program) */
#define TO(from, to) ((__u8)((to) - (from)-1))
#define LOAD(what) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (what))
#define IF_EQ(at, value, then, otherwise)                                      \
	[at] = BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), TO(at, then),      \
			TO(at, otherwise))

static void fixed_refusals(struct sock_filter out[R_LEN])
{
	const struct sock_filter prog[R_LEN] = {
		[R_ARCH] = LOAD(offsetof(struct seccomp_data, arch)),
		IF_EQ(R_IS_NATIVE, seccomp_arch_native(), R_NR, R_LEN),
		[R_NR] = LOAD(offsetof(struct seccomp_data, nr)),
		IF_EQ(R_IS_IOCTL, __NR_ioctl, R_IOCTL_CMD, R_IS_PRCTL),
		IF_EQ(R_IS_PRCTL, __NR_prctl, R_PRCTL_OPTION, R_IS_SECCOMP),
		IF_EQ(R_IS_SECCOMP, __NR_seccomp, R_SECCOMP_OP, R_LEN),
		[R_IOCTL_CMD] = LOAD(ARG_LOW(1)),
		IF_EQ(R_TIOCSETD, TIOCSETD, R_EPERM, R_TIOCSTI),
		IF_EQ(R_TIOCSTI, TIOCSTI, R_EPERM, R_TIOCLINUX),
		IF_EQ(R_TIOCLINUX, TIOCLINUX, R_EPERM, R_LEN),
		[R_PRCTL_OPTION] = LOAD(ARG_LOW(0)),
		IF_EQ(R_PR_SET_SECCOMP, PR_SET_SECCOMP, R_EINVAL, R_LEN),
		[R_SECCOMP_OP] = LOAD(ARG_LOW(0)),
		IF_EQ(R_SET_MODE_FILTER, SECCOMP_SET_MODE_FILTER, R_EINVAL,
		      R_LEN),
		[R_EPERM] = BPF_STMT(BPF_RET | BPF_K,
				     SECCOMP_RET_ERRNO |
					     (EPERM & SECCOMP_RET_DATA)),
		[R_EINVAL] = BPF_STMT(BPF_RET | BPF_K,
				      SECCOMP_RET_ERRNO |
					      (EINVAL & SECCOMP_RET_DATA)),
	};
	memcpy(out, prog, sizeof(prog));
}

/* The policy's program from libseccomp, after the fixed refusals. */
static int export_program(scmp_filter_ctx ctx, struct sandbox_filter *f,
			  struct al_error *err)
{
	int fd = memfd_create("airlock-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return al_error_sys(err, errno, "seccomp: memfd_create");
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0) {
		close(fd);
		return al_error_sys(err, -rc, "seccomp: export");
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS - R_LEN) {
		close(fd);
		return al_error_set(err, EINVAL,
				    "seccomp: exported program has an invalid "
				    "size (%lld bytes)",
				    (long long)size);
	}
	f->insns = malloc(R_LEN * sizeof(struct sock_filter) + (size_t)size);
	if (!f->insns || pread(fd, f->insns + R_LEN, (size_t)size, 0) != size) {
		close(fd);
		return al_error_sys(err, f->insns ? errno : ENOMEM,
				    "seccomp: read exported program");
	}
	close(fd);
	fixed_refusals(f->insns);
	f->len = (unsigned short)(R_LEN + size / sizeof(struct sock_filter));
	return 0;
}

static int build_rules(scmp_filter_ctx ctx, const struct al_policy *policy,
		       struct al_error *err)
{
	for (size_t i = 0; i < policy_syscall_count(policy); i++)
		if (add_rule(ctx, policy_syscall_at(policy, i), err) < 0)
			return -1;
	for (size_t i = 0; init_needs[i]; i++) {
		const struct policy_syscall s = { init_needs[i],
						  POLICY_SYS_ALLOW, 0 };
		bool listed = false;
		for (size_t k = 0; k < policy_syscall_count(policy); k++)
			if (strcmp(policy_syscall_at(policy, k)->name,
				   s.name) == 0)
				listed = true;
		if (!listed && add_rule(ctx, &s, err) < 0)
			return -1;
	}
	return 0;
}

struct sandbox_filter *sandbox_filter_compile(const struct al_policy *policy,
					      struct al_error *err)
{
	struct sandbox_filter *f = calloc(1, sizeof(*f));
	if (!f) {
		al_error_sys(err, ENOMEM, "seccomp");
		return NULL;
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_NOTIFY);
	if (!ctx) {
		free(f);
		al_error_set(err, EINVAL,
			     "seccomp: libseccomp refused the "
			     "user-notification default action");
		return NULL;
	}
	/* A binary tree of syscall numbers instead of a linear list: fewer
	 * instructions run per syscall of the module. Other ABIs (x32, i386
	 * through int $0x80) are notified like any denied call: libseccomp's
	 * default there kills the calling thread alone, which a module that
	 * made the call in a child or a thread would survive unseen. */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
				      SCMP_ACT_NOTIFY);
	if (rc == 0)
		rc = build_rules(ctx, policy, err) < 0 ? -EINVAL : 0;
	if (rc == 0)
		rc = export_program(ctx, f, err) < 0 ? -EINVAL : 0;
	seccomp_release(ctx);
	if (rc < 0) {
		if (!err || !err->msg[0])
			al_error_sys(err, -rc, "seccomp: compile");
		sandbox_filter_free(f);
		return NULL;
	}
	return f;
}

void sandbox_filter_free(struct sandbox_filter *f)
{
	if (!f)
		return;
	free(f->insns);
	free(f);
}

size_t sandbox_filter_instructions(const struct sandbox_filter *f)
{
	return f ? f->len : 0;
}

int jail_load_filter(const struct jail_plan *plan)
{
	struct sock_fprog prog = {
		.len = plan->filter->len,
		.filter = plan->filter->insns,
	};
	/* no_new_privs is already set (privs.c), which is what lets a
	 * process without CAP_SYS_ADMIN install a filter. */
	int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		jail_fail(plan, errno,
			  "seccomp: load the filter (Linux 5.0 or later with "
			  "CONFIG_SECCOMP_FILTER is needed)");
	return fd;
}

/* The ABI a notified call came through, when it is not the native one:
 * its name for the verdict's prefix, and libseccomp's token for it. */
static const char *foreign_abi(uint32_t *arch, int nr)
{
	if (*arch == SCMP_ARCH_NATIVE)
		*arch = seccomp_arch_native();
#ifdef __X32_SYSCALL_BIT
	/* x32 calls come in as x86_64 with this bit in the number */
	if (*arch == SCMP_ARCH_X86_64 && (nr & __X32_SYSCALL_BIT)) {
		*arch = SCMP_ARCH_X32;
		return "x32";
	}
#endif
	if (*arch == seccomp_arch_native())
		return NULL;
	switch (*arch) {
	case SCMP_ARCH_X86: return "i386";
	case SCMP_ARCH_ARM: return "arm";
	default: return "foreign";
	}
}

void seccomp_syscall_name(uint32_t arch, int nr, char *buf, size_t len)
{
	const char *abi = foreign_abi(&arch, nr);
	char *name = seccomp_syscall_resolve_num_arch(arch, nr);
	if (name)
		snprintf(buf, len, "%s%s%s", abi ? abi : "", abi ? ":" : "",
			 name);
	else
		snprintf(buf, len, "%s%ssyscall_%d", abi ? abi : "",
			 abi ? ":" : "", nr);
	free(name);
}
