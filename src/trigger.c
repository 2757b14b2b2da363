/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The guard trigger on chatpersist.conversations.
 *
 * BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW.  It gives every writer, the save
 * functions and hand-written SQL alike, the same guarantees:
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
 *	  under the same key continue its version numbers.
 *
 * Concurrency: a BEFORE UPDATE row trigger runs with the row locked by the
 * updating transaction, and on the newest row version (READ COMMITTED
 * re-checks a row that changed while it waited), so OLD.version is the
 * committed current version and the version check is race-free.
 *
 * A second trigger, conversations_notify (AFTER, FOR EACH ROW, only when
 * chatpersist.notify is on), sends NOTIFY chatpersist_changes for every row
 * actually written.  It is an AFTER trigger because a BEFORE INSERT trigger
 * also fires for a row that INSERT ... ON CONFLICT DO NOTHING then skips;
 * NOTIFY itself is transactional, so nothing is sent for work that rolls
 * back.
 *
 * History is the extension's bookkeeping, so the trigger reads and writes
 * it as the owner of the conversations table (as PostgreSQL's own RI
 * triggers run their queries as the table owner): a client needs no
 * privilege on chatpersist.history to write a conversation.
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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "chatpersist.h"

/* Attribute numbers of the columns the trigger reads or computes */
typedef struct GuardColumns
{
	int			user_id;
	int			id;
	int			title;
	int			messages;
	int			metadata;
	int			version;
	int			checksum;
	int			message_count;
	int			created_at;
	int			last_modified;
	int			deleted;
	int			change_xid;
} GuardColumns;

/* NOTIFY's payload limit (async.c's NOTIFY_PAYLOAD_MAX_LENGTH, not exported) */
#define CP_NOTIFY_PAYLOAD_MAX	(BLCKSZ - NAMEDATALEN - 128)

static SPIPlanPtr lock_floor_plan = NULL;
static SPIPlanPtr newest_version_plan = NULL;
static SPIPlanPtr raise_floor_plan = NULL;
static SPIPlanPtr newest_version_1_0_plan = NULL;
static SPIPlanPtr archive_plan = NULL;
static SPIPlanPtr prune_plan = NULL;
static SPIPlanPtr archive_prune_plan = NULL;

/*
 * archive_version's statements: archive the replaced row ($1-$13), prune
 * the conversation's versions up to a limit (the last parameter: $3
 * alone, $14 after the row), or both in one statement once history is
 * full.  archive_types gives the types of all three (the prune's $1-$3
 * are the row's user_id, conversation_id and a version).
 */
#define CP_ARCHIVE_SQL \
	"INSERT INTO " CP_HISTORY " " \
	"(user_id, conversation_id, version, title, messages, " \
	"metadata, checksum, message_count, deleted, " \
	"last_modified, replaced_at, replaced_by, discarded) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
#define CP_PRUNE_SQL(limit) \
	"DELETE FROM " CP_HISTORY " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND version OPERATOR(pg_catalog.<=) " limit

/*
 * next_version's read: the newest version of the key among its live row,
 * history and (1.1, the extra branch) its floor
 */
#define CP_NEWEST_VERSION_SQL(floor_branch) \
	"SELECT pg_catalog.max(v) FROM (" \
	"SELECT version FROM " CP_CONVERSATIONS " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND id OPERATOR(pg_catalog.=) $2 " \
	"UNION ALL " \
	"SELECT pg_catalog.max(version) FROM " CP_HISTORY " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	floor_branch ") AS versions (v)"

static Oid	archive_types[14] = {UUIDOID, TEXTOID, INT8OID, TEXTOID, JSONBOID,
	JSONBOID, TEXTOID, INT4OID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
TEXTOID, JSONBOID, INT8OID};

static void lookup_columns(TupleDesc desc, GuardColumns *cols);
static HeapTuple guard_insert(Relation rel, HeapTuple newtup, GuardColumns *cols);
static HeapTuple guard_update(Relation rel, HeapTuple oldtup, HeapTuple newtup,
							  GuardColumns *cols);
static bool note_matches(HeapTuple tup, TupleDesc desc, GuardColumns *cols);
static bool is_restore(Relation rel, HeapTuple newtup, GuardColumns *cols,
					   const char *checksum, Datum user_id, Datum id);
static int64 version_after(int64 version, Datum id);
static void compute_messages(Datum messages, char *checksum, int32 *count);
static bool same_varlena(Datum a, Datum b);
static int64 next_version(Relation rel, Datum user_id, Datum id, bool lock);
static void raise_floor(Oid owner, Datum user_id, Datum id, int64 version);
static void archive_version(Oid owner, HeapTuple oldtup, TupleDesc desc,
							GuardColumns *cols, const char *replaced_by,
							Jsonb *discarded);
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

	lookup_columns(RelationGetDescr(trigdata->tg_relation), &cols);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		result = guard_insert(trigdata->tg_relation, trigdata->tg_trigtuple, &cols);
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		result = guard_update(trigdata->tg_relation, trigdata->tg_trigtuple,
							  trigdata->tg_newtuple, &cols);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
		Oid			owner = trigdata->tg_relation->rd_rel->relowner;
		bool		isnull;

		/*
		 * Keep the removed content, and the removed version as the key's
		 * floor (a later row of the key continues above it, whatever
		 * history keeps); the row is deleted as asked
		 */
		CpClearPendingWrite();
		archive_version(owner, oldtup, desc, &cols, "delete", NULL);
		raise_floor(owner, heap_getattr(oldtup, cols.user_id, desc, &isnull),
					heap_getattr(oldtup, cols.id, desc, &isnull),
					DatumGetInt64(heap_getattr(oldtup, cols.version, desc, &isnull)));
		result = oldtup;
	}
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
		"user_id", "id", "title", "messages", "metadata", "version",
		"checksum", "message_count", "created_at", "last_modified",
		"deleted", "change_xid"
	};
	int		   *slots[] = {
		&cols->user_id, &cols->id, &cols->title, &cols->messages,
		&cols->metadata, &cols->version, &cols->checksum,
		&cols->message_count, &cols->created_at, &cols->last_modified,
		&cols->deleted, &cols->change_xid
	};

	for (int i = 0; i < lengthof(names); i++)
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
 * or one past the newest archived version when the conversation existed
 * before (deleted with a plain DELETE), so versions never repeat.
 */
static HeapTuple
guard_insert(Relation rel, HeapTuple newtup, GuardColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			attnums[5];
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	char		checksum[CP_CHECKSUM_LEN + 1] = "";
	int32		count = 0;
	bool		isnull;
	bool		key_null;
	Datum		user_id = heap_getattr(newtup, cols->user_id, desc, &key_null);
	Datum		id;
	Datum		d;

	id = heap_getattr(newtup, cols->id, desc, &isnull);
	key_null = key_null || isnull;
	if (!isnull)
	{
		text	   *t = DatumGetTextPP(id);

		CpCheckConversationId(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}

	d = heap_getattr(newtup, cols->metadata, desc, &isnull);
	if (!isnull)
		CpCheckMetadata(DatumGetJsonbP(d), "metadata");

	d = heap_getattr(newtup, cols->messages, desc, &isnull);
	if (!isnull)
	{
		if (note_matches(newtup, desc, cols))
		{
			strcpy(checksum, CpPendingWrite.checksum);
			count = CpPendingWrite.message_count;
		}
		else
			compute_messages(d, checksum, &count);
	}
	CpClearPendingWrite();

	/*
	 * A restore keeps the row's version and timestamps; anything else gets
	 * them computed.  Only the change cursor is always new: a stamp from
	 * another cluster means nothing in this one.
	 */
	if (!isnull && !key_null && is_restore(rel, newtup, cols, checksum, user_id, id))
	{
		attnums[0] = cols->message_count;
		values[0] = Int32GetDatum(count);
		attnums[1] = cols->change_xid;
		values[1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
		return heap_modify_tuple_by_cols(newtup, desc, 2, attnums, values, nulls);
	}

	attnums[0] = cols->version;
	values[0] = Int64GetDatum(key_null ? 1 :
							  next_version(rel, user_id, id, true));
	attnums[1] = cols->checksum;
	values[1] = CStringGetTextDatum(checksum);
	nulls[1] = isnull;			/* NULL messages: the NOT NULL check reports it */
	attnums[2] = cols->message_count;
	values[2] = Int32GetDatum(count);
	attnums[3] = cols->last_modified;
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	attnums[4] = cols->change_xid;
	values[4] = FullTransactionIdGetDatum(GetTopFullTransactionId());

	return heap_modify_tuple_by_cols(newtup, desc, 5, attnums, values, nulls);
}

/*
 * Is this INSERT a restore (pg_dump's COPY, replayed by psql or
 * pg_restore) rather than a client write?  It is when the inserting role
 * has the privileges of the table's owner (who restores a dump) and the
 * row carries its own version, last_modified and a checksum equal to the
 * one computed from its messages, as a dumped row does.  A client role can
 * never pass the first test, so it can never set a version; and a checksum
 * that does not match shows a hand-made row, whose columns are computed.
 * The version must also be above every archived version of the key, as a
 * dumped row's is: a row inserted after a plain DELETE must not reuse a
 * version that history holds (it would name two contents, and the next
 * write would fail to archive it).
 */
static bool
is_restore(Relation rel, HeapTuple newtup, GuardColumns *cols,
		   const char *checksum, Datum user_id, Datum id)
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
	d = heap_getattr(newtup, cols->checksum, desc, &isnull);
	if (isnull)
		return false;
	{
		text	   *t = DatumGetTextPP(d);

		if (VARSIZE_ANY_EXHDR(t) != CP_CHECKSUM_LEN ||
			memcmp(VARDATA_ANY(t), checksum, CP_CHECKSUM_LEN) != 0)
			return false;
	}
	if (!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		return false;
	d = heap_getattr(newtup, cols->version, desc, &isnull);
	return DatumGetInt64(d) >= next_version(rel, user_id, id, false);
}

/*
 * UPDATE: refuse key changes and stale versions; leave a row whose content
 * did not change as it was; otherwise validate, bump the version, stamp the
 * row and archive the replaced content.
 */
static HeapTuple
guard_update(Relation rel, HeapTuple oldtup, HeapTuple newtup,
			 GuardColumns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		onull,
				nnull;
	Datum		od,
				nd;
	int64		old_version;
	bool		key_changed;
	bool		trusted;
	bool		optimistic;
	bool		orm_bump;
	bool		changed;
	bool		messages_changed;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		count = 0;
	const char *replaced_by = "direct";
	Jsonb	   *discarded = NULL;
	int			attnums[7];
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	int			n = 0;

	/* The key names the conversation; moving it would orphan its history */
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

	/*
	 * The version compare-and-swap.  Two conventions are accepted: the
	 * stored version (chatpersist's own: send the version you read) and the
	 * stored version plus one (the optimistic locking of ORMs, which write
	 * SET version = <read> + 1 ... WHERE version = <read>).  Either way the
	 * new version is the stored one plus one, set below.
	 */
	old_version = DatumGetInt64(heap_getattr(oldtup, cols->version, desc, &onull));
	nd = heap_getattr(newtup, cols->version, desc, &nnull);
	orm_bump = !nnull && old_version < PG_INT64_MAX &&
		DatumGetInt64(nd) == old_version + 1;
	if (nnull || (DatumGetInt64(nd) != old_version && !orm_bump))
	{
		char	   *cid = TextDatumGetCString(heap_getattr(oldtup, cols->id, desc, &onull));

		CpStatsAdd(CP_STAT_STALE_UPDATES, 1);

		if (nnull)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("conversation \"%s\" was modified concurrently", cid),
					 errdetail("Expected version NULL, found %lld.",
							   (long long) old_version),
					 errhint("Reload the conversation and retry.")));
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("conversation \"%s\" was modified concurrently", cid),
				 errdetail("Expected version %lld, found %lld.",
						   (long long) DatumGetInt64(nd), (long long) old_version),
				 errhint("Reload the conversation and retry.")));
	}

	trusted = note_matches(newtup, desc, cols);
	if (trusted)
	{
		strcpy(checksum, CpPendingWrite.checksum);
		count = CpPendingWrite.message_count;
		replaced_by = CpPendingWrite.replaced_by;
		discarded = CpPendingWrite.discarded;
	}
	if (trusted && !CpPendingWrite.optimistic)
	{
		/* The save path compared with the row and writes because it changed */
		changed = true;
		messages_changed = true;
	}
	else
	{
		od = heap_getattr(oldtup, cols->messages, desc, &onull);
		nd = heap_getattr(newtup, cols->messages, desc, &nnull);
		if (nnull)
			messages_changed = true;
		else if (trusted)
		{
			/*
			 * A different checksum proves a change without detoasting the
			 * stored messages; only an equal one (a retry) compares bytes
			 */
			char	   *oc = TextDatumGetCString(heap_getattr(oldtup, cols->checksum, desc, &onull));

			messages_changed = strcmp(oc, checksum) != 0 || !same_varlena(od, nd);
		}
		else
			messages_changed = !same_varlena(od, nd);
		changed = messages_changed;
		for (int i = 0; !changed && i < 3; i++)
		{
			int			att = (i == 0) ? cols->title :
				(i == 1) ? cols->metadata : cols->deleted;

			od = heap_getattr(oldtup, att, desc, &onull);
			nd = heap_getattr(newtup, att, desc, &nnull);
			if (onull || nnull)
				changed = (onull != nnull);
			else if (att == cols->deleted)
				changed = DatumGetBool(od) != DatumGetBool(nd);
			else
				changed = !same_varlena(od, nd);
		}
	}
	optimistic = trusted && CpPendingWrite.optimistic;
	CpClearPendingWrite();

	/*
	 * An ORM that set version = stored + 1 holds that number as the row's
	 * version from now on, so the row must reach it even when the content
	 * did not change (the replaced version is archived as usual)
	 */
	if (orm_bump)
		changed = true;

	/*
	 * An optimistic save that changes nothing (a retry) skips the row, so
	 * that nothing at all is written; the save path sees no row updated
	 * and answers unchanged from its locking path
	 */
	if (!changed && optimistic)
		return NULL;

	if (!changed)
	{
		/* Nothing to record: keep every computed column as stored */
		int			keep[] = {cols->checksum, cols->message_count,
			cols->created_at, cols->last_modified, cols->change_xid};

		for (int i = 0; i < lengthof(keep); i++)
		{
			attnums[n] = keep[i];
			values[n] = heap_getattr(oldtup, keep[i], desc, &nulls[n]);
			n++;
		}
		return heap_modify_tuple_by_cols(newtup, desc, n, attnums, values, nulls);
	}

	nd = heap_getattr(newtup, cols->metadata, desc, &nnull);
	if (!nnull)
		CpCheckMetadata(DatumGetJsonbP(nd), "metadata");

	if (!trusted)
	{
		nd = heap_getattr(newtup, cols->messages, desc, &nnull);
		if (nnull)
		{
			/* the NOT NULL check reports it */
			checksum[0] = '\0';
			count = 0;
		}
		else if (messages_changed)
			compute_messages(nd, checksum, &count);
		else
		{
			strlcpy(checksum,
					TextDatumGetCString(heap_getattr(oldtup, cols->checksum, desc, &onull)),
					sizeof(checksum));
			count = DatumGetInt32(heap_getattr(oldtup, cols->message_count, desc, &onull));
		}
	}

	archive_version(rel->rd_rel->relowner, oldtup, desc, cols, replaced_by,
					discarded);

	attnums[n] = cols->version;
	values[n++] = Int64GetDatum(version_after(old_version,
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

	return heap_modify_tuple_by_cols(newtup, desc, n, attnums, values, nulls);
}

/*
 * Is this the row the save path described in CpPendingWrite?  The key and
 * the messages bytes must match; anything else (another trigger changed the
 * row, a nested write) is treated as a foreign write.
 *
 * The id of an UPDATE's new row is the stored one, which TOAST may have
 * compressed in place (a long, compressible id in a row over the TOAST
 * threshold), so it is compared detoasted.  The messages are the value the
 * save path handed to SPI, never compressed before this trigger runs: a
 * compressed or external value there is not ours.
 */
static bool
note_matches(HeapTuple tup, TupleDesc desc, GuardColumns *cols)
{
	bool		isnull;
	bool		same;
	Datum		d;
	struct varlena *v;
	Jsonb	   *note = CpPendingWrite.messages;

	if (!CpPendingWrite.active)
		return false;

	d = heap_getattr(tup, cols->user_id, desc, &isnull);
	if (isnull || memcmp(DatumGetPointer(d), &CpPendingWrite.user_id, UUID_LEN) != 0)
		return false;

	d = heap_getattr(tup, cols->id, desc, &isnull);
	if (isnull)
		return false;
	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
	same = VARSIZE_ANY_EXHDR(v) == CpPendingWrite.conversation_id_len &&
		memcmp(VARDATA_ANY(v), CpPendingWrite.conversation_id,
			   CpPendingWrite.conversation_id_len) == 0;
	if (v != (struct varlena *) DatumGetPointer(d))
		pfree(v);
	if (!same)
		return false;

	d = heap_getattr(tup, cols->messages, desc, &isnull);
	v = (struct varlena *) DatumGetPointer(d);
	if (isnull || (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v)))
		return false;
	return VARSIZE_ANY_EXHDR(v) == VARSIZE(note) - VARHDRSZ &&
		memcmp(VARDATA_ANY(v), VARDATA(note), VARSIZE(note) - VARHDRSZ) == 0;
}

/*
 * Validate a foreign writer's messages and compute checksum and live count.
 */
static void
compute_messages(Datum messages, char *checksum, int32 *count)
{
	Jsonb	   *jb = DatumGetJsonbP(messages);
	CpMessageArray arr;

	CpParseMessages(jb, "messages", true, &arr);
	CpChecksumJsonb(jb, checksum);
	*count = arr.nlive;
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
 * The version a new row of (user_id, id) gets: one past every version the
 * key has had (its live row's, history's, and its floor's: the version a
 * plain DELETE removed, kept in chatpersist.version_floors even when
 * history keeps nothing), so that a version never names two contents.
 *
 * The INSERT's unique check comes after this trigger, and may wait for a
 * transaction that deletes the key's row and archives its version; a
 * version chosen before that wait can be one that history then holds (the
 * version reuse of issue 11).  So a client INSERT (lock = true) first locks
 * the key's floor row, creating it if need be (an upsert, as the table
 * owner), and holds that row lock to the end of its transaction; every
 * INSERT and every plain DELETE of the key (archive_version) takes the same
 * row lock.  Then it reads the live row, history and the floor with the
 * latest snapshot (not the transaction's, which under REPEATABLE READ may
 * predate a whole delete and re-create).  Whatever deleted or inserted the
 * key before has committed by then and is seen; whatever comes after waits
 * for this transaction.  Row locks, unlike advisory locks, take no room in
 * the shared lock table, so a transaction may create any number of
 * conversations.  Under REPEATABLE READ a floor that a concurrent
 * transaction changed raises 40001 (retry).
 *
 * A restore (lock = false, see is_restore) only reads: it writes no floor,
 * so that a restore never collides with anything.
 */
static int64
next_version(Relation rel, Datum user_id, Datum id, bool lock)
{
	Oid			owner = rel->rd_rel->relowner;
	Datum		args[2] = {user_id, id};
	Oid			save_userid;
	int			save_sec_context;
	bool		floors;
	SPIPlanPtr	newest_plan;
	bool		isnull;
	Datum		d;
	int64		newest = 0;

	/*
	 * Before ALTER EXTENSION ... UPDATE to 1.1 there is no floor table (this
	 * library already runs on the 1.0 schema): then only row and history
	 * count, unlocked, as in 1.0
	 */
	floors = OidIsValid(CpExtensionTable("version_floors"));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (floors && lock_floor_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		lock_floor_plan = CpPrepareKept("INSERT INTO " CP_VERSION_FLOORS " AS f "
										"(user_id, conversation_id, version) "
										"VALUES ($1, $2, 0) "
										"ON CONFLICT (user_id, conversation_id) "
										"DO UPDATE SET version = f.version",
										2, types);
	}
	if (floors && newest_version_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		newest_version_plan =
			CpPrepareKept(CP_NEWEST_VERSION_SQL("UNION ALL "
												"SELECT version FROM " CP_VERSION_FLOORS " "
												"WHERE user_id OPERATOR(pg_catalog.=) $1 "
												"AND conversation_id OPERATOR(pg_catalog.=) $2"),
						  2, types);
	}
	if (!floors && newest_version_1_0_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		newest_version_1_0_plan = CpPrepareKept(CP_NEWEST_VERSION_SQL(""), 2, types);
	}
	newest_plan = floors ? newest_version_plan : newest_version_1_0_plan;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);

	if (floors && lock &&
		SPI_execute_plan(lock_floor_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: locking the conversation's version floor failed");
	if (SPI_execute_snapshot(newest_plan, args, NULL, GetLatestSnapshot(),
							 InvalidSnapshot, false, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation's versions failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		newest = DatumGetInt64(d);

	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
	return newest == 0 ? 1 : version_after(newest, id);
}

/*
 * Record that the key (user_id, id) has had the given version: its floor
 * becomes at least that.  Called by a plain DELETE, which holds the row's
 * lock; the floor row's lock, taken here until the transaction ends, makes
 * an INSERT of the key wait until the deletion is committed or rolled back
 * (see next_version).
 */
static void
raise_floor(Oid owner, Datum user_id, Datum id, int64 version)
{
	Datum		args[3] = {user_id, id, Int64GetDatum(version)};
	Oid			save_userid;
	int			save_sec_context;

	if (!OidIsValid(CpExtensionTable("version_floors")))
		return;					/* the 1.0 schema: history is all there is */

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (raise_floor_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};

		raise_floor_plan = CpPrepareKept("INSERT INTO " CP_VERSION_FLOORS " AS f "
										 "(user_id, conversation_id, version) "
										 "VALUES ($1, $2, $3) "
										 "ON CONFLICT (user_id, conversation_id) "
										 "DO UPDATE SET version = "
										 "GREATEST(f.version, EXCLUDED.version)",
										 3, types);
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	if (SPI_execute_plan(raise_floor_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: recording the conversation's version floor failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
}

/*
 * The version that follows version: 22003 at the top of bigint, rather than
 * wrapping around (only a restored row can carry such a version).  id is
 * the conversation id, for the message.
 */
static int64
version_after(int64 version, Datum id)
{
	if (version == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("conversation \"%s\" has reached the largest version",
						TextDatumGetCString(id)),
				 errdetail("Version %lld cannot be increased.", (long long) version)));
	return version + 1;
}

/*
 * Archive the replaced row into history and prune history beyond
 * chatpersist.history_depth for this conversation.  The jsonb values are
 * passed as they are stored: a compressed TOAST value is copied without
 * being decompressed or compressed again.
 */
static void
archive_version(Oid owner, HeapTuple oldtup, TupleDesc desc,
				GuardColumns *cols, const char *replaced_by, Jsonb *discarded)
{
	Datum		args[14];
	char		argnulls[14];
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;
	int64		version;
	int			srccols[] = {cols->user_id, cols->id, cols->version, cols->title,
		cols->messages, cols->metadata, cols->checksum, cols->message_count,
	cols->deleted, cols->last_modified};
	int			depth = cp_history_depth;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Each plan is checked on its own: a failed prepare leaves it NULL */
	if (archive_plan == NULL)
		archive_plan = CpPrepareKept(CP_ARCHIVE_SQL, 13, archive_types);
	if (prune_plan == NULL)
		prune_plan = CpPrepareKept(CP_PRUNE_SQL("$3"), 3, archive_types);
	if (archive_prune_plan == NULL)
		archive_prune_plan = CpPrepareKept("WITH pruned AS (" CP_PRUNE_SQL("$14") ") "
										  CP_ARCHIVE_SQL, 14, archive_types);

	for (int i = 0; i < lengthof(srccols); i++)
	{
		args[i] = heap_getattr(oldtup, srccols[i], desc, &isnull);
		argnulls[i] = isnull ? 'n' : ' ';
	}
	version = DatumGetInt64(args[2]);
	args[10] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	argnulls[10] = ' ';
	args[11] = CStringGetTextDatum(replaced_by);
	argnulls[11] = ' ';
	args[12] = discarded ? JsonbPGetDatum(discarded) : (Datum) 0;
	argnulls[12] = discarded ? ' ' : 'n';

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);

	/*
	 * Keep the versions above version - depth (versions start at 1), the
	 * replaced one included: with depth 0 that is none, so nothing is
	 * archived and what an earlier depth kept goes; until history is full
	 * the row is only archived; after that, archive and prune are one
	 * statement (the common case).
	 */
	if (depth == 0)
	{
		Datum		pargs[3] = {args[0], args[1], Int64GetDatum(version)};

		if (SPI_execute_plan(prune_plan, pargs, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "chatpersist: pruning history failed");
	}
	else if (version - depth < 1)
	{
		if (SPI_execute_plan(archive_plan, args, argnulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatpersist: archiving to history failed");
	}
	else
	{
		args[13] = Int64GetDatum(version - depth);
		argnulls[13] = ' ';
		if (SPI_execute_plan(archive_prune_plan, args, argnulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatpersist: archiving to history failed");
	}

	SetUserIdAndSecContext(save_userid, save_sec_context);
	SPI_finish();
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
