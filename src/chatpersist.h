/*-------------------------------------------------------------------------
 *
 * chatpersist.h
 *	  Declarations shared by the chatpersist source files.
 *
 * chatpersist keeps chat conversations as one row each, messages held as a
 * jsonb array of objects.  The files split the work by responsibility:
 *
 *	chatpersist.c	module magic, _PG_init, GUCs, the trusted-write note
 *	checksum.c		XXH3-64 of the canonical text of a jsonb value, streamed
 *	messages.c		validation of message arrays, lookup by id, array building
 *	merge.c			two- and three-way merge of message arrays
 *	save.c			the write functions: save_conversation, append_messages,
 *					delete_conversation, restore_version (row lock, version
 *					compare-and-swap)
 *	load.c			the reads: load_conversations, load_conversation,
 *					changes_since, conversation_history
 *	trigger.c		the guard and notify triggers on chatpersist.conversations
 *	stats.c			counters (shared memory when preloaded), stats()
 *	security.c		current_user_id(), the identity of row-level security
 *	migrate.c		migrate_user, import_app_state
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/chatpersist.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHATPERSIST_H
#define CHATPERSIST_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

struct _SPI_plan;				/* executor/spi.h */

#define CP_CHECKSUM_LEN			16	/* hex digits of a checksum */
#define CP_MAX_ID_BYTES			255 /* longest message or conversation id */

/* Qualified names of the extension's objects (the schema is fixed) */
#define CP_SCHEMA				"chatpersist"
#define CP_CONVERSATIONS		CP_SCHEMA ".conversations"
#define CP_HISTORY				CP_SCHEMA ".history"
#define CP_VERSION_FLOORS		CP_SCHEMA ".version_floors"
#define CP_MESSAGES				CP_SCHEMA ".messages"
#define CP_HISTORY_MESSAGES		CP_SCHEMA ".history_messages"

/* Gap between the ordering keys (pos) of consecutive appended messages */
#define CP_POS_GAP				(INT64CONST(1) << 16)

/* How many earlier copies of a message its row remembers (accepted) */
#define CP_ACCEPTED_KEPT		16

/* GUCs (chatpersist.c) */
extern int	cp_history_depth;
extern int	cp_max_messages;
extern int	cp_max_conversation_bytes;
extern bool cp_debug;
extern bool cp_notify;
extern char *cp_user_id;

/*
 * stats.c: counters, in the order stats() reports them.
 */
typedef enum CpStat
{
	CP_STAT_CREATED,			/* writes by resulting status */
	CP_STAT_UPDATED,
	CP_STAT_UNCHANGED,
	CP_STAT_MERGED,
	CP_STAT_OVERWRITTEN,
	CP_STAT_DELETED,
	CP_STAT_APPENDS,			/* calls of append_messages */
	CP_STAT_RESTORES,			/* calls of restore_version that wrote */
	CP_STAT_MERGES,				/* merges computed by the write functions */
	CP_STAT_CONFLICTS,			/* message-level conflicts they resolved */
	CP_STAT_REPLAYS,			/* given copies accepted once before: no
								 * change */
	CP_STAT_STALE_UPDATES,		/* direct UPDATEs refused with 40001 */
	CP_STAT_INPUTS_REJECTED,	/* calls and writes refused for bad input */
	CP_STAT_COUNT
} CpStat;

extern void CpStatsInit(void);
extern void CpStatsAdd(CpStat stat, uint64 n);

/*
 * Raise an ERROR for bad input and count it in stats().  rest is the
 * parenthesised list of ereport auxiliary calls.
 */
#define CpReject(rest) \
	do { \
		CpStatsAdd(CP_STAT_INPUTS_REJECTED, 1); \
		ereport(ERROR, rest); \
	} while (0)

/*
 * checksum.c
 *
 * CpHashContainer hashes the text that JsonbToCString would print for the
 * container (a root, or a container nested in a larger jsonb value) of len
 * bytes; CpChecksumJsonb writes the hash of a whole detoasted value as
 * CP_CHECKSUM_LEN lowercase hex digits plus a NUL into out.
 */
extern uint64 CpHashContainer(JsonbContainer *jc, Size len);
extern void CpChecksumJsonb(Jsonb *jb, char *out);

/*
 * The running hash of an array's text that a conversation keeps, so that
 * an append continues it instead of reading the array (see checksum.c)
 */
typedef struct CpArrayHash CpArrayHash;

extern CpArrayHash *CpArrayHashStart(void);
extern void CpArrayHashAdd(CpArrayHash *ah, JsonbContainer *jc, Size len, bool first);
extern void CpArrayHashDigest(CpArrayHash *ah, char *out);
extern bytea *CpArrayHashSave(CpArrayHash *ah);
extern CpArrayHash *CpArrayHashLoad(bytea *b);

/*
 * messages.c
 *
 * A validated created_at/updated_at, as milliseconds since the epoch.  A
 * number is converted only when the merge first compares it (see
 * CpTimestampMs): numeric_float8 prints the number and parses the text
 * back, which cost more than the rest of a merge, and most timestamps are
 * never compared.  Until then num points to the number inside the parsed
 * array; it is NULL once ms holds the value.
 */
typedef struct CpTimestamp
{
	Numeric		num;			/* not yet converted, or NULL */
	double		ms;				/* the value, when num is NULL */
} CpTimestamp;

/*
 * A parsed, validated message array.  CpMessage entries point into the
 * jsonb value they were parsed from, which must stay allocated while they
 * are used.  A missing timestamp is has_* = false.
 */
typedef struct CpMessage
{
	const char *id;				/* not NUL-terminated */
	int			idlen;
	uint64		idkey;			/* first 8 bytes of id, see CpIdKey */
	JsonbContainer *obj;		/* the message object inside its array */
	int			objlen;			/* size in bytes of *obj */
	int			index;			/* position in its array */
	bool		has_created;
	bool		has_updated;
	bool		deleted;		/* "deleted": true, a message tombstone */
	CpTimestamp created_at;
	CpTimestamp updated_at;
} CpMessage;

typedef struct CpMessageArray
{
	Jsonb	   *jb;				/* the array, detoasted */
	int			nmsgs;
	int			nlive;			/* messages not marked deleted */
	CpMessage  *msgs;			/* in array order */
	CpMessage **byid;			/* sorted by id */
} CpMessageArray;

extern void CpParseMessages(Jsonb *jb, const char *argname, bool enforce_limits,
							CpMessageArray *out);
extern void CpCheckLimits(Jsonb *jb, int nmsgs, const char *argname);
extern void CpCheckLimitsSize(int64 bytes, int nmsgs, const char *argname);
extern void CpCheckMetadata(Jsonb *jb, const char *argname);
extern void CpCheckConversationId(const char *id, int len);
extern int	CpCompareIds(const char *a, int alen, const char *b, int blen);
extern uint64 CpIdKey(const char *id, int idlen, Size avail);
extern CpMessage *CpFindMessage(CpMessageArray *arr, const char *id, int idlen);
extern bool CpMessagesEqual(CpMessage *a, CpMessage *b);
extern Jsonb *CpBuildArray(CpMessage **msgs, int n);
extern bool CpParseTimestampValue(JsonbValue *v, double *ms);
extern double CpConvertTimestamp(CpTimestamp *ts);

/*
 * CpCompareIds for two parsed messages: their ids' first 8 bytes, read as
 * a big-endian number padded with zero bytes (CpIdKey), order them as
 * memcmp would, since an id never holds a zero byte (jsonb strings cannot);
 * only ids that share those 8 bytes are compared further.  Sorting,
 * matching and looking up messages by id is mostly this comparison.
 */
static inline int
CpCompareMessageIds(const CpMessage *a, const CpMessage *b)
{
	if (a->idkey != b->idkey)
		return a->idkey < b->idkey ? -1 : 1;
	if (a->idlen <= 8 || b->idlen <= 8)
		return (a->idlen > b->idlen) - (a->idlen < b->idlen);
	return CpCompareIds(a->id + 8, a->idlen - 8, b->id + 8, b->idlen - 8);
}

/*
 * The value of a validated timestamp in epoch milliseconds, converting a
 * number on first use.
 */
static inline double
CpTimestampMs(CpTimestamp *ts)
{
	if (ts->num != NULL)
		return CpConvertTimestamp(ts);
	return ts->ms;
}

/*
 * merge.c
 *
 * Merges a and b (base may be NULL for a two-way merge).  The result is
 * commutative in a and b.  conflicts counts messages that both sides changed
 * differently, and messages one side edited while the other deleted them.
 * b_lost lists b's copies that lost a conflict (for history), if not NULL.
 */
typedef struct CpMergeResult
{
	Jsonb	   *merged;
	int			nmsgs;
	int			nlive;
	int			conflicts;
	int			nb_lost;
	CpMessage **b_lost;
} CpMergeResult;

extern void CpMerge(CpMessageArray *base, CpMessageArray *a, CpMessageArray *b,
					CpMergeResult *result);
extern Jsonb *CpUpsertMessages(CpMessageArray *onto, CpMessageArray *given);

/*
 * What a write did: the status a write function returns in save_result, and
 * how chatpersist.history records the version a write replaced
 * (replaced_by).  CpStatusName gives the text of each; the last three occur
 * only as replaced_by.
 */
typedef enum CpStatus
{
	CP_STATUS_CREATED,
	CP_STATUS_UPDATED,
	CP_STATUS_UNCHANGED,
	CP_STATUS_MERGED,
	CP_STATUS_OVERWRITTEN,
	CP_STATUS_DELETED,
	CP_STATUS_RESTORED,			/* replaced_by of restore_version */
	CP_STATUS_DIRECT,			/* replaced_by of an SQL UPDATE */
	CP_STATUS_DELETE			/* replaced_by of an SQL DELETE */
} CpStatus;

extern const char *CpStatusName(CpStatus status);
extern void CpReportModifiedConcurrently(const char *conversation_id,
										 const int64 *expected, int64 found,
										 const char *hint) pg_attribute_noreturn();
extern void CpStatsCountStatus(CpStatus status);

/*
 * note.c: the trusted-write note.
 *
 * The save path validates, merges and checksums the messages itself, then
 * writes through SPI, which fires the guard trigger.  Just before that write
 * it sets the note (CpNoteSet); the trigger takes it (CpNoteTake), which
 * clears it whatever happens, and trusts the precomputed checksum and count
 * only for the row whose key and messages bytes match it.  The note lives in
 * backend-local memory and is only set by C code, so no SQL caller can forge
 * it; the end of every (sub)transaction clears it too.
 */
typedef struct CpWriteNote
{
	pg_uuid_t	user_id;
	const char *conversation_id;
	size_t		conversation_id_len;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		message_count;
	CpStatus	replaced_by;	/* history's replaced_by for this write */
	Jsonb	   *discarded;		/* history's discarded, or NULL */
	bool		optimistic;		/* the writer did not compare with the stored
								 * row: the trigger decides whether anything
								 * changed */
} CpWriteNote;

extern void CpNoteSet(const CpWriteNote *note);
extern bool CpNoteTake(HeapTuple tup, TupleDesc desc, int user_id_att,
					   int id_att, CpWriteNote *note);
extern void CpNoteClear(void);
extern bool CpNoteWithdraw(void);
extern void CpNoteTrustMessages(bool on);
extern void CpNoteRegisterCallbacks(void);

/*
 * history.c: every statement on chatpersist.history and version_floors.
 * CpHistoryArchive takes the replaced row's columns in this order.
 */
typedef enum CpArchivedColumn
{
	CP_ARC_USER_ID,
	CP_ARC_ID,
	CP_ARC_VERSION,
	CP_ARC_TITLE,
	CP_ARC_METADATA,
	CP_ARC_CHECKSUM,
	CP_ARC_MESSAGE_COUNT,
	CP_ARC_DELETED,
	CP_ARC_LAST_MODIFIED,
	CP_ARC_NCOLUMNS
} CpArchivedColumn;

/* An archived version, as CpHistoryFetch reads it */
typedef struct CpArchivedRow
{
	text	   *title;
	Jsonb	   *messages;
	Jsonb	   *metadata;
	Jsonb	   *discarded;		/* NULL if none */
} CpArchivedRow;

extern void CpHistoryArchive(Oid owner, const Datum *row, const bool *nulls,
							 CpStatus replaced_by, Jsonb *discarded);
extern int64 CpHistoryNextVersion(Oid owner, Datum user_id, Datum id, bool lock);
extern void CpHistoryRaiseFloor(Oid owner, Datum user_id, Datum id, int64 version);
extern int64 CpVersionAfter(int64 version, Datum id);
extern bool CpHistoryFetch(pg_uuid_t *user_id, text *conversation_id,
						   int64 version, bool as_owner, CpArchivedRow *ar);
extern Jsonb *CpHistoryArray(Datum user_id, Datum conversation_id, int64 version);
extern void CpHistoryArchiveMessages(Datum user_id, Datum conversation_id,
									 Datum ids, int64 version);

/* load.c: return a query's rows as the set a function returns */
extern void CpReturnQuery(FunctionCallInfo fcinfo, struct _SPI_plan **plan,
						  const char *sql, int nargs, Oid *types, Datum *args);

/*
 * storage.c: how a conversation is stored.  CpStoredRow is the row a write
 * locked; CpNewContent what the write decided to store (and how save.c
 * reports it).
 */
typedef struct CpStoredRow
{
	pg_uuid_t  *user_id;
	text	   *conversation_id;
	int64		version;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		message_count;
	bool		deleted;
	text	   *title;
	Jsonb	   *metadata;
	bytea	   *hash_state;		/* NULL: not kept */
	int32		array_length;	/* -1: not kept */
	int64		array_bytes;	/* -1: not kept */
	int64		last_pos;
	Jsonb	   *messages;		/* built from the rows on first use:
								 * CpStoredMessages */
} CpStoredRow;

typedef struct CpNewContent
{
	text	   *title;
	Jsonb	   *messages;
	Jsonb	   *metadata;
	bool		deleted;
	char		checksum[CP_CHECKSUM_LEN + 1];
	int32		count;
	CpStatus	status;			/* returned to the caller */
	CpStatus	replaced_by;	/* history's replaced_by for this write */
	Jsonb	   *discarded;		/* losing incoming copies, or NULL */
	int32		conflicts;
	bool		append;			/* messages are new ids added at the end */
	bytea	   *hash_state;		/* set by storage.c */
	int32		array_length;
	int64		array_bytes;
} CpNewContent;

extern bool CpStorageLock(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row);
extern Jsonb *CpStoredMessages(CpStoredRow *row);
extern bool CpStorageInsert(pg_uuid_t *user_id, text *conversation_id,
							CpNewContent *nc, const TimestampTz *created_at,
							int64 *version);
extern bool CpStorageRead(pg_uuid_t *user_id, text *conversation_id, CpStoredRow *row);
extern bool CpStorageUpdate(CpStoredRow *row, CpNewContent *nc, int64 *version);
extern bool CpStorageWriteHead(CpStoredRow *row, CpNewContent *nc, int64 last_pos,
							   int64 *version);
extern bool CpStorageCanAppend(CpStoredRow *row, CpMessageArray *given);
extern bool CpStorageAppendContent(CpStoredRow *row, CpMessageArray *given,
								   CpNewContent *nc, bool locked);
extern bool CpStorageSameMessages(CpStoredRow *row, CpNewContent *nc);
extern Jsonb *CpStorageStampBase(CpStoredRow *row, int64 version);
extern Jsonb *CpArrayFromRows(SPITupleTable *tt, uint64 from, uint64 to, int col);
extern int	CpStorageReplays(CpStoredRow *row, CpMessageArray *given, bool *replay);
extern Jsonb *CpStorageReadArray(Datum user_id, Datum conversation_id,
								 bool read_only);
extern void CpStorageRemoveAll(Oid owner, Datum user_id, Datum conversation_id,
							   int64 version);
extern void CpStorageSummary(Jsonb *messages, int nmsgs, CpNewContent *nc);
extern bool CpMessageWriteTrusted(void);

/* save.c: a save from C (migrate.c), inside SPI_connect; returns the status */
extern CpStatus CpSaveMessages(pg_uuid_t *user_id, text *conversation_id,
							   text *title, Jsonb *messages, Jsonb *metadata,
							   bool has_created_at, TimestampTz created_at,
							   const char *argname);

/*
 * cursor.c: a change cursor is (origin << CP_CURSOR_STAMP_BITS) | stamp,
 * see the file header.  CpCursorOrigin is this database's origin tag;
 * CpCursorStamp the stamp changes_since reads after for a caller's cursor,
 * 0 for a full resync.
 */
#define CP_CURSOR_STAMP_BITS	40
#define CP_CURSOR_STAMP_MASK	((INT64CONST(1) << CP_CURSOR_STAMP_BITS) - 1)
#define CP_CURSOR_MAX_ORIGIN	8191	/* origins 1..8191: cursors stay below
										 * 2^53 */
extern int	CpCursorOrigin(void);
extern int64 CpCursorStamp(int64 cursor);

/* Prepare an SPI statement once and keep its plan (chatpersist.c) */
extern struct _SPI_plan *CpPrepareKept(const char *sql, int nargs, Oid *argtypes);
extern Oid	CpExtensionTable(const char *name);
extern Oid	CpRelationOwner(Oid relid);
extern Oid	CpExtensionOwner(void);
extern void CpRequireStorage(void);

/* The user saved by CpBecomeOwner */
typedef struct CpSavedUser
{
	Oid			userid;
	int			sec_context;
} CpSavedUser;

extern void CpBecomeOwner(Oid owner, CpSavedUser *saved);
extern void CpRestoreUser(const CpSavedUser *saved);

/* Raise 22004 for a NULL argument of a chatpersist function */
extern void CpNullArgument(const char *argname) pg_attribute_noreturn();

#endif							/* CHATPERSIST_H */
