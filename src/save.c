/*-------------------------------------------------------------------------
 *
 * save.c
 *	  The write functions: save_conversation, append_messages,
 *	  delete_conversation and restore_version.  Each is one pass of
 *	  lock, decide, write, with a version compare-and-swap.
 *
 * Concurrency: a write locks the conversation's row with SELECT ... FOR
 * UPDATE before it decides anything, so writes of one conversation are
 * serialised by the row lock.  Under READ COMMITTED a write that waited for
 * the lock sees the row as the other write left it (each SPI statement of
 * these VOLATILE functions takes a fresh snapshot) and decides against it.
 * Under REPEATABLE READ and SERIALIZABLE the lock or the write raises 40001
 * when the row changed after the transaction's snapshot; that error
 * reaches the caller untouched.
 *
 * Concurrent first saves: when no row exists, the write inserts with ON
 * CONFLICT DO NOTHING.  If another transaction inserted the row first, the
 * insert waits for it and inserts nothing, and the write then locks the
 * winner's row and takes the path for an existing row (a merge, for a
 * save), so no unique violation reaches the caller.
 *
 * This file decides what to write; storage.c owns the statements that read
 * and write the stored conversation.  The functions validate, merge and
 * checksum the messages themselves; the guard trigger (trigger.c) trusts
 * those results for exactly the row described by the trusted-write note
 * (note.c) and still bumps the version, stamps the row and archives the
 * replaced content.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/save.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "chatpersist.h"

/* What a call asks for */
typedef enum WriteKind
{
	WRITE_SAVE,					/* save_conversation: the whole array */
	WRITE_APPEND,				/* append_messages: some messages */
	WRITE_DELETE,				/* delete_conversation: a tombstone */
	WRITE_RESTORE				/* restore_version: an archived version */
} WriteKind;

typedef struct WriteRequest
{
	WriteKind	kind;
	pg_uuid_t  *user_id;
	text	   *conversation_id;
	text	   *title;			/* NULL keeps the stored title */
	Jsonb	   *messages;		/* save, append: the given array */
	CpMessageArray incoming;	/* ... parsed */
	Jsonb	   *metadata;		/* NULL keeps the stored metadata */
	bool		force;
	bool		has_expected;
	int64		expected;
	int64		restore;		/* restore: the version to restore */
	bool		has_created_at; /* a created_at for a new row (migrations) */
	TimestampTz created_at;
} WriteRequest;

/* What the call returns */
typedef struct WriteOutcome
{
	CpStatus	status;
	bool		has_version;	/* false: version and checksum are NULL */
	int64		version;
	int64		stored_version;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		count;
	int32		conflicts;
} WriteOutcome;

static Datum write_entry(FunctionCallInfo fcinfo, WriteRequest *req);
static void do_write(WriteRequest *req, WriteOutcome *out);
static bool create_row(WriteRequest *req, WriteOutcome *out);
static bool append_unlocked(WriteRequest *req, WriteOutcome *out);
static void decide_save(WriteRequest *req, CpStoredRow *row, CpNewContent *nc);
static void decide_append(WriteRequest *req, CpStoredRow *row, CpNewContent *nc);
static bool decide_delete(WriteRequest *req, CpStoredRow *row, CpNewContent *nc);
static void decide_restore(WriteRequest *req, CpStoredRow *row, CpNewContent *nc);
static bool merge_base(WriteRequest *req, CpStoredRow *row, CpMessageArray *base);
static bool replays_of(WriteRequest *req, CpStoredRow *row, bool want_replays,
					   CpMessageArray *out);
static void merge_into(CpMessageArray *base, CpStoredRow *row,
					   CpMessageArray *incoming, CpNewContent *nc);
static void take_messages(CpNewContent *nc, Jsonb *messages, const char *what);
static void take_incoming(WriteRequest *req, CpNewContent *nc);
static bool same_content(CpNewContent *nc, CpStoredRow *row);
static bool losers_kept(WriteRequest *req, CpStoredRow *row, CpNewContent *nc);
static void read_key(FunctionCallInfo fcinfo, WriteRequest *req);
static bool same_jsonb_text(Jsonb *a, Jsonb *b);
static bool same_text(text *a, text *b);
static Jsonb *empty_jsonb(bool object);

/*
 * save_conversation(p_user_id uuid, p_conversation_id text, p_title text,
 *					 p_messages jsonb, p_force_overwrite boolean DEFAULT false,
 *					 p_expected_version bigint DEFAULT NULL,
 *					 p_metadata jsonb DEFAULT NULL) RETURNS save_result
 *
 * p_user_id, p_conversation_id: the conversation's key (NULL: 22004).
 * p_title: new title; NULL keeps the stored one ('' on create).
 * p_messages: the device's full message array (NULL: 22004).
 * p_force_overwrite: replace whatever is stored (status overwritten).
 * p_expected_version: the version the device last loaded; equal to the
 *	 stored one, the array replaces the stored one (updated); stale or NULL,
 *	 the arrays are merged (merged), three-way when that version is still in
 *	 history.
 * p_metadata: a JSON object; NULL keeps the stored metadata.  It replaces
 *	 the stored object, except on a merge, where its keys are laid over the
 *	 stored ones.
 *
 * Returns (status, conversation_id, version, checksum, message_count,
 * conflicts).  A save whose result equals the stored content writes
 * nothing and returns status unchanged.
 */
PG_FUNCTION_INFO_V1(chatpersist_save_conversation);
Datum
chatpersist_save_conversation(PG_FUNCTION_ARGS)
{
	WriteRequest req = {0};

	req.kind = WRITE_SAVE;
	read_key(fcinfo, &req);
	if (PG_ARGISNULL(3))
		CpNullArgument("p_messages");
	req.title = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	req.messages = PG_GETARG_JSONB_P(3);
	req.force = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	req.has_expected = !PG_ARGISNULL(5);
	req.expected = req.has_expected ? PG_GETARG_INT64(5) : 0;
	req.metadata = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	return write_entry(fcinfo, &req);
}

/*
 * append_messages(p_user_id uuid, p_conversation_id text, p_messages jsonb,
 *				   p_expected_version bigint DEFAULT NULL) RETURNS save_result
 *
 * p_messages: only the messages to add or update (NULL: 22004).  The call
 * means "the conversation as I last saw it, plus these messages": the
 * version the device saw (p_expected_version; NULL: the stored version)
 * with each given message replacing its copy by id, new ones appended in
 * the given order.  If that is the stored version the result is written
 * directly (updated); if it is older, it is merged with the stored
 * conversation exactly as a stale save_conversation is (merged).  Creates
 * a missing conversation (created).  A retry is unchanged.
 */
PG_FUNCTION_INFO_V1(chatpersist_append_messages);
Datum
chatpersist_append_messages(PG_FUNCTION_ARGS)
{
	WriteRequest req = {0};

	req.kind = WRITE_APPEND;
	read_key(fcinfo, &req);
	if (PG_ARGISNULL(2))
		CpNullArgument("p_messages");
	req.messages = PG_GETARG_JSONB_P(2);
	req.has_expected = !PG_ARGISNULL(3);
	req.expected = req.has_expected ? PG_GETARG_INT64(3) : 0;
	return write_entry(fcinfo, &req);
}

/*
 * delete_conversation(p_user_id uuid, p_conversation_id text,
 *					   p_expected_version bigint DEFAULT NULL)
 *		RETURNS save_result
 *
 * Turns the conversation into a tombstone: deleted = true, messages [],
 * a new version (status deleted), the replaced content kept in history.
 * With p_expected_version, a conversation changed since that version is
 * not deleted: 40001, so that a device never deletes messages it has not
 * seen.  Deleting a tombstone again is unchanged; deleting a conversation
 * that does not exist is unchanged with a NULL version and checksum.
 */
PG_FUNCTION_INFO_V1(chatpersist_delete_conversation);
Datum
chatpersist_delete_conversation(PG_FUNCTION_ARGS)
{
	WriteRequest req = {0};

	req.kind = WRITE_DELETE;
	read_key(fcinfo, &req);
	req.has_expected = !PG_ARGISNULL(2);
	req.expected = req.has_expected ? PG_GETARG_INT64(2) : 0;
	return write_entry(fcinfo, &req);
}

/*
 * restore_version(p_user_id uuid, p_conversation_id text, p_version bigint)
 *		RETURNS save_result
 *
 * p_version: an archived version of the conversation (NULL: 22004; not in
 * history: 22023).  Writes its title, messages and metadata as a new
 * version (status updated; history's replaced_by says restored), reviving
 * a deleted conversation; nothing is rewritten in place.  A conversation
 * removed with a plain DELETE is created again (status created).
 * Restoring content equal to the current one is unchanged.
 */
PG_FUNCTION_INFO_V1(chatpersist_restore_version);
Datum
chatpersist_restore_version(PG_FUNCTION_ARGS)
{
	WriteRequest req = {0};

	req.kind = WRITE_RESTORE;
	read_key(fcinfo, &req);
	if (PG_ARGISNULL(2))
		CpNullArgument("p_version");
	req.restore = PG_GETARG_INT64(2);
	return write_entry(fcinfo, &req);
}

/*
 * A save_conversation without an expected version, for the migrations of
 * migrate.c: creates the conversation, or merges messages into it.  Must
 * be called inside SPI_connect; its SPI results, and what it allocates
 * after its first statement (SPI then leaves CurrentMemoryContext at the
 * connection's procedure context), stay until that connection's
 * SPI_finish, so a caller saving many conversations gives each one an SPI
 * connection of its own (see migrate.c).  argname names the messages in errors; a
 * NULL title or metadata keeps the stored one; created_at (if has_created_at)
 * dates a new row.  Returns the status.
 */
CpStatus
CpSaveMessages(pg_uuid_t *user_id, text *conversation_id, text *title,
			   Jsonb *messages, Jsonb *metadata, bool has_created_at,
			   TimestampTz created_at, const char *argname)
{
	WriteRequest req = {0};
	WriteOutcome out = {0};

	req.kind = WRITE_SAVE;
	req.user_id = user_id;
	req.conversation_id = conversation_id;
	req.title = title;
	req.messages = messages;
	req.metadata = metadata;
	req.has_created_at = has_created_at;
	req.created_at = created_at;
	CpCheckConversationId(VARDATA_ANY(conversation_id),
						  VARSIZE_ANY_EXHDR(conversation_id));
	CpParseMessages(messages, argname, true, &req.incoming);

	do_write(&req, &out);
	CpStatsCountStatus(out.status);
	return out.status;
}

/*
 * Read and check the key, the first two arguments of every write function.
 */
static void
read_key(FunctionCallInfo fcinfo, WriteRequest *req)
{
	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_conversation_id");
	req->user_id = PG_GETARG_UUID_P(0);
	req->conversation_id = PG_GETARG_TEXT_PP(1);
}

/*
 * The part every write function shares: validate the input, do the write
 * and build the save_result.
 */
static Datum
write_entry(FunctionCallInfo fcinfo, WriteRequest *req)
{
	TupleDesc	tupdesc;
	WriteOutcome out = {0};
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	MemoryContext callcxt = CurrentMemoryContext;

	CpRequireStorage();
	CpCheckConversationId(VARDATA_ANY(req->conversation_id),
						  VARSIZE_ANY_EXHDR(req->conversation_id));
	if (req->metadata != NULL)
		CpCheckMetadata(req->metadata, "p_metadata");
	if (req->messages != NULL)
		CpParseMessages(req->messages, "p_messages", true, &req->incoming);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	do_write(req, &out);
	CpStatsCountStatus(out.status);
	if (req->kind == WRITE_APPEND)
		CpStatsAdd(CP_STAT_APPENDS, 1);
	else if (req->kind == WRITE_RESTORE && out.status != CP_STATUS_UNCHANGED)
		CpStatsAdd(CP_STAT_RESTORES, 1);

	if (cp_debug)
		ereport(LOG,
				(errmsg("chatpersist: %s of conversation \"%s\" of user %s: %s",
						req->kind == WRITE_SAVE ? "save" :
						req->kind == WRITE_APPEND ? "append" :
						req->kind == WRITE_DELETE ? "delete" : "restore",
						text_to_cstring(req->conversation_id),
						DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum(req->user_id))),
						CpStatusName(out.status)),
				 errdetail("Expected version %s, stored version %lld, new version %lld, %d incoming messages, %d live messages, %d conflicts, checksum %s.",
						   req->has_expected ?
						   psprintf("%lld", (long long) req->expected) : "none",
						   (long long) out.stored_version,
						   (long long) out.version,
						   req->messages ? req->incoming.nmsgs : 0,
						   out.count, out.conflicts,
						   out.has_version ? out.checksum : "none")));

	SPI_finish();

	/* Build the result in the caller's context */
	MemoryContextSwitchTo(callcxt);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = CStringGetTextDatum(CpStatusName(out.status));
	values[1] = PointerGetDatum(req->conversation_id);
	values[2] = Int64GetDatum(out.version);
	nulls[2] = !out.has_version;
	values[3] = out.has_version ? CStringGetTextDatum(out.checksum) : (Datum) 0;
	nulls[3] = !out.has_version;
	values[4] = Int32GetDatum(out.count);
	values[5] = Int32GetDatum(out.conflicts);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Lock the row (creating it if missing), decide the new content, and write
 * it unless it equals what is stored.  Runs inside SPI_connect.
 */
static void
do_write(WriteRequest *req, WriteOutcome *out)
{
	CpStoredRow row;
	CpNewContent nc = {0};

	/* An append of new ids to the current version needs no lock first */
	if (req->kind == WRITE_APPEND && append_unlocked(req, out))
		return;

	/*
	 * Lock the row, or create it.  If a concurrent first write wins the
	 * insert, continue on its row; if that row is removed again before we
	 * lock it, start over.
	 */
	while (!CpStorageLock(req->user_id, req->conversation_id, &row))
	{
		CHECK_FOR_INTERRUPTS();
		if (create_row(req, out))
			return;
	}
	out->stored_version = row.version;

	switch (req->kind)
	{
		case WRITE_SAVE:
			decide_save(req, &row, &nc);
			break;
		case WRITE_APPEND:
			decide_append(req, &row, &nc);
			break;
		case WRITE_DELETE:
			if (!decide_delete(req, &row, &nc))
			{
				out->status = CP_STATUS_UNCHANGED;
				out->has_version = true;
				out->version = row.version;
				strcpy(out->checksum, row.checksum);
				out->count = row.message_count;
				return;
			}
			break;
		case WRITE_RESTORE:
			decide_restore(req, &row, &nc);
			break;
	}

	out->conflicts = nc.conflicts;
	out->has_version = true;
	if (same_content(&nc, &row) && losers_kept(req, &row, &nc))
	{
		/* Same content: write nothing, keep the version */
		out->status = CP_STATUS_UNCHANGED;
		out->version = row.version;
		strcpy(out->checksum, row.checksum);
		out->count = row.message_count;
		return;
	}

	out->status = nc.status;
	if (!CpStorageUpdate(&row, &nc, &out->version))
		elog(ERROR, "chatpersist: locked conversation row vanished during the write");
	strcpy(out->checksum, nc.checksum);
	out->count = nc.count;
}

/*
 * The common append: new message ids, sent for the current version (or
 * none).  The head is read without a lock, the new checksum continues the
 * head's running hash, and the head's write is a compare-and-swap on the
 * version read, so that a concurrent write makes it write nothing; the
 * message rows follow under the head's new row lock.  Returns false,
 * having written nothing, whenever the locking path must decide (no row, a
 * tombstone, a stale version, an id that has a row, a summary to
 * recompute, nothing to add, or a concurrent write); under REPEATABLE
 * READ and SERIALIZABLE a head changed after the snapshot raises 40001
 * here, as the lock would.
 */
static bool
append_unlocked(WriteRequest *req, WriteOutcome *out)
{
	CpStoredRow row;
	CpNewContent nc = {0};

	if (req->incoming.nmsgs == 0 ||
		!CpStorageRead(req->user_id, req->conversation_id, &row) ||
		row.deleted ||
		(req->has_expected && req->expected != row.version) ||
		!CpStorageCanAppend(&row, &req->incoming))
		return false;

	nc.title = row.title;
	nc.metadata = row.metadata;
	nc.messages = req->messages;
	nc.status = CP_STATUS_UPDATED;
	nc.replaced_by = CP_STATUS_UPDATED;
	if (!CpStorageAppendContent(&row, &req->incoming, &nc, false) ||
		!CpStorageUpdate(&row, &nc, &out->version))
		return false;

	out->status = CP_STATUS_UPDATED;
	out->has_version = true;
	out->stored_version = row.version;
	strcpy(out->checksum, nc.checksum);
	out->count = nc.count;
	return true;
}

/*
 * No row exists: insert one (save, append: the given messages; restore:
 * the archived version; delete: nothing to do).  Returns false if a
 * concurrent transaction's row is in the way.
 */
static bool
create_row(WriteRequest *req, WriteOutcome *out)
{
	CpNewContent nc = {0};

	switch (req->kind)
	{
		case WRITE_DELETE:
			out->status = CP_STATUS_UNCHANGED;
			out->has_version = false;
			return true;
		case WRITE_RESTORE:
			{
				CpArchivedRow ar;

				/*
				 * No row to prove the caller's right to this conversation:
				 * read history with the caller's privileges and policies, so
				 * another user's versions look exactly like missing ones
				 */
				if (!CpHistoryFetch(req->user_id, req->conversation_id, req->restore, false, &ar))
					CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							  errmsg("version " INT64_FORMAT " of conversation \"%s\" is not in history",
									 req->restore, text_to_cstring(req->conversation_id)),
							  errhint("chatpersist.conversation_history() lists the versions that can be restored.")));
				nc.title = ar.title;
				nc.metadata = ar.metadata;
				take_messages(&nc, ar.messages, "the restored version");
			}
			break;
		case WRITE_SAVE:
		case WRITE_APPEND:
			nc.title = req->title ? req->title : cstring_to_text("");
			nc.metadata = req->metadata ? req->metadata : empty_jsonb(true);
			take_incoming(req, &nc);
			break;
	}
	nc.status = CP_STATUS_CREATED;
	nc.replaced_by = CP_STATUS_CREATED;

	if (!CpStorageInsert(req->user_id, req->conversation_id, &nc,
						 req->has_created_at ? &req->created_at : NULL, &out->version))
		return false;

	out->status = CP_STATUS_CREATED;
	out->has_version = true;
	strcpy(out->checksum, nc.checksum);
	out->count = nc.count;
	return true;
}

/*
 * save_conversation on an existing row.  See the function's comment.
 */
static void
decide_save(WriteRequest *req, CpStoredRow *row, CpNewContent *nc)
{
	nc->title = req->title ? req->title : row->title;
	nc->metadata = req->metadata ? req->metadata : row->metadata;

	if (row->deleted || req->force ||
		(req->has_expected && req->expected == row->version))
	{
		/* Revive a tombstone, force, or fast-forward: the array replaces */
		nc->status = row->deleted ? CP_STATUS_CREATED :
			req->force ? CP_STATUS_OVERWRITTEN : CP_STATUS_UPDATED;
		take_incoming(req, nc);
	}
	else
	{
		CpMessageArray base;
		bool		has_base = merge_base(req, row, &base);

		merge_into(has_base ? &base : NULL, row, &req->incoming, nc);

		/* one device's metadata keys do not erase another's */
		if (req->metadata != NULL)
			nc->metadata = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
															  JsonbPGetDatum(row->metadata),
															  JsonbPGetDatum(req->metadata)));
	}
	nc->replaced_by = nc->status;
}

/*
 * append_messages on an existing row.  See the function's comment.
 */
static void
decide_append(WriteRequest *req, CpStoredRow *row, CpNewContent *nc)
{
	nc->title = row->title;
	nc->metadata = row->metadata;

	if (row->deleted)
	{
		/* Revive a tombstone with the given messages */
		nc->status = CP_STATUS_CREATED;
		take_incoming(req, nc);
	}
	else if ((!req->has_expected || req->expected == row->version) &&
			 CpStorageCanAppend(row, &req->incoming))
	{
		/* New ids only: their rows go after the last one, nothing is read */
		nc->status = CP_STATUS_UPDATED;
		nc->messages = req->messages;
		(void) CpStorageAppendContent(row, &req->incoming, nc, true);
	}
	else if (!req->has_expected || req->expected == row->version)
	{
		CpMessageArray stored;
		CpMessageArray fresh;

		/* the given copies, but those the server accepted once before */
		CpParseMessages(CpStoredMessages(row), "the stored conversation", false, &stored);
		nc->status = CP_STATUS_UPDATED;
		take_messages(nc, CpUpsertMessages(&stored,
										   replays_of(req, row, false, &fresh) ? &fresh : &req->incoming),
					  "the resulting conversation");
	}
	else
	{
		CpMessageArray base;
		CpMessageArray seen;

		if (merge_base(req, row, &base))
		{
			/* The device's view: the version it saw, plus its messages */
			CpParseMessages(CpUpsertMessages(&base, &req->incoming),
							"the resulting conversation", true, &seen);
			merge_into(&base, row, &seen, nc);
		}
		else
			merge_into(NULL, row, &req->incoming, nc);
	}
	nc->replaced_by = nc->status;
}

/*
 * delete_conversation on an existing row.  Returns false if it already is
 * a tombstone (nothing to do).
 */
static bool
decide_delete(WriteRequest *req, CpStoredRow *row, CpNewContent *nc)
{
	if (row->deleted)
		return false;
	if (req->has_expected && req->expected != row->version)
		CpReportModifiedConcurrently(text_to_cstring(req->conversation_id),
									 &req->expected, row->version,
									 "Reload the conversation, and delete it again if it should still go.");

	nc->title = row->title;
	nc->metadata = row->metadata;
	nc->deleted = true;
	nc->status = CP_STATUS_DELETED;
	nc->replaced_by = CP_STATUS_DELETED;
	take_messages(nc, empty_jsonb(false), "the tombstone");
	return true;
}

/*
 * restore_version on an existing row: the archived version's content, or
 * the current content when the current version is named (which revives a
 * tombstone).
 */
static void
decide_restore(WriteRequest *req, CpStoredRow *row, CpNewContent *nc)
{
	CpArchivedRow ar;

	if (req->restore == row->version)
	{
		ar.title = row->title;
		ar.messages = CpStoredMessages(row);
		ar.metadata = row->metadata;
	}
	else if (!CpHistoryFetch(req->user_id, req->conversation_id, req->restore, true, &ar))
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("version " INT64_FORMAT " of conversation \"%s\" is not in history",
						 req->restore, text_to_cstring(req->conversation_id)),
				  errdetail("The current version is " INT64_FORMAT ".", row->version),
				  errhint("chatpersist.conversation_history() lists the versions that can be restored.")));

	nc->title = ar.title;
	nc->metadata = ar.metadata;
	nc->status = CP_STATUS_UPDATED;
	nc->replaced_by = CP_STATUS_RESTORED;
	take_messages(nc, ar.messages, "the restored version");
}

/*
 * The base of a merge of the request's messages into the locked row, in
 * *base; returns false when there is none (a union).  For an expected
 * version older than the row's: that version's array from history, or, once
 * history no longer holds it, as far as the rows' stamps tell it
 * (CpStorageStampBase).  Then, for any expected version or none, every
 * given copy that is a replay (CpStorageReplays) is its own base copy, so
 * that the merge takes the stored side for it: a copy the server accepted
 * once never changes the stored state again.
 */
static bool
merge_base(WriteRequest *req, CpStoredRow *row, CpMessageArray *base)
{
	Jsonb	   *jb = NULL;
	CpMessageArray replayed;
	CpArchivedRow ar;

	if (req->has_expected && req->expected >= 1 && req->expected < row->version)
	{
		if (CpHistoryFetch(req->user_id, req->conversation_id, req->expected, true, &ar))
			jb = ar.messages;
		else
			jb = CpStorageStampBase(row, req->expected);
	}
	if (replays_of(req, row, true, &replayed))
	{
		CpMessageArray onto;

		CpParseMessages(jb ? jb : empty_jsonb(false), "the base version", false, &onto);
		jb = CpUpsertMessages(&onto, &replayed);
	}
	if (jb == NULL)
		return false;
	CpParseMessages(jb, "the base version", false, base);
	return true;
}

/*
 * The request's messages that are replays (want_replays) or those that are
 * not, as a parsed array in *out; returns false, and leaves *out alone,
 * when none of them is a replay.
 */
static bool
replays_of(WriteRequest *req, CpStoredRow *row, bool want_replays,
		   CpMessageArray *out)
{
	CpMessageArray *given = &req->incoming;
	bool	   *replay = palloc(sizeof(bool) * Max(given->nmsgs, 1));
	CpMessage **pick;
	int			nreplays = CpStorageReplays(row, given, replay);
	int			n = 0;

	if (nreplays == 0)
		return false;
	pick = palloc(sizeof(CpMessage *) * given->nmsgs);
	for (int i = 0; i < given->nmsgs; i++)
		if (replay[i] == want_replays)
			pick[n++] = &given->msgs[i];
	CpStatsAdd(CP_STAT_REPLAYS, nreplays);
	CpParseMessages(CpBuildArray(pick, n), "p_messages", false, out);
	return true;
}

/*
 * Merge incoming into the stored messages, against base when not NULL, and
 * fill nc with the result (status merged).  The losing incoming copies go
 * to history's discarded column.
 */
static void
merge_into(CpMessageArray *base, CpStoredRow *row, CpMessageArray *incoming,
		   CpNewContent *nc)
{
	CpMessageArray stored;
	CpMergeResult mr;

	CpParseMessages(CpStoredMessages(row), "the stored conversation", false, &stored);
	CpMerge(base, &stored, incoming, &mr);
	CpCheckLimits(mr.merged, mr.nmsgs, "the merged conversation");

	nc->status = CP_STATUS_MERGED;
	nc->messages = mr.merged;
	CpChecksumJsonb(mr.merged, nc->checksum);
	nc->count = mr.nlive;
	nc->conflicts = mr.conflicts;
	if (mr.nb_lost > 0)
		nc->discarded = CpBuildArray(mr.b_lost, mr.nb_lost);
	CpStatsAdd(CP_STAT_MERGES, 1);
	CpStatsAdd(CP_STAT_CONFLICTS, mr.conflicts);
}

/*
 * Make messages the new array: validate it against the limits, checksum
 * it and count its live messages.
 */
static void
take_messages(CpNewContent *nc, Jsonb *messages, const char *what)
{
	CpMessageArray arr;

	CpParseMessages(messages, what, true, &arr);
	nc->messages = messages;
	CpChecksumJsonb(messages, nc->checksum);
	nc->count = arr.nlive;
}

/*
 * Make the given array, validated on entry, the new array as it is.
 */
static void
take_incoming(WriteRequest *req, CpNewContent *nc)
{
	nc->messages = req->messages;
	CpChecksumJsonb(req->messages, nc->checksum);
	nc->count = req->incoming.nlive;
}

/*
 * Is the new content what is stored?  Compared by canonical text, so key
 * order and white space never make a change.
 */
static bool
same_content(CpNewContent *nc, CpStoredRow *row)
{
	return nc->deleted == row->deleted &&
		strcmp(nc->checksum, row->checksum) == 0 &&
		same_text(nc->title, row->title) &&
		same_jsonb_text(nc->metadata, row->metadata) &&
		CpStorageSameMessages(row, nc);
}

/*
 * A merge whose result equals the stored content would write nothing, but
 * the incoming copies that lost a conflict must stay retrievable.  Returns
 * true when there are none, when history is off (chatpersist.history_depth
 * = 0), or when they are already kept: in the discarded column of the
 * version the current one replaced, which is where a retry of the same
 * stale write finds them.  Otherwise the caller writes a new version with
 * the same content, and the trigger archives the losers with the replaced
 * one.
 */
static bool
losers_kept(WriteRequest *req, CpStoredRow *row, CpNewContent *nc)
{
	CpArchivedRow ar;
	CpMessageArray losers;
	CpMessageArray kept;

	if (nc->discarded == NULL || cp_history_depth == 0)
		return true;
	if (!CpHistoryFetch(req->user_id, req->conversation_id, row->version - 1, true, &ar) || ar.discarded == NULL)
		return false;

	CpParseMessages(nc->discarded, "the discarded messages", false, &losers);
	CpParseMessages(ar.discarded, "the discarded messages", false, &kept);
	for (int i = 0; i < losers.nmsgs; i++)
	{
		CpMessage  *m = &losers.msgs[i];
		CpMessage  *k = CpFindMessage(&kept, m->id, m->idlen);

		if (k == NULL || !CpMessagesEqual(m, k))
			return false;
	}
	return true;
}

/*
 * Do two jsonb values print the same canonical text?  Equal bytes do; else
 * compare the texts (equal values can differ in bytes only in principle).
 */
static bool
same_jsonb_text(Jsonb *a, Jsonb *b)
{
	char	   *ta;
	char	   *tb;
	bool		result;

	if (VARSIZE(a) == VARSIZE(b) && memcmp(VARDATA(a), VARDATA(b), VARSIZE(a) - VARHDRSZ) == 0)
		return true;
	ta = JsonbToCString(NULL, &a->root, VARSIZE(a));
	tb = JsonbToCString(NULL, &b->root, VARSIZE(b));
	result = (strcmp(ta, tb) == 0);
	pfree(ta);
	pfree(tb);
	return result;
}

/* Are two (possibly short-header) texts the same bytes? */
static bool
same_text(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* A new empty jsonb object ({}) or array ([]) */
static Jsonb *
empty_jsonb(bool object)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(object ? "{}" : "[]")));
}
