/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Every statement on chatpersist.history and chatpersist.version_floors:
 *	  archiving a replaced version and pruning beyond history_depth, the
 *	  version a new row gets, the key's version floor, reading one archived
 *	  version, and the SQL function conversation_history.
 *
 * History is the extension's bookkeeping, so the writes and the reads that
 * decide a write run as the owner of the tables (CpBecomeOwner), as
 * PostgreSQL's own RI triggers run their queries as the table owner: a
 * client needs no privilege on history to write a conversation.  The
 * exceptions read with the caller's rights on purpose: conversation_history,
 * and CpHistoryFetch for a caller that has not proved its right to the
 * conversation by locking its row (as_owner = false).
 *
 * Locking: a new row's version is chosen holding the key's floor row lock
 * until the transaction ends, which every INSERT and every plain DELETE of
 * the key take (CpHistoryNextVersion, CpHistoryRaiseFloor); see
 * docs/design.md, "A version never names two contents".
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "chatpersist.h"

/*
 * Archive the replaced row ($1-$13), prune the key's versions up to a limit
 * (the last parameter: $3 alone, $14 after the row), or both in one
 * statement once history is full.  archive_types gives the types of all
 * three (the prune's $1-$3 are the row's user_id, conversation_id and a
 * version).
 */
#define CP_ARCHIVE_SQL \
	"INSERT INTO " CP_HISTORY " " \
	"(user_id, conversation_id, version, title, " \
	"metadata, checksum, message_count, deleted, " \
	"last_modified, replaced_at, replaced_by, discarded) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
#define CP_PRUNE_SQL(limit) \
	"DELETE FROM " CP_HISTORY " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND version OPERATOR(pg_catalog.<=) " limit
/* the message copies that no kept version needs */
#define CP_PRUNE_MESSAGES_SQL(limit) \
	"DELETE FROM " CP_HISTORY_MESSAGES " " \
	"WHERE user_id OPERATOR(pg_catalog.=) $1 " \
	"AND conversation_id OPERATOR(pg_catalog.=) $2 " \
	"AND valid_to OPERATOR(pg_catalog.<=) (" limit " OPERATOR(pg_catalog.+) 1)"

static Oid	archive_types[13] = {UUIDOID, TEXTOID, INT8OID, TEXTOID,
	JSONBOID, TEXTOID, INT4OID, BOOLOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
TEXTOID, JSONBOID, INT8OID};

/*
 * The newest version of a key among its live row, history and (1.1, the
 * extra branch) its floor
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

/* Plans prepared on first use and kept for the life of the backend */
static SPIPlanPtr archive_plan = NULL;
static SPIPlanPtr prune_plan = NULL;
static SPIPlanPtr archive_prune_plan = NULL;
static SPIPlanPtr lock_floor_plan = NULL;
static SPIPlanPtr raise_floor_plan = NULL;
static SPIPlanPtr newest_version_plan = NULL;
static SPIPlanPtr newest_version_1_0_plan = NULL;
static SPIPlanPtr archived_plan = NULL;
static SPIPlanPtr list_plan = NULL;
static SPIPlanPtr rebuild_plan = NULL;
static SPIPlanPtr archive_messages_plan = NULL;

/*
 * Archive a replaced row into history and prune the key's history beyond
 * chatpersist.history_depth, in the caller's transaction.  row and nulls
 * hold the replaced row's columns in CpArchivedColumn order.  The jsonb
 * values are passed as they are stored: a compressed TOAST value is copied
 * without being decompressed or compressed again.
 */
void
CpHistoryArchive(Oid owner, const Datum *row, const bool *nulls,
				 CpStatus replaced_by, Jsonb *discarded)
{
	Datum		args[13];
	char		argnulls[13];
	CpSavedUser saved;
	int64		version = DatumGetInt64(row[CP_ARC_VERSION]);
	int			depth = cp_history_depth;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Each plan is checked on its own: a failed prepare leaves it NULL */
	if (archive_plan == NULL)
		archive_plan = CpPrepareKept(CP_ARCHIVE_SQL, 12, archive_types);
	if (prune_plan == NULL)
		prune_plan = CpPrepareKept("WITH pruned AS (" CP_PRUNE_MESSAGES_SQL("$3") ") "
								   CP_PRUNE_SQL("$3"), 3, archive_types);
	if (archive_prune_plan == NULL)
		archive_prune_plan = CpPrepareKept("WITH pruned AS (" CP_PRUNE_SQL("$13") "), "
										   "pruned_messages AS (" CP_PRUNE_MESSAGES_SQL("$13") ") "
										   CP_ARCHIVE_SQL, 13, archive_types);

	for (int i = 0; i < CP_ARC_NCOLUMNS; i++)
	{
		args[i] = row[i];
		argnulls[i] = nulls[i] ? 'n' : ' ';
	}
	args[9] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	argnulls[9] = ' ';
	args[10] = CStringGetTextDatum(CpStatusName(replaced_by));
	argnulls[10] = ' ';
	args[11] = discarded ? JsonbPGetDatum(discarded) : (Datum) 0;
	argnulls[11] = discarded ? ' ' : 'n';

	CpBecomeOwner(owner, &saved);

	/*
	 * Keep the versions above version - depth (versions start at 1), the
	 * replaced one included: with depth 0 that is none, so nothing is
	 * archived and what an earlier depth kept goes; until history is full the
	 * row is only archived; after that, archive and prune are one statement
	 * (the common case).
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
		args[12] = Int64GetDatum(version - depth);
		argnulls[12] = ' ';
		if (SPI_execute_plan(archive_prune_plan, args, argnulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "chatpersist: archiving to history failed");
	}

	CpRestoreUser(&saved);
	SPI_finish();
}

/*
 * The version a new row of (user_id, id) gets: one past every version the
 * key has had (its live row's, history's, and its floor's: the version a
 * plain DELETE removed, kept in chatpersist.version_floors even when
 * history keeps nothing), so that a version never names two contents.
 *
 * The INSERT's unique check comes after the trigger that calls this, and
 * may wait for a transaction that deletes the key's row and archives its
 * version; a version chosen before that wait can be one that history then
 * holds (the version reuse of issue 11).  So a client INSERT (lock = true)
 * first locks the key's floor row, creating it if need be, and holds that
 * row lock to the end of its transaction; every INSERT and every plain
 * DELETE of the key (CpHistoryRaiseFloor) take the same row lock.  Then it
 * reads the live row, history and the floor with the latest snapshot (not
 * the transaction's, which under REPEATABLE READ may predate a whole delete
 * and re-create).  Whatever deleted or inserted the key before has
 * committed by then and is seen; whatever comes after waits for this
 * transaction.  Row locks, unlike advisory locks, take no room in the
 * shared lock table, so a transaction may create any number of
 * conversations.  Under REPEATABLE READ a floor that a concurrent
 * transaction changed raises 40001 (retry).
 *
 * A restore (lock = false) only reads: it writes no floor, so that a
 * restore never collides with anything.  Before ALTER EXTENSION ... UPDATE
 * to 1.1 there is no floor table (this library already runs on the 1.0
 * schema): then only the row and history count, unlocked, as in 1.0.
 */
int64
CpHistoryNextVersion(Oid owner, Datum user_id, Datum id, bool lock)
{
	Datum		args[2] = {user_id, id};
	Oid			types[2] = {UUIDOID, TEXTOID};
	CpSavedUser saved;
	bool		floors = OidIsValid(CpExtensionTable("version_floors"));
	SPIPlanPtr	newest_plan;
	bool		isnull;
	Datum		d;
	int64		newest = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (floors && lock_floor_plan == NULL)
		lock_floor_plan = CpPrepareKept("INSERT INTO " CP_VERSION_FLOORS " AS f "
										"(user_id, conversation_id, version) "
										"VALUES ($1, $2, 0) "
										"ON CONFLICT (user_id, conversation_id) "
										"DO UPDATE SET version = f.version",
										2, types);
	if (floors && newest_version_plan == NULL)
		newest_version_plan =
			CpPrepareKept(CP_NEWEST_VERSION_SQL("UNION ALL "
												"SELECT version FROM " CP_VERSION_FLOORS " "
												"WHERE user_id OPERATOR(pg_catalog.=) $1 "
												"AND conversation_id OPERATOR(pg_catalog.=) $2"),
						  2, types);
	if (!floors && newest_version_1_0_plan == NULL)
		newest_version_1_0_plan = CpPrepareKept(CP_NEWEST_VERSION_SQL(""), 2, types);
	newest_plan = floors ? newest_version_plan : newest_version_1_0_plan;

	CpBecomeOwner(owner, &saved);
	if (floors && lock &&
		SPI_execute_plan(lock_floor_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: locking the conversation's version floor failed");
	if (SPI_execute_snapshot(newest_plan, args, NULL, GetLatestSnapshot(),
							 InvalidSnapshot, false, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "chatpersist: reading the conversation's versions failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		newest = DatumGetInt64(d);
	CpRestoreUser(&saved);

	SPI_finish();
	return newest == 0 ? 1 : CpVersionAfter(newest, id);
}

/*
 * Record that the key (user_id, id) has had the given version: its floor
 * becomes at least that.  Called by a plain DELETE, which holds the row's
 * lock; the floor row's lock, taken here until the transaction ends, makes
 * an INSERT of the key wait until the deletion is committed or rolled back
 * (see CpHistoryNextVersion).  Nothing to do on the 1.0 schema.
 */
void
CpHistoryRaiseFloor(Oid owner, Datum user_id, Datum id, int64 version)
{
	Datum		args[3] = {user_id, id, Int64GetDatum(version)};
	CpSavedUser saved;

	if (!OidIsValid(CpExtensionTable("version_floors")))
		return;

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

	CpBecomeOwner(owner, &saved);
	if (SPI_execute_plan(raise_floor_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: recording the conversation's version floor failed");
	CpRestoreUser(&saved);
	SPI_finish();
}

/*
 * The version that follows version: 22003 at the top of bigint, rather than
 * wrapping around (only a restored row can carry such a version).  id is
 * the conversation id, for the message.
 */
int64
CpVersionAfter(int64 version, Datum id)
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
 * Read an archived version of the conversation into *ar; false if it has
 * left history (or never was there).  Must be called inside SPI_connect;
 * the values stay valid until SPI_finish.  as_owner reads history as the
 * tables' owner, for callers that have proved their right to the
 * conversation by locking its row; otherwise the head is read with the
 * caller's privileges and row-level security.  The message array is then
 * rebuilt as the owner (CpHistoryArray).
 */
bool
CpHistoryFetch(pg_uuid_t *user_id, text *conversation_id, int64 version,
			   bool as_owner, CpArchivedRow *ar)
{
	Datum		args[3] = {UUIDPGetDatum(user_id),
	PointerGetDatum(conversation_id), Int64GetDatum(version)};
	CpSavedUser saved;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		d;
	int			rc;

	if (archived_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};

		archived_plan = CpPrepareKept("SELECT title, metadata, discarded FROM " CP_HISTORY " "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									  "AND conversation_id OPERATOR(pg_catalog.=) $2 "
									  "AND version OPERATOR(pg_catalog.=) $3",
									  3, types);
	}

	if (as_owner)
		CpBecomeOwner(CpExtensionOwner(), &saved);

	/*
	 * Not read_only: under READ COMMITTED that takes a fresh snapshot, which
	 * sees the version archived by the transaction whose row lock we may just
	 * have waited for.  The statement's snapshot would not, and the merge
	 * would silently lose its base.
	 */
	rc = SPI_execute_plan(archived_plan, args, NULL, false, 1);
	if (as_owner)
		CpRestoreUser(&saved);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ar->title = DatumGetTextPP(SPI_getbinval(tup, desc, 1, &isnull));
	ar->metadata = DatumGetJsonbP(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	ar->discarded = isnull ? NULL : DatumGetJsonbP(d);
	ar->messages = CpHistoryArray(args[0], args[1], version);
	return true;
}

/*
 * The message array of the conversation at an archived version, rebuilt
 * from the rows and the replaced copies, read as the tables' owner: for
 * each message, the copy that was current at that version (a row whose
 * current copy dates from it or earlier, or a history copy whose range
 * holds it), in the order of its position then.  Inside SPI_connect.
 */
Jsonb *
CpHistoryArray(Datum user_id, Datum conversation_id, int64 version)
{
	Datum		args[3] = {user_id, conversation_id, Int64GetDatum(version)};
	CpSavedUser saved;
	bool		isnull;
	Datum		d;
	int			rc;

	if (rebuild_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, INT8OID};

		rebuild_plan = CpPrepareKept("SELECT pg_catalog.jsonb_agg(message ORDER BY pos, id) FROM ("
									 "SELECT message, pos, id FROM " CP_MESSAGES " "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									 "AND conversation_id OPERATOR(pg_catalog.=) $2 "
									 "AND NOT removed "
									 "AND changed_version OPERATOR(pg_catalog.<=) $3 "
									 "UNION ALL "
									 "SELECT message, pos, id FROM " CP_HISTORY_MESSAGES " "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									 "AND conversation_id OPERATOR(pg_catalog.=) $2 "
									 "AND valid_from OPERATOR(pg_catalog.<=) $3 "
									 "AND (valid_to OPERATOR(pg_catalog.>) $3 "
									 "OR valid_to OPERATOR(pg_catalog.=) 9223372036854775807)) AS copies",
									 3, types);
	}

	CpBecomeOwner(CpExtensionOwner(), &saved);
	rc = SPI_execute_plan(rebuild_plan, args, NULL, false, 1);
	CpRestoreUser(&saved);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chatpersist: rebuilding an archived version failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")));
	return DatumGetJsonbP(d);
}

/*
 * Keep in history the current copies of the conversation's messages ids
 * (a text[]) that the write of version replaces: each was current from its
 * changed_version until version.  The caller runs as the tables' owner,
 * inside SPI_connect.
 */
void
CpHistoryArchiveMessages(Datum user_id, Datum conversation_id, Datum ids,
						 int64 version)
{
	Datum		args[4] = {user_id, conversation_id, ids, Int64GetDatum(version)};

	if (archive_messages_plan == NULL)
	{
		Oid			types[4] = {UUIDOID, TEXTOID, TEXTARRAYOID, INT8OID};

		archive_messages_plan =
			CpPrepareKept("INSERT INTO " CP_HISTORY_MESSAGES " "
						  "(user_id, conversation_id, id, valid_from, valid_to, pos, message) "
						  "SELECT user_id, conversation_id, id, changed_version, $4, pos, message "
						  "FROM " CP_MESSAGES " "
						  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
						  "AND conversation_id OPERATOR(pg_catalog.=) $2 "
						  "AND id OPERATOR(pg_catalog.=) ANY ($3) "
						  "AND NOT removed",
						  4, types);
	}
	if (SPI_execute_plan(archive_messages_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chatpersist: archiving replaced messages failed");
}

/*
 * conversation_history(p_user_id uuid, p_conversation_id text)
 *		RETURNS SETOF chatpersist.archived_version
 *
 * p_user_id, p_conversation_id: the key (NULL: 22004).  Returns the
 * archived versions of the conversation, newest first, read with the
 * caller's privileges and row-level security: each row is the content a
 * write replaced (its message array rebuilt, see CpHistoryArray), how it
 * was replaced (replaced_by) and the incoming message copies that lost a
 * conflict in that write (discarded).
 */
PG_FUNCTION_INFO_V1(chatpersist_conversation_history);
Datum
chatpersist_conversation_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		args[2];
	SPITupleTable *heads;
	uint64		nheads;
	int			rc;

	if (PG_ARGISNULL(0))
		CpNullArgument("p_user_id");
	if (PG_ARGISNULL(1))
		CpNullArgument("p_conversation_id");
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);

	CpRequireStorage();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (list_plan == NULL)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};

		list_plan = CpPrepareKept("SELECT user_id, conversation_id, version, title, "
								  "NULL::pg_catalog.jsonb, metadata, checksum, "
								  "message_count, deleted, last_modified, replaced_at, "
								  "replaced_by, discarded "
								  "FROM " CP_HISTORY " "
								  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								  "AND conversation_id OPERATOR(pg_catalog.=) $2 "
								  "ORDER BY version DESC",
								  2, types);
	}
	rc = SPI_execute_plan(list_plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	heads = SPI_tuptable;
	nheads = SPI_processed;

	for (uint64 i = 0; i < nheads; i++)
	{
		Datum		values[13];
		bool		nulls[13];

		heap_deform_tuple(heads->vals[i], heads->tupdesc, values, nulls);
		values[4] = JsonbPGetDatum(CpHistoryArray(args[0], args[1],
												  DatumGetInt64(values[2])));
		nulls[4] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
