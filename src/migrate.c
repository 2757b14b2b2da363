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
 * Memory: a call may move tens of thousands of conversations, so nothing
 * may stay allocated per conversation.  SPI keeps every statement's result
 * table until SPI_finish, and after each statement it leaves
 * CurrentMemoryContext at its procedure context, not at the context that
 * was current before; so each conversation is written inside an SPI
 * connection of its own, opened in a scratch context that is reset
 * afterwards, and migrate_user reads the guest's rows through a cursor, a
 * batch at a time.  A DEBUG1 line reports progress every
 * PROGRESS_INTERVAL conversations.
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

/* Rows of the guest fetched at a time; conversations between progress lines */
#define GUEST_BATCH				100
#define PROGRESS_INTERVAL		1000

/* A conversation id of an array layout, and its index (see first_repeat) */
typedef struct ListedId
{
	const char *id;
	int			idlen;
	int			index;
} ListedId;

static SPIPlanPtr guest_lock_plan = NULL;
static SPIPlanPtr guest_plan = NULL;
static SPIPlanPtr exists_plan = NULL;
static SPIPlanPtr remove_plan = NULL;

static int	move_conversation(pg_uuid_t *from, pg_uuid_t *to,
							  HeapTuple tup, TupleDesc desc);
static bool lock_existing(pg_uuid_t *user_id, text *conversation_id);
static int	compare_listed_ids(const void *a, const void *b);
static int	first_repeat(JsonbContainer *list, int *earlier);
static int	import_conversation(pg_uuid_t *user_id, JsonbContainer *conv,
								const char *key, int keylen, const char *path);
static bool conversation_created_at(JsonbContainer *conv, const char *path,
									bool *camel, TimestampTz *created_at);
static bool known_member(const char *key, int keylen, bool camel);
static Jsonb *legacy_metadata(JsonbContainer *conv, JsonbContainer *given,
							  bool camel);
static Jsonb *drop_null_timestamps(Jsonb *messages);
static TimestampTz timestamp_from_ms(double ms, const char *path,
									 const char *field);

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
	Portal		guests;
	int64		nguests;
	int64		done = 0;
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

	CpRequireStorage();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (guest_lock_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};

		guest_lock_plan = CpPrepareKept("SELECT pg_catalog.count(*) FROM "
										"(SELECT FROM " CP_CONVERSATIONS " "
										"WHERE user_id OPERATOR(pg_catalog.=) $1 "
										"ORDER BY id FOR UPDATE) guest",
										1, types);
	}
	if (guest_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};

		guest_plan = CpPrepareKept("SELECT id, title, metadata, deleted, created_at "
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

	/*
	 * Lock all of the guest's rows first, in id order, as one statement that
	 * returns only their number; the cursor then reads them a batch at a time
	 * (its FOR UPDATE also locks a row created meanwhile).
	 */
	args[0] = UUIDPGetDatum(from);
	if (SPI_execute_plan(guest_lock_plan, args, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "chatpersist: locking the guest's conversations failed");
	{
		bool		isnull;

		nguests = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	guests = SPI_cursor_open(NULL, guest_plan, args, NULL, false);
	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"chatpersist migrate_user",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		SPITupleTable *batch;
		uint64		nbatch;

		SPI_cursor_fetch(guests, true, GUEST_BATCH);
		batch = SPI_tuptable;
		nbatch = SPI_processed;
		if (nbatch == 0)
		{
			SPI_freetuptable(batch);
			break;
		}

		for (uint64 i = 0; i < nbatch; i++)
		{
			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(scratch);
			moved += move_conversation(from, to, batch->vals[i], batch->tupdesc);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);

			if (++done % PROGRESS_INTERVAL == 0)
				ereport(DEBUG1,
						(errmsg("%lld of %lld conversations of the guest migrated",
								(long long) done, (long long) Max(done, nguests))));
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(guests);
	MemoryContextDelete(scratch);

	SPI_finish();
	PG_RETURN_INT32(moved);
}

/*
 * Move one conversation of the guest (a row of migrate_user's cursor,
 * with its columns in the cursor's order) to the account, and delete the
 * guest's row; see migrate_user.  Runs in an SPI connection of its own,
 * so all it allocates, SPI results included, is gone when it returns.
 * Returns 1 if a live conversation was moved, 0 for a tombstone.
 */
static int
move_conversation(pg_uuid_t *from, pg_uuid_t *to, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	text	   *id;
	bool		deleted;
	Jsonb	   *messages = NULL;
	Datum		rargs[2];

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	id = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
	deleted = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	if (!deleted)
		messages = CpStorageReadArray(UUIDPGetDatum(from), PointerGetDatum(id), false);
	if (deleted)
	{
		/* The guest deleted it: nothing to move, and nothing to revive */
	}
	else if (lock_existing(to, id))
	{
		/* Both have it: merge the guest's messages, keep the account's rest */
		(void) CpSaveMessages(to, id, NULL, messages,
							  NULL, false, 0, "the guest's messages");
	}
	else
		(void) CpSaveMessages(to, id,
							  DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull)),
							  messages,
							  DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)),
							  true,
							  DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull)),
							  "the guest's messages");

	rargs[0] = UUIDPGetDatum(from);
	rargs[1] = PointerGetDatum(id);
	if (SPI_execute_plan(remove_plan, rargs, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_processed != 1)
		elog(ERROR, "chatpersist: removing the guest's conversation failed");

	SPI_finish();
	return deleted ? 0 : 1;
}

/*
 * import_app_state(p_user_id uuid, p_app_state jsonb) RETURNS integer
 *
 * p_user_id: whose conversations (NULL: 22004).  p_app_state: the legacy
 * layout (NULL: 22004): an object whose "conversations" member is either
 * an object keyed by conversation id or an array of conversation objects
 * (each with a string "id"), or such an array itself.  A conversation
 * object has "messages" (an array, default []; a message's "created_at"
 * or "updated_at" that is null is dropped, as missing), and optionally
 * "title" (a string), "metadata" (an object) and "created_at" or
 * "createdAt" (epoch milliseconds or ISO-8601); every other member goes
 * into metadata under its own name, where the explicit "metadata" object's
 * members win.  Each is saved like save_conversation without an expected
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
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	int			total;
	int			i = 0;
	int			repeat = -1;
	int			earlier = -1;
	MemoryContext scratch;
	MemoryContext oldcxt;
	int			changed = 0;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_app_state");
	user_id = PG_GETARG_UUID_P(0);
	state = PG_GETARG_JSONB_P(1);
	CpRequireStorage();

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

	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"chatpersist import_app_state",
									ALLOCSET_DEFAULT_SIZES);

	/*
	 * One conversation twice in an array is two versions of it: which one the
	 * app meant is unknown, and importing both is not idempotent when they
	 * disagree (each import would keep the other's losing copies once more).
	 * Refuse it, as a repeated message id is refused.  (An object cannot
	 * repeat a key.)  The repeat is found up front, by sorting, and reported
	 * when the walk below reaches it, so that an earlier element's error
	 * still comes first.
	 */
	if (JsonContainerIsArray(list))
		repeat = first_repeat(list, &earlier);
	total = JsonContainerSize(list);
	it = JsonbIteratorInit(list);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		char	   *path;

		if (tok == WJB_KEY)
		{
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
		}
		else if (tok == WJB_ELEM)
			v = key;
		else
			continue;

		oldcxt = MemoryContextSwitchTo(scratch);
		if (tok == WJB_VALUE)
			path = psprintf("%s.\"%s\"", listpath,
							pnstrdup(key.val.string.val,
									 pg_mbcliplen(key.val.string.val,
												  key.val.string.len, 64)));
		else
			path = psprintf("%s[%d]", listpath, i);

		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s is not a conversation object", path)));
		if (i == repeat)
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s repeats the \"id\" of %s[%d]", path, listpath, earlier),
					  errhint("List each conversation once.")));

		/* Its own SPI connection, freed with everything else it allocated */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (tok == WJB_VALUE)
			changed += import_conversation(user_id, v.val.binary.data,
										   key.val.string.val, key.val.string.len,
										   path);
		else
			changed += import_conversation(user_id, v.val.binary.data,
										   NULL, 0, path);
		SPI_finish();

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(scratch);

		if (++i % PROGRESS_INTERVAL == 0)
			ereport(DEBUG1,
					(errmsg("%d of %d conversations imported", i, total)));
	}
	MemoryContextDelete(scratch);

	PG_RETURN_INT32(changed);
}

/*
 * The first element of the array list whose string "id" an earlier
 * element has too: returns its index and sets *earlier to the first such
 * earlier element, or returns -1.  Sorts (id, index) pairs, O(n log n);
 * the pairs point into list.
 */
static int
first_repeat(JsonbContainer *list, int *earlier)
{
	int			n = JsonContainerSize(list);
	ListedId   *ids = palloc(sizeof(ListedId) * Max(n, 1));
	int			nids = 0;
	int			repeat = -1;
	JsonbIterator *it = JsonbIteratorInit(list);
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue	id;
	int			i = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data) &&
			getKeyJsonValueFromContainer(v.val.binary.data, "id", 2, &id) != NULL &&
			id.type == jbvString)
		{
			ids[nids].id = id.val.string.val;
			ids[nids].idlen = id.val.string.len;
			ids[nids].index = i;
			nids++;
		}
		i++;
	}

	/*
	 * Sorted by id, then index: in each run of one id, the second entry
	 * repeats the first; the answer is the run whose second entry comes first
	 * in the array.
	 */
	qsort(ids, nids, sizeof(ListedId), compare_listed_ids);
	for (int k = 1; k < nids; k++)
	{
		ListedId   *first = &ids[k - 1];

		if (CpCompareIds(first->id, first->idlen, ids[k].id, ids[k].idlen) != 0)
			continue;
		if (first > ids &&
			CpCompareIds(first[-1].id, first[-1].idlen, ids[k].id, ids[k].idlen) == 0)
			continue;			/* not the run's second entry */
		if (repeat < 0 || ids[k].index < repeat)
		{
			repeat = ids[k].index;
			*earlier = first->index;
		}
	}
	pfree(ids);
	return repeat;
}

/* qsort comparator of ListedId: by id, then by index */
static int
compare_listed_ids(const void *a, const void *b)
{
	const ListedId *x = (const ListedId *) a;
	const ListedId *y = (const ListedId *) b;
	int			c = CpCompareIds(x->id, x->idlen, y->id, y->idlen);

	if (c != 0)
		return c;
	return (x->index > y->index) - (x->index < y->index);
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
	Jsonb	   *metadata;
	JsonbContainer *given_metadata = NULL;
	bool		has_created;
	bool		camel;
	TimestampTz created_at = 0;
	CpStatus	status;

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
		messages = drop_null_timestamps(JsonbValueToJsonb(&v));

	if (getKeyJsonValueFromContainer(conv, "metadata", 8, &v) != NULL &&
		v.type != jbvNull)
	{
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("%s.metadata is not an object", path)));
		given_metadata = v.val.binary.data;
	}

	has_created = conversation_created_at(conv, path, &camel, &created_at);
	metadata = legacy_metadata(conv, given_metadata, camel);

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
	return status != CP_STATUS_UNCHANGED ? 1 : 0;
}

/*
 * The created_at of a legacy conversation object: its "created_at", or
 * else its "createdAt" (the older apps' spelling; *camel says it was
 * looked at, so it is not also kept in metadata), as epoch milliseconds or
 * ISO-8601 like a message's timestamps.
 * null is missing.  Returns false if it has neither; 22023 naming path if
 * the value is not a timestamp or is out of timestamptz's range.
 */
static bool
conversation_created_at(JsonbContainer *conv, const char *path, bool *camel,
						TimestampTz *created_at)
{
	JsonbValue	v;
	const char *field = "created_at";
	double		ms;

	*camel = false;
	if (getKeyJsonValueFromContainer(conv, "created_at", 10, &v) == NULL ||
		v.type == jbvNull)
	{
		/* "createdAt" is the created_at, even a null one */
		*camel = true;
		if (getKeyJsonValueFromContainer(conv, "createdAt", 9, &v) == NULL ||
			v.type == jbvNull)
			return false;
		field = "createdAt";
	}
	if (!CpParseTimestampValue(&v, &ms))
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s.%s is not a timestamp", path, field),
				  errhint("Write timestamps as milliseconds since the epoch or as ISO-8601 strings.")));
	*created_at = timestamp_from_ms(ms, path, field);
	return true;
}

/*
 * Is key a member of a legacy conversation object that import_conversation
 * maps to a column (camel: "createdAt" was taken as created_at)?
 */
static bool
known_member(const char *key, int keylen, bool camel)
{
	static const char *const known[] = {"id", "title", "messages", "metadata", "created_at"};

	for (size_t i = 0; i < lengthof(known); i++)
		if ((size_t) keylen == strlen(known[i]) && memcmp(key, known[i], keylen) == 0)
			return true;
	return camel && keylen == 9 && memcmp(key, "createdAt", 9) == 0;
}

/*
 * The metadata of a new conversation imported from the legacy object conv:
 * every member that is not mapped to a column (isPinned, insights, ...)
 * under its own name, then the members of the given "metadata" object,
 * which win where a name is in both.  NULL if there is neither (the
 * column's default, {}).
 */
static Jsonb *
legacy_metadata(JsonbContainer *conv, JsonbContainer *given, bool camel)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	k;
	JsonbValue	v;
	bool		any = given != NULL;
	JsonbValue *res;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int pass = 0; pass < 2; pass++)
	{
		JsonbContainer *obj = pass == 0 ? conv : given;

		if (obj == NULL)
			continue;
		it = JsonbIteratorInit(obj);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
			if (pass == 0 && known_member(k.val.string.val, k.val.string.len, camel))
				continue;
			/* a later push of the same key replaces the earlier one */
			(void) pushJsonbValue(&state, WJB_KEY, &k);
			(void) pushJsonbValue(&state, WJB_VALUE, &v);
			any = true;
		}
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return any ? JsonbValueToJsonb(res) : NULL;
}

/*
 * The legacy apps wrote "created_at": null (and "updated_at": null) for
 * an unknown time.  The import takes null as missing: returns messages
 * without those members, or messages itself if no message has one.
 * Everything else is left for the save's validation.
 */
static Jsonb *
drop_null_timestamps(Jsonb *messages)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	JsonbValue	f;
	bool		any = false;

	if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages))
		return messages;

	it = JsonbIteratorInit(&messages->root);
	while (!any && (tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM && v.type == jbvBinary &&
			JsonContainerIsObject(v.val.binary.data) &&
			((getKeyJsonValueFromContainer(v.val.binary.data, "created_at", 10, &f) != NULL &&
			  f.type == jbvNull) ||
			 (getKeyJsonValueFromContainer(v.val.binary.data, "updated_at", 10, &f) != NULL &&
			  f.type == jbvNull)))
			any = true;
	if (!any)
		return messages;

	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	it = JsonbIteratorInit(&messages->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbIterator *mit;
		JsonbValue	k;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		{
			(void) pushJsonbValue(&state, WJB_ELEM, &v);
			continue;
		}
		(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		mit = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&mit, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&mit, &f, true);
			Assert(tok == WJB_VALUE);
			if (f.type == jbvNull &&
				k.val.string.len == 10 &&
				(memcmp(k.val.string.val, "created_at", 10) == 0 ||
				 memcmp(k.val.string.val, "updated_at", 10) == 0))
				continue;
			(void) pushJsonbValue(&state, WJB_KEY, &k);
			(void) pushJsonbValue(&state, WJB_VALUE, &f);
		}
		(void) pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
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
 * Epoch milliseconds as a timestamptz; 22023 naming path and field if out
 * of range.
 */
static TimestampTz
timestamp_from_ms(double ms, const char *path, const char *field)
{
	double		usecs = ms * 1000.0 -
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	if (isnan(usecs) || usecs < (double) MIN_TIMESTAMP || usecs >= (double) END_TIMESTAMP)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s.%s is out of range", path, field)));
	return (TimestampTz) rint(usecs);
}
