/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  How a conversation is stored: its head, one row of
 *	  chatpersist.conversations, and one row per message in
 *	  chatpersist.messages (2.0, docs/design-2.0.md).  The statements that
 *	  lock, insert and update them live here, apart from the decisions that
 *	  save.c makes about what to write.
 *
 * A write of a new array compares it with the stored rows by message id and
 * content hash (no stored message is parsed) and writes only the rows that
 * changed: new ids are inserted, changed copies and moved messages are
 * updated (the replaced copy goes to chatpersist.history_messages), and ids
 * the array no longer has are flagged removed, so that the row remembers
 * them.  An append of new ids inserts their rows after the last one and
 * continues the running hash the head keeps (hash_state), so that neither
 * reads the array.  The head's write goes through the guard trigger
 * (trigger.c) with the trusted-write note (note.c), which bumps the
 * version, archives the replaced head into history and prunes it.
 *
 * Privileges: the head is locked and written with the caller's rights (its
 * row-level security decides whether the caller may touch the
 * conversation); the message rows and their history copies are then
 * written as the tables' owner, as history is, so that a client that may
 * write a conversation needs no privilege on the message tables.
 *
 * Concurrency: CpStorageLock takes the head's row lock (SELECT ... FOR
 * UPDATE), which serialises the writes of one conversation, including
 * direct SQL on its message rows (the messages trigger takes the same
 * lock); CpStorageInsert inserts with ON CONFLICT DO NOTHING, so a
 * concurrent first write wins instead of raising 23505.  Must be called
 * inside SPI_connect; what they return stays valid until SPI_finish.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/* What a write reads of the head */
#define CP_HEAD_READ \
	"version, checksum, message_count, deleted, title, metadata, " \
	"hash_state, array_length, array_bytes, last_pos " \
	"FROM " CP_CONVERSATIONS " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND id OPERATOR(pg_catalog.=) $2"

/* A stored message row, as the diff reads it (no jsonb) */
typedef struct StoredKey
{
	char		id[CP_MAX_ID_BYTES + 1];	/* hash key, NUL-terminated */
	int64		pos;
	int64		hash;
	bool		removed;
	bool		seen;			/* in the new array */
} StoredKey;

/* The rows a write changes, as arrays for the batched statements */
typedef struct RowWrites
{
	int			n;
	Datum	   *ids;
	Datum	   *pos;
	Datum	   *messages;
	Datum	   *hashes;
	int			narchive;
	Datum	   *archive_ids;	/* live rows whose copy is replaced */
	int			nremove;
	Datum	   *remove_ids;
	int64		last_pos;
} RowWrites;

/* Plans prepared on first use and kept for the life of the backend */
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr array_plan = NULL;
static SPIPlanPtr keys_plan = NULL;
static SPIPlanPtr probe_plan = NULL;
static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr insert_rows_plan = NULL;
static SPIPlanPtr read_plan = NULL;
static SPIPlanPtr remove_plan = NULL;
static SPIPlanPtr archive_all_plan = NULL;
static SPIPlanPtr delete_all_plan = NULL;
static SPIPlanPtr stamp_base_plan = NULL;
static SPIPlanPtr memory_plan = NULL;

static bool read_head(pg_uuid_t *user_id, text *conversation_id,
					  CpStoredRow *row, bool lock);
static uint64 execute_noted(SPIPlanPtr plan, Datum *args, const char *nulls,
							int expected_rc, pg_uuid_t *user_id,
							text *conversation_id, CpNewContent *nc);
static void plan_rows(CpStoredRow *row, CpMessageArray *arr, int64 version,
					  RowWrites *w);
static void write_rows(Datum user_id, Datum conversation_id, int64 version,
					   RowWrites *w, bool only_new);
static void rows_alloc(RowWrites *w, int n);
static void rows_add(RowWrites *w, CpMessage *m, int64 pos, uint64 hash);
static Datum message_datum(CpMessage *m);
static Datum text_array(Datum *elems, int n);
static Datum given_ids(CpMessageArray *given);
static bool summary_checks(CpStoredRow *row, CpArrayHash **ah);

/*
 * Lock the conversation's head FOR UPDATE and read it into *row.  Returns
 * false if there is no such row.
 */
bool
CpStorageLock(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row)
{
	return read_head(user_id, conversation_id, row, true);
}

/*
 * Read the conversation's head into *row without locking it: a write
 * planned from it must be a compare-and-swap on row->version
 * (CpStorageUpdate).  Returns false if there is no such row.
 */
bool
CpStorageRead(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row)
{
	return read_head(user_id, conversation_id, row, false);
}

/* CpStorageLock and CpStorageRead */
static bool
read_head(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row, bool lock)
{
	Datum		args[2] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id)};
	SPIPlanPtr *plan = lock ? &lock_plan : &read_plan;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int			rc;

	if (*plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		*plan = CpPrepareKept(lock ?
							  "SELECT " CP_HEAD_READ " FOR UPDATE" :
							  "SELECT " CP_HEAD_READ,
							  2, types);
	}

	rc = SPI_execute_plan(*plan, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	row->user_id = user_id;
	row->conversation_id = conversation_id;
	row->version = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
						   row->checksum, sizeof(row->checksum));
	row->message_count = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	row->deleted = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	row->title = DatumGetTextPP(SPI_getbinval(tup, desc, 5, &isnull));
	row->metadata = DatumGetJsonbP(SPI_getbinval(tup, desc, 6, &isnull));
	d = SPI_getbinval(tup, desc, 7, &isnull);
	row->hash_state = isnull ? NULL : DatumGetByteaPP(d);
	d = SPI_getbinval(tup, desc, 8, &isnull);
	row->array_length = isnull ? -1 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	row->array_bytes = isnull ? -1 : DatumGetInt64(d);
	row->last_pos = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
	row->messages = NULL;
	return true;
}

/* The stored array of a locked head, built from its rows on first use */
Jsonb *
CpStoredMessages(CpStoredRow *row)
{
	if (row->messages == NULL)
		row->messages = CpStorageReadArray(UUIDPGetDatum(row->user_id),
										   PointerGetDatum(row->conversation_id),
										   false);
	return row->messages;
}

/*
 * The array of a conversation: its rows that are not removed, in pos
 * order, read as the tables' owner (the caller has proved its right to the
 * conversation).  read_only: under the current snapshot (a read that has
 * just read the head); else a fresh one (see below).  Inside SPI_connect.
 */
Jsonb *
CpStorageReadArray(Datum user_id, Datum conversation_id, bool read_only)
{
	Datum		args[2] = {user_id, conversation_id};
	CpSavedUser saved;
	int			rc;

	if (array_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		array_plan = CpPrepareKept("SELECT message FROM " CP_MESSAGES " "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								   "AND conversation_id OPERATOR(pg_catalog.=) $2 "
								   "AND NOT removed ORDER BY pos",
								   2, types);
	}

	/*
	 * Not read_only: under READ COMMITTED that takes a fresh snapshot, which
	 * sees the rows of the transaction whose head lock we may have waited for
	 */
	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(array_plan, args, NULL, read_only, 0);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation's messages failed");
	return CpArrayFromRows(SPI_tuptable, 0, SPI_processed, 1);
}

/*
 * The jsonb array of the messages in column col of rows [from, to) of tt,
 * in that order.  Each message's object is copied into the array as it is
 * stored (CpBuildArray): nothing is parsed or re-encoded, as jsonb_agg
 * would.
 */
Jsonb *
CpArrayFromRows(SPITupleTable *tt, uint64 from, uint64 to, int col)
{
	int			n = (int) (to - from);
	CpMessage  *msgs = palloc(sizeof(CpMessage) * Max(n, 1));
	CpMessage **ptrs = palloc(sizeof(CpMessage *) * Max(n, 1));
	Jsonb	   *result;

	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(tt->vals[from + i], tt->tupdesc, col, &isnull);
		Jsonb	   *jb;

		if (isnull)
			elog(ERROR, "chatpersist: a stored message is NULL");
		jb = DatumGetJsonbP(d);
		if (!JB_ROOT_IS_OBJECT(jb))
			elog(ERROR, "chatpersist: a stored message is not a JSON object");
		msgs[i].obj = &jb->root;
		msgs[i].objlen = VARSIZE(jb) - VARHDRSZ;
		ptrs[i] = &msgs[i];
	}
	result = CpBuildArray(ptrs, n);
	pfree(ptrs);
	pfree(msgs);
	return result;
}

/*
 * The head's summary of a new array arr (its messages value): the running
 * hash, the length and the size that an append continues from
 */
void
CpStorageSummary(Jsonb *messages, int nmsgs, CpNewContent *nc)
{
	CpArrayHash *ah = CpArrayHashStart();
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	/* the elements of a validated array are objects: walk them as binary */
	it = JsonbIteratorInit(&messages->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_ELEM && v.type == jbvBinary)
		{
			CpArrayHashAdd(ah, v.val.binary.data, v.val.binary.len, i == 0);
			i++;
		}
	}
	Assert(i == nmsgs);
	nc->hash_state = CpArrayHashSave(ah);
	nc->array_length = i;
	nc->array_bytes = VARSIZE(messages);
}

/*
 * INSERT ... ON CONFLICT DO NOTHING of a new conversation with the content
 * nc, dated created_at (NULL: now), then its message rows.  Returns true
 * and the new version if a head was inserted, false if another
 * transaction's head is in the way.
 */
bool
CpStorageInsert(pg_uuid_t *user_id, text *conversation_id, CpNewContent *nc,
				const TimestampTz *created_at, int64 *version)
{
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	CpStoredRow none = {0};
	CpMessageArray arr;
	RowWrites	w;
	bool		isnull;

	if (insert_plan == NULL)
	{
		Oid			types[10] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID,
		BOOLOID, BYTEAOID, INT4OID, INT8OID, INT8OID};

		insert_plan = CpPrepareKept("INSERT INTO " CP_CONVERSATIONS " "
									"(user_id, id, title, metadata, created_at, deleted, "
									"hash_state, array_length, array_bytes, last_pos) "
									"VALUES ($1, $2, $3, $4, "
									"COALESCE($5, pg_catalog.now()), $6, $7, $8, $9, $10) "
									"ON CONFLICT (user_id, id) DO NOTHING "
									"RETURNING version",
									10, types);
	}

	CpParseMessages(nc->messages, "the new conversation", false, &arr);
	none.user_id = user_id;
	none.conversation_id = conversation_id;
	none.array_length = 0;
	plan_rows(&none, &arr, 0, &w);
	CpStorageSummary(nc->messages, arr.nmsgs, nc);

	args[0] = UUIDPGetDatum(user_id);
	args[1] = PointerGetDatum(conversation_id);
	args[2] = PointerGetDatum(nc->title);
	args[3] = JsonbPGetDatum(nc->metadata);
	args[4] = created_at ? TimestampTzGetDatum(*created_at) : (Datum) 0;
	nulls[4] = created_at ? ' ' : 'n';
	args[5] = BoolGetDatum(nc->deleted);
	args[6] = PointerGetDatum(nc->hash_state);
	args[7] = Int32GetDatum(nc->array_length);
	args[8] = Int64GetDatum(nc->array_bytes);
	args[9] = Int64GetDatum(w.last_pos);

	if (execute_noted(insert_plan, args, nulls, SPI_OK_INSERT_RETURNING,
					  user_id, conversation_id, nc) == 0)
		return false;
	*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	write_rows(args[0], args[1], *version, &w, true);
	return true;
}

/*
 * Write the content nc into the conversation row: the head, whose trigger
 * bumps the version and archives the replaced head, then the message rows
 * that changed.  The head's write is a compare-and-swap on row->version:
 * returns false, having written nothing, when the head has another version
 * by then (only possible when row was read without its lock, see
 * CpStorageRead); else true and the new version.
 */
bool
CpStorageUpdate(CpStoredRow *row, CpNewContent *nc, int64 *version)
{
	RowWrites	w;

	if (nc->append)
	{
		CpMessageArray given;

		/* nc->messages holds the new ids only, in order; the summary is set */
		CpParseMessages(nc->messages, "p_messages", false, &given);
		rows_alloc(&w, given.nmsgs);
		w.last_pos = row->last_pos;
		for (int i = 0; i < given.nmsgs; i++)
		{
			CpMessage  *m = &given.msgs[i];

			w.last_pos += CP_POS_GAP;
			rows_add(&w, m, w.last_pos, CpHashContainer(m->obj, m->objlen));
		}
	}
	else
	{
		CpMessageArray arr;

		CpParseMessages(nc->messages, "the new conversation", false, &arr);
		plan_rows(row, &arr, CpVersionAfter(row->version, PointerGetDatum(row->conversation_id)), &w);
		CpStorageSummary(nc->messages, arr.nmsgs, nc);
	}
	if (!CpStorageWriteHead(row, nc, w.last_pos, version))
		return false;
	write_rows(UUIDPGetDatum(row->user_id), PointerGetDatum(row->conversation_id),
			   *version, &w, nc->append);
	return true;
}

/*
 * Write the head of the conversation row with the content nc, if it still
 * has version row->version (else return false); the trigger bumps the
 * version and archives the replaced head.  Returns true and the new
 * version.
 */
bool
CpStorageWriteHead(CpStoredRow *row, CpNewContent *nc, int64 last_pos, int64 *version)
{
	Datum		args[10];
	int64		written;
	bool		isnull;

	if (update_plan == NULL)
	{
		Oid			types[10] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID,
		BYTEAOID, INT4OID, INT8OID, INT8OID, INT8OID};

		update_plan = CpPrepareKept("UPDATE " CP_CONVERSATIONS " "
									"SET title = $3, metadata = $4, deleted = $5, "
									"hash_state = $6, array_length = $7, "
									"array_bytes = $8, last_pos = $9 "
									"WHERE user_id OPERATOR(pg_catalog.=) $1 "
									"AND id OPERATOR(pg_catalog.=) $2 "
									"AND version OPERATOR(pg_catalog.=) $10 "
									"RETURNING version",
									10, types);
	}

	args[0] = UUIDPGetDatum(row->user_id);
	args[1] = PointerGetDatum(row->conversation_id);
	args[2] = PointerGetDatum(nc->title);
	args[3] = JsonbPGetDatum(nc->metadata);
	args[4] = BoolGetDatum(nc->deleted);
	args[5] = PointerGetDatum(nc->hash_state);
	args[6] = Int32GetDatum(nc->array_length);
	args[7] = Int64GetDatum(nc->array_bytes);
	args[8] = Int64GetDatum(last_pos);
	args[9] = Int64GetDatum(row->version);

	*version = CpVersionAfter(row->version, PointerGetDatum(row->conversation_id));
	if (execute_noted(update_plan, args, NULL, SPI_OK_UPDATE_RETURNING,
					  row->user_id, row->conversation_id, nc) != 1)
		return false;
	written = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	if (written != *version)
		elog(ERROR, "chatpersist: conversation version " INT64_FORMAT
			 " was written as " INT64_FORMAT, *version, written);
	return true;
}

/*
 * Can the given messages be appended to the locked conversation without
 * reading its array?  They can when none of their ids has a row (live,
 * tombstoned or removed) and the head's summary checks out (else it is
 * recomputed here, once, from the rows).
 */
bool
CpStorageCanAppend(CpStoredRow *row, CpMessageArray *given)
{
	Datum		args[3];
	CpSavedUser saved;
	bool		isnull;
	int			rc;

	if (probe_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, TEXTARRAYOID};

		/*
		 * One primary-key probe per given id, whatever the statistics say
		 * (with none yet, "id = ANY ($3)" can be planned as a scan of the
		 * whole conversation)
		 */
		probe_plan = CpPrepareKept("SELECT pg_catalog.count(*) "
								   "FROM pg_catalog.unnest($3) AS g (id) "
								   "CROSS JOIN LATERAL (SELECT FROM " CP_MESSAGES " m "
								   "WHERE m.user_id OPERATOR(pg_catalog.=) $1 "
								   "AND m.conversation_id OPERATOR(pg_catalog.=) $2 "
								   "AND m.id OPERATOR(pg_catalog.=) g.id LIMIT 1) AS found",
								   3, types);
	}

	args[0] = UUIDPGetDatum(row->user_id);
	args[1] = PointerGetDatum(row->conversation_id);
	args[2] = given_ids(given);

	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(probe_plan, args, NULL, false, 1);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: looking up the given message ids failed");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull)) == 0;
}

/*
 * The content of an append of given (new ids, see CpStorageCanAppend) to
 * the locked conversation: the checksum, count and summary continue the
 * head's, and nc->messages is the given array; CpStorageUpdate inserts its
 * rows after the last one.  The limits are checked on the resulting array.
 * When the head's summary does not check out, a locked head's is
 * recomputed from the rows; for an unlocked one, returns false.
 */
bool
CpStorageAppendContent(CpStoredRow *row, CpMessageArray *given, CpNewContent *nc,
					   bool locked)
{
	CpArrayHash *ah;
	int64		data_len;

	if (!summary_checks(row, &ah))
	{
		CpNewContent whole = {0};
		CpMessageArray stored;
		char		stored_checksum[CP_CHECKSUM_LEN + 1];

		/* the rows may be newer than an unlocked head: let the lock decide */
		if (!locked)
			return false;

		/*
		 * Rebuild the summary from the rows.  The checksum and count come
		 * from the rows too: a head restored (or loaded) with values that do
		 * not match its rows is put right by this write (even an append of
		 * nothing, whose checksum then differs from the stored one).
		 */
		CpParseMessages(CpStoredMessages(row), "the stored conversation", false, &stored);
		CpStorageSummary(row->messages, stored.nmsgs, &whole);
		row->hash_state = whole.hash_state;
		row->array_length = whole.array_length;
		row->array_bytes = whole.array_bytes;
		row->message_count = stored.nlive;
		strcpy(stored_checksum, row->checksum);
		CpChecksumJsonb(row->messages, row->checksum);
		if (!summary_checks(row, &ah))
			elog(ERROR, "chatpersist: the running hash of conversation \"%s\" does not continue its array",
				 text_to_cstring(row->conversation_id));

		/*
		 * the head keeps what it stored: a checksum that differs is a change
		 * to write
		 */
		strcpy(row->checksum, stored_checksum);
	}

	/*
	 * The array's size as one jsonb value: a header, one JEntry per element,
	 * then each element's container at the next 4-byte boundary
	 */
	data_len = row->array_bytes - VARHDRSZ - sizeof(uint32) -
		(int64) sizeof(JEntry) * row->array_length;
	for (int i = 0; i < given->nmsgs; i++)
	{
		CpMessage  *m = &given->msgs[i];

		CpArrayHashAdd(ah, m->obj, m->objlen, row->array_length + i == 0);
		data_len = INTALIGN(data_len) + m->objlen;
	}
	nc->array_length = row->array_length + given->nmsgs;
	nc->array_bytes = VARHDRSZ + sizeof(uint32) +
		(int64) sizeof(JEntry) * nc->array_length + data_len;
	CpCheckLimitsSize(nc->array_bytes, nc->array_length, "the resulting conversation");

	nc->append = true;
	nc->hash_state = CpArrayHashSave(ah);
	CpArrayHashDigest(ah, nc->checksum);
	nc->count = row->message_count + given->nlive;
	return true;
}

/*
 * Does the locked conversation already hold exactly the array of nc?  The
 * checksums and the lengths must match, then every message's id, hash and
 * order (no stored message is parsed).
 */
bool
CpStorageSameMessages(CpStoredRow *row, CpNewContent *nc)
{
	CpMessageArray arr;
	RowWrites	w;

	if (nc->append)
		return nc->array_length == row->array_length;
	if (strcmp(row->checksum, nc->checksum) != 0)
		return false;
	CpParseMessages(nc->messages, "the new conversation", false, &arr);
	plan_rows(row, &arr, row->version, &w);
	return w.n == 0 && w.nremove == 0;
}

/*
 * The array a device saw at version, as far as the stamps of the locked
 * conversation's rows tell it (for a merge whose base history no longer
 * holds; docs/merge.md, "Stamps"): in pos order, every message that was
 * there at version and whose copy is known, that is
 *	- a row not removed whose copy was written at or before version: its
 *	  copy is the one the device saw;
 *	- a row removed after version: its last copy (the one the device saw,
 *	  unless it was edited in between, which the retry memory covers).
 * A message changed after version, or new since, is left out: its base
 * copy is unknown, and the merge keeps both sides' copies of it.
 */
Jsonb *
CpStorageStampBase(CpStoredRow *row, int64 version)
{
	Datum		args[3] = {UUIDPGetDatum(row->user_id),
	PointerGetDatum(row->conversation_id), Int64GetDatum(version)};
	CpSavedUser saved;
	bool		isnull;
	Datum		d;
	int			rc;

	if (stamp_base_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};

		stamp_base_plan = CpPrepareKept("SELECT pg_catalog.jsonb_agg(message ORDER BY pos) "
										"FROM " CP_MESSAGES " "
										"WHERE user_id OPERATOR(pg_catalog.=) $1 "
										"AND conversation_id OPERATOR(pg_catalog.=) $2 "
										"AND added_version OPERATOR(pg_catalog.<=) $3 "
										"AND CASE WHEN removed "
										"THEN changed_version OPERATOR(pg_catalog.>) $3 "
										"ELSE changed_version OPERATOR(pg_catalog.<=) $3 END",
										3, types);
	}

	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(stamp_base_plan, args, NULL, false, 1);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatpersist: reading the conversation's message stamps failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")));
	return DatumGetJsonbP(d);
}

/*
 * Which of the given messages are replays?  A given copy is a replay when
 * its id has a row that already accepted that copy once and moved on: a
 * removed row whose last copy it is, or a row whose retry memory
 * (accepted) holds its hash while its current copy differs.  Sets
 * replay[i] for given message i and returns how many are replays.  A
 * replay changes nothing (CONTRACT.md, Merge: "A retry is harmless").
 */
int
CpStorageReplays(CpStoredRow *row, CpMessageArray *given, bool *replay)
{
	Datum		args[3];
	CpSavedUser saved;
	int			nreplay = 0;
	int			rc;

	if (memory_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, TEXTARRAYOID};

		/* one primary-key probe per given id, as CpStorageCanAppend's */
		memory_plan = CpPrepareKept("SELECT g.i, m.hash, m.removed, m.accepted "
									"FROM pg_catalog.unnest($3) WITH ORDINALITY AS g (id, i) "
									"CROSS JOIN LATERAL (SELECT hash, removed, accepted "
									"FROM " CP_MESSAGES " m "
									"WHERE m.user_id OPERATOR(pg_catalog.=) $1 "
									"AND m.conversation_id OPERATOR(pg_catalog.=) $2 "
									"AND m.id OPERATOR(pg_catalog.=) g.id) AS m "
									"WHERE m.removed OR m.accepted IS NOT NULL",
									3, types);
	}

	memset(replay, 0, sizeof(bool) * given->nmsgs);
	if (row->version == 0 || given->nmsgs == 0)
		return 0;
	args[0] = UUIDPGetDatum(row->user_id);
	args[1] = PointerGetDatum(row->conversation_id);
	args[2] = given_ids(given);

	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(memory_plan, args, NULL, false, 0);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the given messages' retry memory failed");

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			i = (int) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)) - 1;
		int64		current = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		bool		removed = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		Datum		acc = SPI_getbinval(tup, desc, 4, &isnull);
		CpMessage  *m = &given->msgs[i];
		int64		h = (int64) CpHashContainer(m->obj, m->objlen);

		if (h == current)
			replay[i] = removed;	/* the current copy itself is no change */
		else if (!isnull)
		{
			Datum	   *elems;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(acc), INT8OID, 8, FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE, &elems, NULL, &n);
			for (int k = 0; k < n && !replay[i]; k++)
				replay[i] = (DatumGetInt64(elems[k]) == h);
		}
		if (replay[i])
			nreplay++;
	}
	return nreplay;
}

/*
 * A plain DELETE of a conversation's head removes its message rows, after
 * keeping the copies that were current at version (its last) in history.
 * Called by the guard trigger, inside its own SPI connection.
 */
void
CpStorageRemoveAll(Oid owner, Datum user_id, Datum conversation_id, int64 version)
{
	Datum		args[3] = {user_id, conversation_id, Int64GetDatum(version)};
	Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};
	CpSavedUser saved;

	if (archive_all_plan == NULL)
		archive_all_plan = CpPrepareKept("INSERT INTO " CP_HISTORY_MESSAGES " "
										 "(user_id, conversation_id, id, valid_from, valid_to, pos, message) "
										 "SELECT user_id, conversation_id, id, changed_version, "
										 "CASE WHEN $3 OPERATOR(pg_catalog.<) 9223372036854775807 "
										 "THEN $3 OPERATOR(pg_catalog.+) 1 ELSE $3 END, pos, message "
										 "FROM " CP_MESSAGES " "
										 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
										 "AND conversation_id OPERATOR(pg_catalog.=) $2 "
										 "AND NOT removed",
										 3, types);
	if (delete_all_plan == NULL)
		delete_all_plan = CpPrepareKept("DELETE FROM " CP_MESSAGES " "
										"WHERE user_id OPERATOR(pg_catalog.=) $1 "
										"AND conversation_id OPERATOR(pg_catalog.=) $2",
										2, types);

	CpBecomeOwner(owner, &saved);
	CpNoteTrustMessages(true);
	if (cp_history_depth > 0 &&
		SPI_execute_plan(archive_all_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: archiving the conversation's messages failed");
	if (SPI_execute_plan(delete_all_plan, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "chatpersist: deleting the conversation's messages failed");
	CpNoteTrustMessages(false);
	CpRestoreUser(&saved);
}

/*
 * Compare the new array arr with the stored rows of row and plan the row
 * writes at version: new ids and changed copies are written; stored
 * messages keep their ordering keys where the array keeps their order, new
 * ones take keys between their neighbours; a reorder, or a gap too small,
 * renumbers the array.  Ids the array no longer has are removed.
 */
static void
plan_rows(CpStoredRow *row, CpMessageArray *arr, int64 version, RowWrites *w)
{
	HASHCTL		ctl;
	HTAB	   *stored;
	StoredKey **match = palloc0(sizeof(StoredKey *) * Max(arr->nmsgs, 1));
	uint64	   *hashes = palloc(sizeof(uint64) * Max(arr->nmsgs, 1));
	int64	   *newpos = palloc(sizeof(int64) * Max(arr->nmsgs, 1));
	bool		renumber = false;
	int64		prev = PG_INT64_MIN;
	int			nstored = 0;

	rows_alloc(w, arr->nmsgs);
	w->last_pos = row->last_pos;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CP_MAX_ID_BYTES + 1;
	ctl.entrysize = sizeof(StoredKey);
	ctl.hcxt = CurrentMemoryContext;
	stored = hash_create("chatpersist stored messages", Max(arr->nmsgs, 16), &ctl,
						 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* The stored rows' keys, if there may be any */
	if (row->version > 0)
	{
		Datum		args[2] = {UUIDPGetDatum(row->user_id), PointerGetDatum(row->conversation_id)};
		CpSavedUser saved;
		int			rc;

		if (keys_plan == NULL)
		{
			Oid			types[2] = {UUIDOID, TEXTOID};

			keys_plan = CpPrepareKept("SELECT id, pos, hash, removed FROM " CP_MESSAGES " "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									  "AND conversation_id OPERATOR(pg_catalog.=) $2",
									  2, types);
		}
		CpBecomeOwner(CpExtensionOwner(), &saved);
		rc = SPI_execute_plan(keys_plan, args, NULL, false, 0);
		CpRestoreUser(&saved);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "chatpersist: reading the conversation's message keys failed");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char		key[CP_MAX_ID_BYTES + 1];
			StoredKey  *sk;
			bool		isnull;
			bool		found;

			memset(key, 0, sizeof(key));
			text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull)),
								   key, sizeof(key));
			sk = hash_search(stored, key, HASH_ENTER, &found);
			sk->pos = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			sk->hash = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
			sk->removed = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
			sk->seen = false;
			if (!sk->removed)
				nstored++;
		}
	}

	/* Match the array's messages with the stored rows */
	for (int i = 0; i < arr->nmsgs; i++)
	{
		CpMessage  *m = &arr->msgs[i];
		char		key[CP_MAX_ID_BYTES + 1];
		StoredKey  *sk;

		memset(key, 0, sizeof(key));
		memcpy(key, m->id, m->idlen);
		hashes[i] = CpHashContainer(m->obj, m->objlen);
		sk = hash_search(stored, key, HASH_FIND, NULL);
		if (sk != NULL)
			sk->seen = true;
		if (sk != NULL && !sk->removed)
		{
			match[i] = sk;
			if (sk->pos <= prev)
				renumber = true;
			prev = sk->pos;
		}
	}

	/* Ordering keys: keep the stored ones, place the others between them */
	for (int i = 0; i < arr->nmsgs && !renumber;)
	{
		int			j = i;
		int64		lo,
					hi;

		if (match[i] != NULL)
		{
			newpos[i] = match[i]->pos;
			i++;
			continue;
		}
		while (j < arr->nmsgs && match[j] == NULL)
			j++;
		/* a run of i..j-1 to place */
		if (i == 0 && j == arr->nmsgs)
		{
			for (int k = i; k < j; k++)
				newpos[k] = (int64) (k + 1) * CP_POS_GAP;
		}
		else if (j == arr->nmsgs)
		{
			lo = newpos[i - 1];
			if (lo > PG_INT64_MAX / 2)
				renumber = true;
			for (int k = i; k < j && !renumber; k++)
				newpos[k] = lo + (int64) (k - i + 1) * CP_POS_GAP;
		}
		else if (i == 0)
		{
			hi = match[j]->pos;
			if (hi < PG_INT64_MIN / 2)
				renumber = true;
			for (int k = i; k < j && !renumber; k++)
				newpos[k] = hi - (int64) (j - k) * CP_POS_GAP;
		}
		else
		{
			int64		step;

			lo = newpos[i - 1];
			hi = match[j]->pos;
			step = (hi - lo) / (j - i + 1);
			if (step < 1)
				renumber = true;
			for (int k = i; k < j && !renumber; k++)
				newpos[k] = lo + (int64) (k - i + 1) * step;
		}
		i = j;
	}
	if (renumber)
		for (int i = 0; i < arr->nmsgs; i++)
			newpos[i] = (int64) (i + 1) * CP_POS_GAP;

	/* The rows to write */
	for (int i = 0; i < arr->nmsgs; i++)
	{
		CpMessage  *m = &arr->msgs[i];
		StoredKey  *sk = match[i];

		if (sk != NULL && sk->hash == (int64) hashes[i] && sk->pos == newpos[i])
			continue;			/* unchanged */
		if (sk != NULL)
			w->archive_ids[w->narchive++] = PointerGetDatum(cstring_to_text_with_len(m->id, m->idlen));
		rows_add(w, m, newpos[i], hashes[i]);
	}
	for (int i = 0; i < arr->nmsgs; i++)
		w->last_pos = Max(w->last_pos, newpos[i]);

	/* Stored messages the array no longer has */
	if (nstored > 0)
	{
		HASH_SEQ_STATUS seq;
		StoredKey  *sk;

		hash_seq_init(&seq, stored);
		while ((sk = hash_seq_search(&seq)) != NULL)
		{
			if (sk->removed || sk->seen)
				continue;
			if (w->nremove == 0)
				w->remove_ids = palloc(sizeof(Datum) * nstored);
			w->remove_ids[w->nremove++] = CStringGetTextDatum(sk->id);
			w->archive_ids = repalloc(w->archive_ids,
									  sizeof(Datum) * (w->narchive + 1));
			w->archive_ids[w->narchive++] = CStringGetTextDatum(sk->id);
		}
	}
	hash_destroy(stored);
}

/* Room for n row writes */
static void
rows_alloc(RowWrites *w, int n)
{
	memset(w, 0, sizeof(RowWrites));
	n = Max(n, 1);
	w->ids = palloc(sizeof(Datum) * n);
	w->pos = palloc(sizeof(Datum) * n);
	w->messages = palloc(sizeof(Datum) * n);
	w->hashes = palloc(sizeof(Datum) * n);
	w->archive_ids = palloc(sizeof(Datum) * n);
}

/* Write message m at pos */
static void
rows_add(RowWrites *w, CpMessage *m, int64 pos, uint64 hash)
{
	w->ids[w->n] = PointerGetDatum(cstring_to_text_with_len(m->id, m->idlen));
	w->pos[w->n] = Int64GetDatum(pos);
	w->messages[w->n] = message_datum(m);
	w->hashes[w->n] = Int64GetDatum((int64) hash);
	w->n++;
}

/*
 * Run the planned row writes as the tables' owner: keep the copies they
 * replace in history (when history keeps anything), write the new and
 * changed rows, flag the removed ones.
 */
static void
write_rows(Datum user_id, Datum conversation_id, int64 version, RowWrites *w,
		   bool only_new)
{
	CpSavedUser saved;
	SPIPlanPtr	plan;

	if (upsert_plan == NULL)
	{
		Oid			types[7] = {UUIDOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID,
		JSONBARRAYOID, INT8ARRAYOID, INT8OID};

		upsert_plan = CpPrepareKept("INSERT INTO " CP_MESSAGES " AS m "
									"(user_id, conversation_id, id, pos, message, hash, "
									"added_version, changed_version) "
									"SELECT $1, $2, u.id, u.pos, u.message, u.hash, $7, $7 "
									"FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), "
									"pg_catalog.unnest($5), pg_catalog.unnest($6)) "
									"AS u (id, pos, message, hash) "
									"ON CONFLICT (user_id, conversation_id, id) DO UPDATE "
									"SET pos = EXCLUDED.pos, message = EXCLUDED.message, "
									"hash = EXCLUDED.hash, "
									"changed_version = EXCLUDED.changed_version, "
									"removed = false",
									7, types);
	}
	if (insert_rows_plan == NULL)
	{
		Oid			types[7] = {UUIDOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID,
		JSONBARRAYOID, INT8ARRAYOID, INT8OID};

		insert_rows_plan = CpPrepareKept("INSERT INTO " CP_MESSAGES " "
										 "(user_id, conversation_id, id, pos, message, hash, "
										 "added_version, changed_version) "
										 "SELECT $1, $2, u.id, u.pos, u.message, u.hash, $7, $7 "
										 "FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), "
										 "pg_catalog.unnest($5), pg_catalog.unnest($6)) "
										 "AS u (id, pos, message, hash)",
										 7, types);
	}
	if (remove_plan == NULL)
	{
		Oid			types[4] = {UUIDOID, TEXTOID, TEXTARRAYOID, INT8OID};

		remove_plan = CpPrepareKept("UPDATE " CP_MESSAGES " "
									"SET removed = true, changed_version = $4 "
									"WHERE user_id OPERATOR(pg_catalog.=) $1 "
									"AND conversation_id OPERATOR(pg_catalog.=) $2 "
									"AND id OPERATOR(pg_catalog.=) ANY ($3)",
									4, types);
	}

	CpBecomeOwner(CpExtensionOwner(), &saved);
	CpNoteTrustMessages(true);
	if (w->narchive > 0 && cp_history_depth > 0)
		CpHistoryArchiveMessages(user_id, conversation_id,
								 text_array(w->archive_ids, w->narchive), version);
	if (w->n > 0)
	{
		Datum		args[7];
		ArrayType  *a;

		args[0] = user_id;
		args[1] = conversation_id;
		args[2] = text_array(w->ids, w->n);
		a = construct_array(w->pos, w->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		args[3] = PointerGetDatum(a);
		a = construct_array(w->messages, w->n, JSONBOID, -1, false, TYPALIGN_INT);
		args[4] = PointerGetDatum(a);
		a = construct_array(w->hashes, w->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		args[5] = PointerGetDatum(a);
		args[6] = Int64GetDatum(version);
		/* new ids only (appends, new conversations): no conflict to resolve */
		plan = only_new ? insert_rows_plan : upsert_plan;
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatpersist: writing the conversation's messages failed");
	}
	if (w->nremove > 0)
	{
		Datum		args[4] = {user_id, conversation_id,
		text_array(w->remove_ids, w->nremove), Int64GetDatum(version)};

		if (SPI_execute_plan(remove_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "chatpersist: removing the conversation's messages failed");
	}
	CpNoteTrustMessages(false);
	CpRestoreUser(&saved);
}

/* A message object of a parsed array as a jsonb value of its own */
static Datum
message_datum(CpMessage *m)
{
	Jsonb	   *jb = palloc(VARHDRSZ + m->objlen);

	SET_VARSIZE(jb, VARHDRSZ + m->objlen);
	memcpy(&jb->root, m->obj, m->objlen);
	return JsonbPGetDatum(jb);
}

/* A text[] of n texts */
static Datum
text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The ids of the given messages, as a text[] (the probes' argument) */
static Datum
given_ids(CpMessageArray *given)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(given->nmsgs, 1));

	for (int i = 0; i < given->nmsgs; i++)
		ids[i] = PointerGetDatum(cstring_to_text_with_len(given->msgs[i].id,
														  given->msgs[i].idlen));
	return text_array(ids, given->nmsgs);
}

/*
 * Does the head's summary continue its array?  Loads the running hash into
 * *ah when it does: its digest must be the stored checksum.
 */
static bool
summary_checks(CpStoredRow *row, CpArrayHash **ah)
{
	char		digest[CP_CHECKSUM_LEN + 1];

	if (row->hash_state == NULL || row->array_length < 0 || row->array_bytes < 0)
		return false;
	*ah = CpArrayHashLoad(row->hash_state);
	if (*ah == NULL)
		return false;
	CpArrayHashDigest(*ah, digest);
	return strcmp(digest, row->checksum) == 0;
}

/*
 * Run a write of the head: set the trusted-write note (note.c) for the row
 * it writes, execute the plan, withdraw the note (the trigger has taken it,
 * or did not fire because no row was written), and check the result code;
 * a row written while the note stayed untaken raises 55000.  Returns the
 * number of rows written; the RETURNING rows are in SPI_tuptable.
 */
static uint64
execute_noted(SPIPlanPtr plan, Datum *args, const char *nulls, int expected_rc,
			  pg_uuid_t *user_id, text *conversation_id, CpNewContent *nc)
{
	CpWriteNote note;
	int			rc;
	bool		untaken;

	memcpy(&note.user_id, user_id, sizeof(pg_uuid_t));
	note.conversation_id = VARDATA_ANY(conversation_id);
	note.conversation_id_len = VARSIZE_ANY_EXHDR(conversation_id);
	strlcpy(note.checksum, nc->checksum, sizeof(note.checksum));
	note.message_count = nc->count;
	note.replaced_by = nc->replaced_by;
	note.discarded = nc->discarded;
	note.optimistic = false;

	CpNoteSet(&note);
	rc = SPI_execute_plan(plan, args, nulls, false, 0);
	untaken = CpNoteWithdraw();
	if (rc != expected_rc)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));

	/*
	 * A row was written but no guard trigger took the note: the trigger did
	 * not run in this session, and the row lacks what it stamps (or, on
	 * Citus, it ran on a worker and took the write for a client's)
	 */
	if (SPI_processed > 0 && untaken)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chatpersist: the guard trigger of chatpersist.conversations did not run in this session"),
				 errdetail("The write of conversation \"%s\" was undone: the table's triggers are disabled (session_replication_role = replica, or ALTER TABLE ... DISABLE TRIGGER), or they fire in another session (on Citus, for a call that was not pushed down to the worker).",
						   text_to_cstring(conversation_id)),
				 errhint("Call the write functions with the triggers enabled; on Citus, as a statement of their own outside a transaction block (docs/citus.md).")));
	return SPI_processed;
}
