/*-------------------------------------------------------------------------
 *
 * note.c
 *	  The trusted-write note between the save path and the guard trigger.
 *
 * The save functions (save.c) validate, merge and checksum the messages
 * themselves, then write the row through SPI, which fires the guard trigger
 * (trigger.c).  So that the trigger does not do that work again, the save
 * path sets this note just before its write: "the row of this key with
 * exactly these messages bytes was produced by chatpersist, and here are
 * its checksum, live count and history annotations".  The trigger takes
 * the note for the row it is given: taking always clears it, and yields
 * the note only if the row matches it.  Anything else (another trigger
 * changed the row, a nested write, a direct SQL statement) is a foreign
 * write that the trigger checks in full.
 *
 * The note is backend-local memory that only C code sets, so no SQL caller
 * can forge it.  The save path clears it once its statement returned (the
 * trigger may not have fired: no row matched), and the end of every
 * transaction and subtransaction clears it, so that an error between
 * setting and taking it can never let it vouch for a later write.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/note.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"

#include "chatpersist.h"

static CpWriteNote pending;
static bool pending_set = false;

/* storage.c is writing message rows itself (CpNoteTrustMessages) */
static bool trust_messages = false;

static bool note_matches(HeapTuple tup, TupleDesc desc, int user_id_att,
						 int id_att);
static void clear_at_xact_end(XactEvent event, void *arg);
static void clear_at_subxact_end(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/*
 * Set the note for the write that follows.  The pointers in it (the
 * conversation id, the messages, discarded) must stay valid until the
 * write returned.
 */
void
CpNoteSet(const CpWriteNote *note)
{
	pending = *note;
	pending_set = true;
}

/*
 * Take the note for the row tup: clear it, and return true with a copy in
 * *note if it was set for this row (same user_id and id, and the messages
 * column holds exactly the bytes the save path handed to SPI).  The
 * attribute numbers say where the key and the messages are in tup.
 */
bool
CpNoteTake(HeapTuple tup, TupleDesc desc, int user_id_att, int id_att,
		   CpWriteNote *note)
{
	bool		match = pending_set &&
		note_matches(tup, desc, user_id_att, id_att);

	if (match)
		*note = pending;
	CpNoteClear();
	return match;
}

/* Forget the note */
void
CpNoteClear(void)
{
	memset(&pending, 0, sizeof(pending));
	pending_set = false;
}

/*
 * Withdraw the note after the write it was set for: clear it, and return
 * true if no trigger took it.  A write that changed a row while the note
 * stayed untaken was not seen by the guard trigger in this session.
 */
bool
CpNoteWithdraw(void)
{
	bool		untaken = pending_set;

	CpNoteClear();
	return untaken;
}

/*
 * storage.c's own statements on chatpersist.messages run between
 * CpNoteTrustMessages(true) and (false): the messages trigger lets their
 * rows through as they are (CpMessageWriteTrusted).  Cleared with the note
 * at the end of every (sub)transaction, so an error in between cannot
 * leave it set.
 */
void
CpNoteTrustMessages(bool on)
{
	trust_messages = on;
}

bool
CpMessageWriteTrusted(void)
{
	return trust_messages;
}

/* Clear the note at the end of every (sub)transaction (from _PG_init) */
void
CpNoteRegisterCallbacks(void)
{
	RegisterXactCallback(clear_at_xact_end, NULL);
	RegisterSubXactCallback(clear_at_subxact_end, NULL);
}

/*
 * Is tup the row the note describes?  The id of an UPDATE's new row is the
 * stored one, which TOAST may have compressed in place (a long,
 * compressible id in a row over the TOAST threshold), so it is compared
 * detoasted.  The messages are the value the save path handed to SPI,
 * never compressed before the trigger runs: a compressed or external value
 * there is not ours.
 */
static bool
note_matches(HeapTuple tup, TupleDesc desc, int user_id_att, int id_att)
{
	bool		isnull;
	bool		same;
	Datum		d;
	struct varlena *v;

	d = heap_getattr(tup, user_id_att, desc, &isnull);
	if (isnull || memcmp(DatumGetPointer(d), &pending.user_id, UUID_LEN) != 0)
		return false;

	d = heap_getattr(tup, id_att, desc, &isnull);
	if (isnull)
		return false;
	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
	same = VARSIZE_ANY_EXHDR(v) == pending.conversation_id_len &&
		memcmp(VARDATA_ANY(v), pending.conversation_id,
			   pending.conversation_id_len) == 0;
	if (v != (struct varlena *) DatumGetPointer(d))
		pfree(v);
	return same;
}

/* An aborted or finished transaction forgets the note */
static void
clear_at_xact_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		CpNoteClear();
		trust_messages = false;
	}
}

/* See clear_at_xact_end */
static void
clear_at_subxact_end(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		CpNoteClear();
		trust_messages = false;
	}
}
