/*-------------------------------------------------------------------------
 *
 * load.c
 *	  load_conversations and load_conversation.
 *
 * Plain reads through SPI under the caller's snapshot and privileges (so
 * row-level security applies); no locks beyond what SELECT takes.  They are
 * C rather than LANGUAGE sql because Citus cannot plan a parameterised SQL
 * function that reads a distributed table.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "chatpersist.h"

static SPIPlanPtr load_all_plan = NULL;
static SPIPlanPtr load_one_plan = NULL;

static void load_into_tuplestore(FunctionCallInfo fcinfo, SPIPlanPtr *plan,
								 const char *sql, int nargs, Oid *types,
								 Datum *args);

/*
 * load_conversations(p_user_id uuid) RETURNS SETOF conversations
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

	load_into_tuplestore(fcinfo, &load_all_plan,
						 "SELECT * FROM " CP_CONVERSATIONS " "
						 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
						 "AND NOT deleted "
						 "ORDER BY last_modified DESC, id",
						 1, types, args);
	return (Datum) 0;
}

/*
 * load_conversation(p_user_id uuid, p_conversation_id text)
 *		RETURNS SETOF conversations
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

	load_into_tuplestore(fcinfo, &load_one_plan,
						 "SELECT * FROM " CP_CONVERSATIONS " "
						 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
						 "AND id OPERATOR(pg_catalog.=) $2 "
						 "AND NOT deleted",
						 2, types, args);
	return (Datum) 0;
}

/*
 * Run a read-only query (its plan prepared on first use into *plan) and
 * hand its rows to the caller as a materialized set.  The rows are copied
 * into the tuplestore before SPI_finish.
 */
static void
load_into_tuplestore(FunctionCallInfo fcinfo, SPIPlanPtr *plan,
					 const char *sql, int nargs, Oid *types, Datum *args)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			rc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*plan == NULL)
		*plan = CpPrepareKept(sql, nargs, types);
	rc = SPI_execute_plan(*plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));

	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);

	SPI_finish();
}
