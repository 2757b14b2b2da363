/*-------------------------------------------------------------------------
 *
 * load.c
 *	  The reads: load_conversations, load_conversation and changes_since
 *	  (conversation_history is history.c's).
 *
 * Plain reads through SPI under the caller's snapshot and privileges (so
 * row-level security applies); no locks beyond what SELECT takes.  They are
 * C rather than LANGUAGE sql because Citus cannot plan a parameterised SQL
 * function that reads a distributed table.
 *
 * The change cursor.  Every write stamps the row with the xid8 of its top
 * transaction (change_xid, set by the guard trigger).  changes_since
 * returns the rows stamped after the caller's cursor but before the xmin
 * of its own snapshot, in stamp order, and the stamp is the row's cursor.
 * Every transaction whose xid is below the snapshot's xmin had finished
 * when the snapshot was taken, and every xid assigned later is at least
 * the snapshot's xmax, so no commit can ever appear below a cursor the
 * caller was given: a change committed by a younger transaction while an
 * older one still runs is held back until the older one ends, late but
 * never lost.
 *
 * 1.1: the cursor handed out is the stamp tagged with this database's
 * origin, and a cursor from elsewhere reads from stamp 0, a full resync
 * (cursor.c).  A stamp at or above the snapshot's xmax on a row the
 * snapshot sees, other than the reader's own transaction's, cannot be a
 * transaction of this database (every other transaction that wrote a
 * visible row had ended, so is below xmax): it came from elsewhere with
 * its triggers disabled.  Such a row is served as changed
 * now, with the stamp xmin - 1, below every stamp still to commit and
 * not below any cursor handed out before, so it is never invisible; it
 * comes again whenever xmin has moved, until restamp() gives it a real
 * stamp.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tupconvert.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/* A head as the first columns of chatpersist.conversation, messages NULL */
#define CP_HEAD_COLUMNS \
	"user_id, id, title, NULL::pg_catalog.jsonb, metadata, version, checksum, " \
	"message_count, created_at, last_modified, deleted, change_xid"
#define CP_HEAD_NCOLUMNS	12

static SPIPlanPtr arrays_plan = NULL;
static SPIPlanPtr load_all_plan = NULL;
static SPIPlanPtr load_one_plan = NULL;
static SPIPlanPtr changes_plan = NULL;

static void return_with_arrays(FunctionCallInfo fcinfo, SPIPlanPtr *plan,
							   const char *sql, int nargs, Oid *types, Datum *args);

/*
 * load_conversations(p_user_id uuid) RETURNS SETOF chatpersist.conversation
 *
 * p_user_id: whose conversations (NULL: 22004).  Returns the live (not
 * deleted) conversations, newest last_modified first, then by id.
 */
PG_FUNCTION_INFO_V1(chatpersist_load_conversations);
Datum
chatpersist_load_conversations(PG_FUNCTION_ARGS)
{
	Datum		args[1];
	Oid			types[1] = {UUIDOID};

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	args[0] = PG_GETARG_DATUM(0);

	return_with_arrays(fcinfo, &load_all_plan,
					   "SELECT " CP_HEAD_COLUMNS " FROM " CP_CONVERSATIONS " "
					   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
					   "AND NOT deleted "
					   "ORDER BY last_modified DESC, id",
					   1, types, args);
	return (Datum) 0;
}

/*
 * load_conversation(p_user_id uuid, p_conversation_id text)
 *		RETURNS SETOF chatpersist.conversation
 *
 * p_user_id, p_conversation_id: the key (NULL: 22004).  Returns the
 * conversation if it exists and is not deleted, else no row.
 */
PG_FUNCTION_INFO_V1(chatpersist_load_conversation);
Datum
chatpersist_load_conversation(PG_FUNCTION_ARGS)
{
	Datum		args[2];
	Oid			types[2] = {UUIDOID, TEXTOID};

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_conversation_id");
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);

	return_with_arrays(fcinfo, &load_one_plan,
					   "SELECT " CP_HEAD_COLUMNS " FROM " CP_CONVERSATIONS " "
					   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
					   "AND id OPERATOR(pg_catalog.=) $2 "
					   "AND NOT deleted",
					   2, types, args);
	return (Datum) 0;
}

/* A conversation's array, by its id, for return_with_arrays */
typedef struct ArrayEntry
{
	char		id[CP_MAX_ID_BYTES + 1];
	Datum		messages;
} ArrayEntry;

/*
 * Run a query of heads (CP_HEAD_COLUMNS) with the caller's privileges, add
 * each head's message array (read as the tables' owner, under the same
 * snapshot) and return the rows as the materialized set of
 * chatpersist.conversation.  One head: its array alone; more: the arrays of
 * all the user's conversations in one grouped scan.
 */
static void
return_with_arrays(FunctionCallInfo fcinfo, SPIPlanPtr *plan,
				   const char *sql, int nargs, Oid *types, Datum *args)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SPITupleTable *heads;
	uint64		nheads;
	HTAB	   *arrays = NULL;
	Datum		empty = (Datum) 0;
	CpSavedUser saved;
	int			rc;

	CpRequireStorage();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*plan == NULL)
		*plan = CpPrepareKept(sql, nargs, types);
	rc = SPI_execute_plan(*plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	heads = SPI_tuptable;
	nheads = SPI_processed;

	if (nheads > 1)
	{
		HASHCTL		ctl;

		if (arrays_plan == NULL)
		{
			Oid			atypes[1] = {UUIDOID};

			arrays_plan = CpPrepareKept("SELECT conversation_id, message "
										"FROM " CP_MESSAGES " "
										"WHERE user_id OPERATOR(pg_catalog.=) $1 "
										"AND NOT removed "
										"ORDER BY conversation_id, pos",
										1, atypes);
		}
		CpBecomeOwner(CpExtensionOwner(), &saved);
		rc = SPI_execute_plan(arrays_plan, args, NULL, true, 0);
		CpRestoreUser(&saved);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "chatpersist: reading the conversations' messages failed");

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = CP_MAX_ID_BYTES + 1;
		ctl.entrysize = sizeof(ArrayEntry);
		ctl.hcxt = CurrentMemoryContext;
		arrays = hash_create("chatpersist arrays", Max(SPI_processed, 16), &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		/* each conversation's rows, in pos order, are one run */
		for (uint64 i = 0; i < SPI_processed;)
		{
			char		key[CP_MAX_ID_BYTES + 1];
			ArrayEntry *e;
			bool		isnull;
			uint64		end = i + 1;
			text	   *id = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));

			while (end < SPI_processed)
			{
				text	   *next = DatumGetTextPP(SPI_getbinval(SPI_tuptable->vals[end],
																SPI_tuptable->tupdesc, 1, &isnull));

				if (VARSIZE_ANY_EXHDR(next) != VARSIZE_ANY_EXHDR(id) ||
					memcmp(VARDATA_ANY(next), VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id)) != 0)
					break;
				end++;
			}
			memset(key, 0, sizeof(key));
			text_to_cstring_buffer(id, key, sizeof(key));
			e = hash_search(arrays, key, HASH_ENTER, NULL);
			e->messages = JsonbPGetDatum(CpArrayFromRows(SPI_tuptable, i, end, 2));
			i = end;
		}
	}

	for (uint64 i = 0; i < nheads; i++)
	{
		Datum		values[CP_HEAD_NCOLUMNS];
		bool		nulls[CP_HEAD_NCOLUMNS];
		ArrayEntry *e = NULL;

		heap_deform_tuple(heads->vals[i], heads->tupdesc, values, nulls);
		if (arrays == NULL)
			values[3] = JsonbPGetDatum(CpStorageReadArray(values[0], values[1], true));
		else
		{
			char		key[CP_MAX_ID_BYTES + 1];

			memset(key, 0, sizeof(key));
			text_to_cstring_buffer(DatumGetTextPP(values[1]), key, sizeof(key));
			e = hash_search(arrays, key, HASH_FIND, NULL);
			if (e == NULL && empty == (Datum) 0)
				empty = DirectFunctionCall1(jsonb_in, CStringGetDatum("[]"));
			values[3] = e ? e->messages : empty;
		}
		nulls[3] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	SPI_finish();
}

/*
 * changes_since(p_user_id uuid, p_cursor bigint DEFAULT 0)
 *		RETURNS TABLE(conversation_id text, version bigint, checksum text,
 *					  deleted boolean, last_modified timestamptz,
 *					  cursor bigint)
 *
 * p_user_id: whose conversations (NULL: 22004).  p_cursor: the largest
 * cursor the device has seen, 0 (or NULL) for everything; negative: 22023;
 * a cursor of another database: everything (cursor.c).  Returns the
 * conversations, tombstones included, changed after the cursor, in cursor
 * order (see the file header for why none is missed).
 */
PG_FUNCTION_INFO_V1(chatpersist_changes_since);
Datum
chatpersist_changes_since(PG_FUNCTION_ARGS)
{
	Datum		args[3];
	Oid			types[3] = {UUIDOID, INT8OID, INT8OID};
	int64		cursor = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (cursor < 0)
		CpReject((errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("cursor must not be negative"),
				  errdetail("The cursor is " INT64_FORMAT ".", cursor),
				  errhint("Pass 0 to read every change, then the largest cursor returned so far.")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = Int64GetDatum(CpCursorStamp(cursor));
	args[2] = Int64GetDatum((int64) CpCursorOrigin() << CP_CURSOR_STAMP_BITS);

	/*
	 * stamp: the row's change_xid, or xmin - 1 for a stamp in the future (see
	 * the file header); every stamp served is below xmin, so below 2^40
	 * (CpCursorStamp checked the next xid), and $3 + stamp is the tagged
	 * cursor
	 */
	CpReturnQuery(fcinfo, &changes_plan,
				  "SELECT id, version, checksum, deleted, last_modified, "
				  "$3 OPERATOR(pg_catalog.+) stamp "
				  "FROM (SELECT c.id, c.version, c.checksum, c.deleted, c.last_modified, "
				  "CASE WHEN c.change_xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(s.snap) "
				  "AND c.change_xid IS DISTINCT FROM pg_catalog.pg_current_xact_id_if_assigned() "
				  "THEN pg_catalog.pg_snapshot_xmin(s.snap)::pg_catalog.text::pg_catalog.int8 "
				  "OPERATOR(pg_catalog.-) 1 "
				  "ELSE c.change_xid::pg_catalog.text::pg_catalog.int8 END AS stamp, "
				  "pg_catalog.pg_snapshot_xmin(s.snap)::pg_catalog.text::pg_catalog.int8 AS horizon "
				  "FROM (SELECT pg_catalog.pg_current_snapshot() AS snap) s, "
				  CP_CONVERSATIONS " c "
				  "WHERE c.user_id OPERATOR(pg_catalog.=) $1) r "
				  "WHERE stamp OPERATOR(pg_catalog.>) $2 "
				  "AND stamp OPERATOR(pg_catalog.<) horizon "
				  "ORDER BY stamp, id",
				  3, types, args);
	return (Datum) 0;
}

/*
 * Run a read-only query (its plan prepared on first use into *plan) and
 * hand its rows to the caller as a materialized set.  The rows are copied
 * into the tuplestore before SPI_finish.  They are matched to the result
 * type by position: a row type keeps its dropped columns, which SELECT *
 * leaves out, so a table that had a column dropped needs the conversion.
 */
void
CpReturnQuery(FunctionCallInfo fcinfo, SPIPlanPtr *plan,
			  const char *sql, int nargs, Oid *types, Datum *args)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleConversionMap *map;
	int			rc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*plan == NULL)
		*plan = CpPrepareKept(sql, nargs, types);
	rc = SPI_execute_plan(*plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));

	map = convert_tuples_by_position(SPI_tuptable->tupdesc, rsinfo->setDesc,
									 "chatpersist: query result does not match the function's result type");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];

		if (map != NULL)
			tup = execute_attr_map_tuple(tup, map);
		tuplestore_puttuple(rsinfo->setResult, tup);
	}

	SPI_finish();
}
