-- The manifest's schema, as numbered migrations (docs/manifest.md).
--
-- manifest_open() reads PRAGMA user_version and applies, in order and each
-- in its own transaction, every block numbered above it. A block ends by
-- setting user_version to its own number; the loader checks that it did.
-- A database whose user_version is above the last block here was made by a
-- newer airlock and is refused.
--
-- Rules for whoever adds a block:
--   * never edit a block that has shipped: add a new one;
--   * a block must work on any database the previous block left, with rows;
--   * times are INTEGER milliseconds since the epoch (UTC);
--   * every state a row can hold is listed in a CHECK, so a bug that would
--     write a state nobody handles fails at the insert instead.
--
-- The loader splits this file at lines that start with "-- @migration N".

-- @migration 1: modules, runs, the audit trail and the move journal

-- 'ARLK': tells an airlock manifest from any other SQLite file.
PRAGMA application_id = 1095912523;

-- One row per submitted version of a module. The file lives, named by its
-- SHA-256, in the directory its state says: staging/ (staged, validating),
-- modules/ (active), archive/ (archived); a rejected module has no file.
-- AUTOINCREMENT: an id is never reused after retention deletes a row, so
-- the events and clients that name it never meet a stranger.
CREATE TABLE modules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	version INTEGER NOT NULL CHECK (version >= 1),
	sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
	size INTEGER NOT NULL CHECK (size >= 0),
	interpreter TEXT,
	policy_name TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN
		('staged', 'validating', 'active', 'rejected', 'archived')),
	state_reason TEXT,
	submitted_uid INTEGER NOT NULL,
	created_ms INTEGER NOT NULL,
	updated_ms INTEGER NOT NULL,
	UNIQUE (name, version)
);
-- At most one active version of a name: activating another archives it.
CREATE UNIQUE INDEX modules_one_active ON modules (name)
	WHERE state = 'active';
CREATE INDEX modules_sha256 ON modules (sha256);
CREATE INDEX modules_state ON modules (state, updated_ms);

-- One row per run. 'running' until it ends; 'interrupted' when the
-- supervisor died first (set by the next read-write open).
CREATE TABLE runs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	module_id INTEGER NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
	started_ms INTEGER NOT NULL,
	ended_ms INTEGER,
	verdict TEXT NOT NULL CHECK (verdict IN
		('running', 'interrupted', 'ok', 'exit_nonzero', 'crashed',
		 'timeout', 'memory_limit', 'seccomp_violation',
		 'setup_error')),
	exit_code INTEGER,
	signal INTEGER,
	syscall TEXT,
	wall_ms REAL,
	cpu_ms REAL,
	peak_memory_bytes INTEGER,
	stdout_truncated INTEGER NOT NULL DEFAULT 0,
	stderr_truncated INTEGER NOT NULL DEFAULT 0,
	policy_hash TEXT NOT NULL,
	requested_uid INTEGER NOT NULL
);
CREATE INDEX runs_module ON runs (module_id, id);

-- Every state change of every module, appended in the transaction that
-- makes the change. No foreign key: the trail outlives the rows it tells
-- about (retention deletes modules, never events).
CREATE TABLE events (
	id INTEGER PRIMARY KEY,
	time_ms INTEGER NOT NULL,
	module_id INTEGER NOT NULL,
	module_name TEXT NOT NULL,
	module_version INTEGER NOT NULL,
	sha256 TEXT NOT NULL,
	from_state TEXT CHECK (from_state IN
		('staged', 'validating', 'active', 'rejected', 'archived')),
	to_state TEXT NOT NULL CHECK (to_state IN
		('staged', 'validating', 'active', 'rejected', 'archived',
		 'deleted')),
	reason TEXT
);
CREATE INDEX events_module ON events (module_id, id);
CREATE INDEX events_name ON events (module_name, module_version);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE (ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE (ABORT, 'events are append-only');
END;

-- The move journal: a file operation recorded (and committed) before it
-- happens, deleted in the transaction that commits its result. A row left
-- here by a crash is finished (transition, delete) or rolled back (stage)
-- by the next read-write open.
--   stage       a submission being written to staging/<sha256>;
--   transition  module_id moving from_state -> to_state;
--   delete      module_id (archived) being deleted by retention.
CREATE TABLE moves (
	id INTEGER PRIMARY KEY,
	op TEXT NOT NULL CHECK (op IN ('stage', 'transition', 'delete')),
	module_id INTEGER REFERENCES modules (id),
	sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
	from_state TEXT,
	to_state TEXT,
	reason TEXT,
	created_ms INTEGER NOT NULL,
	CHECK ((op = 'stage') = (module_id IS NULL))
);

PRAGMA user_version = 1;

-- @migration 2: stderr excerpts of runs, indexes for `airlock runs`

ALTER TABLE runs ADD COLUMN stderr_excerpt BLOB;
CREATE INDEX runs_started ON runs (started_ms);
CREATE INDEX runs_verdict ON runs (verdict, id);

PRAGMA user_version = 2;

-- @migration 3: the syscalls a module's validation run learned

-- Names sorted and joined by single spaces; NULL for a module whose
-- policy does not say `seccomp = learned` (docs/learning.md). Its runtime
-- runs are held to exactly this list.
ALTER TABLE modules ADD COLUMN syscalls TEXT;

PRAGMA user_version = 3;

-- @migration 4: the event feed (airlock events), runs by uid (quotas)

-- One row per thing an operator watches happen, in the order it happened:
-- module state changes and finished runs (copied here by the triggers
-- below, in the transaction that makes the change), and what only the
-- supervisor knows (rate-limit refusals, quota resets, policy reloads,
-- its own start and stop). Append-only, no foreign key: like events, the
-- feed outlives the rows it tells about. The supervisor streams new rows
-- to `subscribe`rs by id, so an id is never reused.
CREATE TABLE feed (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ms INTEGER NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN
		('submitted', 'validating', 'validated', 'rejected',
		 'archived', 'restored', 'deleted', 'run', 'rate_limited',
		 'quota_reset', 'policy_reload', 'started', 'stopped')),
	module_id INTEGER,
	module_name TEXT,
	module_version INTEGER,
	run_id INTEGER,
	uid INTEGER,
	verdict TEXT,
	detail TEXT
);
CREATE INDEX feed_time ON feed (time_ms);
CREATE INDEX feed_kind_uid ON feed (kind, uid, time_ms);
CREATE TRIGGER feed_no_update BEFORE UPDATE ON feed
BEGIN
	SELECT RAISE (ABORT, 'the feed is append-only');
END;
CREATE TRIGGER feed_no_delete BEFORE DELETE ON feed
BEGIN
	SELECT RAISE (ABORT, 'the feed is append-only');
END;

-- A state change as the feed names it.
CREATE TRIGGER feed_from_events AFTER INSERT ON events
BEGIN
	INSERT INTO feed (time_ms, kind, module_id, module_name,
		module_version, uid, detail)
	VALUES (NEW.time_ms,
		CASE WHEN NEW.to_state = 'staged' THEN 'submitted'
		     WHEN NEW.to_state = 'validating' THEN 'validating'
		     WHEN NEW.to_state = 'active' AND NEW.from_state = 'archived'
			THEN 'restored'
		     WHEN NEW.to_state = 'active' THEN 'validated'
		     WHEN NEW.to_state = 'rejected' THEN 'rejected'
		     WHEN NEW.to_state = 'archived' THEN 'archived'
		     ELSE 'deleted' END,
		NEW.module_id, NEW.module_name, NEW.module_version,
		CASE WHEN NEW.to_state = 'staged' THEN
			(SELECT submitted_uid FROM modules
			 WHERE id = NEW.module_id) END,
		NEW.reason);
END;

-- A run's verdict, when it has one: finished, interrupted, or recorded
-- whole.
CREATE TRIGGER feed_from_run_end AFTER UPDATE OF verdict ON runs
	WHEN OLD.verdict = 'running' AND NEW.verdict <> 'running'
BEGIN
	INSERT INTO feed (time_ms, kind, module_id, module_name,
		module_version, run_id, uid, verdict, detail)
	SELECT coalesce(NEW.ended_ms, NEW.started_ms), 'run', m.id, m.name,
		m.version, NEW.id, NEW.requested_uid, NEW.verdict,
		nullif(trim(
			coalesce('exit code ' || NEW.exit_code, '') ||
			coalesce(' signal ' || NEW.signal, '') ||
			coalesce(' syscall ' || NEW.syscall, '') ||
			coalesce(printf(' %.1f ms', NEW.wall_ms), '')), '')
	FROM modules m WHERE m.id = NEW.module_id;
END;
CREATE TRIGGER feed_from_run_record AFTER INSERT ON runs
	WHEN NEW.verdict <> 'running'
BEGIN
	INSERT INTO feed (time_ms, kind, module_id, module_name,
		module_version, run_id, uid, verdict, detail)
	SELECT coalesce(NEW.ended_ms, NEW.started_ms), 'run', m.id, m.name,
		m.version, NEW.id, NEW.requested_uid, NEW.verdict,
		nullif(trim(
			coalesce('exit code ' || NEW.exit_code, '') ||
			coalesce(' signal ' || NEW.signal, '') ||
			coalesce(' syscall ' || NEW.syscall, '') ||
			coalesce(printf(' %.1f ms', NEW.wall_ms), '')), '')
	FROM modules m WHERE m.id = NEW.module_id;
END;

-- What a manifest already held when it was upgraded, in time order.
INSERT INTO feed (time_ms, kind, module_id, module_name, module_version,
	run_id, uid, verdict, detail)
SELECT t, kind, module_id, module_name, module_version, run_id, uid,
	verdict, detail FROM (
	SELECT e.time_ms AS t, 0 AS src, e.id AS k,
		CASE WHEN e.to_state = 'staged' THEN 'submitted'
		     WHEN e.to_state = 'validating' THEN 'validating'
		     WHEN e.to_state = 'active' AND e.from_state = 'archived'
			THEN 'restored'
		     WHEN e.to_state = 'active' THEN 'validated'
		     WHEN e.to_state = 'rejected' THEN 'rejected'
		     WHEN e.to_state = 'archived' THEN 'archived'
		     ELSE 'deleted' END AS kind,
		e.module_id, e.module_name, e.module_version, NULL AS run_id,
		NULL AS uid, NULL AS verdict, e.reason AS detail
	FROM events e
	UNION ALL
	SELECT coalesce(r.ended_ms, r.started_ms), 1, r.id, 'run', m.id,
		m.name, m.version, r.id, r.requested_uid, r.verdict, NULL
	FROM runs r JOIN modules m ON m.id = r.module_id
	WHERE r.verdict <> 'running')
ORDER BY t, src, k;

-- Quotas count each uid's runs of the current hour and day.
CREATE INDEX runs_uid ON runs (requested_uid, started_ms);

PRAGMA user_version = 4;

-- @migration 5: module owners (tenants)

-- Every version of a name has one owner: the uid that submitted its first
-- version, and optionally a group whose members share the module (submit
-- with "group"). Only they (and admins) submit new versions, archive,
-- restore and run it, and only they see its rows (docs/protocol.md,
-- "Tenants"). Rows from before owners existed belong to the uid that
-- submitted the name's first version.
ALTER TABLE modules ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE modules ADD COLUMN owner_gid INTEGER;
UPDATE modules SET owner_uid = (
	SELECT first.submitted_uid FROM modules first
	WHERE first.name = modules.name ORDER BY first.version LIMIT 1);
CREATE INDEX modules_owner ON modules (owner_uid, name);
-- Storage quotas sum what each uid keeps stored (docs/protocol.md).
CREATE INDEX modules_submitter ON modules (submitted_uid, state);

PRAGMA user_version = 5;

-- @migration 6: bundles (a tar archive with an entry point, a build step)

-- A module that is a bundle keeps its archive as its file (named by the
-- archive's SHA-256, moved between staging/, modules/ and archive/ as any
-- module file) and its entry point here: the path, inside the tree
-- unpacked from it under bundles/ (docs/manifest.md, "Bundles"), that a
-- run executes; and the build step's command, run once at validation,
-- whose output tree is what later runs see. NULL for a module of one
-- file, and for a bundle without a build step.
ALTER TABLE modules ADD COLUMN entry TEXT;
ALTER TABLE modules ADD COLUMN build TEXT;

-- A build step that fails (a compile error, its timeout) is a run with the
-- verdict 'build_failed'. SQLite cannot widen a CHECK in place: the table
-- is rebuilt, its AUTOINCREMENT counter, indexes and triggers carried
-- over (run ids are never reused).
CREATE TABLE runs_new (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	module_id INTEGER NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
	started_ms INTEGER NOT NULL,
	ended_ms INTEGER,
	verdict TEXT NOT NULL CHECK (verdict IN
		('running', 'interrupted', 'ok', 'exit_nonzero', 'crashed',
		 'timeout', 'memory_limit', 'seccomp_violation',
		 'setup_error', 'build_failed')),
	exit_code INTEGER,
	signal INTEGER,
	syscall TEXT,
	wall_ms REAL,
	cpu_ms REAL,
	peak_memory_bytes INTEGER,
	stdout_truncated INTEGER NOT NULL DEFAULT 0,
	stderr_truncated INTEGER NOT NULL DEFAULT 0,
	policy_hash TEXT NOT NULL,
	requested_uid INTEGER NOT NULL,
	stderr_excerpt BLOB
);
INSERT INTO runs_new (id, module_id, started_ms, ended_ms, verdict,
	exit_code, signal, syscall, wall_ms, cpu_ms, peak_memory_bytes,
	stdout_truncated, stderr_truncated, policy_hash, requested_uid,
	stderr_excerpt)
SELECT id, module_id, started_ms, ended_ms, verdict, exit_code, signal,
	syscall, wall_ms, cpu_ms, peak_memory_bytes, stdout_truncated,
	stderr_truncated, policy_hash, requested_uid, stderr_excerpt
FROM runs;
DELETE FROM sqlite_sequence WHERE name = 'runs_new';
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'runs_new', seq FROM sqlite_sequence WHERE name = 'runs';
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_module ON runs (module_id, id);
CREATE INDEX runs_started ON runs (started_ms);
CREATE INDEX runs_verdict ON runs (verdict, id);
CREATE INDEX runs_uid ON runs (requested_uid, started_ms);
CREATE TRIGGER feed_from_run_end AFTER UPDATE OF verdict ON runs
	WHEN OLD.verdict = 'running' AND NEW.verdict <> 'running'
BEGIN
	INSERT INTO feed (time_ms, kind, module_id, module_name,
		module_version, run_id, uid, verdict, detail)
	SELECT coalesce(NEW.ended_ms, NEW.started_ms), 'run', m.id, m.name,
		m.version, NEW.id, NEW.requested_uid, NEW.verdict,
		nullif(trim(
			coalesce('exit code ' || NEW.exit_code, '') ||
			coalesce(' signal ' || NEW.signal, '') ||
			coalesce(' syscall ' || NEW.syscall, '') ||
			coalesce(printf(' %.1f ms', NEW.wall_ms), '')), '')
	FROM modules m WHERE m.id = NEW.module_id;
END;
CREATE TRIGGER feed_from_run_record AFTER INSERT ON runs
	WHEN NEW.verdict <> 'running'
BEGIN
	INSERT INTO feed (time_ms, kind, module_id, module_name,
		module_version, run_id, uid, verdict, detail)
	SELECT coalesce(NEW.ended_ms, NEW.started_ms), 'run', m.id, m.name,
		m.version, NEW.id, NEW.requested_uid, NEW.verdict,
		nullif(trim(
			coalesce('exit code ' || NEW.exit_code, '') ||
			coalesce(' signal ' || NEW.signal, '') ||
			coalesce(' syscall ' || NEW.syscall, '') ||
			coalesce(printf(' %.1f ms', NEW.wall_ms), '')), '')
	FROM modules m WHERE m.id = NEW.module_id;
END;

PRAGMA user_version = 6;

-- @migration 7: run output (result, wait)

-- What a run left for `result` and `wait` to answer later
-- (docs/manifest.md, "Run output"): its result object as the jail's one
-- encoder wrote it (stdout and stderr null: the bytes are here) and of
-- each stream the first --output-keep bytes, zlib-compressed only when
-- that is smaller; kept is their length, size what the run captured.
-- It goes with its run (retention).
CREATE TABLE run_output (
	run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	result TEXT NOT NULL,
	archived INTEGER NOT NULL DEFAULT 0,
	stdout BLOB NOT NULL,
	stdout_encoding TEXT NOT NULL CHECK (stdout_encoding IN
		('raw', 'zlib')),
	stdout_kept INTEGER NOT NULL CHECK (stdout_kept >= 0),
	stdout_size INTEGER NOT NULL CHECK (stdout_size >= stdout_kept),
	stdout_truncated INTEGER NOT NULL,
	stderr BLOB NOT NULL,
	stderr_encoding TEXT NOT NULL CHECK (stderr_encoding IN
		('raw', 'zlib')),
	stderr_kept INTEGER NOT NULL CHECK (stderr_kept >= 0),
	stderr_size INTEGER NOT NULL CHECK (stderr_size >= stderr_kept),
	stderr_truncated INTEGER NOT NULL
);

PRAGMA user_version = 7;

-- @migration 8: hosts (several airlockd on one database: the fleet)

-- Each airlockd that writes the database: its name (AIRLOCK_HOST), what
-- it runs, and when it last said it is alive. A host whose heartbeat is
-- older than the lease has its running runs marked 'interrupted' by the
-- others (docs/operations.md, "Fleet"). On SQLite there is one row.
CREATE TABLE hosts (
	name TEXT PRIMARY KEY,
	version TEXT NOT NULL,
	kernel TEXT NOT NULL,
	isolation TEXT NOT NULL,
	slots INTEGER NOT NULL,
	active INTEGER NOT NULL,
	started_ms INTEGER NOT NULL,
	heartbeat_ms INTEGER NOT NULL
);
-- The host a run ran on, a journal row's host (its files are that
-- host's); '' for rows written before hosts existed (the one writer).
ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE moves ADD COLUMN host TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_running ON runs (host) WHERE verdict = 'running';
-- Module content by SHA-256, for the hosts that did not take the
-- submission: they fetch it from here into their own state directory and
-- check it. Filled on a database server only (manifest/store.c).
CREATE TABLE contents (
	sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
	size INTEGER NOT NULL,
	content BLOB NOT NULL
);

PRAGMA user_version = 8;

-- @migration 9: the limits each run was held to

-- The wall clock, memory and process limits in force: the policy's, or
-- lower where an exec request asked (docs/protocol.md, "Per-run
-- options"). NULL for runs recorded before this schema.
ALTER TABLE runs ADD COLUMN limit_timeout_ms INTEGER;
ALTER TABLE runs ADD COLUMN limit_memory_bytes INTEGER;
ALTER TABLE runs ADD COLUMN limit_pids INTEGER;

PRAGMA user_version = 9;

-- @migration 10: why each archived version was archived (rollback)

-- A rollback goes back to a good version: one archived because another
-- took its place ('superseded') or by hand ('by_hand'), never one the
-- policy's archive_on archived ('auto_archived': it crashed) nor one a
-- rollback went back from ('rolled_back'); docs/manifest.md, "Versions".
-- NULL while the version is not archived. The journal carries it to the
-- commit (and to a repair after a crash). Rows from before: told apart by
-- the reasons airlock wrote.
ALTER TABLE modules ADD COLUMN archive_cause TEXT CHECK (archive_cause IN
	('superseded', 'by_hand', 'auto_archived', 'rolled_back'));
ALTER TABLE moves ADD COLUMN archive_cause TEXT CHECK (archive_cause IN
	('superseded', 'by_hand', 'auto_archived', 'rolled_back'));
UPDATE modules SET archive_cause = CASE
	WHEN state_reason LIKE 'auto-archived%' THEN 'auto_archived'
	WHEN state_reason LIKE 'superseded by%' THEN 'superseded'
	ELSE 'by_hand' END
WHERE state = 'archived';
UPDATE moves SET archive_cause = CASE
	WHEN reason LIKE 'auto-archived%' THEN 'auto_archived'
	WHEN reason LIKE 'superseded by%' THEN 'superseded'
	ELSE 'by_hand' END
WHERE to_state = 'archived';

PRAGMA user_version = 10;
