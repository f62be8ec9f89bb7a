/*
 * Pending finishes: what a run's end would have written to the manifest
 * (its verdict, manifest_run_finish() or manifest_run_interrupt(), and the
 * output it keeps) while the manifest's server was out of reach. The
 * client has its answer already; the record waits in memory and in
 * STATE/pending/<run id> (one JSON file each, written atomically, 0600),
 * so that a crash of airlockd during the outage loses nothing, and is
 * committed once the manifest answers again (outage.c), or by the next
 * airlockd at its start. A commit is a replay: a finish that committed
 * before its answer was lost is success (manifest_run_finish()), the
 * output's second copy is refused as one it has (EEXIST).
 *
 * The spool is bounded: PENDING_FILES_MAX files, PENDING_BYTES_MAX bytes
 * of them; past that a record keeps its verdict and drops its output, and
 * past the count it is kept in memory only (and the log says so).
 * A file that does not parse is renamed <name>.bad and reported, never
 * trusted and never fatal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/internal.h"

#define PENDING_FORMAT 1

/* ------------------------------------------------------------ the record */

void pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	free(p->excerpt);
	free(p->result);
	for (int k = 0; k < 2; k++)
		free(p->streams[k].data);
	free(p);
}

static int copy_bytes(unsigned char **to, const void *from, size_t len)
{
	*to = malloc(len ? len : 1);
	if (*to == NULL)
		return -1;
	if (len)
		memcpy(*to, from, len);
	return 0;
}

struct pending *pending_new(int64_t run_id, const struct manifest_run_result *r)
{
	struct pending *p = calloc(1, sizeof(*p));
	size_t keep;

	if (p == NULL)
		return NULL;
	p->run_id = run_id;
	if (r == NULL)
		return p;
	p->finish = PENDING_FINISH;
	snprintf(p->verdict, sizeof(p->verdict), "%s", r->verdict);
	snprintf(p->syscall, sizeof(p->syscall), "%s",
		 r->syscall ? r->syscall : "");
	p->exit_code = r->exit_code;
	p->signal = r->signal;
	p->wall_ms = r->wall_ms;
	p->cpu_ms = r->cpu_ms;
	p->peak_memory_bytes = r->peak_memory_bytes;
	p->stdout_truncated = r->stdout_truncated;
	p->stderr_truncated = r->stderr_truncated;
	p->ended_ms = r->ended_ms;
	/* the excerpt is all the row keeps of stderr: its end */
	keep = r->stderr_len < MANIFEST_EXCERPT_MAX ? r->stderr_len
						    : MANIFEST_EXCERPT_MAX;
	if (copy_bytes(&p->excerpt,
		       r->stderr_data ? r->stderr_data + r->stderr_len - keep
				      : "",
		       keep) < 0) {
		pending_free(p);
		return NULL;
	}
	p->excerpt_len = keep;
	return p;
}

int pending_set_output(struct pending *p, const struct manifest_output_in *in,
		       struct al_error *err)
{
	p->result = strdup(in->result);
	if (p->result == NULL)
		return al_error_sys(err, ENOMEM, "pending run %lld",
				    (long long)p->run_id);
	p->has_output = true;
	p->archived = in->archived;
	p->keep = in->keep;
	for (int k = 0; k < 2; k++) {
		const struct manifest_stream_in *si = &in->streams[k];
		size_t n = si->data == NULL     ? 0
			   : si->len < in->keep ? si->len
						: in->keep;
		if (copy_bytes(&p->streams[k].data, si->data ? si->data : "",
			       n) < 0)
			return al_error_sys(err, ENOMEM, "pending run %lld",
					    (long long)p->run_id);
		p->streams[k].len = n;
		p->streams[k].size = si->data ? si->len : 0;
		p->streams[k].truncated = si->truncated;
	}
	return 0;
}

void pending_drop_output(struct pending *p)
{
	free(p->result);
	p->result = NULL;
	for (int k = 0; k < 2; k++) {
		free(p->streams[k].data);
		p->streams[k].data = NULL;
		p->streams[k].len = 0;
	}
	p->has_output = false;
}

/* ------------------------------------------------------------ the format */

static void bytes_member(struct json_buf *jb, const char *key,
			 const unsigned char *data, size_t len)
{
	char *b64 = base64_encode(data, len);

	if (b64 == NULL) {
		jb->failed = true;
		return;
	}
	json_kv_string(jb, key, b64);
	free(b64);
}

static void encode_finish(struct json_buf *jb, const struct pending *p)
{
	json_key(jb, "finish");
	json_object_open(jb);
	json_kv_string(jb, "verdict", p->verdict);
	json_kv_int(jb, "ended_ms", p->ended_ms);
	json_kv_int(jb, "exit_code", p->exit_code);
	json_kv_int(jb, "signal", p->signal);
	json_kv_string(jb, "syscall", p->syscall);
	json_key(jb, "wall_ms");
	json_double(jb, p->wall_ms, 3);
	json_key(jb, "cpu_ms");
	json_double(jb, p->cpu_ms, 3);
	json_kv_uint(jb, "peak_memory_bytes", p->peak_memory_bytes);
	json_kv_bool(jb, "stdout_truncated", p->stdout_truncated);
	json_kv_bool(jb, "stderr_truncated", p->stderr_truncated);
	bytes_member(jb, "stderr_excerpt", p->excerpt, p->excerpt_len);
	json_object_close(jb);
}

static void encode_output(struct json_buf *jb, const struct pending *p)
{
	static const char *const names[2] = { "stdout", "stderr" };

	json_key(jb, "output");
	json_object_open(jb);
	json_kv_string(jb, "result", p->result);
	json_kv_bool(jb, "archived", p->archived);
	json_kv_uint(jb, "keep", p->keep);
	for (int k = 0; k < 2; k++) {
		json_key(jb, names[k]);
		json_object_open(jb);
		bytes_member(jb, "data", p->streams[k].data, p->streams[k].len);
		json_kv_uint(jb, "size", p->streams[k].size);
		json_kv_bool(jb, "truncated", p->streams[k].truncated);
		json_object_close(jb);
	}
	json_object_close(jb);
}

char *pending_encode(const struct pending *p)
{
	struct json_buf jb;

	json_buf_init(&jb);
	json_object_open(&jb);
	json_kv_int(&jb, "airlock_pending", PENDING_FORMAT);
	json_kv_int(&jb, "run", p->run_id);
	if (p->finish == PENDING_FINISH)
		encode_finish(&jb, p);
	else if (p->finish == PENDING_INTERRUPT)
		json_kv_bool(&jb, "interrupt", true);
	if (p->has_output)
		encode_output(&jb, p);
	json_object_close(&jb);
	if (json_buf_failed(&jb)) {
		json_buf_free(&jb);
		return NULL;
	}
	return json_buf_steal(&jb);
}

/* The member `key` of `obj`, of type `type` (JSON_NUMBER takes an
 * integer too); NULL with err naming it otherwise. */
static const struct json_node *member(const struct json_doc *doc,
				      const struct json_node *obj,
				      const char *key, enum json_type type,
				      struct al_error *err)
{
	const struct json_node *n = json_get(doc, obj, key);

	if (n != NULL &&
	    (n->type == type || (type == JSON_NUMBER && n->type == JSON_INT)))
		return n;
	al_error_set(err, EBADMSG, "\"%s\": %s, expected %s", key,
		     n ? json_type_name(n->type) : "missing",
		     json_type_name(type));
	return NULL;
}

static int get_int(const struct json_doc *doc, const struct json_node *obj,
		   const char *key, int64_t min, int64_t max, int64_t *out,
		   struct al_error *err)
{
	const struct json_node *n = member(doc, obj, key, JSON_INT, err);

	if (n == NULL)
		return -1;
	if (n->i < min || n->i > max)
		return al_error_set(err, EBADMSG,
				    "\"%s\": %lld is out of range", key,
				    (long long)n->i);
	*out = n->i;
	return 0;
}

static int get_bool(const struct json_doc *doc, const struct json_node *obj,
		    const char *key, bool *out, struct al_error *err)
{
	const struct json_node *n = member(doc, obj, key, JSON_BOOL, err);

	if (n == NULL)
		return -1;
	*out = n->i != 0;
	return 0;
}

static int get_double(const struct json_doc *doc, const struct json_node *obj,
		      const char *key, double *out, struct al_error *err)
{
	const struct json_node *n = json_get(doc, obj, key);

	/* json_double() writes null for NaN: a usage nobody measured */
	if (n != NULL && n->type == JSON_NULL) {
		*out = NAN;
		return 0;
	}
	n = member(doc, obj, key, JSON_NUMBER, err);
	if (n == NULL)
		return -1;
	*out = n->d;
	return 0;
}

static int get_text(const struct json_doc *doc, const struct json_node *obj,
		    const char *key, char *buf, size_t size,
		    struct al_error *err)
{
	const struct json_node *n = member(doc, obj, key, JSON_STRING, err);

	if (n == NULL)
		return -1;
	if (n->len >= size || memchr(n->str, '\0', n->len) != NULL)
		return al_error_set(err, EBADMSG,
				    "\"%s\": longer than %zu bytes or holds "
				    "a NUL",
				    key, size - 1);
	memcpy(buf, n->str, n->len + 1);
	return 0;
}

/* Base64 member `key` into a new buffer (*out, *len). */
static int get_bytes(const struct json_doc *doc, const struct json_node *obj,
		     const char *key, unsigned char **out, size_t *len,
		     struct al_error *err)
{
	const struct json_node *n = member(doc, obj, key, JSON_STRING, err);
	ssize_t got;

	if (n == NULL)
		return -1;
	*out = malloc(n->len / 4 * 3 + 1);
	if (*out == NULL)
		return al_error_sys(err, ENOMEM, "\"%s\"", key);
	got = base64_decode(n->str, n->len, *out, err);
	if (got < 0)
		return al_error_prefix(err, "\"%s\"", key);
	*len = (size_t)got;
	return 0;
}

static int decode_finish(const struct json_doc *doc, const struct json_node *f,
			 struct pending *p, struct al_error *err)
{
	int64_t exit_code = 0, sig = 0, ended = 0, peak = 0;

	if (get_text(doc, f, "verdict", p->verdict, sizeof(p->verdict), err) <
		    0 ||
	    get_int(doc, f, "ended_ms", 1, INT64_MAX, &ended, err) < 0 ||
	    get_int(doc, f, "exit_code", -1, 255, &exit_code, err) < 0 ||
	    get_int(doc, f, "signal", 0, 128, &sig, err) < 0 ||
	    get_text(doc, f, "syscall", p->syscall, sizeof(p->syscall), err) <
		    0 ||
	    get_double(doc, f, "wall_ms", &p->wall_ms, err) < 0 ||
	    get_double(doc, f, "cpu_ms", &p->cpu_ms, err) < 0 ||
	    get_int(doc, f, "peak_memory_bytes", 0, INT64_MAX, &peak, err) <
		    0 ||
	    get_bool(doc, f, "stdout_truncated", &p->stdout_truncated, err) <
		    0 ||
	    get_bool(doc, f, "stderr_truncated", &p->stderr_truncated, err) <
		    0 ||
	    get_bytes(doc, f, "stderr_excerpt", &p->excerpt, &p->excerpt_len,
		      err) < 0)
		return al_error_prefix(err, "finish");
	if (al_verdict_parse(p->verdict) < 0)
		return al_error_set(err, EBADMSG,
				    "finish: \"verdict\": \"%s\" is no "
				    "verdict",
				    p->verdict);
	if (p->excerpt_len > MANIFEST_EXCERPT_MAX)
		return al_error_set(err, EBADMSG,
				    "finish: \"stderr_excerpt\": over %d "
				    "bytes",
				    MANIFEST_EXCERPT_MAX);
	p->finish = PENDING_FINISH;
	p->exit_code = (int)exit_code;
	p->signal = (int)sig;
	p->ended_ms = ended;
	p->peak_memory_bytes = (uint64_t)peak;
	return 0;
}

static int decode_stream(const struct json_doc *doc, const struct json_node *o,
			 const char *name, struct pending_stream *ps,
			 struct al_error *err)
{
	const struct json_node *n = member(doc, o, name, JSON_OBJECT, err);
	int64_t size = 0;

	if (n == NULL ||
	    get_bytes(doc, n, "data", &ps->data, &ps->len, err) < 0 ||
	    get_int(doc, n, "size", 0, INT64_MAX, &size, err) < 0 ||
	    get_bool(doc, n, "truncated", &ps->truncated, err) < 0)
		return al_error_prefix(err, "%s", name);
	if ((uint64_t)size < ps->len)
		return al_error_set(err, EBADMSG,
				    "%s: %zu bytes kept of a size of %lld",
				    name, ps->len, (long long)size);
	ps->size = (uint64_t)size;
	return 0;
}

static int decode_output(const struct json_doc *doc, const struct json_node *o,
			 struct pending *p, struct al_error *err)
{
	const struct json_node *r = member(doc, o, "result", JSON_STRING, err);
	int64_t keep = 0;

	if (r == NULL || get_bool(doc, o, "archived", &p->archived, err) < 0 ||
	    get_int(doc, o, "keep", 0, INT64_MAX, &keep, err) < 0 ||
	    decode_stream(doc, o, "stdout", &p->streams[0], err) < 0 ||
	    decode_stream(doc, o, "stderr", &p->streams[1], err) < 0)
		return al_error_prefix(err, "output");
	p->result = strndup(r->str, r->len);
	if (p->result == NULL)
		return al_error_sys(err, ENOMEM, "output");
	p->keep = (size_t)keep;
	p->has_output = true;
	return 0;
}

static int decode(const struct json_doc *doc, struct pending *p,
		  struct al_error *err)
{
	const struct json_node *root = json_root(doc), *n;
	int64_t format = 0;
	bool interrupt = false;

	if (root->type != JSON_OBJECT)
		return al_error_set(err, EBADMSG, "not a JSON object");
	if (get_int(doc, root, "airlock_pending", PENDING_FORMAT,
		    PENDING_FORMAT, &format, err) < 0 ||
	    get_int(doc, root, "run", 1, INT64_MAX, &p->run_id, err) < 0)
		return -1;
	if (json_get(doc, root, "interrupt") != NULL &&
	    get_bool(doc, root, "interrupt", &interrupt, err) < 0)
		return -1;
	p->finish = interrupt ? PENDING_INTERRUPT : PENDING_NONE;
	if ((n = json_get(doc, root, "finish")) != NULL) {
		if (interrupt)
			return al_error_set(err, EBADMSG,
					    "both \"finish\" and "
					    "\"interrupt\"");
		if (member(doc, root, "finish", JSON_OBJECT, err) == NULL ||
		    decode_finish(doc, n, p, err) < 0)
			return -1;
	}
	if (json_get(doc, root, "output") != NULL &&
	    ((n = member(doc, root, "output", JSON_OBJECT, err)) == NULL ||
	     decode_output(doc, n, p, err) < 0))
		return -1;
	if (p->finish == PENDING_NONE && !p->has_output)
		return al_error_set(err, EBADMSG, "records nothing");
	return 0;
}

int pending_decode(const char *text, size_t len, struct pending **out,
		   struct al_error *err)
{
	static const struct json_limits limits = { .max_nodes = 64,
						   .max_depth = 4 };
	struct json_doc *doc = json_parse(text, len, &limits, err);
	struct pending *p;

	*out = NULL;
	if (doc == NULL)
		return -1;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		json_doc_free(doc);
		return al_error_sys(err, ENOMEM, "pending record");
	}
	if (decode(doc, p, err) < 0) {
		json_doc_free(doc);
		pending_free(p);
		return -1;
	}
	json_doc_free(doc);
	*out = p;
	return 0;
}

/* What the manifest calls take: borrowed from the record. */
void pending_result(const struct pending *p, struct manifest_run_result *r)
{
	*r = (struct manifest_run_result){
		.verdict = p->verdict,
		.exit_code = p->exit_code,
		.signal = p->signal,
		.syscall = p->syscall[0] ? p->syscall : NULL,
		.wall_ms = p->wall_ms,
		.cpu_ms = p->cpu_ms,
		.peak_memory_bytes = p->peak_memory_bytes,
		.stdout_truncated = p->stdout_truncated,
		.stderr_truncated = p->stderr_truncated,
		.stderr_data = (const char *)p->excerpt,
		.stderr_len = p->excerpt_len,
		.ended_ms = p->ended_ms,
		.replay = true,
	};
}

void pending_output(const struct pending *p, struct manifest_output_in *in)
{
	*in = (struct manifest_output_in){ .result = p->result,
					   .archived = p->archived,
					   .keep = p->keep };
	for (int k = 0; k < 2; k++)
		in->streams[k] = (struct manifest_stream_in){
			.data = p->streams[k].data,
			.len = p->streams[k].len,
			.truncated = p->streams[k].truncated,
			.size = p->streams[k].size,
		};
}
