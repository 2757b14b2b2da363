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

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

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

/* The trusted-write note, see chatpersist.h */
CpWriteNote CpPendingWrite;

void		_PG_init(void);

static void clear_note_at_xact_end(XactEvent event, void *arg);
static void clear_note_at_subxact_end(SubXactEvent event, SubTransactionId mySubid,
									  SubTransactionId parentSubid, void *arg);

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

	RegisterXactCallback(clear_note_at_xact_end, NULL);
	RegisterSubXactCallback(clear_note_at_subxact_end, NULL);
}

/*
 * An error between filling the note and the trigger consuming it aborts
 * the (sub)transaction; forget the note then, so that it can never vouch
 * for a later write.
 */
static void
clear_note_at_xact_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		CpClearPendingWrite();
}

/* See clear_note_at_xact_end */
static void
clear_note_at_subxact_end(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		CpClearPendingWrite();
}

/*
 * Forget the trusted-write note.  Called by the save path once its write
 * returned (or failed) and by the trigger once it consumed the note.
 */
void
CpClearPendingWrite(void)
{
	memset(&CpPendingWrite, 0, sizeof(CpPendingWrite));
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
 * Prepare a statement and keep its plan for the life of the backend.  The
 * plan cache re-plans it when the tables change (even across DROP and
 * CREATE EXTENSION), since every name in it is schema-qualified.
 */
SPIPlanPtr
CpPrepareKept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}
