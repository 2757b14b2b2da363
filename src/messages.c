/*-------------------------------------------------------------------------
 *
 * messages.c
 *	  Validation of message arrays, lookup of messages by id, and building
 *	  of a new array from messages of existing ones.
 *
 * A message array is a jsonb array of objects, each with a string "id"
 * (1..255 bytes, unique in the array) and optional "created_at" and
 * "updated_at" (milliseconds since the epoch, or an ISO-8601 string) and
 * "deleted" (boolean).  CpParseMessages checks all of that once and keeps,
 * per message, a pointer to its object inside the detoasted array, so the
 * merge and the array builder never re-serialise a message: a merged
 * array is assembled from the binary containers of its inputs.
 *
 * Everything is allocated in the caller's memory context; nothing here
 * takes locks.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/messages.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "canon.h"
#include "chatpersist.h"
#include "pginternals.h"

/* The fields of a message that parse_message reads (see find_fields) */
#define CP_FIELD_ID				0
#define CP_FIELD_CREATED_AT		1
#define CP_FIELD_UPDATED_AT		2
#define CP_FIELD_DELETED		3
#define CP_NFIELDS				4

static void find_fields(JsonbContainer *obj, JsonbValue *fields, bool *found);
static void parse_message(JsonbContainer *obj, int objlen, int index,
						  const char *argname, const char *limit,
						  CpMessage *msg);
static void timestamp_error(const char *field, JsonbValue *v, int index,
							const char *argname) pg_attribute_noreturn();
static bool check_timestamp(JsonbValue *v, CpTimestamp *ts);
static bool parse_iso8601(const char *s, int len, double *ms);
static const char *jsonb_type_name(JsonbValue *v);
static int	compare_by_id(const void *a, const void *b);
static char *id_for_message(const char *id, int idlen);

/*
 * Parse and validate a message array.
 *
 * jb must be detoasted and stay allocated while *out is used.  argname
 * names the array in error messages (an SQL argument name, or "messages"
 * for the table column).  With enforce_limits, chatpersist.max_messages and
 * chatpersist.max_conversation_bytes are checked first (54000).  Any other
 * problem raises 22023 naming the element's index and the field.
 */
void
CpParseMessages(Jsonb *jb, const char *argname, bool enforce_limits,
				CpMessageArray *out)
{
	const JEntry *children = jb->root.children;
	const char *limit = (const char *) jb + VARSIZE(jb);
	const char *base;
	uint32		start = 0;
	bool		sorted = true;
	int			n;
	int			i;

	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s must be a JSON array of message objects", argname),
				  errdetail("Found a JSON %s.",
							JB_ROOT_IS_OBJECT(jb) ? "object" : "scalar")));

	n = JB_ROOT_COUNT(jb);
	if (enforce_limits)
		CpCheckLimits(jb, n, argname);

	out->jb = jb;
	out->nmsgs = n;
	out->nlive = 0;
	out->msgs = (CpMessage *) palloc(sizeof(CpMessage) * Max(n, 1));
	out->byid = (CpMessage **) palloc(sizeof(CpMessage *) * Max(n, 1));

	/*
	 * Walk the array's elements in its binary layout (one JEntry each, then
	 * their data, a container starting 4-byte aligned), as the jsonb iterator
	 * would but without copying each element into a JsonbValue
	 */
	base = cp_jsonb_children_data(&jb->root);
	for (i = 0; i < n; i++)
	{
		JEntry		entry = children[i];
		uint32		end = start;
		JsonbContainer *obj;

		JBE_ADVANCE_OFFSET(end, entry);
		CHECK_FOR_INTERRUPTS();

		obj = (JsonbContainer *) cp_jsonb_child_start(entry, base, start);
		if (!JBE_ISCONTAINER(entry) || !JsonContainerIsObject(obj))
			CpReject(
					 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("message %d of %s is not a JSON object", i, argname),
					  errdetail("Found a JSON %s.",
								jsonb_type_name(getIthJsonbValueFromContainer(&jb->root, i))),
					  errhint("Each message is an object with a string \"id\".")));

		parse_message(obj, end - INTALIGN(start), i, argname, limit,
					  &out->msgs[i]);
		if (!out->msgs[i].deleted)
			out->nlive++;
		out->byid[i] = &out->msgs[i];
		start = end;
	}

	/*
	 * Sort by id (then position, so the order is total) and find repeats.
	 * Arrays whose ids ascend already (sequential or time-ordered ids) skip
	 * the sort.
	 */
	for (i = 1; i < n && sorted; i++)
		sorted = CpCompareMessageIds(out->byid[i - 1], out->byid[i]) <= 0;
	if (!sorted)
		qsort(out->byid, n, sizeof(CpMessage *), compare_by_id);
	for (i = 1; i < n; i++)
	{
		CpMessage  *a = out->byid[i - 1];
		CpMessage  *b = out->byid[i];

		if (CpCompareMessageIds(a, b) == 0)
			CpReject(
					 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("message %d of %s repeats the \"id\" of message %d",
							 b->index, argname, a->index),
					  errdetail("Both messages have \"id\" \"%s\".",
								id_for_message(b->id, b->idlen)),
					  errhint("Message ids must be unique within a conversation.")));
	}
}

/*
 * Raise 54000 if a message array is over chatpersist.max_messages or
 * chatpersist.max_conversation_bytes (measured as the jsonb value's size).
 */
void
CpCheckLimits(Jsonb *jb, int nmsgs, const char *argname)
{
	CpCheckLimitsSize(VARSIZE(jb), nmsgs, argname);
}

/* CpCheckLimits for an array of nmsgs messages that takes bytes as jsonb */
void
CpCheckLimitsSize(int64 bytes, int nmsgs, const char *argname)
{
	if (nmsgs > cp_max_messages)
		CpReject(
				 (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				  errmsg("%s has too many messages", argname),
				  errdetail("It has %d messages; chatpersist.max_messages allows %d.",
							nmsgs, cp_max_messages),
				  errhint("Split the conversation, or ask an administrator to raise chatpersist.max_messages.")));

	if (bytes > (int64) cp_max_conversation_bytes)
		CpReject(
				 (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				  errmsg("%s is too large", argname),
				  errdetail("It takes %lld bytes; chatpersist.max_conversation_bytes allows %d.",
							(long long) bytes, cp_max_conversation_bytes),
				  errhint("Split the conversation, or ask an administrator to raise chatpersist.max_conversation_bytes.")));
}

/*
 * Raise 22023 unless metadata is a JSON object.
 */
void
CpCheckMetadata(Jsonb *jb, const char *argname)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("%s must be a JSON object", argname),
				  errdetail("Found a JSON %s.",
							JB_ROOT_IS_SCALAR(jb) ? "scalar" : "array")));
}

/*
 * Raise 22023 unless a conversation id has 1..255 bytes.
 */
void
CpCheckConversationId(const char *id, int len)
{
	if (len < 1 || len > CP_MAX_ID_BYTES)
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("conversation id must have 1 to %d bytes", CP_MAX_ID_BYTES),
				  errdetail("The conversation id has %d bytes.", len)));
}

/*
 * Byte-wise order of two ids: memcmp over the common prefix, then shorter
 * first.  Returns <0, 0 or >0.
 */
int
CpCompareIds(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/*
 * The sort key of an id's first 8 bytes: those bytes as a big-endian
 * number, zero bytes after a shorter id (see CpCompareMessageIds).  avail
 * is how many bytes from id may be read (at least idlen): a short id
 * inside a larger value is read as one word and the bytes after it masked
 * off.
 */
uint64
CpIdKey(const char *id, int idlen, Size avail)
{
	uint64		key = 0;
	int			i;

	Assert(idlen >= 1 && avail >= (Size) idlen);
	if (likely(avail >= sizeof(key)))
	{
		memcpy(&key, id, sizeof(key));
		key = pg_ntoh64(key);
		if (idlen < 8)
			key &= ~UINT64CONST(0) << (8 * (8 - idlen));
		return key;
	}
	for (i = 0; i < 8; i++)
		key = (key << 8) | (i < idlen ? (unsigned char) id[i] : 0);
	return key;
}

/*
 * Find the message with the given id, or NULL (binary search on byid).
 */
CpMessage *
CpFindMessage(CpMessageArray *arr, const char *id, int idlen)
{
	int			lo = 0;
	int			hi = arr->nmsgs - 1;
	CpMessage	probe;

	probe.id = id;
	probe.idlen = idlen;
	probe.idkey = CpIdKey(id, idlen, idlen);

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		CpMessage  *m = arr->byid[mid];
		int			c = CpCompareMessageIds(m, &probe);

		if (c == 0)
			return m;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * Do two messages have the same canonical text?  Identical bytes decode to
 * the same text, so that is the fast path; otherwise compare the texts,
 * since two encodings of one value are possible in principle.
 */
bool
CpMessagesEqual(CpMessage *a, CpMessage *b)
{
	char	   *ta;
	char	   *tb;
	bool		result;

	if (a->objlen == b->objlen && memcmp(a->obj, b->obj, a->objlen) == 0)
		return true;

	/* Different ids, or different tombstone flags, can never be equal */
	if (a->deleted != b->deleted || CpCompareMessageIds(a, b) != 0)
		return false;

	/*
	 * Texts with different checksums differ, and hashing streams the text
	 * instead of building it, so only equal checksums (almost always equal
	 * texts) need the comparison of the texts themselves.
	 */
	if (CpHashContainer(a->obj, a->objlen) != CpHashContainer(b->obj, b->objlen))
		return false;

	ta = JsonbToCString(NULL, a->obj, a->objlen);
	tb = JsonbToCString(NULL, b->obj, b->objlen);
	result = (strcmp(ta, tb) == 0);
	pfree(ta);
	pfree(tb);
	return result;
}

/*
 * Build a jsonb array of the given messages, in the given order, by copying
 * each message's binary container as it is.
 *
 * This writes the same layout that JsonbValueToJsonb produces for an array
 * of objects: a header word, one JEntry per element (every
 * JB_OFFSET_STRIDE'th one holding the end offset instead of the length),
 * then the elements, each padded to a 4-byte boundary.  A container is
 * position independent as long as it starts 4-byte aligned, which every
 * container in a jsonb value does.
 */
Jsonb *
CpBuildArray(CpMessage **msgs, int n)
{
	Size		datalen = 0;
	Size		total;
	Jsonb	   *result;
	JEntry	   *entries;
	char	   *data;
	int			i;

	if (n > JB_CMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("number of jsonb array elements exceeds the maximum allowed (%d)",
						JB_CMASK)));

	for (i = 0; i < n; i++)
	{
		datalen = INTALIGN(datalen) + msgs[i]->objlen;
		if (datalen > JENTRY_OFFLENMASK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("total size of jsonb array elements exceeds the maximum of %u bytes",
							JENTRY_OFFLENMASK)));
	}

	total = VARHDRSZ + sizeof(uint32) + sizeof(JEntry) * n + datalen;
	result = (Jsonb *) palloc(total);
	SET_VARSIZE(result, total);
	result->root.header = (uint32) n | JB_FARRAY;

	entries = result->root.children;
	data = (char *) &entries[n];

	datalen = 0;
	for (i = 0; i < n; i++)
	{
		Size		start = INTALIGN(datalen);
		Size		end = start + msgs[i]->objlen;

		/* zero the alignment padding, as JsonbValueToJsonb does */
		if (start > datalen)
			memset(data + datalen, 0, start - datalen);
		memcpy(data + start, msgs[i]->obj, msgs[i]->objlen);

		entries[i] = cp_jsonb_container_entry(i, (uint32) end, (uint32) (end - datalen));
		datalen = end;
	}

	return result;
}

/*
 * Find the fields parse_message reads in one pass over the keys of a
 * message object: fields[f] is the value of field f, if found[f].
 *
 * This reads the object's binary layout (jsonb.h): one JEntry per key, then
 * one per value in the same order, then their data; a JEntry holds the
 * child's length or its end offset (JBE_ADVANCE_OFFSET).  The values are
 * filled in as fillJsonbValue does (pginternals.h).  getKeyJsonValueFromContainer would
 * binary-search the keys once per field, recomputing offsets each time,
 * which was a third of a merge's cost.
 */
static void
find_fields(JsonbContainer *obj, JsonbValue *fields, bool *found)
{
	uint32		count = JsonContainerSize(obj);
	const JEntry *children = obj->children;
	const char *base = cp_jsonb_children_data(obj);
	uint32		kstart = 0;
	uint32		vstart = 0;
	uint32		i;

	Assert(JsonContainerIsObject(obj));
	for (i = 0; i < CP_NFIELDS; i++)
		found[i] = false;

	/* The values' data follow all of the keys' */
	for (i = 0; i < count; i++)
		JBE_ADVANCE_OFFSET(vstart, children[i]);

	for (i = 0; i < count; i++)
	{
		JEntry		ventry = children[count + i];
		uint32		kend = kstart;
		uint32		vend = vstart;
		const char *key = base + kstart;
		int			f = -1;

		JBE_ADVANCE_OFFSET(kend, children[i]);
		JBE_ADVANCE_OFFSET(vend, ventry);

		switch (kend - kstart)
		{
			case 2:
				if (memcmp(key, "id", 2) == 0)
					f = CP_FIELD_ID;
				break;
			case 7:
				if (memcmp(key, "deleted", 7) == 0)
					f = CP_FIELD_DELETED;
				break;
			case 10:
				if (memcmp(key, "created_at", 10) == 0)
					f = CP_FIELD_CREATED_AT;
				else if (memcmp(key, "updated_at", 10) == 0)
					f = CP_FIELD_UPDATED_AT;
				break;
		}

		if (f >= 0)
		{
			found[f] = true;
			cp_jsonb_fill_value(&fields[f], ventry, base, vstart, vend);
		}

		kstart = kend;
		vstart = vend;
	}

#ifdef USE_ASSERT_CHECKING
	/* The same values as getKeyJsonValueFromContainer finds */
	for (i = 0; i < CP_NFIELDS; i++)
	{
		static const char *const names[CP_NFIELDS] = {
			"id", "created_at", "updated_at", "deleted"
		};
		JsonbValue	check;

		if (getKeyJsonValueFromContainer(obj, names[i], strlen(names[i]),
										 &check) == NULL)
		{
			Assert(!found[i]);
			continue;
		}
		Assert(found[i] && check.type == fields[i].type);
		if (check.type == jbvString)
			Assert(check.val.string.val == fields[i].val.string.val &&
				   check.val.string.len == fields[i].val.string.len);
		else if (check.type == jbvNumeric)
			Assert(check.val.numeric == fields[i].val.numeric);
		else if (check.type == jbvBool)
			Assert(check.val.boolean == fields[i].val.boolean);
		else if (check.type == jbvBinary)
			Assert(check.val.binary.data == fields[i].val.binary.data &&
				   check.val.binary.len == fields[i].val.binary.len);
	}
#endif
}

/*
 * Validate one message object and fill *msg.  limit is the end of the
 * jsonb value holding it.
 */
static void
parse_message(JsonbContainer *obj, int objlen, int index,
			  const char *argname, const char *limit, CpMessage *msg)
{
	JsonbValue	fields[CP_NFIELDS];
	bool		found[CP_NFIELDS];
	JsonbValue	v;

	msg->obj = obj;
	msg->objlen = objlen;
	msg->index = index;

	find_fields(obj, fields, found);

	/* id: a string of 1..255 bytes */
	if (!found[CP_FIELD_ID])
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("message %d of %s has no field \"id\"", index, argname),
				  errhint("Each message is an object with a string \"id\".")));
	v = fields[CP_FIELD_ID];
	if (v.type != jbvString)
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("invalid field \"id\" in message %d of %s", index, argname),
				  errdetail("\"id\" must be a string, not a JSON %s.",
							jsonb_type_name(&v))));
	if (v.val.string.len < 1 || v.val.string.len > CP_MAX_ID_BYTES)
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("invalid field \"id\" in message %d of %s", index, argname),
				  errdetail("\"id\" must have 1 to %d bytes; it has %d.",
							CP_MAX_ID_BYTES, v.val.string.len)));
	msg->id = v.val.string.val;
	msg->idlen = v.val.string.len;
	msg->idkey = CpIdKey(msg->id, msg->idlen, limit - msg->id);

	/* created_at, updated_at: epoch milliseconds or ISO-8601 */
	msg->has_created = false;
	msg->created_at.num = NULL;
	msg->created_at.ms = 0;
	if (found[CP_FIELD_CREATED_AT])
	{
		v = fields[CP_FIELD_CREATED_AT];
		if (!check_timestamp(&v, &msg->created_at))
			timestamp_error("created_at", &v, index, argname);
		msg->has_created = true;
	}

	msg->has_updated = false;
	msg->updated_at.num = NULL;
	msg->updated_at.ms = 0;
	if (found[CP_FIELD_UPDATED_AT])
	{
		v = fields[CP_FIELD_UPDATED_AT];
		if (!check_timestamp(&v, &msg->updated_at))
			timestamp_error("updated_at", &v, index, argname);
		msg->has_updated = true;
	}

	/* deleted: a boolean */
	msg->deleted = false;
	if (found[CP_FIELD_DELETED])
	{
		v = fields[CP_FIELD_DELETED];
		if (v.type != jbvBool)
			CpReject(
					 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					  errmsg("invalid field \"deleted\" in message %d of %s",
							 index, argname),
					  errdetail("\"deleted\" must be true or false, not a JSON %s.",
								jsonb_type_name(&v))));
		msg->deleted = v.val.boolean;
	}
}

/*
 * Raise 22023 for an invalid created_at/updated_at value.
 */
static void
timestamp_error(const char *field, JsonbValue *v, int index, const char *argname)
{
	if (v->type == jbvString)
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("invalid field \"%s\" in message %d of %s",
						 field, index, argname),
				  errdetail("\"%s\" is not an ISO-8601 timestamp.",
							pnstrdup(v->val.string.val,
									 pg_mbcliplen(v->val.string.val, v->val.string.len, 64))),
				  errhint("Write timestamps as milliseconds since the epoch, like 1732400000000, or as ISO-8601 strings, like \"2024-11-23T22:13:20Z\".")));
	if (v->type == jbvNumeric)
		CpReject(
				 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				  errmsg("invalid field \"%s\" in message %d of %s",
						 field, index, argname),
				  errdetail("\"%s\" is a number beyond the range of double precision (about 1.8e308).",
							field),
				  errhint("Write timestamps as milliseconds since the epoch, like 1732400000000, or as ISO-8601 strings, like \"2024-11-23T22:13:20Z\".")));
	CpReject(
			 (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			  errmsg("invalid field \"%s\" in message %d of %s",
					 field, index, argname),
			  errdetail("\"%s\" must be a number or a string, not a JSON %s.",
						field, jsonb_type_name(v)),
			  errhint("Write timestamps as milliseconds since the epoch, like 1732400000000, or as ISO-8601 strings, like \"2024-11-23T22:13:20Z\".")));
}

/*
 * Is a numeric NaN or an infinity?  Read from its header (see canon.h)
 * without the calls numeric_is_nan and numeric_is_inf make.
 */
static inline bool
numeric_is_special(Numeric num)
{
	if (likely(VARATT_IS_4B_U(num) && VARSIZE(num) >= VARHDRSZ + 2))
		return cp_numeric_is_special((const unsigned char *) VARDATA(num));
	return numeric_is_nan(num) || numeric_is_inf(num);
}

/*
 * Can a finite numeric be beyond the range of double precision?  Only one
 * stored in the long format (see canon.h): the short format's weight is at
 * most 63 base-10000 digits, so its value is below 1e256.  Numbers that
 * clients send as timestamps are short.
 */
static inline bool
numeric_may_overflow(Numeric num)
{
	uint16		header;

	if (unlikely(!VARATT_IS_4B_U(num) || VARSIZE(num) < VARHDRSZ + 2))
		return true;
	memcpy(&header, VARDATA(num), sizeof(header));
	return (header & CP_NUMERIC_SIGN_MASK) != CP_NUMERIC_SHORT;
}

/*
 * Convert a created_at/updated_at value to epoch milliseconds.  Returns
 * false if it is neither a number that is finite as a double precision
 * value nor a valid ISO-8601 string.  (A client reads 1e400 back as an
 * infinity, which it cannot send again.)
 */
bool
CpParseTimestampValue(JsonbValue *v, double *ms)
{
	if (v->type == jbvNumeric)
	{
		double		d;

		if (numeric_is_special(v->val.numeric))
			return false;
		/* out-of-range values become +-HUGE_VAL instead of an error */
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(v->val.numeric)));
		if (isnan(d) || isinf(d))
			return false;
		*ms = d;
		return true;
	}
	if (v->type == jbvString)
		return parse_iso8601(v->val.string.val, v->val.string.len, ms);
	return false;
}

/*
 * Validate a message's created_at/updated_at and fill *ts, like
 * CpParseTimestampValue but leaving a number unconverted (see CpTimestamp)
 * when it cannot overflow a double.  The checks are the same: a number is
 * valid unless it is NaN or not finite as a double precision value, a
 * string must be a valid ISO-8601 timestamp, which is cheap to parse at
 * once.
 */
static bool
check_timestamp(JsonbValue *v, CpTimestamp *ts)
{
	if (v->type == jbvNumeric)
	{
		if (numeric_is_special(v->val.numeric))
			return false;
		if (unlikely(numeric_may_overflow(v->val.numeric)))
		{
			/* Convert it now, to refuse it if it is too large */
			ts->num = NULL;
			return CpParseTimestampValue(v, &ts->ms);
		}
		ts->num = v->val.numeric;
		return true;
	}
	if (v->type == jbvString)
	{
		ts->num = NULL;
		return parse_iso8601(v->val.string.val, v->val.string.len, &ts->ms);
	}
	return false;
}

/*
 * Convert a timestamp that check_timestamp left as a number, and remember
 * the result.  Out of line: CpTimestampMs calls it once per timestamp.
 */
double
CpConvertTimestamp(CpTimestamp *ts)
{
	JsonbValue	v;
	bool		ok PG_USED_FOR_ASSERTS_ONLY;

	Assert(ts->num != NULL);
	v.type = jbvNumeric;
	v.val.numeric = ts->num;
	ok = CpParseTimestampValue(&v, &ts->ms);
	/* check_timestamp rejected every number that does not convert */
	Assert(ok);
	ts->num = NULL;
	return ts->ms;
}

/* Read exactly n decimal digits at *p into *out; advance *p */
static bool
read_digits(const char **p, const char *end, int n, int *out)
{
	int			val = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char		c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		val = val * 10 + (c - '0');
	}
	*p += n;
	*out = val;
	return true;
}

/*
 * Strict ISO-8601 parser, independent of the session's time zone and of
 * PostgreSQL's special inputs such as 'now' (so that the merge stays
 * immutable).  Accepts YYYY-MM-DD, optionally followed by 'T', 't' or a
 * space and hh:mm[:ss[.fraction]], optionally followed by Z, +hh, +hhmm or
 * +hh:mm (or -).  A missing zone means UTC.
 */
static bool
parse_iso8601(const char *s, int len, double *ms)
{
	const char *p = s;
	const char *end = s + len;
	int			year,
				month,
				day;
	int			hour = 0,
				minute = 0,
				second = 0;
	int64		nanos = 0;		/* the fraction, exactly, to 9 digits */
	int			offset_min = 0;

	if (!read_digits(&p, end, 4, &year) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &month) || p >= end || *p++ != '-' ||
		!read_digits(&p, end, 2, &day))
		return false;
	if (month < 1 || month > 12 || day < 1 || day > day_tab[isleap(year)][month - 1])
		return false;

	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (!read_digits(&p, end, 2, &hour) || p >= end || *p++ != ':' ||
			!read_digits(&p, end, 2, &minute))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (!read_digits(&p, end, 2, &second))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				int			digits = 0;

				p++;
				if (p >= end || *p < '0' || *p > '9')
					return false;
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (digits++ < 9)
						nanos = nanos * 10 + (*p - '0');
					p++;
				}
				while (digits++ < 9)
					nanos *= 10;
			}
		}
		if (hour > 23 || minute > 59 || second > 60)
			return false;

		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			int			sign = (*p == '-') ? -1 : 1;
			int			oh,
						om = 0;

			p++;
			if (!read_digits(&p, end, 2, &oh))
				return false;
			if (p < end && *p == ':')
			{
				p++;
				if (!read_digits(&p, end, 2, &om))
					return false;
			}
			else if (p < end)
			{
				if (!read_digits(&p, end, 2, &om))
					return false;
			}
			if (oh > 23 || om > 59)
				return false;
			offset_min = sign * (oh * 60 + om);
		}
	}

	if (p != end)
		return false;

	*ms = ((double) (date2j(year, month, day) - UNIX_EPOCH_JDATE) * 86400.0 +
		   hour * 3600.0 + minute * 60.0 + second - offset_min * 60.0) * 1000.0 +
		(double) nanos / 1000000.0;
	return true;
}

/* A JSON type name for error details */
static const char *
jsonb_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvArray:
			return "array";
		case jbvObject:
			return "object";
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? "object" : "array";
		default:
			return "value";
	}
}

/* qsort comparator: by id, then by position */
static int
compare_by_id(const void *a, const void *b)
{
	const CpMessage *ma = *(const CpMessage *const *) a;
	const CpMessage *mb = *(const CpMessage *const *) b;
	int			c = CpCompareMessageIds(ma, mb);

	if (c != 0)
		return c;
	return (ma->index > mb->index) - (ma->index < mb->index);
}

/* A NUL-terminated copy of an id, for error messages */
static char *
id_for_message(const char *id, int idlen)
{
	return pnstrdup(id, idlen);
}
