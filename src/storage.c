/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  How a conversation is stored: the statements that lock, insert and
 *	  update a conversation's row, apart from the decisions that save.c
 *	  makes about what to write.
 *
 * In 1.x a conversation is one row of chatpersist.conversations with its
 * whole message array; 2.0 replaces what is behind these functions with
 * one row per message (docs/design-2.0.md), and the decisions stay.
 *
 * Every write goes through the guard trigger (trigger.c).  Just before its
 * statement, each write sets the trusted-write note (note.c) describing the
 * row it hands to SPI, so that the trigger trusts the checksum and count
 * computed here instead of validating the messages again; the note is
 * cleared once the statement returned.
 *
 * Concurrency: CpStorageLock takes the row lock that serialises the writes
 * of one conversation (SELECT ... FOR UPDATE); CpStorageInsert inserts with
 * ON CONFLICT DO NOTHING, so a concurrent first write wins instead of
 * raising 23505; CpStorageFastForward is an UPDATE ... WHERE version =
 * expected, which under READ COMMITTED re-checks the newest row after
 * waiting for its lock.  Must be called inside SPI_connect; what they
 * return stays valid until SPI_finish.
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
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/* Plans prepared on first use and kept for the life of the backend */
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr forward_plan = NULL;

static uint64 execute_noted(SPIPlanPtr plan, Datum *args, const char *nulls,
							int expected_rc, pg_uuid_t *user_id,
							text *conversation_id, CpNewContent *nc,
							bool optimistic);

/*
 * Lock the conversation's row FOR UPDATE and read it into *row.  Returns
 * false if there is no such row.
 */
bool
CpStorageLock(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row)
{
	Datum		args[2] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int			rc;

	if (lock_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		lock_plan = CpPrepareKept("SELECT version, checksum, message_count, deleted, "
								  "title, metadata, messages "
								  "FROM " CP_CONVERSATIONS " "
								  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								  "AND id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
								  2, types);
	}

	rc = SPI_execute_plan(lock_plan, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	row->version = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
						   row->checksum, sizeof(row->checksum));
	row->message_count = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	row->deleted = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	row->title = DatumGetTextPP(SPI_getbinval(tup, desc, 5, &isnull));
	row->metadata = DatumGetJsonbP(SPI_getbinval(tup, desc, 6, &isnull));
	row->messages_datum = SPI_getbinval(tup, desc, 7, &isnull);
	row->messages = NULL;
	return true;
}

/* The stored messages of a locked row, detoasted on first use */
Jsonb *
CpStoredMessages(CpStoredRow *row)
{
	if (row->messages == NULL)
		row->messages = DatumGetJsonbP(row->messages_datum);
	return row->messages;
}

/*
 * INSERT ... ON CONFLICT DO NOTHING of a new conversation with the content
 * nc, dated created_at (NULL: now).  Returns true and the new version if a
 * row was inserted, false if another transaction's row is in the way.
 */
bool
CpStorageInsert(pg_uuid_t *user_id, text *conversation_id, CpNewContent *nc,
				const TimestampTz *created_at, int64 *version)
{
	Datum		args[6] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id),
		PointerGetDatum(nc->title), JsonbPGetDatum(nc->messages),
	JsonbPGetDatum(nc->metadata), created_at ? TimestampTzGetDatum(*created_at) : (Datum) 0};
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', created_at ? ' ' : 'n'};
	bool		isnull;

	if (insert_plan == NULL)
	{
		Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TIMESTAMPTZOID};

		insert_plan = CpPrepareKept("INSERT INTO " CP_CONVERSATIONS " "
									"(user_id, id, title, messages, metadata, created_at) "
									"VALUES ($1, $2, $3, $4, $5, "
									"COALESCE($6, pg_catalog.now())) "
									"ON CONFLICT (user_id, id) DO NOTHING "
									"RETURNING version",
									6, types);
	}

	if (execute_noted(insert_plan, args, nulls, SPI_OK_INSERT_RETURNING,
					  user_id, conversation_id, nc, false) == 0)
		return false;
	*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

/*
 * Write the content nc into the locked row; the trigger bumps the version
 * and archives the replaced content.  Returns the new version.
 */
int64
CpStorageUpdate(pg_uuid_t *user_id, text *conversation_id, CpNewContent *nc)
{
	Datum		args[6] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id),
		PointerGetDatum(nc->title), JsonbPGetDatum(nc->messages),
	JsonbPGetDatum(nc->metadata), BoolGetDatum(nc->deleted)};
	bool		isnull;

	if (update_plan == NULL)
	{
		Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, BOOLOID};

		update_plan = CpPrepareKept("UPDATE " CP_CONVERSATIONS " "
									"SET title = $3, messages = $4, metadata = $5, "
									"deleted = $6 "
									"WHERE user_id OPERATOR(pg_catalog.=) $1 "
									"AND id OPERATOR(pg_catalog.=) $2 "
									"RETURNING version",
									6, types);
	}

	if (execute_noted(update_plan, args, NULL, SPI_OK_UPDATE_RETURNING,
					  user_id, conversation_id, nc, false) != 1)
		elog(ERROR, "chatpersist: locked conversation row vanished during the write");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The fast-forward write: replace the messages (and the title and metadata
 * where given) of the live row whose version is expected, in one UPDATE
 * that does not read the row first.  The note says nobody compared the
 * content, so the trigger skips the row when nothing changed (a retry).
 * Returns false, having written nothing, when no row was updated; else true
 * with the new version, and nc's checksum and count as stored.
 */
bool
CpStorageFastForward(pg_uuid_t *user_id, text *conversation_id, text *title,
					 Jsonb *metadata, int64 expected, CpNewContent *nc,
					 int64 *version)
{
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	if (forward_plan == NULL)
	{
		Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, INT8OID};

		forward_plan = CpPrepareKept("UPDATE " CP_CONVERSATIONS " "
									 "SET title = COALESCE($3, title), messages = $4, "
									 "metadata = COALESCE($5, metadata) "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									 "AND id OPERATOR(pg_catalog.=) $2 "
									 "AND version OPERATOR(pg_catalog.=) $6 AND NOT deleted "
									 "RETURNING version, checksum, message_count",
									 6, types);
	}

	args[0] = UUIDPGetDatum(user_id);
	args[1] = PointerGetDatum(conversation_id);
	args[2] = title ? PointerGetDatum(title) : (Datum) 0;
	nulls[2] = title ? ' ' : 'n';
	args[3] = JsonbPGetDatum(nc->messages);
	args[4] = metadata ? JsonbPGetDatum(metadata) : (Datum) 0;
	nulls[4] = metadata ? ' ' : 'n';
	args[5] = Int64GetDatum(expected);

	if (execute_noted(forward_plan, args, nulls, SPI_OK_UPDATE_RETURNING,
					  user_id, conversation_id, nc, true) == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*version = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	text_to_cstring_buffer(DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
						   nc->checksum, sizeof(nc->checksum));
	nc->count = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	return true;
}

/*
 * Run one of the writes of this file: set the trusted-write note (note.c)
 * for the row it writes, execute the plan, clear the note (the trigger has
 * taken it, or did not fire because no row was written), and check the
 * result code.  optimistic: the write did not compare with the stored row
 * (CpStorageFastForward), so the trigger decides whether anything changed.
 * Returns the number of rows written; the RETURNING rows are in
 * SPI_tuptable.
 */
static uint64
execute_noted(SPIPlanPtr plan, Datum *args, const char *nulls, int expected_rc,
			  pg_uuid_t *user_id, text *conversation_id, CpNewContent *nc,
			  bool optimistic)
{
	CpWriteNote note;
	int			rc;

	memcpy(&note.user_id, user_id, sizeof(pg_uuid_t));
	note.conversation_id = VARDATA_ANY(conversation_id);
	note.conversation_id_len = VARSIZE_ANY_EXHDR(conversation_id);
	note.messages = nc->messages;
	strlcpy(note.checksum, nc->checksum, sizeof(note.checksum));
	note.message_count = nc->count;
	note.replaced_by = nc->replaced_by;
	note.discarded = nc->discarded;
	note.optimistic = optimistic;

	CpNoteSet(&note);
	rc = SPI_execute_plan(plan, args, nulls, false, 0);
	CpNoteClear();
	if (rc != expected_rc)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}
