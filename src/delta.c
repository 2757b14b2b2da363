/*-------------------------------------------------------------------------
 *
 * delta.c
 *	  messages_since: what a device holding one version of a conversation
 *	  needs to reach the current one.
 *
 * Every message row carries changed_version, the version that wrote its
 * current copy, its position or its removal (storage.c, message_trigger.c).
 * So a device that holds the array of version v already has, unchanged and
 * in the same relative order, every live row stamped at or before v, and
 * needs only:
 *	- the live rows stamped after v, each with the id of the live message
 *	  before it in the current array ("after", NULL for the first), in
 *	  array order;
 *	- the ids it holds that are no longer in the array: every row removed
 *	  after v, and the ids whose rows are gone altogether (a direct DELETE
 *	  forgets a message), which only history knows: a copy valid at v
 *	  (valid_from <= v < valid_to) of an id without a row.  A removed row's
 *	  added_version does not tell whether the device had the id (a row
 *	  deleted and inserted again starts afresh), so every row removed after
 *	  v is listed; a device drops the ids it has and ignores the others.
 * Applied in that order (drop every id listed, then insert each live entry
 * after its "after"), the device's array becomes the current array: the
 * unchanged rows keep their order, and each changed row lands after its
 * predecessor, which is unchanged or was inserted just before.
 *
 * The answer is a delta only when the array at v is known: v is the
 * current version, or history still holds version v (history's pruning
 * keeps every copy valid at a kept version).  Otherwise, and for v = 0 or
 * a version newer than the conversation's (a rewind, e.g. a restore from
 * a backup), the answer is every live message, marked full_reload: the
 * device starts from an empty array.
 *
 * The head is read with the caller's rights (row-level security decides
 * whether the caller sees the conversation at all: no row), the message
 * rows and history as the tables' owner, as load_conversation does; every
 * statement runs under the caller's snapshot, so the head and the rows
 * agree.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/delta.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/* The head's columns, in the order of chatpersist.message_delta */
#define CP_DELTA_HEAD_SQL \
	"SELECT id, version, checksum, title, metadata, message_count, deleted, " \
	"last_modified FROM " CP_CONVERSATIONS " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND id OPERATOR(pg_catalog.=) $2"
#define CP_DELTA_HEAD_NCOLUMNS	8
#define CP_DELTA_NCOLUMNS		(CP_DELTA_HEAD_NCOLUMNS + 2)

/* Does history hold version $3? */
#define CP_DELTA_COVERED_SQL \
	"SELECT 1 FROM " CP_HISTORY " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND version OPERATOR(pg_catalog.=) $3"

/*
 * The entries of a delta from version $3: the removals (in id order), then
 * the live rows stamped after $3 (in array order).  The window sorts only
 * the keys of the conversation's live rows; the changed rows' messages are
 * fetched by key afterwards, so the work on message bodies follows the
 * number of changes, not the conversation's length.
 */
#define CP_DELTA_SQL \
	"SELECT e FROM (" \
	"SELECT 0 AS g, 0::pg_catalog.int8 AS p, r.id AS k, " \
	"pg_catalog.jsonb_build_object('id', r.id, 'removed', true) AS e " \
	"FROM " CP_MESSAGES " r " \
	"WHERE r.user_id OPERATOR(pg_catalog.=) $1 " \
	"AND r.conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND r.removed " \
	"AND r.changed_version OPERATOR(pg_catalog.>) $3 " \
	"UNION ALL " \
	"SELECT 0, 0, h.id, pg_catalog.jsonb_build_object('id', h.id, 'removed', true) " \
	"FROM " CP_HISTORY_MESSAGES " h " \
	"WHERE h.user_id OPERATOR(pg_catalog.=) $1 " \
	"AND h.conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND h.valid_from OPERATOR(pg_catalog.<=) $3 " \
	"AND h.valid_to OPERATOR(pg_catalog.>) $3 " \
	"AND NOT EXISTS (SELECT 1 FROM " CP_MESSAGES " m " \
	"WHERE m.user_id OPERATOR(pg_catalog.=) $1 " \
	"AND m.conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND m.id OPERATOR(pg_catalog.=) h.id) " \
	"UNION ALL " \
	"SELECT 1, w.pos, w.id, pg_catalog.jsonb_build_object('id', w.id, 'after', w.after, " \
	"'message', (SELECT m.message FROM " CP_MESSAGES " m " \
	"WHERE m.user_id OPERATOR(pg_catalog.=) $1 " \
	"AND m.conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND m.id OPERATOR(pg_catalog.=) w.id)) " \
	"FROM (SELECT id, pos, changed_version, " \
	"pg_catalog.lag(id) OVER (ORDER BY pos) AS after " \
	"FROM " CP_MESSAGES " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND NOT removed) w " \
	"WHERE w.changed_version OPERATOR(pg_catalog.>) $3" \
	") d ORDER BY g, p, k"

/* Every live message, in array order, as entries of a full reload */
#define CP_DELTA_ALL_SQL \
	"SELECT pg_catalog.jsonb_build_object('id', id, " \
	"'after', pg_catalog.lag(id) OVER (ORDER BY pos), 'message', message) " \
	"FROM " CP_MESSAGES " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND NOT removed " \
	"ORDER BY pos"

/* the statements' parameters: the key ($1, $2) and the version ($3) */
static Oid	delta_types[3] = {UUIDOID, TEXTOID, INT8OID};

static SPIPlanPtr head_plan = NULL;
static SPIPlanPtr covered_plan = NULL;
static SPIPlanPtr delta_plan = NULL;
static SPIPlanPtr all_plan = NULL;

static Datum changes_since_version(Datum *args, int64 since, int64 current,
								   bool full);

/*
 * messages_since(p_user_id uuid, p_conversation_id text, p_version bigint)
 *		RETURNS SETOF chatpersist.message_delta
 *
 * p_user_id, p_conversation_id: the key (NULL: 22004).  p_version: the
 * version the device holds; 0 or NULL: none; negative: 22023.  Returns no
 * row if the caller cannot see the conversation, else one row: the head,
 * full_reload, and changes (see the file header; docs/sync.md gives the
 * client's side).
 */
PG_FUNCTION_INFO_V1(chatpersist_messages_since);
Datum
chatpersist_messages_since(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		args[3];
	int64		since = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	Datum		values[CP_DELTA_NCOLUMNS];
	bool		nulls[CP_DELTA_NCOLUMNS];
	int64		current;
	bool		full;
	CpSavedUser saved;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_conversation_id");
	if (since < 0)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("version must not be negative"),
				  errdetail("The version is " INT64_FORMAT ".", since),
				  errhint("Pass the version the device holds, or 0 if it holds none.")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = Int64GetDatum(since);

	CpRequireStorage();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the head, with the caller's rights */
	if (head_plan == NULL)
		head_plan = CpPrepareKept(CP_DELTA_HEAD_SQL, 2, delta_types);
	if (SPI_execute_plan(head_plan, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation failed");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return (Datum) 0;
	}
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, values, nulls);
	current = DatumGetInt64(values[1]);

	CpBecomeOwner(CpExtensionOwner(), &saved);
	full = since == 0 || since > current;
	if (!full && since < current)
	{
		if (covered_plan == NULL)
			covered_plan = CpPrepareKept(CP_DELTA_COVERED_SQL, 3, delta_types);
		if (SPI_execute_plan(covered_plan, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "chatpersist: reading history failed");
		full = SPI_processed == 0;
	}
	values[CP_DELTA_HEAD_NCOLUMNS] = BoolGetDatum(full);
	nulls[CP_DELTA_HEAD_NCOLUMNS] = false;
	values[CP_DELTA_HEAD_NCOLUMNS + 1] = changes_since_version(args, since, current, full);
	nulls[CP_DELTA_HEAD_NCOLUMNS + 1] = false;
	CpRestoreUser(&saved);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	SPI_finish();
	return (Datum) 0;
}

/*
 * The changes array: the entries of a delta from version since to version
 * current, or of a full reload.  Runs as the tables' owner, inside the
 * caller's SPI connection; the result lives in the SPI procedure's memory.
 */
static Datum
changes_since_version(Datum *args, int64 since, int64 current, bool full)
{
	SPIPlanPtr	plan;

	if (full)
	{
		if (all_plan == NULL)
			all_plan = CpPrepareKept(CP_DELTA_ALL_SQL, 2, delta_types);
		plan = all_plan;
	}
	else
	{
		/* the device is up to date */
		if (since == current)
			return JsonbPGetDatum(CpArrayFromRows(NULL, 0, 0, 1));
		if (delta_plan == NULL)
			delta_plan = CpPrepareKept(CP_DELTA_SQL, 3, delta_types);
		plan = delta_plan;
	}
	if (SPI_execute_plan(plan, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation's messages failed");
	return JsonbPGetDatum(CpArrayFromRows(SPI_tuptable, 0, SPI_processed, 1));
}
