/*-------------------------------------------------------------------------
 *
 * save.c
 *	  save_conversation: the atomic save with a version compare-and-swap.
 *
 * Concurrency: the save locks the conversation's row with SELECT ... FOR
 * UPDATE before it decides anything, so saves of one conversation are
 * serialised by the row lock.  Under READ COMMITTED a save that waited for
 * the lock sees the row as the other save left it (each SPI statement of
 * this VOLATILE function takes a fresh snapshot) and merges against it.
 * Under REPEATABLE READ and SERIALIZABLE the lock or the write raises 40001
 * when the row changed after the transaction's snapshot; that error
 * reaches the caller untouched.
 *
 * Concurrent first saves: when no row exists, the save inserts with ON
 * CONFLICT DO NOTHING.  If another transaction inserted the row first, the
 * insert waits for it and inserts nothing, and the save then locks the
 * winner's row and takes the merge path, so no unique violation reaches
 * the caller.
 *
 * The save validates, merges and checksums the messages itself; the guard
 * trigger (trigger.c) trusts those results for exactly the row described
 * by CpPendingWrite and still bumps the version, stamps the row and
 * archives the replaced content.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/save.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"

#include "chatpersist.h"

/* The conversation row as locked by the save */
typedef struct StoredRow
{
	int64		version;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		message_count;
	bool		deleted;
	text	   *title;
	Datum		metadata;		/* jsonb, maybe toasted */
	Datum		messages;		/* jsonb, maybe toasted */
} StoredRow;

/* Plans prepared on first use and kept for the life of the backend */
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr base_plan = NULL;

static bool lock_row(Datum user_id, Datum conversation_id, StoredRow *row);
static bool insert_row(Datum user_id, Datum conversation_id, Datum title,
					   Datum messages, Datum metadata, int64 *version);
static int64 update_row(Datum user_id, Datum conversation_id, Datum title,
						Datum messages, Datum metadata);
static int	execute_noted(SPIPlanPtr plan, Datum *args);
static Jsonb *fetch_base(Datum user_id, Datum conversation_id, int64 version);
static void set_note(pg_uuid_t *user_id, text *conversation_id, Jsonb *messages,
					 const char *checksum, int32 count, const char *status,
					 Jsonb *discarded);
static bool same_jsonb_text(Jsonb *a, Jsonb *b);
static Oid	extension_table_owner(void);

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
	pg_uuid_t  *user_id;
	text	   *conversation_id;
	text	   *title;
	Jsonb	   *messages;
	bool		force;
	bool		has_expected;
	int64		expected = 0;
	Jsonb	   *metadata;
	CpMessageArray incoming;
	char		in_checksum[CP_CHECKSUM_LEN + 1];
	StoredRow	row;
	const char *status;
	int64		version = 0;
	int64		stored_version = 0;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		count = 0;
	int32		conflicts = 0;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_conversation_id");
	if (PG_ARGISNULL(3))
		CpNullArgument("p_messages");

	user_id = PG_GETARG_UUID_P(0);
	conversation_id = PG_GETARG_TEXT_PP(1);
	CpCheckConversationId(VARDATA_ANY(conversation_id),
						  VARSIZE_ANY_EXHDR(conversation_id));
	title = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	messages = PG_GETARG_JSONB_P(3);
	force = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	has_expected = !PG_ARGISNULL(5);
	if (has_expected)
		expected = PG_GETARG_INT64(5);
	metadata = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	if (metadata != NULL)
		CpCheckMetadata(metadata, "p_metadata");

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/* Validate and checksum the device's messages before touching the row */
	CpParseMessages(messages, "p_messages", true, &incoming);
	CpChecksumContainer(&messages->root, in_checksum);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (!lock_row(UUIDPGetDatum(user_id), PointerGetDatum(conversation_id), &row))
	{
		Datum		new_title = title ? PointerGetDatum(title) : CStringGetTextDatum("");
		Datum		new_metadata = metadata ? JsonbPGetDatum(metadata) :
			DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		bool		inserted;

		set_note(user_id, conversation_id, messages, in_checksum,
				 incoming.nlive, "created", NULL);
		inserted = insert_row(UUIDPGetDatum(user_id),
							  PointerGetDatum(conversation_id),
							  new_title, JsonbPGetDatum(messages),
							  new_metadata, &version);

		if (inserted)
		{
			status = "created";
			strcpy(checksum, in_checksum);
			count = incoming.nlive;
			goto done;
		}

		/* A concurrent first save won: merge into its row */
		if (!lock_row(UUIDPGetDatum(user_id), PointerGetDatum(conversation_id), &row))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("conversation \"%s\" was modified concurrently",
							text_to_cstring(conversation_id)),
					 errdetail("It was created and removed by other transactions during this save."),
					 errhint("Retry the save.")));
	}

	stored_version = row.version;

	{
		Jsonb	   *new_messages;
		text	   *new_title = title ? title : row.title;
		Jsonb	   *new_metadata;
		Jsonb	   *stored_metadata = DatumGetJsonbP(row.metadata);
		Jsonb	   *discarded = NULL;
		char		new_checksum[CP_CHECKSUM_LEN + 1];
		int32		new_count;

		new_metadata = metadata ? metadata : stored_metadata;

		if (row.deleted)
		{
			/* Saving to a tombstone revives it with the device's messages */
			status = "created";
			new_messages = messages;
			strcpy(new_checksum, in_checksum);
			new_count = incoming.nlive;
		}
		else if (force || (has_expected && expected == row.version))
		{
			status = force ? "overwritten" : "updated";
			new_messages = messages;
			strcpy(new_checksum, in_checksum);
			new_count = incoming.nlive;
		}
		else
		{
			CpMessageArray stored;
			CpMessageArray base;
			Jsonb	   *base_jb = NULL;
			CpMergeResult mr;

			if (has_expected && expected >= 1 && expected < row.version)
				base_jb = fetch_base(UUIDPGetDatum(user_id),
									 PointerGetDatum(conversation_id), expected);
			if (base_jb != NULL)
				CpParseMessages(base_jb, "the base version", false, &base);

			CpParseMessages(DatumGetJsonbP(row.messages), "the stored conversation",
							false, &stored);
			CpMerge(base_jb ? &base : NULL, &stored, &incoming, &mr);
			CpCheckLimits(mr.merged, mr.nmsgs, "the merged conversation");

			status = "merged";
			new_messages = mr.merged;
			CpChecksumContainer(&new_messages->root, new_checksum);
			new_count = mr.nlive;
			conflicts = mr.conflicts;
			if (mr.nb_lost > 0)
				discarded = CpBuildArray(mr.b_lost, mr.nb_lost);
			if (metadata != NULL)
				new_metadata = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
																  JsonbPGetDatum(stored_metadata),
																  JsonbPGetDatum(metadata)));
		}

		if (!row.deleted &&
			strcmp(new_checksum, row.checksum) == 0 &&
			VARSIZE_ANY_EXHDR(new_title) == VARSIZE_ANY_EXHDR(row.title) &&
			memcmp(VARDATA_ANY(new_title), VARDATA_ANY(row.title),
				   VARSIZE_ANY_EXHDR(new_title)) == 0 &&
			same_jsonb_text(new_metadata, stored_metadata) &&
			same_jsonb_text(new_messages, DatumGetJsonbP(row.messages)))
		{
			/* Same content: write nothing, keep the version */
			status = "unchanged";
			version = row.version;
			strcpy(checksum, row.checksum);
			count = row.message_count;
		}
		else
		{
			set_note(user_id, conversation_id, new_messages, new_checksum,
					 new_count, status, discarded);
			version = update_row(UUIDPGetDatum(user_id),
								 PointerGetDatum(conversation_id),
								 PointerGetDatum(new_title),
								 JsonbPGetDatum(new_messages),
								 JsonbPGetDatum(new_metadata));
			strcpy(checksum, new_checksum);
			count = new_count;
		}
	}

done:
	if (cp_debug)
	{
		char	   *cid = text_to_cstring(conversation_id);
		char	   *uid = DatumGetCString(DirectFunctionCall1(uuid_out,
															  UUIDPGetDatum(user_id)));

		ereport(LOG,
				(errmsg("chatpersist: save of conversation \"%s\" of user %s: %s",
						cid, uid, status),
				 errdetail("Expected version %s%s, stored version %lld, new version %lld, %d incoming messages, %d live messages, %d conflicts, checksum %s.",
						   has_expected ? "" : "none",
						   has_expected ? psprintf("%lld", (long long) expected) : "",
						   (long long) stored_version, (long long) version,
						   incoming.nmsgs, count, conflicts, checksum)));
	}

	SPI_finish();

	/* Build the result in the caller's context */
	MemoryContextSwitchTo(callcxt);
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = CStringGetTextDatum(status);
	values[1] = PointerGetDatum(conversation_id);
	values[2] = Int64GetDatum(version);
	values[3] = CStringGetTextDatum(checksum);
	values[4] = Int32GetDatum(count);
	values[5] = Int32GetDatum(conflicts);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Lock the conversation's row FOR UPDATE and read it into *row (values stay
 * valid until SPI_finish).  Returns false if there is no such row.
 */
static bool
lock_row(Datum user_id, Datum conversation_id, StoredRow *row)
{
	Datum		args[2] = {user_id, conversation_id};
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
	strlcpy(row->checksum, TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull)),
			sizeof(row->checksum));
	row->message_count = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	row->deleted = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	row->title = DatumGetTextPP(SPI_getbinval(tup, desc, 5, &isnull));
	row->metadata = SPI_getbinval(tup, desc, 6, &isnull);
	row->messages = SPI_getbinval(tup, desc, 7, &isnull);
	return true;
}

/*
 * INSERT ... ON CONFLICT DO NOTHING of the row described by CpPendingWrite.
 * Returns true and the new version if a
 * row was inserted, false if another transaction's row is in the way.
 */
static bool
insert_row(Datum user_id, Datum conversation_id, Datum title,
		   Datum messages, Datum metadata, int64 *version)
{
	Datum		args[5] = {user_id, conversation_id, title, messages, metadata};
	bool		isnull;
	int			rc;

	if (insert_plan == NULL)
	{
		Oid			types[5] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID};

		insert_plan = CpPrepareKept("INSERT INTO " CP_CONVERSATIONS " "
								   "(user_id, id, title, messages, metadata) "
								   "VALUES ($1, $2, $3, $4, $5) "
								   "ON CONFLICT (user_id, id) DO NOTHING "
								   "RETURNING version",
								   5, types);
	}

	rc = execute_noted(insert_plan, args);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

/*
 * Write new content, described by CpPendingWrite, into the locked row; the
 * trigger bumps the version.
 * Returns the new version.
 */
static int64
update_row(Datum user_id, Datum conversation_id, Datum title,
		   Datum messages, Datum metadata)
{
	Datum		args[5] = {user_id, conversation_id, title, messages, metadata};
	bool		isnull;
	int			rc;

	if (update_plan == NULL)
	{
		Oid			types[5] = {UUIDOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID};

		update_plan = CpPrepareKept("UPDATE " CP_CONVERSATIONS " "
								   "SET title = $3, messages = $4, metadata = $5, "
								   "deleted = false "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								   "AND id OPERATOR(pg_catalog.=) $2 "
								   "RETURNING version",
								   5, types);
	}

	rc = execute_noted(update_plan, args);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		elog(ERROR, "chatpersist: locked conversation row vanished during save");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Execute the write that CpPendingWrite describes, and forget the note (the
 * trigger normally consumes it; an error clears it through the transaction
 * callbacks of chatpersist.c).
 */
static int
execute_noted(SPIPlanPtr plan, Datum *args)
{
	int			rc = SPI_execute_plan(plan, args, NULL, false, 0);

	CpClearPendingWrite();
	return rc;
}

/*
 * The messages of an archived version, the base of a three-way merge, or
 * NULL if that version has left history.  History is the extension's own
 * bookkeeping, so it is read as the table owner: the caller has already
 * proved its right to this conversation by locking its row.
 */
static Jsonb *
fetch_base(Datum user_id, Datum conversation_id, int64 version)
{
	Datum		args[3] = {user_id, conversation_id, Int64GetDatum(version)};
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;
	int			rc;
	Datum		d;

	if (base_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};

		base_plan = CpPrepareKept("SELECT messages FROM " CP_HISTORY " "
								 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								 "AND conversation_id OPERATOR(pg_catalog.=) $2 "
								 "AND version OPERATOR(pg_catalog.=) $3",
								 3, types);
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(extension_table_owner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	rc = SPI_execute_plan(base_plan, args, NULL, true, 1);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : DatumGetJsonbP(d);
}

/*
 * Fill the trusted-write note for the write that follows.
 */
static void
set_note(pg_uuid_t *user_id, text *conversation_id, Jsonb *messages,
		 const char *checksum, int32 count, const char *status,
		 Jsonb *discarded)
{
	CpPendingWrite.active = true;
	memcpy(&CpPendingWrite.user_id, user_id, sizeof(pg_uuid_t));
	CpPendingWrite.conversation_id = VARDATA_ANY(conversation_id);
	CpPendingWrite.conversation_id_len = VARSIZE_ANY_EXHDR(conversation_id);
	CpPendingWrite.messages = messages;
	strlcpy(CpPendingWrite.checksum, checksum, sizeof(CpPendingWrite.checksum));
	CpPendingWrite.message_count = count;
	CpPendingWrite.replaced_by = status;
	CpPendingWrite.discarded = discarded;
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

/*
 * Owner of chatpersist.conversations, who owns the extension's tables.
 */
static Oid
extension_table_owner(void)
{
	Oid			relid = get_relname_relid("conversations",
										  get_namespace_oid(CP_SCHEMA, false));
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "chatpersist: table %s is missing", CP_CONVERSATIONS);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
