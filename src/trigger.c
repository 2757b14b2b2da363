/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The guard trigger on chatpersist.conversations, and the notify trigger.
 *
 * conversations_guard: BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW.  It
 * gives every writer, the save functions and hand-written SQL alike, the
 * same guarantees:
 *	- the messages, metadata and conversation id are validated (22023,
 *	  54000 over the limits);
 *	- checksum, message_count, last_modified, version and change_xid are
 *	  computed here, never taken from the writer; created_at is kept on
 *	  UPDATE.  The one exception is a restore (see is_restore): the table
 *	  owner replaying a dumped row keeps its version and timestamps;
 *	- an UPDATE that sets version to anything but the stored value or the
 *	  stored value plus one (ORMs' optimistic locking) fails with 40001, so
 *	  a stale direct write cannot replace newer content;
 *	- an UPDATE that changes content archives the replaced content into
 *	  chatpersist.history and prunes history beyond
 *	  chatpersist.history_depth, in the same transaction; so does a DELETE,
 *	  which keeps a removed conversation restorable and lets a new row
 *	  under the same key continue its version numbers (its version floor).
 * Each event is a short list of named steps (guard_insert, guard_update,
 * guard_delete); the statements on history and the floors are history.c's,
 * and the trusted-write note that spares the save functions' rows a second
 * validation is note.c's.
 *
 * Concurrency: a BEFORE UPDATE row trigger runs with the row locked by the
 * updating transaction, and on the newest row version (READ COMMITTED
 * re-checks a row that changed while it waited), so OLD.version is the
 * committed current version and the version check is race-free.  An INSERT
 * chooses its version holding the key's floor row lock, which a DELETE of
 * the key also takes (CpHistoryNextVersion).
 *
 * A second trigger, conversations_notify (AFTER, FOR EACH ROW, only when
 * chatpersist.notify is on), sends NOTIFY chatpersist_changes for every row
 * actually written.  It is an AFTER trigger because a BEFORE INSERT trigger
 * also fires for a row that INSERT ... ON CONFLICT DO NOTHING then skips;
 * NOTIFY itself is transactional, so nothing is sent for work that rolls
 * back.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

#include "chatpersist.h"
#include "pginternals.h"

/* Attribute numbers of the columns the trigger reads or computes */
typedef struct GuardColumns
{
	int			user_id;
	int			id;
	int			title;
	int			metadata;
	int			version;
	int			checksum;
	int			message_count;
	int			created_at;
	int			last_modified;
	int			deleted;
	int			change_xid;
	int			hash_state;
	int			array_length;
	int			array_bytes;
	int			last_pos;
} GuardColumns;

/* What an UPDATE changes, as what_changed finds it */
typedef struct UpdateChange
{
	bool		changed;		/* anything history would record */
} UpdateChange;

/* The computed columns a trigger sets: at most this many at once */
#define MAX_COMPUTED	10

static void lookup_columns(TupleDesc desc, GuardColumns *cols);
static HeapTuple guard_insert(Relation rel, HeapTuple newtup, GuardColumns *cols);
static HeapTuple guard_update(Relation rel, HeapTuple oldtup, HeapTuple newtup,
							  GuardColumns *cols);
static HeapTuple guard_delete(Relation rel, HeapTuple oldtup, GuardColumns *cols);
static void check_insert_input(HeapTuple newtup, TupleDesc desc, GuardColumns *cols);
static bool is_restore(Relation rel, HeapTuple newtup, GuardColumns *cols,
					   Datum user_id, Datum id);
static void refuse_key_change(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
							  GuardColumns *cols);
static bool check_version(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
						  GuardColumns *cols);
static UpdateChange what_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
								 GuardColumns *cols, const CpWriteNote *note);
static HeapTuple keep_computed_columns(HeapTuple oldtup, HeapTuple newtup,
									   TupleDesc desc, GuardColumns *cols);
static void archive_row(Relation rel, HeapTuple oldtup, GuardColumns *cols,
						CpStatus replaced_by, Jsonb *discarded);
static int	set_summary(HeapTuple from, TupleDesc desc, GuardColumns *cols,
						int *attnums, Datum *values, bool *nulls, int n);
static bool same_varlena(Datum a, Datum b);
static void notify_change(HeapTuple tup, TupleDesc desc, GuardColumns *cols,
						  bool deleted);

/*
 * conversations_guard() RETURNS trigger
 *
 * Checks how it was fired (BEFORE, ROW, INSERT, UPDATE or DELETE), then
 * returns the row to store with its computed columns (or, for DELETE, the
 * row to delete, once archived).
 */
PG_FUNCTION_INFO_V1(chatpersist_conversations_guard);
Datum
chatpersist_conversations_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	GuardColumns cols;
	HeapTuple	result = NULL;	/* every other path raises an ERROR */

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_guard: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_guard: must be fired BEFORE, FOR EACH ROW")));

	rel = trigdata->tg_relation;
	CpRequireStorage();
	lookup_columns(RelationGetDescr(rel), &cols);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		result = guard_insert(rel, trigdata->tg_trigtuple, &cols);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		result = guard_update(rel, trigdata->tg_trigtuple, trigdata->tg_newtuple,
							  &cols);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		result = guard_delete(rel, trigdata->tg_trigtuple, &cols);
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_guard: must be fired for INSERT, UPDATE or DELETE")));

	return PointerGetDatum(result);
}

/*
 * Find the attribute numbers by name, so the trigger follows the table's
 * shape (and works on a Citus shard, whose row type is not ours).
 */
static void
lookup_columns(TupleDesc desc, GuardColumns *cols)
{
	static const char *const names[] = {
		"user_id", "id", "title", "metadata", "version",
		"checksum", "message_count", "created_at", "last_modified",
		"deleted", "change_xid", "hash_state", "array_length",
		"array_bytes", "last_pos"
	};
	int		   *slots[] = {
		&cols->user_id, &cols->id, &cols->title,
		&cols->metadata, &cols->version, &cols->checksum,
		&cols->message_count, &cols->created_at, &cols->last_modified,
		&cols->deleted, &cols->change_xid, &cols->hash_state,
		&cols->array_length, &cols->array_bytes, &cols->last_pos
	};

	for (size_t i = 0; i < lengthof(names); i++)
	{
		*slots[i] = SPI_fnumber(desc, names[i]);
		if (*slots[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("conversations_guard: table has no column \"%s\"",
							names[i])));
	}
}

/*
 * INSERT: validate, and compute every derived column.  The version is 1,
 * or one past every version the key had (see CpHistoryNextVersion), so
 * versions never repeat.  A row of the save path (the note) is the head of
 * the array storage.c writes next, with its checksum, count and summary;
 * any other row is a conversation without messages (they are rows of
 * chatpersist.messages).  A restore keeps the row's version and
 * timestamps.
 */
static HeapTuple
guard_insert(Relation rel, HeapTuple newtup, GuardColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	CpWriteNote note;
	int			attnums[MAX_COMPUTED];
	Datum		values[MAX_COMPUTED];
	bool		nulls[MAX_COMPUTED] = {false};
	int			n = 0;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		count = 0;
	bool		trusted;
	bool		key_null;
	bool		isnull;
	Datum		user_id = heap_getattr(newtup, cols->user_id, desc, &key_null);
	Datum		id = heap_getattr(newtup, cols->id, desc, &isnull);

	key_null = key_null || isnull;
	check_insert_input(newtup, desc, cols);

	trusted = CpNoteTake(newtup, desc, cols->user_id, cols->id, &note);
	if (trusted)
	{
		strcpy(checksum, note.checksum);
		count = note.message_count;
	}
	else
		CpChecksumJsonb(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]"))),
						checksum);

	/*
	 * A restore keeps the row's version, timestamps and summary; anything
	 * else gets them computed.  Only the change cursor is always new: a stamp
	 * from another cluster means nothing in this one.
	 */
	if (!trusted && !key_null && is_restore(rel, newtup, cols, user_id, id))
	{
		attnums[n] = cols->change_xid;
		values[n++] = FullTransactionIdGetDatum(GetTopFullTransactionId());
		return heap_modify_tuple_by_cols(newtup, desc, n, attnums, values, nulls);
	}

	attnums[n] = cols->version;
	values[n++] = Int64GetDatum(key_null ? 1 :
								CpHistoryNextVersion(rel->rd_rel->relowner,
													 user_id, id, true));
	attnums[n] = cols->checksum;
	values[n++] = CStringGetTextDatum(checksum);
	attnums[n] = cols->message_count;
	values[n++] = Int32GetDatum(count);
	attnums[n] = cols->last_modified;
	values[n++] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	attnums[n] = cols->change_xid;
	values[n++] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	if (!trusted)
	{
		/* no messages yet; the summary is recomputed when first needed */
		attnums[n] = cols->hash_state;
		nulls[n++] = true;
		attnums[n] = cols->array_length;
		nulls[n++] = true;
		attnums[n] = cols->array_bytes;
		nulls[n++] = true;
		attnums[n] = cols->last_pos;
		values[n++] = Int64GetDatum(0);
	}

	return heap_modify_tuple_by_cols(newtup, desc, n, attnums, values, nulls);
}

/*
 * UPDATE: refuse key changes and stale versions; leave a row whose content
 * did not change as it was; otherwise validate, archive the replaced
 * content, bump the version and stamp the row.
 */
static HeapTuple
guard_update(Relation rel, HeapTuple oldtup, HeapTuple newtup,
			 GuardColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	CpWriteNote note;
	bool		trusted;
	bool		orm_bump;
	UpdateChange change;
	char		checksum[CP_CHECKSUM_LEN + 1] = "";
	int32		count = 0;
	bool		onull;
	bool		nnull;
	Datum		nd;
	int			attnums[MAX_COMPUTED];
	Datum		values[MAX_COMPUTED];
	bool		nulls[MAX_COMPUTED] = {false};
	int			n = 0;

	refuse_key_change(oldtup, newtup, desc, cols);
	orm_bump = check_version(oldtup, newtup, desc, cols);

	trusted = CpNoteTake(newtup, desc, cols->user_id, cols->id, &note);
	change = what_changed(oldtup, newtup, desc, cols, trusted ? &note : NULL);

	/*
	 * An ORM that set version = stored + 1 holds that number as the row's
	 * version from now on, so the row must reach it even when the content did
	 * not change (the replaced version is archived as usual)
	 */
	if (orm_bump)
		change.changed = true;

	if (!change.changed)
		return keep_computed_columns(oldtup, newtup, desc, cols);

	/* Validate what the writer sent, and compute checksum and count */
	nd = heap_getattr(newtup, cols->metadata, desc, &nnull);
	if (!nnull)
		CpCheckMetadata(DatumGetJsonbP(nd), "metadata");
	if (trusted)
	{
		strcpy(checksum, note.checksum);
		count = note.message_count;
	}
	else
	{
		/* the messages are rows: a write to the head does not change them */
		text_to_cstring_buffer(DatumGetTextPP(heap_getattr(oldtup, cols->checksum, desc, &onull)),
							   checksum, sizeof(checksum));
		count = DatumGetInt32(heap_getattr(oldtup, cols->message_count, desc, &onull));
	}

	archive_row(rel, oldtup, cols, trusted ? note.replaced_by : CP_STATUS_DIRECT,
				trusted ? note.discarded : NULL);

	/* Stamp the new version */
	attnums[n] = cols->version;
	values[n++] = Int64GetDatum(CpVersionAfter(DatumGetInt64(heap_getattr(oldtup, cols->version, desc, &onull)),
											   heap_getattr(oldtup, cols->id, desc, &onull)));
	attnums[n] = cols->checksum;
	values[n++] = CStringGetTextDatum(checksum);
	attnums[n] = cols->message_count;
	values[n++] = Int32GetDatum(count);
	attnums[n] = cols->last_modified;
	values[n++] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	attnums[n] = cols->change_xid;
	values[n++] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	attnums[n] = cols->created_at;
	values[n] = heap_getattr(oldtup, cols->created_at, desc, &nulls[n]);
	n++;
	if (!trusted)
		n = set_summary(oldtup, desc, cols, attnums, values, nulls, n);

	return heap_modify_tuple_by_cols(newtup, desc, n, attnums, values, nulls);
}

/*
 * Add the stored summary columns of from (an UPDATE's old row) to the
 * columns a trigger sets: only the save path writes them
 */
static int
set_summary(HeapTuple from, TupleDesc desc, GuardColumns *cols,
			int *attnums, Datum *values, bool *nulls, int n)
{
	int			summary[] = {cols->hash_state, cols->array_length,
	cols->array_bytes, cols->last_pos};

	for (size_t i = 0; i < lengthof(summary); i++)
	{
		attnums[n] = summary[i];
		values[n] = heap_getattr(from, summary[i], desc, &nulls[n]);
		n++;
	}
	return n;
}

/*
 * DELETE: keep the removed content in history, and the removed version as
 * the key's floor (a later row of the key continues above it, whatever
 * history keeps); the row is deleted as asked.
 */
static HeapTuple
guard_delete(Relation rel, HeapTuple oldtup, GuardColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;

	Datum		user_id = heap_getattr(oldtup, cols->user_id, desc, &isnull);
	Datum		id = heap_getattr(oldtup, cols->id, desc, &isnull);
	int64		version = DatumGetInt64(heap_getattr(oldtup, cols->version, desc, &isnull));

	CpNoteClear();
	archive_row(rel, oldtup, cols, CP_STATUS_DELETE, NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	CpStorageRemoveAll(rel->rd_rel->relowner, user_id, id, version);
	SPI_finish();
	CpHistoryRaiseFloor(rel->rd_rel->relowner, user_id, id, version);
	return oldtup;
}

/* INSERT: the conversation id and metadata are valid (the messages follow) */
static void
check_insert_input(HeapTuple newtup, TupleDesc desc, GuardColumns *cols)
{
	bool		isnull;
	Datum		d;

	d = heap_getattr(newtup, cols->id, desc, &isnull);
	if (!isnull)
	{
		text	   *t = DatumGetTextPP(d);

		CpCheckConversationId(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	d = heap_getattr(newtup, cols->metadata, desc, &isnull);
	if (!isnull)
		CpCheckMetadata(DatumGetJsonbP(d), "metadata");
}

/*
 * Is this INSERT a restore (pg_dump's COPY, replayed by psql or
 * pg_restore) rather than a client write?  It is when the inserting role
 * has the privileges of the table's owner (who restores a dump) and the
 * row carries its own version, last_modified and a well-formed checksum,
 * as a dumped row does (its messages are rows of their own, restored
 * apart).  A client role can never pass the first test, so it can never
 * set a version.  The version must also be above every archived version of
 * the key, as a dumped row's is: a row inserted after a plain DELETE must
 * not reuse a version that history holds (it would name two contents, and
 * the next write would fail to archive it).
 */
static bool
is_restore(Relation rel, HeapTuple newtup, GuardColumns *cols,
		   Datum user_id, Datum id)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	Datum		d;

	d = heap_getattr(newtup, cols->version, desc, &isnull);
	if (isnull || DatumGetInt64(d) < 1)
		return false;
	(void) heap_getattr(newtup, cols->last_modified, desc, &isnull);
	if (isnull)
		return false;
	(void) heap_getattr(newtup, cols->message_count, desc, &isnull);
	if (isnull)
		return false;
	d = heap_getattr(newtup, cols->checksum, desc, &isnull);
	if (isnull)
		return false;
	{
		text	   *t = DatumGetTextPP(d);
		const char *c = VARDATA_ANY(t);

		if (VARSIZE_ANY_EXHDR(t) != CP_CHECKSUM_LEN)
			return false;
		for (int i = 0; i < CP_CHECKSUM_LEN; i++)
			if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
				return false;
	}
	if (!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		return false;
	d = heap_getattr(newtup, cols->version, desc, &isnull);
	return DatumGetInt64(d) >= CpHistoryNextVersion(rel->rd_rel->relowner, user_id, id, false);
}

/* UPDATE: the key names the conversation; moving it would orphan its history */
static void
refuse_key_change(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
				  GuardColumns *cols)
{
	bool		onull,
				nnull;
	Datum		od,
				nd;
	bool		key_changed;

	od = heap_getattr(oldtup, cols->user_id, desc, &onull);
	nd = heap_getattr(newtup, cols->user_id, desc, &nnull);
	key_changed = nnull ||
		memcmp(DatumGetPointer(od), DatumGetPointer(nd), UUID_LEN) != 0;
	if (!key_changed)
	{
		od = heap_getattr(oldtup, cols->id, desc, &onull);
		nd = heap_getattr(newtup, cols->id, desc, &nnull);
		key_changed = nnull || !same_varlena(od, nd);
	}
	if (key_changed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change the user_id or id of a conversation"),
				 errhint("Insert the conversation under its new key, then delete the old row.")));
}

/*
 * UPDATE: the version compare-and-swap.  Two conventions are accepted: the
 * stored version (chatpersist's own: send the version you read) and the
 * stored version plus one (the optimistic locking of ORMs, which write SET
 * version = <read> + 1 ... WHERE version = <read>).  Either way the new
 * version is the stored one plus one (guard_update sets it).  Anything else
 * is 40001.  Returns true for the ORMs' convention.
 */
static bool
check_version(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
			  GuardColumns *cols)
{
	bool		onull,
				nnull;
	int64		stored = DatumGetInt64(heap_getattr(oldtup, cols->version, desc, &onull));
	Datum		nd = heap_getattr(newtup, cols->version, desc, &nnull);
	int64		claimed = nnull ? 0 : DatumGetInt64(nd);
	bool		orm_bump = !nnull && stored < PG_INT64_MAX && claimed == stored + 1;

	if (nnull || (claimed != stored && !orm_bump))
	{
		CpStatsAdd(CP_STAT_STALE_UPDATES, 1);
		CpReportModifiedConcurrently(TextDatumGetCString(heap_getattr(oldtup, cols->id, desc, &onull)),
									 nnull ? NULL : &claimed, stored,
									 "Reload the conversation and retry.");
	}
	return orm_bump;
}

/*
 * UPDATE: did title, metadata or deleted change?  note is the save path's
 * note for this row, or NULL for a foreign write; a save writes because
 * something changed.
 */
static UpdateChange
what_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
			 GuardColumns *cols, const CpWriteNote *note)
{
	UpdateChange change;
	int			others[] = {cols->title, cols->metadata, cols->deleted};
	bool		onull,
				nnull;
	Datum		od,
				nd;

	change.changed = (note != NULL);
	for (size_t i = 0; !change.changed && i < lengthof(others); i++)
	{
		od = heap_getattr(oldtup, others[i], desc, &onull);
		nd = heap_getattr(newtup, others[i], desc, &nnull);
		if (onull || nnull)
			change.changed = (onull != nnull);
		else if (others[i] == cols->deleted)
			change.changed = DatumGetBool(od) != DatumGetBool(nd);
		else
			change.changed = !same_varlena(od, nd);
	}
	return change;
}

/* UPDATE of no content: nothing to record, every computed column as stored */
static HeapTuple
keep_computed_columns(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
					  GuardColumns *cols)
{
	int			keep[] = {
		cols->checksum,
		cols->message_count,
		cols->created_at,
		cols->last_modified,
		cols->change_xid,
		cols->hash_state,
		cols->array_length,
		cols->array_bytes,
		cols->last_pos,
	};
	Datum		values[lengthof(keep)];
	bool		nulls[lengthof(keep)];

	for (size_t i = 0; i < lengthof(keep); i++)
		values[i] = heap_getattr(oldtup, keep[i], desc, &nulls[i]);
	return heap_modify_tuple_by_cols(newtup, desc, lengthof(keep), keep, values, nulls);
}

/* Archive the replaced row oldtup into history (history.c) */
static void
archive_row(Relation rel, HeapTuple oldtup, GuardColumns *cols,
			CpStatus replaced_by, Jsonb *discarded)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			atts[CP_ARC_NCOLUMNS] = {
		[CP_ARC_USER_ID] = cols->user_id,
		[CP_ARC_ID] = cols->id,
		[CP_ARC_VERSION] = cols->version,
		[CP_ARC_TITLE] = cols->title,
		[CP_ARC_METADATA] = cols->metadata,
		[CP_ARC_CHECKSUM] = cols->checksum,
		[CP_ARC_MESSAGE_COUNT] = cols->message_count,
		[CP_ARC_DELETED] = cols->deleted,
		[CP_ARC_LAST_MODIFIED] = cols->last_modified,
	};
	Datum		row[CP_ARC_NCOLUMNS];
	bool		nulls[CP_ARC_NCOLUMNS];

	for (int i = 0; i < CP_ARC_NCOLUMNS; i++)
		row[i] = heap_getattr(oldtup, atts[i], desc, &nulls[i]);
	CpHistoryArchive(rel->rd_rel->relowner, row, nulls, replaced_by, discarded);
}

/*
 * Are two varlena datums the same bytes?  Two on-disk TOAST pointers to the
 * same value compare equal without fetching it.
 */
static bool
same_varlena(Datum a, Datum b)
{
	struct varlena *va = (struct varlena *) DatumGetPointer(a);
	struct varlena *vb = (struct varlena *) DatumGetPointer(b);
	bool		result;

	if (VARATT_IS_EXTERNAL_ONDISK(va) && VARATT_IS_EXTERNAL_ONDISK(vb) &&
		memcmp(va, vb, VARSIZE_EXTERNAL(va)) == 0)
		return true;

	va = pg_detoast_datum_packed(va);
	vb = pg_detoast_datum_packed(vb);
	result = VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
		memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
	if (va != (struct varlena *) DatumGetPointer(a))
		pfree(va);
	if (vb != (struct varlena *) DatumGetPointer(b))
		pfree(vb);
	return result;
}

/*
 * conversations_notify() RETURNS trigger
 *
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW, created with a WHEN clause
 * that fires it only while chatpersist.notify is on.  Queues NOTIFY
 * chatpersist_changes for a row whose version or deleted flag changed (a
 * plain DELETE reports the removed row as deleted); PostgreSQL delivers it
 * at commit, and drops it on rollback.
 */
PG_FUNCTION_INFO_V1(chatpersist_conversations_notify);
Datum
chatpersist_conversations_notify(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	GuardColumns cols;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_notify: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_notify: must be fired AFTER, FOR EACH ROW")));

	/* The WHEN clause already tested the setting; a SET since then counts */
	if (!cp_notify)
		return PointerGetDatum(NULL);

	desc = RelationGetDescr(trigdata->tg_relation);
	lookup_columns(desc, &cols);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		notify_change(trigdata->tg_trigtuple, desc, &cols, false);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		notify_change(trigdata->tg_trigtuple, desc, &cols, true);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		int64		ov = DatumGetInt64(heap_getattr(oldtup, cols.version, desc, &isnull));
		int64		nv = DatumGetInt64(heap_getattr(newtup, cols.version, desc, &isnull));
		bool		od = DatumGetBool(heap_getattr(oldtup, cols.deleted, desc, &isnull));
		bool		nd = DatumGetBool(heap_getattr(newtup, cols.deleted, desc, &isnull));

		if (ov != nv || od != nd)
			notify_change(newtup, desc, &cols, nd);
	}

	return PointerGetDatum(NULL);
}

/*
 * Queue the notification for one row: a JSON object of user id,
 * conversation id, version, checksum and deleted flag, never message
 * content.  The conversation id has at most 255 bytes, so even fully
 * escaped the payload stays far below NOTIFY's 8000-byte limit.
 */
static void
notify_change(HeapTuple tup, TupleDesc desc, GuardColumns *cols, bool deleted)
{
	StringInfoData buf;
	bool		isnull;
	Datum		d;

	initStringInfo(&buf);
	d = heap_getattr(tup, cols->user_id, desc, &isnull);
	appendStringInfo(&buf, "{\"user_id\": \"%s\", \"conversation_id\": ",
					 DatumGetCString(DirectFunctionCall1(uuid_out, d)));
	escape_json(&buf, TextDatumGetCString(heap_getattr(tup, cols->id, desc, &isnull)));
	appendStringInfo(&buf, ", \"version\": " INT64_FORMAT ", \"checksum\": ",
					 DatumGetInt64(heap_getattr(tup, cols->version, desc, &isnull)));
	escape_json(&buf, TextDatumGetCString(heap_getattr(tup, cols->checksum, desc, &isnull)));
	appendStringInfo(&buf, ", \"deleted\": %s}", deleted ? "true" : "false");

	Assert(buf.len < CP_NOTIFY_PAYLOAD_MAX);
	Async_Notify("chatpersist_changes", buf.data);
	pfree(buf.data);
}
