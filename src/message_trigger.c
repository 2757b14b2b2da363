/*-------------------------------------------------------------------------
 *
 * message_trigger.c
 *	  The guard trigger on chatpersist.messages: direct SQL on message rows
 *	  (an INSERT, UPDATE or DELETE by a client, an ORM, a PostgREST table
 *	  call) is a write to the row's conversation.
 *
 * messages_guard: BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW.  Rows that
 * storage.c writes itself (CpMessageWriteTrusted) and rows a restore
 * replays pass as they are.  Any other row is folded into a new version of
 * its conversation, one version per row (a statement that writes n rows
 * of one conversation makes n versions):
 *	- the message is validated as an element of an array (22023), and its
 *	  id column must be the object's "id" (or NULL, then it is taken from
 *	  the object);
 *	- the conversation's head is locked with the caller's rights (its
 *	  row-level security applies; no head: 23503);
 *	- the conversation's new array (the rows, with this one inserted,
 *	  replaced or left out) is checked against the limits (54000) and
 *	  checksummed; the head is written through its own guard trigger, which
 *	  bumps the version and archives the replaced head; the replaced copy
 *	  goes to history;
 *	- hash, added_version and changed_version are computed, never taken
 *	  from the writer; pos is the writer's, or after the last message when
 *	  NULL.
 * A DELETE forgets the message (no row remains to stop a stale device from
 * saving it back); setting removed = true removes it from the array and
 * keeps the row, as the functions do.  Each row costs a read of its
 * conversation's rows: direct SQL is for tools and migrations, the
 * functions for the hot path.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/message_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/* Attribute numbers of the columns of chatpersist.messages */
typedef struct MessageColumns
{
	int			user_id;
	int			conversation_id;
	int			id;
	int			pos;
	int			message;
	int			hash;
	int			added_version;
	int			changed_version;
	int			removed;
	int			accepted;
} MessageColumns;

static SPIPlanPtr fold_plan = NULL;

static void lookup_columns(TupleDesc desc, MessageColumns *cols);
static bool is_restore(Relation rel, HeapTuple tup, MessageColumns *cols);
static Jsonb *checked_message(HeapTuple tup, TupleDesc desc, MessageColumns *cols,
							  text **id);
static void refuse_key_change(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
							  MessageColumns *cols);
static int64 fold(HeapTuple tup, TupleDesc desc, MessageColumns *cols,
				  text *id, bool include, bool has_pos, int64 *pos, Jsonb *message,
				  bool archive_old, int64 *last_pos);
static bool same_bytes(Datum a, Datum b);
static HeapTuple remember_copy(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
							   MessageColumns *cols);
static bool id_has_row(HeapTuple tup, TupleDesc desc, MessageColumns *cols, text *id);
static void refuse_taken_pos(pg_uuid_t *user_id, text *conversation_id, text *id,
							 int64 pos);

static SPIPlanPtr taken_plan = NULL;

static SPIPlanPtr exists_plan = NULL;

/*
 * messages_guard() RETURNS trigger
 */
PG_FUNCTION_INFO_V1(chatpersist_messages_guard);
Datum
chatpersist_messages_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	MessageColumns cols;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	int			attnums[7];
	Datum		values[7];
	bool		nulls[7] = {false};
	bool		isnull;
	text	   *id;
	Jsonb	   *message;
	int64		version;
	int64		pos;
	int64		last_pos;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("messages_guard: must be fired BEFORE, FOR EACH ROW")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;

	if (CpMessageWriteTrusted())
	{
		if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			return PointerGetDatum(oldtup);
		lookup_columns(desc, &cols);
		return PointerGetDatum(remember_copy(oldtup, newtup, desc, &cols));
	}

	lookup_columns(desc, &cols);

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		/*
		 * A removed row is no part of the array: forgetting it changes
		 * nothing
		 */
		if (!DatumGetBool(heap_getattr(oldtup, cols.removed, desc, &isnull)))
		{
			pos = 0;
			(void) fold(oldtup, desc, &cols,
						DatumGetTextPP(heap_getattr(oldtup, cols.id, desc, &isnull)),
						false, true, &pos, NULL, true, &last_pos);
		}
		return PointerGetDatum(oldtup);
	}

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtup = oldtup;		/* tg_trigtuple is the new row */
		if (is_restore(rel, newtup, &cols))
			return PointerGetDatum(newtup);

		message = checked_message(newtup, desc, &cols, &id);

		/*
		 * The id has a row already: fold nothing here.  A plain INSERT then
		 * fails on the primary key (23505), ON CONFLICT DO NOTHING skips the
		 * row, and ON CONFLICT DO UPDATE comes back as an UPDATE.  The
		 * computed columns get placeholders, for the NOT NULL checks that
		 * come before the conflict check.
		 */
		if (id_has_row(newtup, desc, &cols, id))
		{
			Datum		d = heap_getattr(newtup, cols.pos, desc, &isnull);

			attnums[0] = cols.added_version;
			values[0] = Int64GetDatum(0);
			attnums[1] = cols.changed_version;
			values[1] = Int64GetDatum(0);
			attnums[2] = cols.hash;
			values[2] = Int64GetDatum(0);
			attnums[3] = cols.removed;
			values[3] = BoolGetDatum(false);
			attnums[4] = cols.pos;
			values[4] = isnull ? Int64GetDatum(0) : d;
			attnums[5] = cols.id;
			values[5] = PointerGetDatum(id);
			attnums[6] = cols.accepted;
			nulls[6] = true;
			return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 7, attnums,
															 values, nulls));
		}
		{
			Datum		d = heap_getattr(newtup, cols.pos, desc, &isnull);

			pos = isnull ? 0 : DatumGetInt64(d);
			version = fold(newtup, desc, &cols, id, true, !isnull, &pos, message,
						   false, &last_pos);
		}
		attnums[0] = cols.added_version;
		values[0] = Int64GetDatum(version);
	}
	else
	{
		bool		was_removed = DatumGetBool(heap_getattr(oldtup, cols.removed, desc, &isnull));
		Datum		d = heap_getattr(newtup, cols.removed, desc, &isnull);
		bool		new_removed = !isnull && DatumGetBool(d);
		bool		remove = new_removed && !was_removed;
		int64		old_pos = DatumGetInt64(heap_getattr(oldtup, cols.pos, desc, &isnull));

		refuse_key_change(oldtup, newtup, desc, &cols);

		/* A removed row that stays removed is no part of the array */
		if (was_removed && new_removed)
			return PointerGetDatum(oldtup);

		message = checked_message(newtup, desc, &cols, &id);
		d = heap_getattr(newtup, cols.pos, desc, &isnull);
		pos = isnull ? old_pos : DatumGetInt64(d);

		/* No change of the message, its place or its presence: keep the row */
		if (!new_removed && !was_removed && pos == old_pos &&
			same_bytes(heap_getattr(oldtup, cols.message, desc, &isnull),
					   JsonbPGetDatum(message)))
		{
			int			keep[] = {cols.hash, cols.added_version, cols.changed_version,
			cols.removed};

			for (int i = 0; i < 4; i++)
			{
				attnums[i] = keep[i];
				values[i] = heap_getattr(oldtup, keep[i], desc, &nulls[i]);
			}
			attnums[4] = cols.message;
			values[4] = JsonbPGetDatum(message);
			return PointerGetDatum(remember_copy(oldtup,
												 heap_modify_tuple_by_cols(newtup, desc, 5, attnums,
																		   values, nulls),
												 desc, &cols));
		}

		version = fold(newtup, desc, &cols, id, !new_removed, true, &pos, message,
					   !was_removed, &last_pos);
		attnums[0] = cols.added_version;
		values[0] = heap_getattr(oldtup, cols.added_version, desc, &nulls[0]);
		if (remove)
		{
			/* keep the removed row as it was, flagged */
			message = DatumGetJsonbP(heap_getattr(oldtup, cols.message, desc, &isnull));
			pos = DatumGetInt64(heap_getattr(oldtup, cols.pos, desc, &isnull));
		}
		nulls[1] = false;
		attnums[1] = cols.removed;
		values[1] = BoolGetDatum(remove);
		attnums[2] = cols.changed_version;
		values[2] = Int64GetDatum(version);
		attnums[3] = cols.hash;
		values[3] = Int64GetDatum((int64) CpHashContainer(&message->root,
														  VARSIZE(message) - VARHDRSZ));
		attnums[4] = cols.pos;
		values[4] = Int64GetDatum(pos);
		attnums[5] = cols.message;
		values[5] = JsonbPGetDatum(message);
		nulls[2] = nulls[3] = nulls[4] = nulls[5] = false;
		return PointerGetDatum(remember_copy(oldtup,
											 heap_modify_tuple_by_cols(newtup, desc, 6, attnums,
																	   values, nulls),
											 desc, &cols));
	}

	/* INSERT: the computed columns */
	attnums[1] = cols.changed_version;
	values[1] = Int64GetDatum(version);
	attnums[2] = cols.hash;
	values[2] = Int64GetDatum((int64) CpHashContainer(&message->root,
													  VARSIZE(message) - VARHDRSZ));
	attnums[3] = cols.removed;
	values[3] = BoolGetDatum(false);
	attnums[4] = cols.pos;
	values[4] = Int64GetDatum(pos);
	attnums[5] = cols.id;
	values[5] = PointerGetDatum(id);
	attnums[6] = cols.accepted;
	nulls[6] = true;
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 7, attnums,
													 values, nulls));
}

/*
 * The retry memory of an updated row (accepted): when the update replaces
 * the copy (its hash changes), the replaced copy's hash joins the copies
 * accepted before it, of which the first and the last ones are kept
 * (CP_ACCEPTED_KEPT in all); else the memory stays as it was.  Never what
 * the writer set.  A replay of any of them changes nothing (save.c).
 */
static HeapTuple
remember_copy(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
			  MessageColumns *cols)
{
	bool		isnull;
	bool		acc_null;
	int64		old_hash = DatumGetInt64(heap_getattr(oldtup, cols->hash, desc, &isnull));
	int64		new_hash = DatumGetInt64(heap_getattr(newtup, cols->hash, desc, &isnull));
	Datum		acc = heap_getattr(oldtup, cols->accepted, desc, &acc_null);
	int			attnum = cols->accepted;

	if (old_hash == new_hash)
	{
		bool		was_null;
		Datum		was = heap_getattr(newtup, cols->accepted, desc, &was_null);

		/* the writer left the memory alone (as storage.c's writes do) */
		if (was_null == acc_null && (acc_null || same_bytes(was, acc)))
			return newtup;
	}
	else
	{
		Datum	   *elems = NULL;
		int			n = 0;
		Datum	   *kept;
		int			nkept = 0;
		bool		known = false;

		if (!acc_null)
			deconstruct_array(DatumGetArrayTypeP(acc), INT8OID, 8, FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE, &elems, NULL, &n);
		for (int i = 0; i < n && !known; i++)
			known = (DatumGetInt64(elems[i]) == old_hash);
		if (!known)
		{
			kept = palloc(sizeof(Datum) * (n + 1));
			for (int i = 0; i < n; i++)
			{
				/* the first copy, then the newest ones */
				if (i == 0 || i > n - CP_ACCEPTED_KEPT + 1)
					kept[nkept++] = elems[i];
			}
			kept[nkept++] = Int64GetDatum(old_hash);
			acc = PointerGetDatum(construct_array(kept, nkept, INT8OID, 8,
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			acc_null = false;
		}
	}
	return heap_modify_tuple_by_cols(newtup, desc, 1, &attnum, &acc, &acc_null);
}

/* Find the columns by name, so the trigger follows the table's shape */
static void
lookup_columns(TupleDesc desc, MessageColumns *cols)
{
	static const char *const names[] = {
		"user_id", "conversation_id", "id", "pos", "message", "hash",
		"added_version", "changed_version", "removed", "accepted"
	};
	int		   *slots[] = {
		&cols->user_id, &cols->conversation_id, &cols->id, &cols->pos,
		&cols->message, &cols->hash, &cols->added_version,
		&cols->changed_version, &cols->removed, &cols->accepted
	};

	for (size_t i = 0; i < lengthof(names); i++)
	{
		*slots[i] = SPI_fnumber(desc, names[i]);
		if (*slots[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("messages_guard: table has no column \"%s\"", names[i])));
	}
}

/*
 * Is this INSERT a restore?  As for a conversation's head (trigger.c): the
 * inserting role has the table owner's privileges, and the row carries its
 * own ordering key, stamps and a hash equal to its message's, as a dumped
 * row does.  A client role can never set stamps.
 */
static bool
is_restore(Relation rel, HeapTuple tup, MessageColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			given[] = {cols->pos, cols->added_version, cols->changed_version};
	bool		isnull;
	Datum		d;
	Jsonb	   *message;

	for (size_t i = 0; i < lengthof(given); i++)
	{
		(void) heap_getattr(tup, given[i], desc, &isnull);
		if (isnull)
			return false;
	}
	if (!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		return false;
	d = heap_getattr(tup, cols->hash, desc, &isnull);
	if (isnull)
		return false;
	message = DatumGetJsonbP(heap_getattr(tup, cols->message, desc, &isnull));
	if (isnull || !JB_ROOT_IS_OBJECT(message))
		return false;
	return DatumGetInt64(d) ==
		(int64) CpHashContainer(&message->root, VARSIZE(message) - VARHDRSZ);
}

/*
 * The row's message, validated as an element of an array (a JSON object
 * with a valid "id"), and its id: the id column when set, which must be
 * the object's, else the object's.
 */
static Jsonb *
checked_message(HeapTuple tup, TupleDesc desc, MessageColumns *cols, text **id)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, cols->message, desc, &isnull);
	Jsonb	   *message;
	Jsonb	   *array;
	JsonbValue	elem;
	JsonbParseState *state = NULL;
	CpMessageArray arr;
	text	   *given;

	if (isnull)
		CpReject((errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				  errmsg("the message of a message row must not be NULL")));
	message = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(message))
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("the message of a message row is not a JSON object"),
				  errhint("Each message is an object with a string \"id\".")));

	/* validate it as the functions validate an array's element */
	elem.type = jbvBinary;
	elem.val.binary.data = &message->root;
	elem.val.binary.len = VARSIZE(message) - VARHDRSZ;
	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	(void) pushJsonbValue(&state, WJB_ELEM, &elem);
	array = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
	CpParseMessages(array, "the message row", false, &arr);

	*id = cstring_to_text_with_len(arr.msgs[0].id, arr.msgs[0].idlen);
	d = heap_getattr(tup, cols->id, desc, &isnull);
	if (!isnull)
	{
		given = DatumGetTextPP(d);
		if (VARSIZE_ANY_EXHDR(given) != VARSIZE_ANY_EXHDR(*id) ||
			memcmp(VARDATA_ANY(given), VARDATA_ANY(*id), VARSIZE_ANY_EXHDR(*id)) != 0)
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("the id of a message row must be its message's \"id\""),
					  errdetail("The row's id is \"%s\"; the message's is \"%s\".",
								text_to_cstring(given), text_to_cstring(*id)),
					  errhint("Leave the id column out (it is taken from the message), or set both alike.")));
	}
	return message;
}

/* UPDATE: a message row stays with its conversation and its id */
static void
refuse_key_change(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
				  MessageColumns *cols)
{
	int			keys[] = {cols->user_id, cols->conversation_id, cols->id};

	for (size_t i = 0; i < lengthof(keys); i++)
	{
		bool		onull,
					nnull;
		Datum		od = heap_getattr(oldtup, keys[i], desc, &onull);
		Datum		nd = heap_getattr(newtup, keys[i], desc, &nnull);

		if (nnull || (keys[i] == cols->user_id ?
					  memcmp(DatumGetPointer(od), DatumGetPointer(nd), UUID_LEN) != 0 :
					  !same_bytes(od, nd)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the user_id, conversation_id or id of a message"),
					 errhint("Insert the message under its new key, then delete the old row.")));
	}
}

/*
 * Fold a write of message id into a new version of its conversation: lock
 * the head (the caller's rights), build the new array from the rows with
 * the message at *pos (include; without has_pos: after the last one, and
 * *pos is set) or without it,
 * keep the replaced copy in history (archive_old), and write the head.
 * Returns the new version, and the ordering key after the last message in
 * *last_pos.
 */
static int64
fold(HeapTuple tup, TupleDesc desc, MessageColumns *cols, text *id,
	 bool include, bool has_pos, int64 *pos, Jsonb *message, bool archive_old,
	 int64 *last_pos)
{
	bool		isnull;
	pg_uuid_t  *user_id;
	text	   *conversation_id;
	CpStoredRow row;
	CpNewContent nc = {0};
	CpMessageArray arr;
	CpSavedUser saved;
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Datum		d;
	int64		version;

	d = heap_getattr(tup, cols->user_id, desc, &isnull);
	if (isnull)
		CpReject((errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				  errmsg("the user_id of a message row must not be NULL")));
	user_id = DatumGetUUIDP(d);
	d = heap_getattr(tup, cols->conversation_id, desc, &isnull);
	if (isnull)
		CpReject((errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				  errmsg("the conversation_id of a message row must not be NULL")));
	conversation_id = DatumGetTextPP(d);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (!CpStorageLock(user_id, conversation_id, &row))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("conversation \"%s\" does not exist",
						text_to_cstring(conversation_id)),
				 errhint("Create the conversation first (chatpersist.save_conversation, or an INSERT into chatpersist.conversations), or add messages with chatpersist.append_messages.")));
	if (row.deleted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("conversation \"%s\" is deleted", text_to_cstring(conversation_id)),
				 errhint("Save the conversation again to revive it, or use chatpersist.append_messages.")));

	if (include && !has_pos)
		*pos = row.last_pos + CP_POS_GAP;
	*last_pos = include ? Max(row.last_pos, *pos) : row.last_pos;
	if (include)
		refuse_taken_pos(row.user_id, row.conversation_id, id, *pos);

	if (fold_plan == NULL)
	{
		Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, BOOLOID};

		fold_plan = CpPrepareKept("SELECT pg_catalog.jsonb_agg(message ORDER BY pos, id) FROM ("
								  "SELECT message, pos, id FROM " CP_MESSAGES " "
								  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								  "AND conversation_id OPERATOR(pg_catalog.=) $2 "
								  "AND id OPERATOR(pg_catalog.<>) $3 "
								  "AND NOT removed "
								  "UNION ALL SELECT $5, $4, $3 WHERE $6) AS a",
								  6, types);
	}
	args[0] = UUIDPGetDatum(user_id);
	args[1] = PointerGetDatum(conversation_id);
	args[2] = PointerGetDatum(id);
	args[3] = Int64GetDatum(*pos);
	args[4] = message ? JsonbPGetDatum(message) : (Datum) 0;
	nulls[4] = message ? ' ' : 'n';
	args[5] = BoolGetDatum(include);

	CpBecomeOwner(CpExtensionOwner(), &saved);
	if (SPI_execute_plan(fold_plan, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation's messages failed");
	CpRestoreUser(&saved);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	nc.messages = isnull ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]"))) :
		DatumGetJsonbP(d);

	CpParseMessages(nc.messages, "the conversation", true, &arr);
	nc.title = row.title;
	nc.metadata = row.metadata;
	nc.deleted = false;
	nc.count = arr.nlive;
	nc.status = CP_STATUS_UPDATED;
	nc.replaced_by = CP_STATUS_DIRECT;
	CpChecksumJsonb(nc.messages, nc.checksum);
	CpStorageSummary(nc.messages, arr.nmsgs, &nc);

	version = CpVersionAfter(row.version, PointerGetDatum(conversation_id));
	if (archive_old && cp_history_depth > 0)
	{
		Datum		ids = PointerGetDatum(construct_array(&args[2], 1, TEXTOID, -1, false,
														  TYPALIGN_INT));

		CpBecomeOwner(CpExtensionOwner(), &saved);
		CpHistoryArchiveMessages(args[0], args[1], ids, version);
		CpRestoreUser(&saved);
	}
	if (!CpStorageWriteHead(&row, &nc, *last_pos, &version))
		elog(ERROR, "chatpersist: locked conversation row vanished during the write");

	SPI_finish();
	return version;
}

/*
 * Does message id of the row's conversation have a row (any: live,
 * tombstoned or removed) that the caller can see?  Read with the caller's
 * rights, so that row-level security hides another user's rows (the
 * answer must not tell whether they exist).
 */
static bool
id_has_row(HeapTuple tup, TupleDesc desc, MessageColumns *cols, text *id)
{
	bool		unull,
				cnull;
	Datum		args[3];
	bool		found;

	args[0] = heap_getattr(tup, cols->user_id, desc, &unull);
	args[1] = heap_getattr(tup, cols->conversation_id, desc, &cnull);
	args[2] = PointerGetDatum(id);
	if (unull || cnull)
		return false;			/* fold reports it */

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (exists_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};

		exists_plan = CpPrepareKept("SELECT FROM " CP_MESSAGES " "
									"WHERE user_id OPERATOR(pg_catalog.=) $1 "
									"AND conversation_id OPERATOR(pg_catalog.=) $2 "
									"AND id OPERATOR(pg_catalog.=) $3",
									3, types);
	}
	if (SPI_execute_plan(exists_plan, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: looking up a message id failed");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * Two messages of an array never share an ordering key (the array's order
 * would be undefined): 23505 when another message of the conversation that
 * is part of the array has pos.  Read as the owner, under the head's lock.
 */
static void
refuse_taken_pos(pg_uuid_t *user_id, text *conversation_id, text *id, int64 pos)
{
	Datum		args[4] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id),
	PointerGetDatum(id), Int64GetDatum(pos)};
	CpSavedUser saved;
	int			rc;

	if (taken_plan == NULL)
	{
		Oid			types[4] = {UUIDOID, TEXTOID, TEXTOID, INT8OID};

		taken_plan = CpPrepareKept("SELECT id FROM " CP_MESSAGES " "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								   "AND conversation_id OPERATOR(pg_catalog.=) $2 "
								   "AND id OPERATOR(pg_catalog.<>) $3 "
								   "AND pos OPERATOR(pg_catalog.=) $4 AND NOT removed",
								   4, types);
	}
	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(taken_plan, args, NULL, false, 1);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: looking up an ordering key failed");
	if (SPI_processed > 0)
	{
		bool		isnull;

		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("message \"%s\" cannot take ordering key " INT64_FORMAT " of conversation \"%s\"",
						text_to_cstring(id), pos, text_to_cstring(conversation_id)),
				 errdetail("Message \"%s\" has that ordering key.",
						   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull))),
				 errhint("Set pos to a free value (between its neighbours' keys), or leave it out to place the message last.")));
	}
}

/* Are two varlena datums the same bytes (detoasted)? */
static bool
same_bytes(Datum a, Datum b)
{
	struct varlena *va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(a));
	struct varlena *vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(b));

	return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
		memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
}
