/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  The two migrations an app needs: migrate_user (a guest's
 *	  conversations to the account it signed in to) and import_app_state
 *	  (conversations kept in a legacy app_state JSON value).
 *
 * Both write through the save path of save.c (CpSaveMessages), so every
 * conversation is validated, merged, checksummed, versioned and archived
 * exactly as a save_conversation would do it, and both run as the caller:
 * row-level security and privileges decide what they may read and write.
 * Each call is atomic: it runs inside the caller's transaction, and an
 * error undoes all of it.
 *
 * Concurrency: migrate_user locks the guest's rows (FOR UPDATE, in id
 * order) before it moves them, and each save locks its target row, so a
 * concurrent save to either side waits and then sees the result.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatpersist.h"

static SPIPlanPtr guest_plan = NULL;
static SPIPlanPtr exists_plan = NULL;
static SPIPlanPtr remove_plan = NULL;

static bool lock_existing(pg_uuid_t *user_id, text *conversation_id);
static int	import_conversation(pg_uuid_t *user_id, JsonbContainer *conv,
								const char *key, int keylen, const char *path);
static TimestampTz timestamp_from_ms(double ms, const char *path);

/*
 * migrate_user(p_from_user uuid, p_to_user uuid) RETURNS integer
 *
 * p_from_user: the guest (NULL: 22004).  p_to_user: the signed-in account
 * (NULL: 22004; equal to p_from_user: 22023).  Moves every conversation of
 * the guest to the account: one the account does not have is created there
 * with the guest's title, messages, metadata and created_at; one it has is
 * merged (the union of both message arrays, the account's title and
 * metadata kept); the guest's tombstones (conversations it deleted) are
 * dropped, never revived.  The guest's rows are then deleted, which
 * archives them in the guest's history.  Returns how many live
 * conversations were moved; a second call moves none.  The caller must be able to read and write
 * both users' rows (the owner, or a role with BYPASSRLS such as Supabase's
 * service_role): under row-level security an ordinary user sees no guest
 * rows, and the call moves nothing.
 */
PG_FUNCTION_INFO_V1(chatpersist_migrate_user);
Datum
chatpersist_migrate_user(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *from;
	pg_uuid_t  *to;
	Datum		args[1];
	SPITupleTable *guests;
	uint64		nguests;
	MemoryContext scratch;
	MemoryContext oldcxt;
	int			moved = 0;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_from_user");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_to_user");
	from = PG_GETARG_UUID_P(0);
	to = PG_GETARG_UUID_P(1);
	if (memcmp(from, to, UUID_LEN) == 0)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("cannot migrate a user to itself"),
				  errhint("Pass the guest's user id first, then the signed-in account's.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (guest_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};

		guest_plan = CpPrepareKept("SELECT id, title, messages, metadata, deleted, created_at "
								  "FROM " CP_CONVERSATIONS " "
								  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								  "ORDER BY id FOR UPDATE",
								  1, types);
	}
	if (remove_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		remove_plan = CpPrepareKept("DELETE FROM " CP_CONVERSATIONS " "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								   "AND id OPERATOR(pg_catalog.=) $2",
								   2, types);
	}

	args[0] = UUIDPGetDatum(from);
	if (SPI_execute_plan(guest_plan, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the guest's conversations failed");
	guests = SPI_tuptable;
	nguests = SPI_processed;

	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"chatpersist migrate_user",
									ALLOCSET_DEFAULT_SIZES);
	for (uint64 i = 0; i < nguests; i++)
	{
		HeapTuple	tup = guests->vals[i];
		TupleDesc	desc = guests->tupdesc;
		bool		isnull;
		text	   *id = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
		bool		deleted = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		Datum		rargs[2];

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(scratch);

		if (deleted)
		{
			/* The guest deleted it: nothing to move, and nothing to revive */
		}
		else if (lock_existing(to, id))
		{
			/* Both have it: merge the guest's messages, keep the account's rest */
			(void) CpSaveMessages(to, id, NULL,
								  DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)),
								  NULL, false, 0, "the guest's messages");
		}
		else
			(void) CpSaveMessages(to, id,
								  DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
								  DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)),
								  DatumGetJsonbP(SPI_getbinval(tup, desc, 4, &isnull)),
								  true,
								  DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull)),
								  "the guest's messages");

		rargs[0] = UUIDPGetDatum(from);
		rargs[1] = PointerGetDatum(id);
		if (SPI_execute_plan(remove_plan, rargs, NULL, false, 0) != SPI_OK_DELETE ||
			SPI_processed != 1)
			elog(ERROR, "chatpersist: removing the guest's conversation failed");
		if (!deleted)
			moved++;

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(scratch);
	}
	MemoryContextDelete(scratch);

	SPI_finish();
	PG_RETURN_INT32(moved);
}

/*
 * import_app_state(p_user_id uuid, p_app_state jsonb) RETURNS integer
 *
 * p_user_id: whose conversations (NULL: 22004).  p_app_state: the legacy
 * layout (NULL: 22004): an object whose "conversations" member is either
 * an object keyed by conversation id or an array of conversation objects
 * (each with a string "id"), or such an array itself.  A conversation
 * object has "messages" (an array, default []), and optionally "title" (a
 * string), "metadata" (an object) and "created_at" (epoch milliseconds or
 * ISO-8601).  Each is saved like save_conversation without an expected
 * version: created, or merged into an existing conversation of that id
 * (whose title and metadata are kept).  Returns how many conversations the
 * call created or changed, so a second import of the same state returns
 * 0.  A bad shape raises 22023 naming its path, and nothing is written.
 */
PG_FUNCTION_INFO_V1(chatpersist_import_app_state);
Datum
chatpersist_import_app_state(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *user_id;
	Jsonb	   *state;
	JsonbContainer *list;
	JsonbValue	v;
	const char *listpath;
	MemoryContext scratch;
	MemoryContext oldcxt;
	int			changed = 0;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_app_state");
	user_id = PG_GETARG_UUID_P(0);
	state = PG_GETARG_JSONB_P(1);

	if (JB_ROOT_IS_ARRAY(state) && !JB_ROOT_IS_SCALAR(state))
	{
		list = &state->root;
		listpath = "app_state";
	}
	else if (JB_ROOT_IS_OBJECT(state) &&
			 getKeyJsonValueFromContainer(&state->root, "conversations", 13, &v) != NULL &&
			 v.type == jbvBinary)
	{
		list = v.val.binary.data;
		listpath = "app_state.conversations";
	}
	else
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("app_state holds no conversations"),
				  errdetail("Expected an object with a \"conversations\" object or array, or an array of conversations."),
				  errhint("Pass the legacy app_state value as the app stored it.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"chatpersist import_app_state",
									ALLOCSET_DEFAULT_SIZES);

	if (JsonContainerIsObject(list))
	{
		JsonbIterator *it = JsonbIteratorInit(list);
		JsonbIteratorToken tok;
		JsonbValue	key;

		tok = JsonbIteratorNext(&it, &key, true);	/* WJB_BEGIN_OBJECT */
		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);

			oldcxt = MemoryContextSwitchTo(scratch);
			{
				char	   *path = psprintf("%s.\"%s\"", listpath,
											pnstrdup(key.val.string.val,
													 pg_mbcliplen(key.val.string.val,
																  key.val.string.len, 64)));

				if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
					CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							  errmsg("%s is not a conversation object", path)));
				changed += import_conversation(user_id, v.val.binary.data,
											   key.val.string.val, key.val.string.len,
											   path);
			}
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);
		}
	}
	else
	{
		JsonbIterator *it = JsonbIteratorInit(list);
		JsonbIteratorToken tok;
		int			i = 0;
		JsonbValue *ids = palloc(sizeof(JsonbValue) * Max(JsonContainerSize(list), 1));

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;

			oldcxt = MemoryContextSwitchTo(scratch);
			{
				char	   *path = psprintf("%s[%d]", listpath, i);

				if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
					CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							  errmsg("%s is not a conversation object", path)));

				/*
				 * One conversation twice is two versions of it: which one the
				 * app meant is unknown, and importing both is not idempotent
				 * when they disagree (each import would keep the other's
				 * losing copies once more).  Refuse it, as a repeated message
				 * id is refused.  (An object cannot repeat a key.)
				 */
				ids[i].type = jbvNull;
				if (getKeyJsonValueFromContainer(v.val.binary.data, "id", 2, &ids[i]) != NULL &&
					ids[i].type == jbvString)
				{
					for (int k = 0; k < i; k++)
						if (ids[k].type == jbvString &&
							CpCompareIds(ids[k].val.string.val, ids[k].val.string.len,
										 ids[i].val.string.val, ids[i].val.string.len) == 0)
							CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									  errmsg("%s repeats the \"id\" of %s[%d]", path, listpath, k),
									  errhint("List each conversation once.")));
				}
				changed += import_conversation(user_id, v.val.binary.data,
											   NULL, 0, path);
			}
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);
			i++;
		}
	}

	MemoryContextDelete(scratch);
	SPI_finish();
	PG_RETURN_INT32(changed);
}

/*
 * Import one legacy conversation object (see import_app_state); key is its
 * id when the list is keyed by id, else NULL and the object's "id" is used.
 * Returns 1 if the conversation was created or changed.
 */
static int
import_conversation(pg_uuid_t *user_id, JsonbContainer *conv,
					const char *key, int keylen, const char *path)
{
	JsonbValue	v;
	text	   *id;
	text	   *title = NULL;
	Jsonb	   *messages;
	Jsonb	   *metadata = NULL;
	bool		has_created = false;
	TimestampTz created_at = 0;
	const char *status;

	CHECK_FOR_INTERRUPTS();

	if (key != NULL)
		id = cstring_to_text_with_len(key, keylen);
	else
	{
		if (getKeyJsonValueFromContainer(conv, "id", 2, &v) == NULL ||
			v.type != jbvString)
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s has no string \"id\"", path)));
		id = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
	}

	if (getKeyJsonValueFromContainer(conv, "title", 5, &v) != NULL &&
		v.type != jbvNull)
	{
		if (v.type != jbvString)
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s.title is not a string", path)));
		title = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
	}

	if (getKeyJsonValueFromContainer(conv, "messages", 8, &v) == NULL ||
		v.type == jbvNull)
		messages = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")));
	else if (v.type != jbvBinary)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s.messages is not an array", path)));
	else
		messages = JsonbValueToJsonb(&v);

	if (getKeyJsonValueFromContainer(conv, "metadata", 8, &v) != NULL &&
		v.type != jbvNull)
	{
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s.metadata is not an object", path)));
		metadata = JsonbValueToJsonb(&v);
	}

	if (getKeyJsonValueFromContainer(conv, "created_at", 10, &v) != NULL &&
		v.type != jbvNull)
	{
		double		ms;

		if (!CpParseTimestampValue(&v, &ms))
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s.created_at is not a timestamp", path),
					  errhint("Write timestamps as milliseconds since the epoch or as ISO-8601 strings.")));
		created_at = timestamp_from_ms(ms, path);
		has_created = true;
	}

	/* An existing conversation keeps its title and metadata */
	CpCheckConversationId(VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id));
	if (lock_existing(user_id, id))
	{
		title = NULL;
		metadata = NULL;
	}

	status = CpSaveMessages(user_id, id, title, messages, metadata,
							has_created, created_at,
							psprintf("%s.messages", path));
	return strcmp(status, "unchanged") != 0 ? 1 : 0;
}

/*
 * Lock the conversation's row if it exists (as the caller, so row-level
 * security applies).  Returns whether it exists.
 */
static bool
lock_existing(pg_uuid_t *user_id, text *conversation_id)
{
	Datum		args[2] = {UUIDPGetDatum(user_id), PointerGetDatum(conversation_id)};

	if (exists_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		exists_plan = CpPrepareKept("SELECT FROM " CP_CONVERSATIONS " "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								   "AND id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
								   2, types);
	}
	if (SPI_execute_plan(exists_plan, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading a conversation failed");
	return SPI_processed > 0;
}

/*
 * Epoch milliseconds as a timestamptz; 22023 naming path if out of range.
 */
static TimestampTz
timestamp_from_ms(double ms, const char *path)
{
	double		usecs = ms * 1000.0 -
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	if (isnan(usecs) || usecs < (double) MIN_TIMESTAMP || usecs >= (double) END_TIMESTAMP)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s.created_at is out of range", path)));
	return (TimestampTz) rint(usecs);
}
