/*-------------------------------------------------------------------------
 *
 * checksum.c
 *	  XXH3-64 checksum of the canonical text of a jsonb value.
 *
 * The checksum of a jsonb container is XXH3-64 with seed 0 over the UTF-8
 * bytes that JsonbToCString prints for it (jsonb's canonical text output:
 * keys sorted and deduplicated, ", " between elements and pairs, ": " after
 * keys, a top-level scalar printed bare, numbers exactly as numeric_out
 * prints them).  A client can recompute it from the value's text output
 * with any XXH3 implementation, and two values that are equal as jsonb but
 * keep different numeric scale (1.0 and 1.00) get different checksums.
 *
 * The text is never built.  The container is walked with the jsonb iterator
 * and the text is produced token by token into a small fixed buffer that is
 * fed to a streaming XXH3 state whenever it fills up, so hashing a large
 * message array costs no memory proportional to its size.  The code below
 * must stay byte-for-byte in step with JsonbToCStringWorker (non-indented
 * mode) and escape_json of the server it is built against; the regression
 * test and test/checksum_props.sh compare the two.
 *
 * Everything here is a pure function of its input: no locks, no shared
 * state.  Memory is allocated in the caller's context, except the text of
 * numbers, which goes to a scratch context that is reset as the walk goes.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/checksum.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "chatpersist.h"

/* Size of the text buffer between the jsonb walk and the XXH3 state */
#define CP_HASH_BUFSIZE			8192

/* Room for the longest escape sequence, \u00XX */
#define CP_MAX_ESCAPE_LEN		6

/* Reset the scratch context for number text after this many numbers */
#define CP_NUMBERS_PER_RESET	1024

/*
 * State of one canonical-text hash: the XXH3 state, the pending bytes not
 * yet fed to it, and the scratch context for numeric_out.  It lives on the
 * stack of CpHashContainer (XXH3_state_t needs its 64-byte alignment, which
 * palloc would not give).
 */
typedef struct CpTextHash
{
	XXH3_state_t state;
	size_t		used;			/* bytes pending in buf */
	MemoryContext numcxt;		/* created at the first number, or NULL */
	int			nnumbers;		/* numbers printed since the last reset */
	char		buf[CP_HASH_BUFSIZE];
} CpTextHash;

/*
 * What follows a backslash when escape_json escapes a byte: 0 for bytes
 * copied verbatim, 'u' for the \u00XX form.  Only bytes below 0x20, the
 * double quote and the backslash are escaped; bytes of multi-byte UTF-8
 * characters (0x80 and up) are copied as they are.
 */
static const char escape_kind[256] = {
	/* 0x00 - 0x07 */
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	/* 0x08 - 0x0f: \b \t \n, 0x0b, \f \r */
	'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
	/* 0x10 - 0x17 */
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	/* 0x18 - 0x1f */
	'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	['"'] = '"',
	['\\'] = '\\',
};

static const char hex_digits[] = "0123456789abcdef";

static inline void text_hash_flush(CpTextHash *th);
static inline void text_hash_bytes(CpTextHash *th, const char *data, size_t len);
static inline void text_hash_char(CpTextHash *th, char c);
static void text_hash_string(CpTextHash *th, const char *str, int len);
static void text_hash_numeric(CpTextHash *th, Numeric num);
static void text_hash_scalar(CpTextHash *th, JsonbValue *v);

/*
 * Feed the pending bytes to the XXH3 state and empty the buffer.
 */
static inline void
text_hash_flush(CpTextHash *th)
{
	if (th->used > 0)
	{
		(void) XXH3_64bits_update(&th->state, th->buf, th->used);
		th->used = 0;
	}
}

/*
 * Append len bytes of text.  A run that does not fit in the free part of
 * the buffer flushes it; a run at least as long as the whole buffer then
 * goes straight to the XXH3 state, which gives the same hash as feeding it
 * through the buffer.
 */
static inline void
text_hash_bytes(CpTextHash *th, const char *data, size_t len)
{
	if (likely(len <= CP_HASH_BUFSIZE - th->used))
	{
		memcpy(th->buf + th->used, data, len);
		th->used += len;
		return;
	}

	text_hash_flush(th);
	if (len >= CP_HASH_BUFSIZE)
		(void) XXH3_64bits_update(&th->state, data, len);
	else
	{
		memcpy(th->buf, data, len);
		th->used = len;
	}
}

/* Append one byte of text */
static inline void
text_hash_char(CpTextHash *th, char c)
{
	if (unlikely(th->used >= CP_HASH_BUFSIZE))
		text_hash_flush(th);
	th->buf[th->used++] = c;
}

/*
 * Append a jsonb string (a key or a string value) as escape_json prints it:
 * in double quotes, with \" \\ \b \f \n \r \t, other bytes below 0x20 as
 * \u00XX in lowercase hex, every other byte verbatim.  Runs of verbatim
 * bytes are copied in one piece.
 *
 * JsonbToCString passes escape_json a NUL-terminated copy of the string, so
 * it would stop at an embedded NUL byte.  jsonb input rejects \u0000, so
 * that cannot happen, but we stop there too rather than print a \u0000 the
 * server never would.
 */
static void
text_hash_string(CpTextHash *th, const char *str, int len)
{
	const unsigned char *p = (const unsigned char *) str;
	const unsigned char *end = p + len;
	const unsigned char *run = p;

	text_hash_char(th, '"');

	while (p < end)
	{
		unsigned char c = *p;
		char		kind = escape_kind[c];
		char	   *dst;

		if (likely(kind == 0))
		{
			p++;
			continue;
		}

		/* Flush the verbatim run before this byte */
		if (p > run)
			text_hash_bytes(th, (const char *) run, p - run);
		if (unlikely(c == '\0'))
		{
			run = p;
			end = p;
			break;
		}

		if (unlikely(th->used > CP_HASH_BUFSIZE - CP_MAX_ESCAPE_LEN))
			text_hash_flush(th);
		dst = th->buf + th->used;
		dst[0] = '\\';
		dst[1] = kind;
		if (kind == 'u')
		{
			dst[2] = '0';
			dst[3] = '0';
			dst[4] = hex_digits[c >> 4];
			dst[5] = hex_digits[c & 0x0f];
			th->used += 6;
		}
		else
			th->used += 2;

		p++;
		run = p;
	}

	if (end > run)
		text_hash_bytes(th, (const char *) run, end - run);
	text_hash_char(th, '"');
}

/*
 * Append a number as numeric_out prints it (so the scale is kept).  The
 * text is allocated in the scratch context, created at the first number
 * and reset every CP_NUMBERS_PER_RESET numbers; each string is also freed
 * at once, so memory stays bounded by the longest number even on huge
 * inputs.
 */
static void
text_hash_numeric(CpTextHash *th, Numeric num)
{
	MemoryContext oldcxt;
	char	   *str;

	if (th->numcxt == NULL)
		th->numcxt = AllocSetContextCreate(CurrentMemoryContext,
										   "chatpersist checksum numbers",
										   ALLOCSET_SMALL_SIZES);
	else if (th->nnumbers >= CP_NUMBERS_PER_RESET)
	{
		MemoryContextReset(th->numcxt);
		th->nnumbers = 0;
	}

	oldcxt = MemoryContextSwitchTo(th->numcxt);
	str = DatumGetCString(DirectFunctionCall1(numeric_out,
											  NumericGetDatum(num)));
	MemoryContextSwitchTo(oldcxt);

	text_hash_bytes(th, str, strlen(str));
	pfree(str);
	th->nnumbers++;
}

/*
 * Append a scalar (a key, a value or an array element) as JsonbToCString
 * prints it.
 */
static void
text_hash_scalar(CpTextHash *th, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			text_hash_bytes(th, "null", 4);
			break;
		case jbvString:
			text_hash_string(th, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			text_hash_numeric(th, v->val.numeric);
			break;
		case jbvBool:
			if (v->val.boolean)
				text_hash_bytes(th, "true", 4);
			else
				text_hash_bytes(th, "false", 5);
			break;
		default:
			elog(ERROR, "unknown jsonb scalar type: %d", (int) v->type);
	}
}

/*
 * XXH3-64 (seed 0) of the text JsonbToCString(NULL, jc, ...) prints for jc,
 * which may be a root container or one nested in a larger value (it hashes
 * as it would print standalone).  The text is streamed into the hash, never
 * built.  The iterator and the number text are allocated in the current
 * memory context and freed before returning; jc must stay valid meanwhile.
 */
uint64
CpHashContainer(JsonbContainer *jc)
{
	CpTextHash	th;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken type;
	bool		first = true;
	bool		raw_scalar = false;
	uint64		hash;

	XXH3_INITSTATE(&th.state);
	(void) XXH3_64bits_reset(&th.state);
	th.used = 0;
	th.numcxt = NULL;
	th.nnumbers = 0;

	/*
	 * "first" is true right after an opening bracket or a key, where no ", "
	 * separator goes before the next token.
	 */
	it = JsonbIteratorInit(jc);
	while ((type = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		CHECK_FOR_INTERRUPTS();

		switch (type)
		{
			case WJB_BEGIN_ARRAY:
				if (!first)
					text_hash_bytes(&th, ", ", 2);
				/* a top-level scalar is a one-element array, printed bare */
				if (v.val.array.rawScalar)
					raw_scalar = true;
				else
					text_hash_char(&th, '[');
				first = true;
				break;
			case WJB_BEGIN_OBJECT:
				if (!first)
					text_hash_bytes(&th, ", ", 2);
				text_hash_char(&th, '{');
				first = true;
				break;
			case WJB_KEY:
				if (!first)
					text_hash_bytes(&th, ", ", 2);
				text_hash_scalar(&th, &v);
				text_hash_bytes(&th, ": ", 2);
				/* the value, scalar or container, follows without a comma */
				first = true;
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				if (!first)
					text_hash_bytes(&th, ", ", 2);
				text_hash_scalar(&th, &v);
				first = false;
				break;
			case WJB_END_ARRAY:
				if (!raw_scalar)
					text_hash_char(&th, ']');
				first = false;
				break;
			case WJB_END_OBJECT:
				text_hash_char(&th, '}');
				first = false;
				break;
			default:
				elog(ERROR, "unknown jsonb iterator token type: %d",
					 (int) type);
		}
	}

	text_hash_flush(&th);
	hash = (uint64) XXH3_64bits_digest(&th.state);

	if (th.numcxt != NULL)
		MemoryContextDelete(th.numcxt);

	return hash;
}

/*
 * Write hash as CP_CHECKSUM_LEN lowercase hex digits, most significant
 * first (printf's %016llx), plus a NUL, into out.
 */
void
CpChecksumToHex(uint64 hash, char *out)
{
	int			i;

	for (i = CP_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = hex_digits[hash & 0x0f];
		hash >>= 4;
	}
	out[CP_CHECKSUM_LEN] = '\0';
}

/*
 * Write the checksum of jc (see CpHashContainer) as CP_CHECKSUM_LEN hex
 * digits plus a NUL into out.
 */
void
CpChecksumContainer(JsonbContainer *jc, char *out)
{
	CpChecksumToHex(CpHashContainer(jc), out);
}

/*
 * checksum(p_messages jsonb) RETURNS text
 *
 * p_messages: any jsonb value, usually a conversation's message array (NULL:
 * 22004).  Returns XXH3-64 (seed 0) of its canonical text output, as 16
 * lowercase hex digits; equal to xxhsum -H3 of p_messages::text.
 */
PG_FUNCTION_INFO_V1(chatpersist_checksum);
Datum
chatpersist_checksum(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb;
	char		hex[CP_CHECKSUM_LEN + 1];

	if (PG_ARGISNULL(0))
		CpNullArgument("p_messages");
	jb = PG_GETARG_JSONB_P(0);

	CpChecksumContainer(&jb->root, hex);

	PG_FREE_IF_COPY(jb, 0);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(hex, CP_CHECKSUM_LEN));
}
