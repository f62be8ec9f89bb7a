/*
 * Run output: what a run printed, kept beside its row for airlockd's
 * `result` and `wait` (docs/manifest.md, "Run output").
 *
 * Each stream keeps its first `keep` bytes. They are stored compressed
 * (zlib, the fastest level: this runs on the supervisor's loop) only when
 * that is smaller, so incompressible output costs no more than its bytes
 * and nothing is inflated that did not shrink. The row's foreign key
 * takes it away with its run, in both dialects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "manifest/internal.h"

static const char *const stream_names[2] = { "stdout", "stderr" };

/* One stream as it goes into the row: its bytes (borrowed from the input
 * or owned in `buf`), how they are encoded. */
struct packed {
	const void *data;
	size_t len;
	bool zlib;
	unsigned char *buf;
	size_t kept;
	uint64_t size;
	bool truncated;
};

static int pack(const struct manifest_stream_in *in, size_t keep,
		struct packed *p, struct al_error *err)
{
	memset(p, 0, sizeof(*p));
	p->size = in->data ? (in->size > in->len ? in->size : in->len) : 0;
	p->kept = in->len < keep ? in->len : keep;
	if (in->data == NULL)
		p->kept = 0;
	p->truncated = in->truncated || p->kept < p->size;
	p->data = p->kept ? in->data : "";
	p->len = p->kept;
	if (p->kept < 64)
		return 0; /* zlib's header alone would eat the gain */
	uLongf n = compressBound(p->kept);
	p->buf = malloc(n);
	if (p->buf == NULL)
		return al_error_set(err, ENOMEM, "out of memory");
	if (compress2(p->buf, &n, in->data, p->kept, Z_BEST_SPEED) == Z_OK &&
	    n < p->kept) {
		p->data = p->buf;
		p->len = n;
		p->zlib = true;
	}
	return 0;
}

/* Parameters: ?1 run  ?2 result  ?3 archived, then per stream k (0, 1)
 * ?4+5k data  ?5+5k encoding  ?6+5k kept  ?7+5k size  ?8+5k truncated */
static const char SQL_OUTPUT_PUT[] =
	"INSERT INTO run_output (run_id, result, archived,"
	" stdout, stdout_encoding, stdout_kept, stdout_size,"
	" stdout_truncated, stderr, stderr_encoding, stderr_kept,"
	" stderr_size, stderr_truncated)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
	" ON CONFLICT (run_id) DO NOTHING";

static int insert(struct manifest *m, int64_t run_id,
		  const struct manifest_output_in *in, struct packed p[2],
		  struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_OUTPUT_PUT, err);

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, run_id);
	db_bind_text(s, 2, in->result);
	db_bind_int64(s, 3, in->archived);
	for (int k = 0; k < 2; k++) {
		db_bind_blob(s, 4 + 5 * k, p[k].data, p[k].len);
		db_bind_text(s, 5 + 5 * k, p[k].zlib ? "zlib" : "raw");
		db_bind_int64(s, 6 + 5 * k, (int64_t)p[k].kept);
		db_bind_int64(s, 7 + 5 * k, (int64_t)p[k].size);
		db_bind_int64(s, 8 + 5 * k, p[k].truncated);
	}
	if (db_step_done(m, s, "keep the output", err) < 0)
		return -1;
	if (db_changes(s) == 0)
		return al_error_set(err, EEXIST, "its output is kept already");
	return 0;
}

int manifest_output_put(struct manifest *m, int64_t run_id,
			const struct manifest_output_in *in,
			struct al_error *err)
{
	struct packed p[2] = { 0 };
	struct manifest_run run;
	int rc = -1;

	if (in->result == NULL)
		return al_error_set(err, EINVAL,
				    "manifest: run %lld: no result to keep",
				    (long long)run_id);
	if (db_writable(m, err) < 0 || manifest_run_get(m, run_id, &run, err))
		return -1;
	if (pack(&in->streams[0], in->keep, &p[0], err) == 0 &&
	    pack(&in->streams[1], in->keep, &p[1], err) == 0)
		rc = insert(m, run_id, in, p, err);
	free(p[0].buf);
	free(p[1].buf);
	if (rc < 0)
		return al_error_prefix(err, "manifest: run %lld",
				       (long long)run_id);
	return 0;
}

/* The column group of stream k, from column `col` on: data, encoding,
 * kept, size, truncated. */
static int unpack(struct db_stmt *s, int col, int k, struct manifest_stream *o,
		  struct al_error *err)
{
	size_t len = 0;
	const void *data = db_column_blob(s, col, &len);
	const char *enc = db_column_text(s, col + 1);
	int64_t kept = db_column_int64(s, col + 2);

	o->size = (uint64_t)db_column_int64(s, col + 3);
	o->truncated = db_column_int64(s, col + 4) != 0;
	o->compressed = enc != NULL && strcmp(enc, "zlib") == 0;
	o->stored = len;
	if (kept < 0 || (!o->compressed && (size_t)kept != len))
		return al_error_set(err, EBADMSG,
				    "%s: %zu bytes stored, %lld recorded",
				    stream_names[k], len, (long long)kept);
	o->data = malloc((size_t)kept + 1);
	if (o->data == NULL)
		return al_error_set(err, ENOMEM, "out of memory");
	uLongf n = (uLongf)kept;
	if (!o->compressed)
		memcpy(o->data, data ? data : "", len);
	else if (uncompress(o->data, &n, data, len) != Z_OK ||
		 n != (uLongf)kept)
		return al_error_set(err, EBADMSG,
				    "%s: the stored zlib data is damaged",
				    stream_names[k]);
	o->data[kept] = '\0';
	o->len = (size_t)kept;
	return 0;
}

static const char SQL_OUTPUT_GET[] =
	"SELECT result, archived,"
	" stdout, stdout_encoding, stdout_kept, stdout_size,"
	" stdout_truncated, stderr, stderr_encoding, stderr_kept,"
	" stderr_size, stderr_truncated"
	" FROM run_output WHERE run_id = ?1";

static int output_get(struct manifest *m, int64_t run_id,
		      struct manifest_output *out, struct al_error *err)
{
	_cleanup_stmt_ struct db_stmt *s = db_stmt(m, SQL_OUTPUT_GET, err);
	int rc;

	if (s == NULL)
		return -1;
	db_bind_int64(s, 1, run_id);
	rc = db_step(s);
	if (rc == DB_DONE)
		return al_error_set(err, ENOENT, "no output kept");
	if (rc != DB_ROW)
		return db_error(m, err, "read the output");
	const char *result = db_column_text(s, 0);
	out->result = strdup(result ? result : "null");
	if (out->result == NULL)
		return al_error_set(err, ENOMEM, "out of memory");
	out->archived = db_column_int64(s, 1) != 0;
	/* one stream at a time: a backend may keep one blob per row */
	for (int k = 0; k < 2; k++)
		if (unpack(s, 2 + 5 * k, k, &out->streams[k], err) < 0)
			return -1;
	return 0;
}

int manifest_output_get(struct manifest *m, int64_t run_id,
			struct manifest_output *out, struct al_error *err)
{
	memset(out, 0, sizeof(*out));
	if (output_get(m, run_id, out, err) < 0) {
		manifest_output_free(out);
		return al_error_prefix(err, "manifest: run %lld",
				       (long long)run_id);
	}
	return 0;
}

void manifest_output_free(struct manifest_output *out)
{
	if (out == NULL)
		return;
	free(out->result);
	for (int k = 0; k < 2; k++)
		free(out->streams[k].data);
	memset(out, 0, sizeof(*out));
}
