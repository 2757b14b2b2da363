/*-------------------------------------------------------------------------
 *
 * chatpersist.c
 *	  Module entry point: magic block, _PG_init, GUCs, and the
 *	  backend-local note through which the save path tells the guard
 *	  trigger which row it computed itself.
 *
 * Apart from the counters of stats.c (set up from here, see that file),
 * every variable is backend-local, so no locking is needed.  The GUC limits are read by the save path and the
 * trigger at the moment they validate, so a SET takes effect for the next
 * statement.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/chatpersist.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "chatpersist.h"
#include "compat.h"

PG_MODULE_MAGIC;

/* GUC variables */
int			cp_history_depth = 10;
int			cp_max_messages = 50000;
int			cp_max_conversation_bytes = 64 * 1024 * 1024;
bool		cp_debug = false;
bool		cp_notify = false;
char	   *cp_user_id = NULL;

void		_PG_init(void);

/*
 * Module load: define the GUCs.  Limits are PGC_SUSET so that a client
 * connection cannot raise them or switch history off for itself.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("chatpersist.history_depth",
							"Sets how many replaced versions of each conversation are kept.",
							"Every write archives the content it replaces; older versions beyond this many are pruned in the same transaction. 0 keeps none.",
							&cp_history_depth,
							10,
							0,
							100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatpersist.max_messages",
							"Sets the largest number of messages a conversation may hold.",
							"Saves and direct writes with more messages fail with SQLSTATE 54000.",
							&cp_max_messages,
							50000,
							0,
							JB_CMASK,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("chatpersist.max_conversation_bytes",
							"Sets the largest size of a conversation's messages, in bytes of jsonb.",
							"Saves and direct writes whose message array is larger fail with SQLSTATE 54000.",
							&cp_max_conversation_bytes,
							64 * 1024 * 1024,
							1024,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("chatpersist.debug",
							 "Logs every save decision.",
							 "When on, each save writes a LOG line with its status, versions, message counts and checksum.",
							 &cp_debug,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("chatpersist.notify",
							 "Sends a notification for every committed change of a conversation.",
							 "When on, each change sends NOTIFY chatpersist_changes with a JSON payload of user id, conversation id, version, checksum and deleted flag (never message content), delivered at commit.",
							 &cp_notify,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("chatpersist.user_id",
							   "Sets the user whose conversations row-level security lets this session see and change.",
							   "Read by chatpersist.current_user_id() before the JWT claims that PostgREST sets. Empty means unset.",
							   &cp_user_id,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("chatpersist");

	CpStatsInit();

	CpNoteRegisterCallbacks();
}

/*
 * Raise 22004 for a NULL argument: chatpersist functions are not STRICT,
 * because a silent NULL result would look like success to a client.
 */
void
CpNullArgument(const char *argname)
{
	CpReject(
			 (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			  errmsg("argument \"%s\" must not be null", argname),
			  errhint("Pass a value; chatpersist functions do not return NULL for NULL input.")));
}

/*
 * Raise 40001: a write that claimed a version of the conversation other than
 * the stored one.  The one wording every such refusal uses: DETAIL names
 * both versions ("Expected version NULL" when expected is NULL), hint says
 * what to do.
 *
 * The error also names the table chatpersist.conversations in its schema
 * and table fields, as errtable() would.  PostgreSQL's own serialization
 * failures (a concurrent update under REPEATABLE READ, an SSI conflict)
 * carry no table, so a client tells "reload, then retry" (this one) from
 * "retry the transaction" by the field alone, without parsing the text.
 * The names are fixed: the extension is not relocatable.
 */
void
CpReportModifiedConcurrently(const char *conversation_id, const int64 *expected,
							 int64 found, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("conversation \"%s\" was modified concurrently", conversation_id),
			 expected ?
			 errdetail("Expected version " INT64_FORMAT ", found " INT64_FORMAT ".",
					   *expected, found) :
			 errdetail("Expected version NULL, found " INT64_FORMAT ".", found),
			 errhint("%s", hint),
			 err_generic_string(PG_DIAG_SCHEMA_NAME, "chatpersist"),
			 err_generic_string(PG_DIAG_TABLE_NAME, "conversations")));
}

/*
 * The statuses and replaced_by values: their text and, for a status a write
 * function returns, the stats() counter it counts in (-1: none).  Indexed by
 * CpStatus.
 */
static const struct
{
	const char *name;
	int			stat;
}			status_table[] = {
	[CP_STATUS_CREATED] = {"created", CP_STAT_CREATED},
	[CP_STATUS_UPDATED] = {"updated", CP_STAT_UPDATED},
	[CP_STATUS_UNCHANGED] = {"unchanged", CP_STAT_UNCHANGED},
	[CP_STATUS_MERGED] = {"merged", CP_STAT_MERGED},
	[CP_STATUS_OVERWRITTEN] = {"overwritten", CP_STAT_OVERWRITTEN},
	[CP_STATUS_DELETED] = {"deleted", CP_STAT_DELETED},
	[CP_STATUS_RESTORED] = {"restored", -1},
	[CP_STATUS_DIRECT] = {"direct", -1},
	[CP_STATUS_DELETE] = {"delete", -1},
};

/* The text of a status or replaced_by value */
const char *
CpStatusName(CpStatus status)
{
	Assert(status >= 0 && status < (int) lengthof(status_table));
	return status_table[status].name;
}

/* Count a finished write in stats() by its status */
void
CpStatsCountStatus(CpStatus status)
{
	Assert(status >= 0 && status < (int) lengthof(status_table));
	if (status_table[status].stat >= 0)
		CpStatsAdd((CpStat) status_table[status].stat, 1);
}

/*
 * The OID of chatpersist.<name>, or InvalidOid if it does not exist: a
 * table that a later version's script adds is missing until ALTER EXTENSION
 * UPDATE has run, while this library is already the new one.
 */
Oid
CpExtensionTable(const char *name)
{
	Oid			nsp = get_namespace_oid(CP_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Raise 55000 unless the extension's objects are 2.0's (one row per
 * message): this library reads and writes nothing else.  Between
 * installing the 2.0 files and ALTER EXTENSION chatpersist UPDATE, every
 * function that touches messages refuses, and nothing is written
 * (docs/migrations.md).
 */
void
CpRequireStorage(void)
{
	if (!OidIsValid(CpExtensionTable("messages")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the objects of extension chatpersist are older than its library"),
				 errdetail("The installed library stores one row per message (chatpersist 2.0); this database still has the 1.x tables."),
				 errhint("Run ALTER EXTENSION chatpersist UPDATE.")));
}

/* The owner of a relation that exists */
Oid
CpRelationOwner(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The owner of chatpersist.conversations, who owns the extension's tables */
Oid
CpExtensionOwner(void)
{
	Oid			relid = CpExtensionTable("conversations");

	if (!OidIsValid(relid))
		elog(ERROR, "chatpersist: table %s is missing", CP_CONVERSATIONS);
	return CpRelationOwner(relid);
}

/*
 * Run as owner from here to CpRestoreUser: the one way chatpersist reads and
 * writes its own bookkeeping (history, version floors, the cursor's legacy
 * mark) whatever the caller's privileges, as PostgreSQL's RI triggers run
 * their queries as the table owner.  Row-level security does not apply to
 * the owner then (SECURITY_NOFORCE_RLS).  An error in between needs no
 * CpRestoreUser: aborting the (sub)transaction restores the user.
 */
void
CpBecomeOwner(Oid owner, CpSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
}

/* Back to the user that CpBecomeOwner saved */
void
CpRestoreUser(const CpSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * Prepare a statement and keep its plan for the life of the backend.  The
 * plan cache re-plans it when the tables change (even across DROP and
 * CREATE EXTENSION), since every name in it is schema-qualified.
 *
 * The plan is generic, except when Citus is loaded: Citus cannot plan a
 * statement over several distributed tables (the version lookup's UNION
 * ALL) without its parameters' values, gives such a generic plan an
 * exorbitant cost so that the plan cache picks a custom plan, and raises
 * "could not create distributed plan" when the generic plan is forced.
 */
SPIPlanPtr
CpPrepareKept(const char *sql, int nargs, Oid *argtypes)
{
	int			cursor_options =
		GetConfigOption("citus.version", true, false) != NULL ? 0 : CURSOR_OPT_GENERIC_PLAN;
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}
