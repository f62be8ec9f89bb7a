/*
 * Per-uid quotas, hourly and daily (the day starting at QUOTA_RESET_HOUR
 * UTC), that survive a restart. Admission (runs_admit() asks
 * quota_admit()) counts each uid's runs in a small in-memory table, the
 * fast path; every entry it creates
 * is seeded here from the manifest's runs of the current hour and day
 * (manifest_usage), so a restarted daemon, or a uid whose entry was
 * evicted, starts from what the uid really used instead of zero. Deriving
 * beats persisting a counter: the run rows are written anyway, in the
 * transaction that starts each run, so the count can never disagree with
 * them and costs no extra write. A reset is a quota_reset feed row; runs
 * before a uid's last reset do not count.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/internal.h"

struct one_usage {
	uint64_t hour, day;
};

static int take_usage(const struct manifest_usage *u, void *arg)
{
	struct one_usage *o = arg;
	o->hour = u->hour;
	o->day = u->day;
	return 1;
}

/* From the manifest alone: runs that started, validations included. */
static int derived(struct supervisor *s, uint32_t uid, struct one_usage *o,
		   struct al_error *err)
{
	int64_t now = manifest_now_ms();

	o->hour = o->day = 0;
	return manifest_usage(s->m, uid,
			      report_day_start(now, s->cfg.quota_reset_hour),
			      report_hour_start(now), take_usage, o, err);
}

/* A new entry of the table: its counts from the manifest. */
static void quota_seed(struct supervisor *s, struct quota *q)
{
	struct one_usage o;
	struct al_error err = { 0 };

	if (derived(s, q->uid, &o, &err) < 0) {
		/* admission goes on from zero rather than refusing work */
		LOG(LOG_WARN, NULL, 0, "quota of uid %u: %s", q->uid, err.msg);
		return;
	}
	q->used = (unsigned)o.hour;
	q->day_used = (unsigned)o.day;
}

/* The table's entry for uid, if it is current (quota_of() rolls
 * windows over when it is next used; a stale one says nothing). */
static struct quota *live_entry(struct supervisor *s, uint32_t uid)
{
	int64_t now = manifest_now_ms();
	int64_t day = report_day_start(now, s->cfg.quota_reset_hour);

	for (size_t i = 0; i < ARRAY_SIZE(s->quotas); i++) {
		struct quota *q = &s->quotas[i];
		if (q->in_use && q->uid == uid)
			return q->day == day ? q : NULL;
	}
	return NULL;
}

/* What the admission table counts for a live entry: the runs admitted,
 * started or not (the manifest knows only those that started). */
static void entry_usage(const struct quota *q, uint64_t *hour, uint64_t *day)
{
	*hour = q->window == report_hour_start(manifest_now_ms()) ? q->used : 0;
	*day = q->day_used;
}

void quota_usage(struct supervisor *s, uint32_t uid, uint64_t *hour,
		 uint64_t *day)
{
	struct quota *q = live_entry(s, uid);
	struct one_usage o = { 0 };
	struct al_error err = { 0 };

	if (q) {
		entry_usage(q, hour, day);
		return;
	}
	if (derived(s, uid, &o, &err) < 0)
		LOG(LOG_WARN, NULL, 0, "quota of uid %u: %s", uid, err.msg);
	*hour = o.hour;
	*day = o.day;
}

/* A refusal: counted, and into the feed at most once per uid per
 * QUOTA_NOTE_MS (the rest summed into the next event). */
static void quota_refused(struct supervisor *s, struct quota *q,
			  const char *msg)
{
	int64_t now = now_ms();

	q->refused_unnoted++;
	/* each refusal costs a client nothing; a feed row costs a commit:
	 * at most one per uid per QUOTA_NOTE_MS, the rest summed into it */
	if (q->refused_noted_ms && now - q->refused_noted_ms < QUOTA_NOTE_MS)
		return;
	if (q->refused_unnoted > 1)
		events_note(s, "rate_limited", q->uid, "%s (%u refusals)", msg,
			    q->refused_unnoted);
	else
		events_note(s, "rate_limited", q->uid, "%s", msg);
	q->refused_noted_ms = now;
	q->refused_unnoted = 0;
}

/* uid's entry, its windows rolled over to now; with `create`, a new one
 * if it has none (in a free slot, else the one counted least recently),
 * seeded from the manifest. */
static struct quota *quota_of(struct supervisor *s, uid_t uid, bool create)
{
	int64_t now = manifest_now_ms();
	int64_t hour = report_hour_start(now);
	int64_t day = report_day_start(now, s->cfg.quota_reset_hour);
	struct quota *oldest = &s->quotas[0];

	for (size_t i = 0; i < ARRAY_SIZE(s->quotas); i++) {
		struct quota *q = &s->quotas[i];
		if (q->in_use && q->uid == uid) {
			if (q->window != hour) {
				q->window = hour;
				q->used = 0;
			}
			if (q->day != day) {
				q->day = day;
				q->day_used = 0;
			}
			return q;
		}
		if (!q->in_use ||
		    (oldest->in_use && q->window < oldest->window))
			oldest = q;
	}
	if (!create)
		return NULL;
	*oldest = (struct quota){
		.uid = uid, .window = hour, .day = day, .in_use = true
	};
	quota_seed(s, oldest); /* what it used before a restart counts */
	return oldest;
}

unsigned quota_used_hour(struct supervisor *s, uid_t uid)
{
	struct quota *q = quota_of(s, uid, false);
	return q ? q->used : 0;
}

unsigned quota_used_today(struct supervisor *s, uid_t uid)
{
	struct quota *q = quota_of(s, uid, false);
	return q ? q->day_used : 0;
}

/* Whether `q` is spent: the protocol error, else 0. */
static int quota_spent(struct supervisor *s, const struct quota *q, char *msg,
		       size_t len, int64_t *retry_after_ms)
{
	int64_t now = manifest_now_ms();

	if (s->cfg.quota_per_hour && q->used >= s->cfg.quota_per_hour) {
		*retry_after_ms = report_hour_start(now) + AL_HOUR_MS - now;
		snprintf(
			msg, len,
			"uid %u used its %u runs of this hour; retry in %lld s",
			q->uid, s->cfg.quota_per_hour,
			(long long)(*retry_after_ms / 1000 + 1));
		return PROTO_E_RATE_LIMITED;
	}
	if (s->cfg.quota_per_day && q->day_used >= s->cfg.quota_per_day) {
		*retry_after_ms = report_day_start(now,
						   s->cfg.quota_reset_hour) +
				  AL_DAY_MS - now;
		snprintf(msg, len,
			 "uid %u used its %u runs of this day (it resets at "
			 "%02u:00 UTC); retry in %lld s",
			 q->uid, s->cfg.quota_per_day, s->cfg.quota_reset_hour,
			 (long long)(*retry_after_ms / 1000 + 1));
		return PROTO_E_RATE_LIMITED;
	}
	return 0;
}

int quota_admit(struct supervisor *s, uid_t uid, struct quota **out, char *msg,
		size_t len, int64_t *retry_after_ms)
{
	bool quota = s->cfg.quota_per_hour || s->cfg.quota_per_day;
	struct quota *q = quota ? quota_of(s, uid, true) : NULL;
	int rc;

	*out = q;
	if (q && (rc = quota_spent(s, q, msg, len, retry_after_ms))) {
		s->counters[C_RATE_LIMIT_HITS]++;
		quota_refused(s, q, msg);
		return rc;
	}
	return 0;
}

void quota_charge(struct quota *q)
{
	if (q) {
		q->used++;
		q->day_used++;
	}
}

int quota_reset(struct supervisor *s, uint32_t uid, uint32_t by,
		struct al_error *err)
{
	struct quota *q = live_entry(s, uid);
	char detail[64];

	snprintf(detail, sizeof(detail), "reset by uid %u", by);
	if (manifest_feed_add(s->m, "quota_reset", uid, detail, NULL, err) < 0)
		return -1;
	if (q) {
		q->used = 0;
		q->day_used = 0;
	}
	LOG(LOG_INFO, NULL, 0, "quota of uid %u %s", uid, detail);
	return 0;
}

struct listing {
	struct supervisor *s;
	struct json_buf *jb;
	struct report_limits limits;
	uint32_t seen[256];
	size_t nseen;
};

static void list_line(struct listing *l, uint32_t uid, uint64_t hour,
		      uint64_t day)
{
	report_quota_json(l->jb, uid, hour, day, &l->limits);
	if (l->nseen < ARRAY_SIZE(l->seen))
		l->seen[l->nseen++] = uid;
}

static void list_one(struct listing *l, uint32_t uid)
{
	uint64_t hour, day;

	quota_usage(l->s, uid, &hour, &day);
	list_line(l, uid, hour, day);
}

/* Called from inside manifest_usage()'s listing: it must not query the
 * usage again (that would re-enter the listing's own cached statement
 * and reset it mid-walk), so a uid the table does not know takes the
 * row it was handed. */
static int list_usage(const struct manifest_usage *u, void *arg)
{
	struct listing *l = arg;
	struct quota *q = live_entry(l->s, u->uid);
	uint64_t hour = u->hour, day = u->day;

	if (q)
		entry_usage(q, &hour, &day);
	list_line(l, u->uid, hour, day);
	return 0;
}

int quota_list_json(struct supervisor *s, struct json_buf *jb, int64_t uid,
		    struct al_error *err)
{
	struct listing l = {
		.s = s,
		.jb = jb,
		.limits = { .known = true,
			    .per_hour = s->cfg.quota_per_hour,
			    .per_day = s->cfg.quota_per_day,
			    .reset_hour = s->cfg.quota_reset_hour },
	};
	int64_t now = manifest_now_ms();

	json_key(jb, "quotas");
	json_array_open(jb);
	if (uid >= 0) {
		list_one(&l, (uint32_t)uid);
	} else {
		if (manifest_usage(s->m, -1,
				   report_day_start(now,
						    s->cfg.quota_reset_hour),
				   report_hour_start(now), list_usage, &l,
				   err) < 0)
			return -1;
		/* admitted but not started yet: only the table knows */
		for (size_t i = 0; i < ARRAY_SIZE(s->quotas); i++) {
			const struct quota *q = &s->quotas[i];
			bool seen = false;
			for (size_t k = 0; k < l.nseen; k++)
				seen |= l.seen[k] == q->uid;
			if (q->in_use && !seen && live_entry(s, q->uid) &&
			    q->day_used)
				list_one(&l, q->uid);
		}
	}
	json_array_close(jb);
	return 0;
}
