/*-------------------------------------------------------------------------
 *
 * merge.c
 *	  Two- and three-way merge of message arrays, and the SQL function
 *	  merge_messages.
 *
 * Messages are matched by id.  A message both sides have is an anchor; the
 * result holds one copy of it, chosen by choose_copy():
 *	  1. equal copies: either (they print the same);
 *	  2. with a base, a side whose copy equals the base copy did not change
 *		 it: the other side's copy wins;
 *	  3. otherwise (a conflict) the later "updated_at" wins, a missing one
 *		 counting as older than any;
 *	  4. equal "updated_at": a tombstone ("deleted": true) wins;
 *	  5. still tied: the copy whose canonical text is greater byte-wise wins.
 *
 * A message only one side has is kept, unless the base has it with the
 * same content: then the other side deleted it, and it is dropped.  If it
 * differs from the base, this side edited what the other side deleted: it
 * is kept (edit beats delete) and counted as a conflict.
 *
 * Order: when both sides list their anchors in the same relative order,
 * the result walks the two arrays together; between two anchors, the runs
 * of messages only one side has are interleaved by (created_at, id), a
 * missing created_at first, which keeps each side's own order.  When the
 * sides disagree on the order of their anchors, no result can keep both
 * orders, and the whole result is sorted by (created_at, id).  Both rules
 * are symmetric in the two sides, and a result re-merged with either input
 * yields itself, since it keeps that input's order (walk) or is already
 * sorted (sort).
 *
 * Pure computation in the caller's memory context; no locks.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/merge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/jsonb.h"

#include "chatpersist.h"

static void match_by_id(CpMessageArray *a, CpMessageArray *b,
						int *a_match, int *b_match);
static void match_base(CpMessageArray *base, CpMessageArray *side,
					   CpMessage **side_base);
static CpMessage *choose_copy(CpMessage *a, CpMessage *b, CpMessage *base,
							  bool *conflict);
static int	compare_order_key(CpMessage *x, CpMessage *y);
static int	compare_order_key_qsort(const void *a, const void *b);
static Datum merge_sql(FunctionCallInfo fcinfo, bool has_base);

/*
 * The array a device means when it sends only some messages (append): the
 * messages of onto, each replaced by given's copy when given has its id,
 * followed by given's other messages in given's order.  Returns a new
 * jsonb array; neither input changes.
 */
Jsonb *
CpUpsertMessages(CpMessageArray *onto, CpMessageArray *given)
{
	int		   *onto_match = palloc(sizeof(int) * Max(onto->nmsgs, 1));
	int		   *given_match = palloc(sizeof(int) * Max(given->nmsgs, 1));
	CpMessage **out = palloc(sizeof(CpMessage *) * Max(onto->nmsgs + given->nmsgs, 1));
	int			nout = 0;
	Jsonb	   *result;

	match_by_id(onto, given, onto_match, given_match);
	for (int i = 0; i < onto->nmsgs; i++)
		out[nout++] = onto_match[i] >= 0 ? &given->msgs[onto_match[i]] : &onto->msgs[i];
	for (int j = 0; j < given->nmsgs; j++)
		if (given_match[j] < 0)
			out[nout++] = &given->msgs[j];

	result = CpBuildArray(out, nout);
	pfree(onto_match);
	pfree(given_match);
	pfree(out);
	return result;
}

/*
 * Merge a and b, against base if not NULL.  See the file header for the
 * rules.  Fills *result; result->merged is a new jsonb array.
 */
void
CpMerge(CpMessageArray *base, CpMessageArray *a, CpMessageArray *b,
		CpMergeResult *result)
{
	int			na = a->nmsgs;
	int			nb = b->nmsgs;
	int		   *a_match = palloc(sizeof(int) * Max(na, 1));
	int		   *b_match = palloc(sizeof(int) * Max(nb, 1));
	CpMessage **a_base = palloc0(sizeof(CpMessage *) * Max(na, 1));
	CpMessage **b_base = palloc0(sizeof(CpMessage *) * Max(nb, 1));
	bool	   *a_keep = palloc(sizeof(bool) * Max(na, 1));
	bool	   *b_keep = palloc(sizeof(bool) * Max(nb, 1));
	CpMessage **out = palloc(sizeof(CpMessage *) * Max(na + nb, 1));
	int			nout = 0;
	int			conflicts = 0;
	bool		in_order = true;
	int			last;
	int			i,
				j;

	result->nb_lost = 0;
	result->b_lost = palloc(sizeof(CpMessage *) * Max(nb, 1));

	match_by_id(a, b, a_match, b_match);
	if (base != NULL)
	{
		match_base(base, a, a_base);
		match_base(base, b, b_base);
	}

	/* Messages only one side has: kept, unless the other side deleted them */
	for (i = 0; i < na; i++)
	{
		a_keep[i] = true;
		if (a_match[i] < 0 && a_base[i] != NULL)
		{
			if (CpMessagesEqual(&a->msgs[i], a_base[i]))
				a_keep[i] = false;
			else
				conflicts++;
		}
	}
	for (j = 0; j < nb; j++)
	{
		b_keep[j] = true;
		if (b_match[j] < 0 && b_base[j] != NULL)
		{
			if (CpMessagesEqual(&b->msgs[j], b_base[j]))
				b_keep[j] = false;
			else
				conflicts++;
		}
	}

	/* Do both sides list their anchors in the same order? */
	last = -1;
	for (i = 0; i < na && in_order; i++)
	{
		if (a_match[i] >= 0)
		{
			if (a_match[i] < last)
				in_order = false;
			last = a_match[i];
		}
	}

	if (in_order)
	{
		i = 0;
		j = 0;
		for (;;)
		{
			int			ea = i;
			int			eb = j;

			CHECK_FOR_INTERRUPTS();

			/* The runs up to the next anchor on each side */
			while (ea < na && a_match[ea] < 0)
				ea++;
			while (eb < nb && b_match[eb] < 0)
				eb++;

			/* Interleave them by (created_at, id), skipping dropped ones */
			while (i < ea || j < eb)
			{
				if (i < ea && !a_keep[i])
					i++;
				else if (j < eb && !b_keep[j])
					j++;
				else if (j >= eb ||
						 (i < ea && compare_order_key(&a->msgs[i], &b->msgs[j]) < 0))
					out[nout++] = &a->msgs[i++];
				else
					out[nout++] = &b->msgs[j++];
			}

			if (i >= na)
			{
				Assert(j >= nb);
				break;
			}

			/* Both sides stand at the same anchor */
			Assert(a_match[i] == j);
			{
				bool		conflict = false;
				CpMessage  *win = choose_copy(&a->msgs[i], &b->msgs[j],
											  a_base[i], &conflict);

				if (conflict)
				{
					conflicts++;
					if (win != &b->msgs[j])
						result->b_lost[result->nb_lost++] = &b->msgs[j];
				}
				out[nout++] = win;
			}
			i++;
			j++;
		}
	}
	else
	{
		/* Orders disagree: every kept message, sorted by (created_at, id) */
		for (i = 0; i < na; i++)
		{
			if (a_match[i] >= 0)
			{
				bool		conflict = false;
				int			bj = a_match[i];
				CpMessage  *win = choose_copy(&a->msgs[i], &b->msgs[bj],
											  a_base[i], &conflict);

				if (conflict)
				{
					conflicts++;
					if (win != &b->msgs[bj])
						result->b_lost[result->nb_lost++] = &b->msgs[bj];
				}
				out[nout++] = win;
			}
			else if (a_keep[i])
				out[nout++] = &a->msgs[i];
		}
		for (j = 0; j < nb; j++)
		{
			if (b_match[j] < 0 && b_keep[j])
				out[nout++] = &b->msgs[j];
		}
		if (nout > 1)
			qsort(out, nout, sizeof(CpMessage *), compare_order_key_qsort);
	}

	result->merged = CpBuildArray(out, nout);
	result->nmsgs = nout;
	result->nlive = 0;
	for (i = 0; i < nout; i++)
		if (!out[i]->deleted)
			result->nlive++;
	result->conflicts = conflicts;

	pfree(a_match);
	pfree(b_match);
	pfree(a_base);
	pfree(b_base);
	pfree(a_keep);
	pfree(b_keep);
	pfree(out);
}

/*
 * Pair up the messages of a and b with equal ids: a_match[i] is the index
 * in b of a's message i, or -1; likewise b_match.  A merge join over the
 * two id-sorted lists.
 */
static void
match_by_id(CpMessageArray *a, CpMessageArray *b, int *a_match, int *b_match)
{
	int			i = 0,
				j = 0;

	for (i = 0; i < a->nmsgs; i++)
		a_match[i] = -1;
	for (j = 0; j < b->nmsgs; j++)
		b_match[j] = -1;

	i = 0;
	j = 0;
	while (i < a->nmsgs && j < b->nmsgs)
	{
		CpMessage  *ma = a->byid[i];
		CpMessage  *mb = b->byid[j];
		int			c = CpCompareMessageIds(ma, mb);

		if (c < 0)
			i++;
		else if (c > 0)
			j++;
		else
		{
			a_match[ma->index] = mb->index;
			b_match[mb->index] = ma->index;
			i++;
			j++;
		}
	}
}

/*
 * side_base[k] := the base's copy of side's message k, or NULL.
 */
static void
match_base(CpMessageArray *base, CpMessageArray *side, CpMessage **side_base)
{
	int			i = 0,
				j = 0;

	while (i < base->nmsgs && j < side->nmsgs)
	{
		CpMessage  *mb = base->byid[i];
		CpMessage  *ms = side->byid[j];
		int			c = CpCompareMessageIds(mb, ms);

		if (c < 0)
			i++;
		else if (c > 0)
			j++;
		else
		{
			side_base[ms->index] = mb;
			i++;
			j++;
		}
	}
}

/*
 * Choose between two copies of one message (see the file header).  base is
 * the base's copy or NULL.  Sets *conflict when both sides changed it.
 */
static CpMessage *
choose_copy(CpMessage *a, CpMessage *b, CpMessage *base, bool *conflict)
{
	char	   *ta;
	char	   *tb;
	int			c;

	*conflict = false;
	if (CpMessagesEqual(a, b))
		return a;
	if (base != NULL)
	{
		if (CpMessagesEqual(a, base))
			return b;
		if (CpMessagesEqual(b, base))
			return a;
	}

	*conflict = true;

	/* later updated_at wins; a missing one is older than any */
	if (a->has_updated != b->has_updated)
		return a->has_updated ? a : b;
	if (a->has_updated)
	{
		double		au = CpTimestampMs(&a->updated_at);
		double		bu = CpTimestampMs(&b->updated_at);

		if (au != bu)
			return au > bu ? a : b;
	}

	/* then a tombstone wins */
	if (a->deleted != b->deleted)
		return a->deleted ? a : b;

	/* then the greater canonical text */
	ta = JsonbToCString(NULL, a->obj, a->objlen);
	tb = JsonbToCString(NULL, b->obj, b->objlen);
	c = strcmp(ta, tb);
	pfree(ta);
	pfree(tb);
	return c >= 0 ? a : b;
}

/*
 * Order of messages that only one side has: created_at (missing first),
 * then id.  Ids are unique in the union, so this is a strict order.
 */
static int
compare_order_key(CpMessage *x, CpMessage *y)
{
	if (x->has_created != y->has_created)
		return x->has_created ? 1 : -1;
	if (x->has_created)
	{
		double		xc = CpTimestampMs(&x->created_at);
		double		yc = CpTimestampMs(&y->created_at);

		if (xc != yc)
			return xc < yc ? -1 : 1;
	}
	return CpCompareMessageIds(x, y);
}

/* qsort adapter for compare_order_key */
static int
compare_order_key_qsort(const void *a, const void *b)
{
	return compare_order_key(*(CpMessage *const *) a,
							 *(CpMessage *const *) b);
}

/*
 * merge_messages(p_ours jsonb, p_theirs jsonb) RETURNS jsonb
 *
 * p_ours, p_theirs: message arrays.  Returns their two-way merge.  NULL
 * arguments raise 22004; invalid arrays raise 22023.
 */
PG_FUNCTION_INFO_V1(chatpersist_merge_messages);
Datum
chatpersist_merge_messages(PG_FUNCTION_ARGS)
{
	return merge_sql(fcinfo, false);
}

/*
 * merge_messages(p_base jsonb, p_ours jsonb, p_theirs jsonb) RETURNS jsonb
 *
 * p_base: the version both sides started from, or NULL for a two-way
 * merge.  p_ours, p_theirs: message arrays.  Returns their merge.
 */
PG_FUNCTION_INFO_V1(chatpersist_merge_messages3);
Datum
chatpersist_merge_messages3(PG_FUNCTION_ARGS)
{
	return merge_sql(fcinfo, true);
}

/*
 * Shared body of the two SQL merge functions.  The inputs are held to the
 * same limits as a save's (54000), so that no input can make the merge ask
 * for more memory than a save would.
 */
static Datum
merge_sql(FunctionCallInfo fcinfo, bool has_base)
{
	int			off = has_base ? 1 : 0;
	CpMessageArray base;
	CpMessageArray ours;
	CpMessageArray theirs;
	CpMergeResult result;

	if (PG_ARGISNULL(off))
		CpNullArgument("p_ours");
	if (PG_ARGISNULL(off + 1))
		CpNullArgument("p_theirs");

	CpParseMessages(PG_GETARG_JSONB_P(off), "p_ours", true, &ours);
	CpParseMessages(PG_GETARG_JSONB_P(off + 1), "p_theirs", true, &theirs);
	if (has_base && !PG_ARGISNULL(0))
		CpParseMessages(PG_GETARG_JSONB_P(0), "p_base", true, &base);
	else
		has_base = false;

	CpMerge(has_base ? &base : NULL, &ours, &theirs, &result);

	PG_RETURN_JSONB_P(result.merged);
}
