/*-------------------------------------------------------------------------
 *
 * cursor.c
 *	  Where a change cursor comes from, and stamps that arrive from
 *	  elsewhere: cursor_origin, restamp and the conversations_restamp
 *	  trigger.
 *
 * A change_xid stamp is a transaction id of the database that wrote it:
 * compared with a stamp of another cluster (a restore, a logical-replication
 * subscriber, another Citus worker) it means nothing.  So a cursor (1.1)
 * says where it comes from:
 *
 *		cursor = (origin << 40) | stamp
 *
 * origin is a 13-bit tag, 1..8191, hashed from the cluster's system
 * identifier and the database's OID; stamp is the xid8 (epoch and xid) of
 * the change.  Every tagged cursor is at least 2^40 and below 2^53, so it
 * stays a positive bigint that a JavaScript number (supabase-js, PostgREST's
 * JSON) still holds exactly, as 1.0's cursors did.  Within one database
 * every cursor has the same origin, so cursors order exactly as their
 * stamps do and changes_since's proof (see load.c) is untouched.  The
 * stamp must fit in 40 bits: a database that has used 2^40 transaction ids
 * (256 wraparounds of the 32-bit counter, about 35 years at 1000
 * transactions a second) gets 54000 from changes_since.
 *
 * CpCursorStamp turns a caller's cursor into the stamp changes_since
 * compares with, or 0, a full resync (every live conversation and
 * tombstone of the user, with cursors of this database from then on):
 *	- a tagged cursor of another origin is foreign;
 *	- a tagged cursor of this origin whose stamp is not below the next
 *	  transaction id (a physical backup restored to an earlier point) is
 *	  foreign too;
 *	- an untagged (1.0) cursor is a stamp of this database only if it lies
 *	  below chatpersist.cursor_legacy.untagged_below, the transaction that
 *	  installed 1.1 here (ALTER EXTENSION ... UPDATE, or CREATE EXTENSION),
 *	  and below the next transaction id.  That table is not dumped, so a
 *	  restore records its own transaction: every row a restore writes is
 *	  stamped after it, and an untagged cursor below it can only ask for
 *	  everything anyway.
 * A hash collision of two origins (1 in 8191 for two given databases)
 * makes a foreign cursor look local; the next-xid checks still catch a
 * stamp in this database's future.
 *
 * Rows that arrive with another database's stamps: the guard trigger
 * stamps a restore through COPY as any write.  A load in replica mode
 * (session_replication_role = replica, which logical replication's apply
 * and table sync workers use) skips the guard trigger on purpose, so the
 * conversations_restamp trigger, ENABLE ALWAYS, stamps those rows with the
 * loading transaction.  pg_restore --disable-triggers disables every
 * trigger (and its ENABLE TRIGGER ALL afterwards leaves conversations_restamp
 * enabled for origin mode only): restamp() re-stamps every row and
 * re-enables the trigger ALWAYS.  Stamps that still lie in the future are
 * served by changes_since as changed now (load.c).
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/cursor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/xid8.h"

#include "chatpersist.h"

static int	origin = 0;			/* this backend's database's tag, once known */

static int64 untagged_below(void);

/*
 * This database's origin tag, 1..CP_CURSOR_MAX_ORIGIN: a hash of the
 * cluster's system identifier and MyDatabaseId, both fixed for the life of
 * a backend, so it is computed once.
 */
int
CpCursorOrigin(void)
{
	if (origin == 0)
	{
		struct
		{
			uint64		sysid;
			Oid			dbid;
		}			key;

		memset(&key, 0, sizeof(key));
		key.sysid = GetSystemIdentifier();
		key.dbid = MyDatabaseId;
		origin = (int) (hash_bytes_extended((const unsigned char *) &key,
											sizeof(key), 0) %
						CP_CURSOR_MAX_ORIGIN) + 1;
	}
	return origin;
}

/*
 * The stamp that changes_since compares with for the caller's cursor (not
 * negative), or 0 for a full resync; see the file header.  Raises 54000
 * when this database's transaction ids no longer fit in a cursor.
 */
int64
CpCursorStamp(int64 cursor)
{
	uint64		next = U64FromFullTransactionId(ReadNextFullTransactionId());
	int64		stamp;

	if (next > CP_CURSOR_STAMP_MASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("transaction ids of this database no longer fit in a change cursor"),
				 errdetail("The next transaction id is " UINT64_FORMAT ", a cursor holds stamps below 2^40.", next)));

	if (cursor <= 0)
		return 0;
	if (cursor <= CP_CURSOR_STAMP_MASK)
	{
		/* untagged (1.0): only a stamp issued here before 1.1 */
		if ((uint64) cursor >= next || cursor >= untagged_below())
			return 0;
		return cursor;
	}
	if ((int) (cursor >> CP_CURSOR_STAMP_BITS) != CpCursorOrigin())
		return 0;
	stamp = cursor & CP_CURSOR_STAMP_MASK;
	if ((uint64) stamp >= next)
		return 0;
	return stamp;
}

/*
 * cursor_origin() RETURNS integer
 *
 * This database's origin tag, the bits above the 40-bit stamp of every
 * cursor changes_since hands out here.
 */
PG_FUNCTION_INFO_V1(chatpersist_cursor_origin);
Datum
chatpersist_cursor_origin(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(CpCursorOrigin());
}

/*
 * conversations_restamp: BEFORE INSERT OR UPDATE FOR EACH ROW on
 * chatpersist.conversations, ENABLE ALWAYS.  In replica mode (where the
 * guard trigger does not fire) it stamps the row with the writing
 * transaction, so that a row applied by logical replication or loaded in
 * replica mode is a change of this database; in any other mode the guard
 * has stamped the row and this returns it untouched.  It validates and
 * archives nothing: the rows come from a database that did.
 */
PG_FUNCTION_INFO_V1(chatpersist_conversations_restamp);
Datum
chatpersist_conversations_restamp(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	int			attnum;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_restamp: not called by trigger manager")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_restamp: must be fired BEFORE INSERT OR UPDATE, FOR EACH ROW")));

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
		return PointerGetDatum(tuple);

	/* by name: on a Citus shard the row type is the shard's */
	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "change_xid");
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("conversations_restamp: table \"%s\" has no column change_xid",
						RelationGetRelationName(trigdata->tg_relation))));

	value = FullTransactionIdGetDatum(GetTopFullTransactionId());
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &attnum,
													 &value, &isnull));
}

/*
 * restamp() RETURNS bigint
 *
 * Re-stamps every conversation of the database with the calling
 * transaction, so that rows loaded with their triggers disabled
 * (pg_restore --disable-triggers) are changes of this database, and
 * enables conversations_restamp ALWAYS again (ALTER TABLE ... ENABLE
 * TRIGGER ALL, which such a restore ends with, leaves it origin-only).
 * Returns the number of rows re-stamped.  Versions, checksums, timestamps
 * and history are not touched: the guard trigger is skipped, by running
 * the UPDATE in replica mode.
 *
 * Only the owner of chatpersist.conversations (or a superuser) may call it
 * (42501 for anyone else, and EXECUTE is revoked from PUBLIC).  It is
 * SECURITY INVOKER: it changes every user's rows and a trigger's state,
 * which only the owner may do anyway, and it raises
 * session_replication_role (superuser-only) for its own statement alone.
 * Locks: SHARE ROW EXCLUSIVE on the table for the trigger's state when it
 * must be changed, and the row locks of the UPDATE.
 */
PG_FUNCTION_INFO_V1(chatpersist_restamp);
Datum
chatpersist_restamp(PG_FUNCTION_ARGS)
{
	Oid			relid = CpExtensionTable("conversations");
	int			save_nestlevel;
	int			rc;
	bool		isnull;
	char	   *enabled;
	uint64		count;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);

	if (!has_privs_of_role(GetUserId(), CpRelationOwner(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to re-stamp chatpersist.conversations"),
				 errdetail("Only the owner of the table or a superuser may re-stamp it."),
				 errhint("Call it as the role that restored the database.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	rc = SPI_execute_with_args("SELECT tgenabled::pg_catalog.text FROM pg_catalog.pg_trigger "
							   "WHERE tgrelid OPERATOR(pg_catalog.=) $1 "
							   "AND tgname OPERATOR(pg_catalog.=) 'conversations_restamp'",
							   1, &argtype, &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"conversations_restamp\" of chatpersist.conversations is missing"),
				 errhint("Recreate the extension's objects with ALTER EXTENSION chatpersist UPDATE, or restore the schema from a dump.")));
	enabled = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
	if (strcmp(enabled, "A") != 0)
	{
		rc = SPI_execute("ALTER TABLE " CP_CONVERSATIONS
						 " ENABLE ALWAYS TRIGGER conversations_restamp", false, 0);
		if (rc != SPI_OK_UTILITY)
			elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	}

	/*
	 * Replica mode for this statement only: the guard trigger, which would
	 * keep an unchanged row's stamp, does not fire.  The setting is undone by
	 * AtEOXact_GUC, or by the abort of the transaction on an error.
	 */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("session_replication_role", "replica",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	rc = SPI_execute("UPDATE " CP_CONVERSATIONS
					 " SET change_xid = pg_catalog.pg_current_xact_id()", false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	count = SPI_processed;
	AtEOXact_GUC(true, save_nestlevel);

	SPI_finish();
	PG_RETURN_INT64((int64) count);
}

/*
 * The transaction below which an untagged cursor is a stamp of this
 * database: chatpersist.cursor_legacy's row, read as the table's owner
 * (nobody else may read it).  Without the table (a 1.0 schema under this
 * library, before ALTER EXTENSION ... UPDATE) every untagged cursor below
 * the next transaction id is one; an empty table admits none.
 */
static int64
untagged_below(void)
{
	Oid			relid = CpExtensionTable("cursor_legacy");
	CpSavedUser saved;
	int64		result = 0;
	bool		isnull;
	int			rc;

	if (!OidIsValid(relid))
		return PG_INT64_MAX;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	CpBecomeOwner(CpRelationOwner(relid), &saved);
	rc = SPI_execute("SELECT pg_catalog.min(untagged_below)::pg_catalog.text::pg_catalog.int8 "
					 "FROM " CP_SCHEMA ".cursor_legacy", true, 1);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetInt64(d);
	}
	SPI_finish();
	return result;
}
