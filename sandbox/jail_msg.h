/*
 * Private to sandbox/: the messages the jail's init sends the parent over
 * the sync socket. Shared by child.c and the init helper (init_helper.c),
 * which is built without libc, so this header includes nothing.
 */
#ifndef AIRLOCK_SANDBOX_JAIL_MSG_H
#define AIRLOCK_SANDBOX_JAIL_MSG_H

enum jail_msg_type {
	JAIL_MSG_ERROR = 1,   /* setup failed: errnum + text */
	JAIL_MSG_LISTENER,    /* carries the seccomp listener (SCM_RIGHTS) */
	JAIL_MSG_EXEC_FAILED, /* errnum; exit status 126 or 127 */
	JAIL_MSG_STARTED,     /* the module is running */
	JAIL_MSG_EXITED,      /* value = the module's wait status */
};

struct jail_msg {
	int type;
	int errnum;
	int value;
	char text[480];
};

#endif
