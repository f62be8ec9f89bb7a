/*
 * Learning mode: load the BPF learner (sandbox/bpf/learn.bpf.c) once, and
 * for each learning run register the jail's pid namespace before its
 * module starts, then read and drop the jail's entry when the run ends.
 *
 * Order of a learning run (spawn.c, run.c):
 *   clone3 → learn_run_begin(): stat /proc/PID/ns/pid, insert a zeroed
 *   bitmap under its inode, attach if this is the only live learning run
 *   → init is told to go on (it waits for that, like a rootless init
 *   waits for its id maps) → ... → init reaped, so no process of the jail
 *   is left → learn_run_end(): copy the bitmap into the result, delete
 *   the entry (inodes are reused by later namespaces), detach when no
 *   learning run is left.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sandbox/bpf/learn.h"
#include "learn.skel.h" /* generated: $(BUILD)/gen */
#include "sandbox/run_internal.h"

struct sandbox_learner {
	struct learn_bpf *skel;
	struct bpf_link *link;
	int live; /* learning runs registered */
	double load_ms, attach_ms;
};

_Static_assert(sizeof(struct learn_bits) == sizeof(struct sandbox_syscalls),
	       "the BPF bitmap and the syscall set have one layout");

/* libbpf's own diagnostics: kept (the first warning) for the error
 * message instead of printed, so a failed load says one clear thing. */
static char libbpf_last[256];

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	/* the first warning is the cause; later ones repeat it */
	if (level == LIBBPF_WARN && !libbpf_last[0]) {
		vsnprintf(libbpf_last, sizeof(libbpf_last), fmt, ap);
		libbpf_last[strcspn(libbpf_last, "\n")] = '\0';
	}
	return 0;
}

struct sandbox_learner *sandbox_learner_new(struct al_error *err)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		al_error_sys(err, errno,
			     "syscall learning needs BPF with kernel BTF, and "
			     "/sys/kernel/btf/vmlinux is not readable "
			     "(a kernel built with CONFIG_DEBUG_INFO_BTF)");
		return NULL;
	}
	struct sandbox_learner *l = calloc(1, sizeof(*l));
	if (!l) {
		al_error_sys(err, ENOMEM, "syscall learning");
		return NULL;
	}
	double t0 = al_monotonic_ms();
	libbpf_last[0] = '\0';
	libbpf_print_fn_t old = libbpf_set_print(libbpf_print);
	l->skel = learn_bpf__open_and_load();
	int saved = errno ? errno : EINVAL;
	libbpf_set_print(old);
	l->load_ms = al_monotonic_ms() - t0;
	if (!l->skel) {
		bool perm = saved == EPERM || saved == EACCES;
		al_error_set(err, saved,
			     "syscall learning needs BPF, and loading the "
			     "learner failed: %s%s%s%s",
			     strerror(saved),
			     perm ? " (it needs root, or CAP_BPF and "
				    "CAP_PERFMON)"
				  : "",
			     !perm && libbpf_last[0] ? "; " : "",
			     perm ? "" : libbpf_last);
		free(l);
		return NULL;
	}
	return l;
}

void sandbox_learner_free(struct sandbox_learner *l)
{
	if (!l)
		return;
	bpf_link__destroy(l->link);
	learn_bpf__destroy(l->skel);
	free(l);
}

double sandbox_learner_load_ms(const struct sandbox_learner *l)
{
	return l->load_ms;
}

double sandbox_learner_attach_ms(const struct sandbox_learner *l)
{
	return l->attach_ms;
}

static int learner_hold(struct sandbox_learner *l, struct al_error *err)
{
	if (l->live++ > 0)
		return 0;
	double t0 = al_monotonic_ms();
	l->link = bpf_program__attach(l->skel->progs.learn_sys_enter);
	l->attach_ms = al_monotonic_ms() - t0;
	if (!l->link) {
		int saved = errno;
		l->live--;
		return al_error_sys(err, saved,
				    "syscall learning: attach to the syscall "
				    "entry tracepoint");
	}
	return 0;
}

/* Detached as soon as no learning run is live: while attached, every
 * syscall of every process on the host runs the program. */
static void learner_release(struct sandbox_learner *l)
{
	if (l->live > 0 && --l->live == 0) {
		bpf_link__destroy(l->link);
		l->link = NULL;
	}
}

int learn_run_begin(struct sandbox_run *run, struct sandbox_learner *l)
{
	struct al_error err = { 0 };
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", run->pid);
	if (stat(path, &st) < 0) {
		al_error_sys(&err, errno, "syscall learning: %s", path);
		goto fail;
	}
	uint32_t key = (uint32_t)st.st_ino;
	struct learn_bits zero = { { 0 } };
	if (bpf_map__update_elem(l->skel->maps.jails, &key, sizeof(key), &zero,
				 sizeof(zero), BPF_NOEXIST) < 0) {
		al_error_sys(&err, errno,
			     "syscall learning: register the jail's pid "
			     "namespace %u",
			     key);
		goto fail;
	}
	if (learner_hold(l, &err) < 0) {
		(void)bpf_map__delete_elem(l->skel->maps.jails, &key,
					   sizeof(key), 0);
		goto fail;
	}
	run->learner = l;
	run->learn_key = key;
	return 0;
fail:
	run_fail(run, err.msg);
	return -1;
}

void learn_run_end(struct sandbox_run *run)
{
	struct sandbox_learner *l = run->learner;
	if (!l)
		return;
	struct learn_bits bits;
	uint32_t key = run->learn_key;
	if (bpf_map__lookup_elem(l->skel->maps.jails, &key, sizeof(key), &bits,
				 sizeof(bits), 0) == 0) {
		memcpy(&run->result.syscalls, &bits, sizeof(bits));
		run->result.learned = true;
	}
	(void)bpf_map__delete_elem(l->skel->maps.jails, &key, sizeof(key), 0);
	learner_release(l);
	run->learner = NULL;
}

void sandbox_learn_floor(struct sandbox_syscalls *set)
{
	static const char *const floor_names[] = { "execve", "exit",
						   "exit_group" };
	for (size_t i = 0; i < ARRAY_SIZE(floor_names); i++)
		(void)sandbox_syscalls_add_name(set, floor_names[i], NULL);
}
