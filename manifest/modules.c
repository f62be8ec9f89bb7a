/*
 * Modules: submissions and the state machine.
 *
 *   staged -> validating -> active | rejected
 *   active -> archived -> active
 *
 * Everything else is refused before anything changes. A change that moves
 * a file goes through the move journal (moves.c); one that does not
 * (staged -> validating) is one transaction with its event.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/internal.h"

static const char *const state_names[MANIFEST_STATE_COUNT] = {
	[MANIFEST_STAGED] = "staged",     [MANIFEST_VALIDATING] = "validating",
	[MANIFEST_ACTIVE] = "active",     [MANIFEST_REJECTED] = "rejected",
	[MANIFEST_ARCHIVED] = "archived",
};

static const bool transitions[MANIFEST_STATE_COUNT][MANIFEST_STATE_COUNT] = {
	[MANIFEST_STAGED][MANIFEST_VALIDATING] = true,
	[MANIFEST_VALIDATING][MANIFEST_ACTIVE] = true,
	[MANIFEST_VALIDATING][MANIFEST_REJECTED] = true,
	[MANIFEST_ACTIVE][MANIFEST_ARCHIVED] = true,
	[MANIFEST_ARCHIVED][MANIFEST_ACTIVE] = true,
};

/* What the error messages say a state may become. */
static const char *const next_states[MANIFEST_STATE_COUNT] = {
	[MANIFEST_STAGED] = "only to validating",
	[MANIFEST_VALIDATING] = "only to active or rejected",
	[MANIFEST_ACTIVE] = "only to archived",
	[MANIFEST_REJECTED] = "nowhere (rejected is final)",
	[MANIFEST_ARCHIVED] = "only to active (restore)",
};

static const char *const cause_names[MANIFEST_CAUSE_COUNT] = {
	[MANIFEST_CAUSE_SUPERSEDED] = "superseded",
	[MANIFEST_CAUSE_BY_HAND] = "by_hand",
	[MANIFEST_CAUSE_AUTO] = "auto_archived",
	[MANIFEST_CAUSE_ROLLED_BACK] = "rolled_back",
};

/* Names quoted into messages: printable ASCII, cut. */
#define QUOTED_MAX 80

const char *manifest_state_name(enum manifest_state s)
{
	return (unsigned)s < MANIFEST_STATE_COUNT ? state_names[s] : "unknown";
}

int manifest_state_parse(const char *name)
{
	for (int s = 0; s < MANIFEST_STATE_COUNT; s++)
		if (name != NULL && strcmp(name, state_names[s]) == 0)
			return s;
	return -1;
}

const char *manifest_cause_name(enum manifest_cause c)
{
	return (unsigned)c < MANIFEST_CAUSE_COUNT ? cause_names[c] : NULL;
}

enum manifest_cause manifest_cause_parse(const char *name)
{
	for (int c = MANIFEST_CAUSE_NONE + 1; c < MANIFEST_CAUSE_COUNT; c++)
		if (name != NULL && strcmp(name, cause_names[c]) == 0)
			return (enum manifest_cause)c;
	return MANIFEST_CAUSE_NONE;
}

bool manifest_module_good(const struct manifest_module *mod)
{
	return mod->state == MANIFEST_ARCHIVED &&
	       (mod->cause == MANIFEST_CAUSE_SUPERSEDED ||
		mod->cause == MANIFEST_CAUSE_BY_HAND);
}

bool manifest_transition_allowed(enum manifest_state from,
				 enum manifest_state to)
{
	return (unsigned)from < MANIFEST_STATE_COUNT &&
	       (unsigned)to < MANIFEST_STATE_COUNT && transitions[from][to];
}

/* A name as it may appear in a message, whatever it holds. */
static const char *quoted(const char *s, char buf[QUOTED_MAX])
{
	size_t w = 0;

	for (size_t i = 0; s != NULL && s[i] != '\0' && w < QUOTED_MAX - 4; i++)
		buf[w++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i]
								      : '?';
	buf[w] = '\0';
	return buf;
}

static bool valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > MANIFEST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

/* Printable ASCII, bounded, not empty unless allowed. */
static bool valid_text(const char *s, size_t max, bool may_be_empty)
{
	size_t n = s ? strlen(s) : 0;

	if (n > max || (n == 0 && !may_be_empty))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static bool valid_policy_hash(const char *s)
{
	return s != NULL && strncmp(s, "sha256:", 7) == 0 &&
	       is_sha256_hex(s + 7);
}

/* --------------------------------------------------------------- rows */

void module_from_row(struct db_stmt *s, struct manifest_module *out)
{
	char state[16];

	memset(out, 0, sizeof(*out));
	out->id = db_column_int64(s, 0);
	db_column_copy(s, 1, out->name, sizeof(out->name));
	out->version = db_column_int64(s, 2);
	db_column_copy(s, 3, out->sha256, sizeof(out->sha256));
	out->size = (uint64_t)db_column_int64(s, 4);
	db_column_copy(s, 5, out->interpreter, sizeof(out->interpreter));
	db_column_copy(s, 6, out->policy_name, sizeof(out->policy_name));
	db_column_copy(s, 7, out->policy_hash, sizeof(out->policy_hash));
	db_column_copy(s, 8, state, sizeof(state));
	out->state = (enum manifest_state)manifest_state_parse(state);
	db_column_copy(s, 9, out->reason, sizeof(out->reason));
	out->submitted_uid = (uint32_t)db_column_int64(s, 10);
	out->created_ms = db_column_int64(s, 11);
	out->updated_ms = db_column_int64(s, 12);
	out->owner_uid = (uint32_t)db_column_int64(s, 13);
	out->owner_gid = db_column_null(s, 14) ? -1 : db_column_int64(s, 14);
	db_column_copy(s, 15, out->entry, sizeof(out->entry));
	db_column_copy(s, 16, out->build, sizeof(out->build));
	out->cause = out->state == MANIFEST_ARCHIVED
			     ? manifest_cause_parse(db_column_text(s, 17))
			     : MANIFEST_CAUSE_NONE;
}

/* One module row from `s` (bound by the caller); ENOENT when none. */
static int one_module(struct manifest *m, struct db_stmt *s,
		      struct manifest_module *out, struct al_error *err)
{
	int rc = db_step(s);

	if (rc == DB_ROW) {
		module_from_row(s, out);
		return 0;
	}
	if (rc == DB_DONE)
		return al_error_set(err, ENOENT, "no such module");
	return db_error(m, err, "read a module");
}

static const char SQL_MODULE_BY_ID[] = "SELECT " MODULE_COLUMNS
				       " FROM modules WHERE id = ?1";

int module_get(struct manifest *m, int64_t id, struct manifest_module *out,
	       struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_MODULE_BY_ID, err);

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, id);
	if (one_module(m, s, out, err) < 0)
		return al_error_prefix(err, "module %lld", (long long)id);
	return 0;
}

static const char SQL_MODULE_VERSION[] = "SELECT " MODULE_COLUMNS
					 " FROM modules"
					 " WHERE name = ?1 AND version = ?2";

static const char SQL_MODULE_BY_STATE[] =
	"SELECT " MODULE_COLUMNS " FROM modules"
	" WHERE name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)"
	" ORDER BY version DESC LIMIT 1";

/* The one row `sql` selects with ?1 `name` and ?2 `version`; ENOENT when
 * none. */
static int one_by_name(struct manifest *m, const char *sql, const char *name,
		       int64_t version, struct manifest_module *out,
		       struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, sql, err);

	if (s == NULL)
		return -1;
	db_bind_text(s, 1, name);
	db_bind_int64(s, 2, version);
	return one_module(m, s, out, err);
}

/* The latest version of `name` in `state` (-1: in any state). */
static int module_latest(struct manifest *m, const char *name, int state,
			 struct manifest_module *out, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_MODULE_BY_STATE, err);

	if (s == NULL)
		return -1;
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, state < 0 ? NULL : manifest_state_name(state));
	return one_module(m, s, out, err);
}

static const char SQL_EVENT_ADD[] =
	"INSERT INTO events (time_ms, module_id, module_name, module_version,"
	" sha256, from_state, to_state, reason)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

int event_append(struct manifest *m, const struct manifest_module *mod,
		 const char *from, const char *to, const char *reason,
		 int64_t now_ms, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_EVENT_ADD, err);

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, now_ms);
	db_bind_int64(s, 2, mod->id);
	db_bind_text(s, 3, mod->name);
	db_bind_int64(s, 4, mod->version);
	db_bind_text(s, 5, mod->sha256);
	db_bind_text(s, 6, from);
	db_bind_text(s, 7, to);
	db_bind_text(s, 8, reason != NULL && reason[0] ? reason : NULL);
	return db_step_done(m, s, "append an event", err);
}

/* ---------------------------------------------------------- submission */

static int check_submission(const struct manifest_submission *sub,
			    struct al_error *err)
{
	if (!valid_name(sub->name))
		return al_error_set(err, EINVAL,
				    "invalid name: expected 1 to %d of "
				    "A-Z a-z 0-9 . _ - (starting with a "
				    "letter or digit)",
				    MANIFEST_NAME_MAX);
	if (sub->len == 0 || sub->content == NULL)
		return al_error_set(err, EINVAL, "empty module");
	if (!valid_text(sub->policy_name, MANIFEST_POLICY_NAME_MAX, false))
		return al_error_set(err, EINVAL, "invalid policy name");
	if (!valid_policy_hash(sub->policy_hash))
		return al_error_set(err, EINVAL,
				    "invalid policy hash: "
				    "expected sha256:<64 hex>");
	if (sub->interpreter != NULL &&
	    !valid_text(sub->interpreter, MANIFEST_INTERPRETER_MAX, true))
		return al_error_set(err, EINVAL, "invalid interpreter");
	if (sub->entry != NULL &&
	    !valid_text(sub->entry, MANIFEST_ENTRY_MAX, true))
		return al_error_set(err, EINVAL,
				    "invalid entry: expected 1 to %d printable "
				    "ASCII characters",
				    MANIFEST_ENTRY_MAX);
	if (sub->build != NULL &&
	    (!sub->entry || !valid_text(sub->build, MANIFEST_BUILD_MAX, true)))
		return al_error_set(err, EINVAL,
				    "invalid build: a bundle's command, 1 to "
				    "%d printable ASCII characters",
				    MANIFEST_BUILD_MAX);
	return 0;
}

/* The name's highest version ever, retention's deletions included. */
static const char SQL_NEXT_VERSION[] =
	"SELECT coalesce(max(v), 0) + 1 FROM ("
	" SELECT max(version) AS v FROM modules WHERE name = ?1"
	" UNION ALL"
	" SELECT max(module_version) FROM events WHERE module_name = ?1) AS v";

/* A name keeps the owner of its versions: the submission's owner counts
 * only for a name's first version. */
static const char SQL_MODULE_ADD[] =
	"INSERT INTO modules (name, version, sha256, size, interpreter,"
	" policy_name, policy_hash, state, submitted_uid, created_ms,"
	" updated_ms, owner_uid, owner_gid, entry, build)"
	" SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staged', ?8, ?9, ?9,"
	"  coalesce(o.owner_uid, ?10), CASE WHEN o.owner_uid IS NULL"
	"  THEN ?11 ELSE o.owner_gid END, ?12, ?13"
	" FROM (SELECT 1 AS one) AS x LEFT JOIN (SELECT owner_uid, owner_gid"
	"  FROM modules WHERE name = ?1 ORDER BY version DESC LIMIT 1) AS o"
	"  ON 1 = 1"
	" RETURNING id";

static const char SQL_JOURNAL_DROP_STAGE[] = "DELETE FROM moves WHERE id = ?1";

/* The row, its event and the journal's removal: one transaction. */
static int insert_module(struct manifest *m,
			 const struct manifest_submission *sub,
			 const char *sha256, int64_t journal_id, int64_t *id,
			 struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *ver = db_stmt(m, SQL_NEXT_VERSION, err);
	_cleanup_stmt_ struct db_stmt *add = db_stmt(m, SQL_MODULE_ADD, err);
	_cleanup_stmt_ struct db_stmt *drop = db_stmt(m, SQL_JOURNAL_DROP_STAGE,
						      err);
	struct manifest_module mod;
	int64_t now = manifest_now_ms();
	char reason[64];

	if (ver == NULL || add == NULL || drop == NULL)
		return -1;
	db_bind_text(ver, 1, sub->name);
	if (db_step(ver) != DB_ROW)
		return db_error(m, err, "next version");
	db_bind_text(add, 1, sub->name);
	db_bind_int64(add, 2, db_column_int64(ver, 0));
	db_bind_text(add, 3, sha256);
	db_bind_int64(add, 4, (int64_t)sub->len);
	db_bind_text(add, 5,
		     sub->interpreter && sub->interpreter[0] ? sub->interpreter
							     : NULL);
	db_bind_text(add, 6, sub->policy_name);
	db_bind_text(add, 7, sub->policy_hash);
	db_bind_int64(add, 8, sub->uid);
	db_bind_int64(add, 9, now);
	db_bind_int64(add, 10, sub->owner_uid);
	if (sub->owner_gid >= 0)
		db_bind_int64(add, 11, sub->owner_gid);
	db_bind_text(add, 12, sub->entry && sub->entry[0] ? sub->entry : NULL);
	db_bind_text(add, 13, sub->build && sub->build[0] ? sub->build : NULL);
	if (db_insert_id(m, add, "insert the module", id, err) < 0)
		return -1;
	/* the other hosts of a shared database take it from there */
	if (m->ops->shared &&
	    store_share(m, sha256, sub->content, sub->len, err) < 0)
		return -1;
	snprintf(reason, sizeof(reason), "submitted by uid %u", sub->uid);
	db_bind_int64(drop, 1, journal_id);
	if (module_get(m, *id, &mod, err) < 0 ||
	    event_append(m, &mod, NULL, "staged", reason, now, err) < 0 ||
	    db_step_done(m, drop, "clear the journal", err) < 0)
		return -1;
	return 0;
}

static int stage(struct manifest *m, const struct manifest_submission *sub,
		 struct manifest_module *out, struct al_error *err)
{
	char sha256[MANIFEST_SHA256_HEX + 1];
	struct al_error undo = { 0 };
	int64_t journal_id = 0, id = 0;

	if (db_writable(m, err) < 0 || check_submission(sub, err) < 0)
		return -1;
	sha256_hex(sub->content, sub->len, sha256);
	if (moves_stage_begin(m, sha256, &journal_id, err) < 0)
		return -1;
	if (store_write(m, sha256, sub->content, sub->len, err) < 0)
		goto undo;
	if (db_begin(m, err) < 0)
		goto undo;
	if (insert_module(m, sub, sha256, journal_id, &id, err) < 0 ||
	    db_commit(m, err) < 0) {
		db_rollback(m);
		goto undo;
	}
	return out ? module_get(m, id, out, err) : 0;
undo:
	if (moves_stage_undo(m, journal_id, sha256, &undo) < 0)
		snprintf(m->broken, sizeof(m->broken), "%s", undo.msg);
	return -1;
}

int manifest_stage(struct manifest *m, const struct manifest_submission *sub,
		   struct manifest_module *out, struct al_error *err)
{
	char q[QUOTED_MAX];

	if (stage(m, sub, out, err) < 0)
		return al_error_prefix(err, "manifest: stage module \"%s\"",
				       quoted(sub->name, q));
	return 0;
}

int manifest_find_same(struct manifest *m,
		       const struct manifest_submission *sub,
		       struct manifest_module *out, struct al_error *err)
{
	char sha[MANIFEST_SHA256_HEX + 1], path[PATH_MAX];
	struct al_error e = { 0 };

	if (manifest_active_path(m, sub->name, out, path, sizeof(path), &e) <
	    0) {
		if (e.errnum == ENOENT)
			return 0;
		if (err)
			*err = e;
		return -1;
	}
	sha256_hex(sub->content, sub->len, sha);
	return strcmp(out->sha256, sha) == 0 && out->size == sub->len &&
	       strcmp(out->policy_name, sub->policy_name) == 0 &&
	       strcmp(out->policy_hash, sub->policy_hash) == 0 &&
	       strcmp(out->entry, sub->entry ? sub->entry : "") == 0 &&
	       strcmp(out->build, sub->build ? sub->build : "") == 0;
}

static const char SQL_CONTENT_USED[] =
	"SELECT count(*) FROM modules WHERE sha256 = ?1 AND state <> 'rejected'";

int manifest_content_used(struct manifest *m, const char *sha256,
			  struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_CONTENT_USED, err);

	if (s == NULL)
		return -1;
	db_bind_text(s, 1, sha256);
	if (db_step(s) != DB_ROW)
		return db_error(m, err, "manifest: content %.12s", sha256);
	return db_column_int64(s, 0) > 0;
}

/* ---------------------------------------------------------- transitions */

static int refuse(const struct manifest_module *mod, enum manifest_state to,
		  struct al_error *err)
{
	return al_error_set(err, EINVAL,
			    "version %lld is %s, which can go %s, not to %s",
			    (long long)mod->version,
			    manifest_state_name(mod->state),
			    next_states[mod->state], manifest_state_name(to));
}

static const char SQL_MODULE_STATE[] =
	"UPDATE modules SET state = ?2, state_reason = ?3, updated_ms = ?4"
	" WHERE id = ?1";

/* A change with no file to move: staged -> validating. */
static int change_in_place(struct manifest *m,
			   const struct manifest_module *mod,
			   enum manifest_state to, const char *reason,
			   struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_MODULE_STATE, err);
	int64_t now = manifest_now_ms();

	if (s == NULL || db_begin(m, err) < 0)
		return -1;
	db_bind_int64(s, 1, mod->id);
	db_bind_text(s, 2, manifest_state_name(to));
	db_bind_text(s, 3, reason);
	db_bind_int64(s, 4, now);
	if (db_step_done(m, s, "change the state", err) < 0 ||
	    event_append(m, mod, manifest_state_name(mod->state),
			 manifest_state_name(to), reason, now, err) < 0) {
		db_rollback(m);
		return -1;
	}
	return db_commit(m, err);
}

/* To active: the content must exist somewhere, or the supervisor would
 * later execute nothing. */
static int need_content(struct manifest *m, const struct manifest_module *mod,
			struct al_error *err)
{
	for (int d = 0; d < STORE_DIRS; d++)
		if (store_has(m, d, mod->sha256))
			return 0;
	/* archived on another host, or never run here: the database's */
	if (m->ops->shared && store_dir_of(mod->state) != STORE_NONE)
		return store_ensure(m, mod->sha256, store_dir_of(mod->state),
				    err);
	return al_error_set(err, ENOENT,
			    "its file %s/%s is missing (airlock manifest "
			    "check)",
			    store_dir_name(store_dir_of(mod->state)),
			    mod->sha256);
}

/* One change of one version, and what it does to the version active
 * before it (when it makes another active). */
struct change {
	enum manifest_state to;
	const char *reason;        /* borrowed, may be NULL */
	enum manifest_cause cause; /* to archived: why */
	/* archived -> active: archive the active version (else refused) */
	bool displace;
	const char *displaced_reason; /* NULL: "superseded by version N" */
	enum manifest_cause displaced_cause;
};

static int change_state(struct manifest *m, const struct manifest_module *mod,
			const struct change *c, struct al_error *err)
{
	struct manifest_module current;
	struct move moves[2];
	char why[MANIFEST_REASON_MAX + 1], superseded[64];
	char displaced_why[MANIFEST_REASON_MAX + 1];
	const char *reason;
	size_t n = 0;

	if (db_writable(m, err) < 0)
		return -1;
	if (!manifest_transition_allowed(mod->state, c->to))
		return refuse(mod, c->to, err);
	reason = text_cut(c->reason, MANIFEST_REASON_MAX, why);
	if (store_dir_of(mod->state) == store_dir_of(c->to))
		return change_in_place(m, mod, c->to, reason, err);
	if (c->to == MANIFEST_ACTIVE) {
		if (need_content(m, mod, err) < 0)
			return -1;
		if (module_latest(m, mod->name, MANIFEST_ACTIVE, &current,
				  err) == 0) {
			if (mod->state == MANIFEST_ARCHIVED && !c->displace)
				return al_error_set(err, EEXIST,
						    "version %lld is active; "
						    "archive it first",
						    (long long)current.version);
			snprintf(superseded, sizeof(superseded),
				 "superseded by version %lld",
				 (long long)mod->version);
			moves[n++] = (struct move){
				current.id,
				current.sha256,
				MANIFEST_ACTIVE,
				MANIFEST_ARCHIVED,
				c->displaced_reason
					? text_cut(c->displaced_reason,
						   MANIFEST_REASON_MAX,
						   displaced_why)
					: superseded,
				c->displaced_reason ? c->displaced_cause
						    : MANIFEST_CAUSE_SUPERSEDED,
			};
		} else if (err->errnum != ENOENT) {
			return -1;
		}
	}
	moves[n++] = (struct move){ mod->id, mod->sha256, mod->state,
				    c->to,   reason,      c->cause };
	return moves_apply(m, moves, n, err);
}

/* Change module `id` as `c` says; messages name it and `verb` (may be
 * NULL). */
static int change_by_id(struct manifest *m, int64_t id, const struct change *c,
			const char *verb, struct al_error *err)
{
	struct al_error local = { 0 };
	struct manifest_module mod;
	char q[QUOTED_MAX];

	if (err == NULL)
		err = &local;
	if (module_get(m, id, &mod, err) < 0)
		return al_error_prefix(err, "manifest: %s",
				       verb ? verb : "set state");
	if (change_state(m, &mod, c, err) < 0)
		return al_error_prefix(err,
				       "manifest: %s%smodule \"%s\" version "
				       "%lld to %s",
				       verb ? verb : "", verb ? " " : "",
				       quoted(mod.name, q),
				       (long long)mod.version,
				       manifest_state_name(c->to));
	return 0;
}

int manifest_set_state(struct manifest *m, int64_t id, enum manifest_state to,
		       const char *reason, struct al_error *err)
{
	struct change c = { .to = to,
			    .reason = reason,
			    .cause = MANIFEST_CAUSE_BY_HAND };

	return change_by_id(m, id, &c, NULL, err);
}

int manifest_auto_archive(struct manifest *m, int64_t id, const char *reason,
			  struct al_error *err)
{
	struct change c = { .to = MANIFEST_ARCHIVED,
			    .reason = reason,
			    .cause = MANIFEST_CAUSE_AUTO };

	return change_by_id(m, id, &c, "auto-archive", err);
}

/* The latest version of `name` in `state`, or an error that says what
 * there is instead. */
static int pick(struct manifest *m, const char *name, enum manifest_state state,
		const char *verb, struct manifest_module *mod,
		struct al_error *err)
{
	if (module_latest(m, name, state, mod, err) == 0)
		return 0;
	if (err->errnum != ENOENT)
		return -1;
	if (module_latest(m, name, -1, mod, err) < 0)
		return err->errnum == ENOENT
			       ? al_error_set(err, ENOENT,
					      "no module of that name")
			       : -1;
	return al_error_set(err, EINVAL,
			    "it is %s, only an %s module can be %s",
			    manifest_state_name(mod->state),
			    manifest_state_name(state), verb);
}

int manifest_archive(struct manifest *m, const char *name, const char *reason,
		     struct al_error *err)
{
	struct al_error local = { 0 };
	struct manifest_module mod;
	char q[QUOTED_MAX];
	struct change c = { .to = MANIFEST_ARCHIVED,
			    .reason = reason,
			    .cause = MANIFEST_CAUSE_BY_HAND };

	if (err == NULL)
		err = &local;
	if (db_writable(m, err) < 0 ||
	    pick(m, name, MANIFEST_ACTIVE, "archived", &mod, err) < 0 ||
	    change_state(m, &mod, &c, err) < 0)
		return al_error_prefix(err, "manifest: archive module \"%s\"",
				       quoted(name, q));
	return 0;
}

/* Version `version` of `name`, which must be archived to be restored. */
static int pick_version(struct manifest *m, const char *name, int64_t version,
			struct manifest_module *mod, struct al_error *err)
{
	if (one_by_name(m, SQL_MODULE_VERSION, name, version, mod, err) < 0)
		return err->errnum == ENOENT
			       ? al_error_set(err, ENOENT, "no version %lld",
					      (long long)version)
			       : -1;
	if (mod->state == MANIFEST_ACTIVE)
		return al_error_set(err, EINVAL,
				    "version %lld is already active",
				    (long long)version);
	if (mod->state != MANIFEST_ARCHIVED)
		return al_error_set(err, EINVAL,
				    "version %lld is %s, only an archived "
				    "version can be restored",
				    (long long)version,
				    manifest_state_name(mod->state));
	return 0;
}

static int restore(struct manifest *m, const char *name, int64_t version,
		   struct al_error *err)
{
	struct manifest_module mod;
	char displaced[96];
	struct change c = { .to = MANIFEST_ACTIVE, .reason = "restored" };

	if (db_writable(m, err) < 0)
		return -1;
	if (version > 0) {
		if (pick_version(m, name, version, &mod, err) < 0)
			return -1;
		snprintf(displaced, sizeof(displaced),
			 "superseded by the restore of version %lld",
			 (long long)version);
		c.displace = true;
		c.displaced_reason = displaced;
		c.displaced_cause = MANIFEST_CAUSE_SUPERSEDED;
		return change_state(m, &mod, &c, err);
	}
	if (module_latest(m, name, MANIFEST_ACTIVE, &mod, err) == 0)
		return al_error_set(err, EEXIST,
				    "version %lld is active; archive it "
				    "first (or restore --version N)",
				    (long long)mod.version);
	if (err->errnum != ENOENT ||
	    pick(m, name, MANIFEST_ARCHIVED, "restored", &mod, err) < 0)
		return -1;
	return change_state(m, &mod, &c, err);
}

int manifest_restore(struct manifest *m, const char *name, int64_t version,
		     struct al_error *err)
{
	struct al_error local = { 0 };
	char q[QUOTED_MAX];

	if (err == NULL)
		err = &local;
	if (version < 0)
		return al_error_set(err, EINVAL,
				    "manifest: restore module \"%s\": version "
				    "%lld: expected 1 or more (0: the latest "
				    "archived)",
				    quoted(name, q), (long long)version);
	if (restore(m, name, version, err) < 0)
		return al_error_prefix(err, "manifest: restore module \"%s\"",
				       quoted(name, q));
	return 0;
}

/* ------------------------------------------------------------- rollback */

/* With no version active, the one that was active last: the one archived
 * last (archiving is the only way out of active). */
static const char SQL_LAST_ACTIVE[] =
	"SELECT " MODULE_COLUMNS " FROM modules"
	" WHERE name = ?1 AND state = 'archived'"
	" ORDER BY updated_ms DESC, version DESC LIMIT 1";

/* The newest good version older than ?2 (manifest_module_good()). */
static const char SQL_GOOD_BEFORE[] =
	"SELECT " MODULE_COLUMNS " FROM modules"
	" WHERE name = ?1 AND version < ?2 AND state = 'archived'"
	" AND archive_cause IN ('superseded', 'by_hand')"
	" ORDER BY version DESC LIMIT 1";

/* The version a rollback goes back from: *active tells whether it is
 * active now. */
static int rollback_from(struct manifest *m, const char *name,
			 struct manifest_module *from, bool *active,
			 struct al_error *err)
{
	struct manifest_module any;

	*active = module_latest(m, name, MANIFEST_ACTIVE, from, err) == 0;
	if (*active)
		return 0;
	if (err->errnum != ENOENT)
		return -1;
	if (one_by_name(m, SQL_LAST_ACTIVE, name, 0, from, err) == 0)
		return 0;
	if (err->errnum != ENOENT)
		return -1;
	if (module_latest(m, name, -1, &any, err) < 0)
		return err->errnum == ENOENT
			       ? al_error_set(err, ENOENT,
					      "no module of that name")
			       : -1;
	return al_error_set(err, EINVAL,
			    "no version of it was ever active (the latest, "
			    "version %lld, is %s): nothing to go back to",
			    (long long)any.version,
			    manifest_state_name(any.state));
}

static int rollback(struct manifest *m, const char *name, uint32_t uid,
		    struct manifest_module *out, struct al_error *err)
{
	struct manifest_module from, to;
	char reason[96], displaced[96];
	bool active;
	struct change c = { .to = MANIFEST_ACTIVE,
			    .reason = reason,
			    .displace = true,
			    .displaced_reason = displaced,
			    .displaced_cause = MANIFEST_CAUSE_ROLLED_BACK };

	if (db_writable(m, err) < 0 ||
	    rollback_from(m, name, &from, &active, err) < 0)
		return -1;
	if (one_by_name(m, SQL_GOOD_BEFORE, name, from.version, &to, err) < 0)
		return err->errnum == ENOENT
			       ? al_error_set(err, EINVAL,
					      "no good version older than "
					      "version %lld (%s%s); nothing "
					      "changed (a good version is one "
					      "archived by hand or superseded, "
					      "not auto-archived or rolled "
					      "back from: airlock show)",
					      (long long)from.version,
					      active ? "active" : "archived, ",
					      active ? ""
						     : "the last one active")
			       : -1;
	snprintf(displaced, sizeof(displaced), "rolled back to v%lld by uid %u",
		 (long long)to.version, uid);
	snprintf(reason, sizeof(reason), "rollback from v%lld by uid %u",
		 (long long)from.version, uid);
	if (change_state(m, &to, &c, err) < 0)
		return -1;
	return out ? module_get(m, to.id, out, err) : 0;
}

int manifest_rollback(struct manifest *m, const char *name, uint32_t uid,
		      struct manifest_module *out, struct al_error *err)
{
	struct al_error local = { 0 };
	char q[QUOTED_MAX];

	if (err == NULL)
		err = &local;
	if (rollback(m, name, uid, out, err) < 0)
		return al_error_prefix(err, "manifest: roll back module \"%s\"",
				       quoted(name, q));
	return 0;
}

/* ---------------------------------------------------------------- finding */

static const char SQL_SET_SYSCALLS[] =
	"UPDATE modules SET syscalls = ?2 WHERE id = ?1";

int manifest_set_syscalls(struct manifest *m, int64_t id, const char *names,
			  struct al_error *err)
{
	if (db_writable(m, err) < 0)
		return al_error_prefix(err, "manifest");
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_SET_SYSCALLS, err);
	if (s == NULL)
		return al_error_prefix(err, "manifest");
	db_bind_int64(s, 1, id);
	db_bind_text(s, 2, names);
	if (db_step_done(m, s, "store the learned syscalls", err) < 0)
		return al_error_prefix(err, "manifest: module %lld",
				       (long long)id);
	if (db_changes(s) != 1)
		return al_error_set(err, ENOENT,
				    "manifest: module %lld: no "
				    "such module",
				    (long long)id);
	return 0;
}

static const char SQL_GET_SYSCALLS[] =
	"SELECT syscalls FROM modules WHERE id = ?1";

int manifest_get_syscalls(struct manifest *m, int64_t id, char **out,
			  struct al_error *err)
{
	*out = NULL;
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_GET_SYSCALLS, err);
	if (s == NULL)
		return al_error_prefix(err, "manifest");
	db_bind_int64(s, 1, id);
	int rc = db_step(s);
	if (rc == DB_DONE)
		return al_error_set(err, ENOENT,
				    "manifest: module %lld: no "
				    "such module",
				    (long long)id);
	if (rc != DB_ROW)
		return db_error(m, err, "manifest: module %lld: syscalls",
				(long long)id);
	const char *text = db_column_text(s, 0);
	if (text && !(*out = strdup(text)))
		return al_error_sys(err, ENOMEM, "manifest");
	return 0;
}

int manifest_get(struct manifest *m, int64_t id, struct manifest_module *out,
		 struct al_error *err)
{
	if (module_get(m, id, out, err) < 0)
		return al_error_prefix(err, "manifest");
	return 0;
}

int manifest_find(struct manifest *m, const char *name, int64_t version,
		  struct manifest_module *out, struct al_error *err)
{
	struct al_error local = { 0 };
	char q[QUOTED_MAX];
	int rc;

	if (err == NULL)
		err = &local;
	rc = version == 0 ? module_latest(m, name, -1, out, err)
			  : one_by_name(m, SQL_MODULE_VERSION, name, version,
					out, err);
	if (rc < 0 && err->errnum == ENOENT)
		return version == 0 ? al_error_set(err, ENOENT,
						   "manifest: no module \"%s\"",
						   quoted(name, q))
				    : al_error_set(err, ENOENT,
						   "manifest: no module \"%s\" "
						   "version %lld",
						   quoted(name, q),
						   (long long)version);
	if (rc < 0)
		return al_error_prefix(err, "manifest: find \"%s\"",
				       quoted(name, q));
	return 0;
}

int manifest_module_path(struct manifest *m, const struct manifest_module *mod,
			 char *buf, size_t len, struct al_error *err)
{
	enum store_dir d = store_dir_of(mod->state);
	int n;

	if (d == STORE_NONE)
		return al_error_set(err, ENOENT,
				    "manifest: module version %lld is %s and "
				    "has no file",
				    (long long)mod->version,
				    manifest_state_name(mod->state));
	n = snprintf(buf, len, "%s/%s/%s", m->state_dir, store_dir_name(d),
		     mod->sha256);
	if (n < 0 || (size_t)n >= len)
		return al_error_set(err, ENAMETOOLONG,
				    "manifest: path of %s/%s is too long",
				    store_dir_name(d), mod->sha256);
	return 0;
}

int manifest_module_verify(const char *path, const struct manifest_module *mod,
			   struct al_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char got[MANIFEST_SHA256_HEX + 1];
	uint64_t size;
	struct stat st;

	if (fd < 0)
		return al_error_sys(err, errno, "module %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return al_error_set(err, EINVAL,
				    "module %s: not a regular file", path);
	if (sha256_fd(fd, got, &size) < 0)
		return al_error_sys(err, errno, "module %s: read", path);
	if (size != mod->size || strcmp(got, mod->sha256) != 0)
		return al_error_set(err, EBADMSG,
				    "module \"%s\" version %lld: its file %s "
				    "no longer has the content that was "
				    "validated (sha256 %.12s…, expected "
				    "%.12s…): refusing to run it; restore it "
				    "from a backup and check who can write the "
				    "state directory",
				    mod->name, (long long)mod->version, path,
				    got, mod->sha256);
	return 0;
}

int manifest_active_path(struct manifest *m, const char *name,
			 struct manifest_module *mod, char *buf, size_t len,
			 struct al_error *err)
{
	struct al_error local = { 0 };
	struct manifest_module found;
	char q[QUOTED_MAX];

	if (err == NULL)
		err = &local;
	if (module_latest(m, name, MANIFEST_ACTIVE, &found, err) < 0) {
		if (err->errnum == ENOENT)
			return al_error_set(err, ENOENT,
					    "manifest: module \"%s\" has no "
					    "active version",
					    quoted(name, q));
		return al_error_prefix(err, "manifest: module \"%s\"",
				       quoted(name, q));
	}
	if (mod != NULL)
		*mod = found;
	/* submitted or restored on another host: fetch the content */
	if (m->ops->shared && m->mode == MANIFEST_READ_WRITE &&
	    store_ensure(m, found.sha256, STORE_MODULES, err) < 0)
		return al_error_prefix(err, "manifest: module \"%s\"",
				       quoted(name, q));
	return manifest_module_path(m, &found, buf, len, err);
}
