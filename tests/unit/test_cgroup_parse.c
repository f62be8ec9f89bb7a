/*
 * Unit tests for the cgroup v1 discovery parsers (sandbox/cgroup_parse.c):
 * real /proc/self/mountinfo and /proc/self/cgroup shapes, co-mounted
 * controllers, named hierarchies, the unified line, and text that must not
 * match.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sandbox/internal.h"

static const char mountinfo[] =
	"23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	"30 23 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup "
	"rw,cpu,cpuacct\n"
	"34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
	"35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup "
	"rw,xattr,name=systemd\n"
	"36 30 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
	"37 23 0:33 / /memoryless rw - tmpfs memory rw\n";

static const char proc_cgroup[] = "9:name=systemd:/\n"
				  "4:memory:/process_api/abc\n"
				  "2:cpu,cpuacct:/jobs/7\n"
				  "0::/\n";

static void test_mounts(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "memory", out,
					    sizeof(out)),
			 0);
	assert_string_equal(out, "/sys/fs/cgroup/memory");
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "cpuacct", out,
					    sizeof(out)),
			 0);
	assert_string_equal(out, "/sys/fs/cgroup/cpu,cpuacct");
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "cpu", out, sizeof(out)),
			 0);
	assert_string_equal(out, "/sys/fs/cgroup/cpu,cpuacct");
	/* not a v1 controller here: cgroup2, a tmpfs named "memory", a
	 * name= hierarchy, and a prefix of a real controller */
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "pids", out,
					    sizeof(out)),
			 -1);
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "systemd", out,
					    sizeof(out)),
			 -1);
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "mem", out, sizeof(out)),
			 -1);
	/* too small a buffer is "not found", never a truncated path */
	assert_int_equal(cgroup_v1_mount_of(mountinfo, "memory", out, 8), -1);
}

static void test_paths(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(cgroup_v1_path_of(proc_cgroup, "memory", out,
					   sizeof(out)),
			 0);
	assert_string_equal(out, "/process_api/abc");
	assert_int_equal(cgroup_v1_path_of(proc_cgroup, "cpuacct", out,
					   sizeof(out)),
			 0);
	assert_string_equal(out, "/jobs/7");
	assert_int_equal(cgroup_v1_path_of(proc_cgroup, "pids", out,
					   sizeof(out)),
			 -1);
	/* the unified line "0::/" names no controller */
	assert_int_equal(cgroup_v1_path_of(proc_cgroup, "", out, sizeof(out)),
			 -1);
}

static void test_hostile_text(void **state)
{
	(void)state;
	char out[64];
	/* clang-format off */
	static const char *const bad[] = {
		"", "\n\n", "garbage", " - cgroup cgroup rw,memory",
		"1 2 3 4 - cgroup", "4:memory", "4:memory:", ":::",
	};
	/* clang-format on */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(cgroup_v1_mount_of(bad[i], "memory", out,
						    sizeof(out)),
				 -1);
		assert_int_equal(cgroup_v1_path_of(bad[i], "memory", out,
						   sizeof(out)),
				 -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_hostile_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
