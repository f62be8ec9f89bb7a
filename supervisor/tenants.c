/*
 * Tenants: who owns a module and who may see or change what
 * (docs/protocol.md, "Tenants").
 *
 * Every module name has one owner, fixed by its first version: the uid
 * that submitted it and, if that submit named one, a group the submitter
 * belongs to. The owner uid and the members of the owner group (as the
 * kernel reported them at connect, SO_PEERGROUPS) are the module's owners:
 * they alone, with admins, submit new versions, exec, archive and restore
 * it, and see its rows in list, show, runs, events, subscribe and status.
 * A module another tenant owns is answered like one that does not exist.
 *
 * Threat: a client submitting a new version of another tenant's module
 * (it then ran their inputs and leaked them through exit codes), running
 * or crashing it into auto-archive, or reading its runs and events.
 */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/internal.h"

static bool in_groups(const struct conn *c, int64_t gid)
{
	for (size_t i = 0; gid >= 0 && i < c->ngroups; i++)
		if (c->groups[i] == (uint32_t)gid)
			return true;
	return false;
}

bool tenant_owns(const struct conn *c, uint32_t owner_uid, int64_t owner_gid)
{
	return c->uid == owner_uid || in_groups(c, owner_gid);
}

bool tenant_may(const struct conn *c, const struct manifest_module *mod)
{
	return c->role == PROTO_ROLE_ADMIN ||
	       tenant_owns(c, mod->owner_uid, mod->owner_gid);
}

const struct manifest_viewer *tenant_viewer(const struct conn *c,
					    struct manifest_viewer *buf)
{
	if (c->role == PROTO_ROLE_ADMIN)
		return NULL;
	*buf = (struct manifest_viewer){ .uid = c->uid,
					 .gids = c->groups,
					 .ngids = c->ngroups };
	return buf;
}

bool tenant_sees_event(const struct conn *c,
		       const struct manifest_feed_event *ev)
{
	if (c->role == PROTO_ROLE_ADMIN)
		return true;
	if (ev->module_id == 0)
		return !ev->has_uid || ev->uid == c->uid;
	return ev->has_owner && tenant_owns(c, ev->owner_uid, ev->owner_gid);
}

int tenant_find(struct supervisor *s, const struct conn *c, const char *name,
		struct manifest_module *mod, struct al_error *err)
{
	if (manifest_find(s->m, name, 0, mod, err) < 0)
		return -1;
	if (tenant_may(c, mod))
		return 0;
	/* the same answer as for a name nobody uses: no probing */
	return al_error_set(err, ENOENT, "manifest: no module \"%.128s\"",
			    name);
}

/* "group" of a submit: a name or a number, of a group the caller is in
 * (admins may name any). */
static int group_of(const struct conn *c, const char *group, int64_t *gid,
		    struct al_error *err)
{
	char *end = NULL;
	unsigned long n = strtoul(group, &end, 10);

	if (group[0] >= '0' && group[0] <= '9' && *end == '\0' &&
	    n < UINT32_MAX) {
		*gid = (int64_t)n;
	} else {
		struct group *g = getgrnam(group);
		if (!g)
			return al_error_set(err, ENOENT,
					    "group: no group \"%.64s\"", group);
		*gid = g->gr_gid;
	}
	if (c->role != PROTO_ROLE_ADMIN && !in_groups(c, *gid))
		return al_error_set(err, EPERM,
				    "group: uid %u is not a member of group "
				    "%lld (a module can be shared only with a "
				    "group of its owner's)",
				    c->uid, (long long)*gid);
	return 0;
}

int tenant_submit_owner(struct supervisor *s, const struct conn *c,
			const char *name, const char *group,
			struct manifest_submission *sub, struct al_error *err)
{
	struct manifest_module latest;
	struct al_error lookup = { 0 };

	sub->owner_uid = c->uid;
	sub->owner_gid = -1;
	if (manifest_find(s->m, name, 0, &latest, &lookup) == 0) {
		/* an existing name keeps its owner (the manifest sees to it
		 * too); only an owner or an admin adds versions */
		if (!tenant_may(c, &latest))
			return al_error_set(err, EPERM,
					    "module \"%.128s\" belongs to "
					    "another owner: only its owner or "
					    "an admin may submit new versions "
					    "(choose another name)",
					    name);
		if (group)
			return al_error_set(err, EINVAL,
					    "group: module \"%.128s\" exists; "
					    "its owner group is set by its "
					    "first version",
					    name);
		return 0;
	}
	if (lookup.errnum != ENOENT) {
		*err = lookup;
		return -1;
	}
	return group ? group_of(c, group, &sub->owner_gid, err) : 0;
}
