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
 * The text is never built.  The container's binary layout is walked
 * directly and the text is produced token by token into a fixed 8 kB
 * buffer that is fed to a streaming XXH3 state whenever it fills up, so
 * hashing a large message array costs no memory proportional to its size.
 * (A text that never fills the buffer, a small conversation's, is hashed
 * with one XXH3_64bits call instead, which gives the same hash.)  Strings
 * are scanned for bytes to escape a block at a time and numbers printed
 * from their stored digits, both by the pure functions of canon.h.
 * The code below must stay byte-for-byte in step with JsonbToCStringWorker
 * (non-indented mode), escape_json and numeric_out of the server it is
 * built against; the regression test and test/checksum_props.sh compare
 * the two, and builds with assertions check every hash against the text
 * JsonbToCString prints.
 *
 * Everything here is a pure function of its input: no locks, no shared
 * state.  Memory is allocated in the caller's context, except the text of
 * numbers too long to print in place (cp_numeric_text), which goes to a
 * scratch context that is reset as the walk goes.
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

#include "canon.h"
#include "chatpersist.h"
#include "pginternals.h"

/* Size of the text buffer between the jsonb walk and the XXH3 state */
#define CP_HASH_BUFSIZE			8192

/* Room for the longest escape sequence, \u00XX */
#define CP_MAX_ESCAPE_LEN		6

/*
 * Bytes of the buffer past CP_HASH_BUFSIZE that a short string may be
 * copied into as one fixed-size block (only its own bytes count as used)
 */
#define CP_HASH_SLACK			CP_SCAN_BLOCK

/* Longest number printed in place; longer ones go through numeric_out */
#define CP_MAX_NUMBER_LEN		128

/* Reset the scratch context for number text after this many numbers */
#define CP_NUMBERS_PER_RESET	1024

/*
 * State of one canonical-text hash: the XXH3 state, the buffer of text not
 * yet fed to it (the walk keeps its own write position, see
 * text_hash_room), and the scratch context for numeric_out.  A text that
 * fits in the buffer is hashed with one XXH3_64bits call at the end, which
 * gives the same hash as streaming and costs less.  It lives on the
 * stack of CpHashContainer.  XXH3_state_t needs 64-byte alignment, which
 * neither palloc nor every stack gives (AddressSanitizer's fake stack does
 * not), so the state is placed at the first 64-byte boundary of
 * state_space, or is a CpArrayHash's, aligned the same way.
 */
typedef struct CpTextHash
{
	XXH3_state_t *state;		/* 64-byte aligned: in state_space, or a
								 * CpArrayHash's */
	bool		streaming;		/* state started: text was fed to it */
	char	   *bufend;			/* buf + CP_HASH_BUFSIZE */
	const char *limit;			/* end of the jsonb bytes being walked */
	MemoryContext numcxt;		/* created at the first number, or NULL */
	int			nnumbers;		/* numbers printed since the last reset */
	char		buf[CP_HASH_BUFSIZE + CP_HASH_SLACK];
	char		state_space[sizeof(XXH3_state_t) + 64];
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

static inline char *text_hash_room(CpTextHash *th, char *dst, size_t need);
static char *text_hash_flush(CpTextHash *th, char *dst);
static char *text_hash_bytes(CpTextHash *th, char *dst, const char *data,
							 size_t len);
static inline char *text_hash_string(CpTextHash *th, char *dst,
									 const char *str, uint32 len);
static char *text_hash_escaped(CpTextHash *th, char *dst,
							   const unsigned char *p,
							   const unsigned char *end, size_t run);
static inline char *text_hash_numeric(CpTextHash *th, char *dst, Numeric num);
static char *text_hash_numeric_out(CpTextHash *th, char *dst, Numeric num);
static inline char *text_hash_child(CpTextHash *th, char *dst, JEntry entry,
									const char *base, uint32 start,
									uint32 end);
static char *text_hash_container(CpTextHash *th, char *dst, JsonbContainer *jc);

/*
 * The walk writes text at a position dst in th->buf, which it passes along
 * and gets back from every step (so the position stays in a register), and
 * asks for room before each fixed-size piece: text_hash_room feeds the
 * pending text to the XXH3 state when fewer than need bytes are left.
 * Feeding the text in other pieces gives the same hash: only the
 * concatenation counts.
 */
static inline char *
text_hash_room(CpTextHash *th, char *dst, size_t need)
{
	Assert(need <= CP_HASH_BUFSIZE);

	/*
	 * CpHashContainer leaves th->state and th->buf unset until they are
	 * written (the state at the first flush), which cppcheck's whole-program
	 * check takes for a read of an uninitialised variable
	 */
	/* cppcheck-suppress ctuuninitvar */
	if (unlikely((size_t) (th->bufend - dst) < need))
		dst = text_hash_flush(th, dst);
	return dst;
}

/*
 * Feed the buffer's text to the XXH3 state (started here, at the first
 * flush) and return the emptied buffer's start.
 */
static char *
text_hash_flush(CpTextHash *th, char *dst)
{
	if (!th->streaming)
	{
		XXH3_INITSTATE(th->state);
		(void) XXH3_64bits_reset(th->state);
		th->streaming = true;
	}
	(void) XXH3_64bits_update(th->state, th->buf, dst - th->buf);
	return th->buf;
}

/*
 * Append len bytes of any length: through the buffer, or, when they do
 * not fit, straight to the XXH3 state after the pending text.
 */
static char *
text_hash_bytes(CpTextHash *th, char *dst, const char *data, size_t len)
{
	if ((size_t) (th->bufend - dst) < len)
	{
		dst = text_hash_flush(th, dst);
		if (len >= CP_HASH_BUFSIZE)
		{
			(void) XXH3_64bits_update(th->state, data, len);
			return dst;
		}
	}
	memcpy(dst, data, len);
	return dst + len;
}

/*
 * Append a jsonb string (a key or a string value) as escape_json prints it:
 * in double quotes, with \" \\ \b \f \n \r \t, other bytes below 0x20 as
 * \u00XX in lowercase hex, every other byte verbatim.
 *
 * The common case is inline: a string with nothing to escape (a key, an
 * id, a role, most lines of text) that fits in the buffer is copied there
 * with its quotes in one piece; a short one as one fixed-size block when
 * that much can be read (CP_HASH_SLACK takes the excess).  cp_escape_scan
 * finds the first byte to escape a block at a time.
 */
static inline char *
text_hash_string(CpTextHash *th, char *dst, const char *str, uint32 len)
{
	const unsigned char *p = (const unsigned char *) str;
	size_t		avail = th->limit - str;
	size_t		run = cp_escape_scan(p, len, avail);

	if (likely(run == len &&
			   (size_t) (th->bufend - dst) >= (size_t) len + 2))
	{
		*dst++ = '"';
		if (len <= CP_SCAN_BLOCK && avail >= CP_SCAN_BLOCK)
			memcpy(dst, p, CP_SCAN_BLOCK);
		else
			memcpy(dst, p, len);
		dst += len;
		*dst++ = '"';
		return dst;
	}
	return text_hash_escaped(th, dst, p, p + len, run);
}

/*
 * The rest of text_hash_string: a string with bytes to escape, or too long
 * for the buffer's free part.  run is the length of its first verbatim run.
 *
 * JsonbToCString passes escape_json a NUL-terminated copy of the string, so
 * it would stop at an embedded NUL byte.  jsonb input rejects \u0000, so
 * that cannot happen, but we stop there too rather than print a \u0000 the
 * server never would.
 */
static char *
text_hash_escaped(CpTextHash *th, char *dst, const unsigned char *p,
				  const unsigned char *end, size_t run)
{
	dst = text_hash_room(th, dst, 1);
	*dst++ = '"';
	dst = text_hash_bytes(th, dst, (const char *) p, run);
	p += run;

	/* At a byte to escape: escape it, then copy the next run */
	while (p < end)
	{
		unsigned char c = *p;
		char		kind = escape_kind[c];

		Assert(kind != 0);
		if (unlikely(c == '\0'))
			break;

		dst = text_hash_room(th, dst, CP_MAX_ESCAPE_LEN);
		dst[0] = '\\';
		dst[1] = kind;
		if (kind == 'u')
		{
			dst[2] = '0';
			dst[3] = '0';
			dst[4] = hex_digits[c >> 4];
			dst[5] = hex_digits[c & 0x0f];
			dst += 6;
		}
		else
			dst += 2;
		p++;

		run = cp_escape_scan(p, end - p, th->limit - (const char *) p);
		dst = text_hash_bytes(th, dst, (const char *) p, run);
		p += run;
	}

	dst = text_hash_room(th, dst, 1);
	*dst++ = '"';
	return dst;
}

/*
 * Append a number as numeric_out prints it (so the scale is kept), decoded
 * from its stored form by cp_numeric_text straight into the buffer; the
 * few it declines go through numeric_out.
 */
static inline char *
text_hash_numeric(CpTextHash *th, char *dst, Numeric num)
{
	int			len = -1;

	dst = text_hash_room(th, dst, CP_MAX_NUMBER_LEN);
	if (likely(VARATT_IS_4B_U(num)))
		len = cp_numeric_text((const unsigned char *) VARDATA(num),
							  VARSIZE(num) - VARHDRSZ, dst, CP_MAX_NUMBER_LEN);
	if (likely(len >= 0))
		return dst + len;
	return text_hash_numeric_out(th, dst, num);
}

/*
 * Append a number through numeric_out.  The text is allocated in the
 * scratch context, created at the first such number and reset every
 * CP_NUMBERS_PER_RESET numbers; each string is also freed at once, so
 * memory stays bounded by the longest number even on huge inputs.
 */
static char *
text_hash_numeric_out(CpTextHash *th, char *dst, Numeric num)
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

	dst = text_hash_bytes(th, dst, str, strlen(str));
	pfree(str);
	th->nnumbers++;
	return dst;
}

/*
 * Append a child of a container, whose data is at base + start (see
 * text_hash_container): a scalar as JsonbToCString prints it, or a nested
 * container.  A numeric or a container starts at the next 4-byte boundary,
 * as in fillJsonbValue (cp_jsonb_child_start, pginternals.h).
 */
static inline char *
text_hash_child(CpTextHash *th, char *dst, JEntry entry, const char *base,
				uint32 start, uint32 end)
{
	switch (entry & JENTRY_TYPEMASK)
	{
		case JENTRY_ISSTRING:
			return text_hash_string(th, dst, base + start, end - start);
		case JENTRY_ISNUMERIC:
			return text_hash_numeric(th, dst, (Numeric) cp_jsonb_child_start(entry, base, start));
		case JENTRY_ISBOOL_TRUE:
			dst = text_hash_room(th, dst, 4);
			memcpy(dst, "true", 4);
			return dst + 4;
		case JENTRY_ISBOOL_FALSE:
			dst = text_hash_room(th, dst, 5);
			memcpy(dst, "false", 5);
			return dst + 5;
		case JENTRY_ISNULL:
			dst = text_hash_room(th, dst, 4);
			memcpy(dst, "null", 4);
			return dst + 4;
		case JENTRY_ISCONTAINER:
			return text_hash_container(th, dst,
									   (JsonbContainer *) cp_jsonb_child_start(entry, base, start));
		default:
			elog(ERROR, "unknown jsonb entry type: %u",
				 (unsigned int) (entry & JENTRY_TYPEMASK));
	}
	return dst;					/* keep the compiler quiet */
}

/*
 * Append the text JsonbToCString prints for a container: "[" elements "]"
 * or "{" key ": " value pairs "}", with ", " between them; a raw scalar
 * (a one-element array flagged as such, only ever a root) prints bare.
 *
 * This reads the container's binary layout directly (jsonb.h): the header
 * word, one JEntry per child (an object's keys first, then its values, in
 * the same order), then the children's data.  A JEntry holds either the
 * child's length or, every JB_OFFSET_STRIDE'th one, its end offset, so one
 * pass computes every child's position, as JBE_ADVANCE_OFFSET does.  The
 * jsonb iterator visits the same children in the same order, but it
 * pallocs a frame for every container and copies every token into a
 * JsonbValue, which cost as much as all the rest of the hash.
 */
static char *
text_hash_container(CpTextHash *th, char *dst, JsonbContainer *jc)
{
	uint32		count = JsonContainerSize(jc);
	const JEntry *children = jc->children;
	const char *base;
	uint32		start;
	uint32		end;
	uint32		i;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	if (JsonContainerIsObject(jc))
	{
		uint32		kstart = 0;
		uint32		vstart = 0;

		base = cp_jsonb_children_data(jc);

		/* The values' data follow all of the keys' */
		for (i = 0; i < count; i++)
			JBE_ADVANCE_OFFSET(vstart, children[i]);

		dst = text_hash_room(th, dst, 1);
		*dst++ = '{';
		for (i = 0; i < count; i++)
		{
			JEntry		kentry = children[i];
			JEntry		ventry = children[count + i];

			if (i > 0)
			{
				dst = text_hash_room(th, dst, 2);
				*dst++ = ',';
				*dst++ = ' ';
			}

			end = kstart;
			JBE_ADVANCE_OFFSET(end, kentry);
			Assert(JBE_ISSTRING(kentry));
			dst = text_hash_string(th, dst, base + kstart, end - kstart);
			kstart = end;

			dst = text_hash_room(th, dst, 2);
			*dst++ = ':';
			*dst++ = ' ';

			end = vstart;
			JBE_ADVANCE_OFFSET(end, ventry);
			dst = text_hash_child(th, dst, ventry, base, vstart, end);
			vstart = end;
		}
		dst = text_hash_room(th, dst, 1);
		*dst++ = '}';
		return dst;
	}

	Assert(JsonContainerIsArray(jc));
	base = cp_jsonb_children_data(jc);

	if (JsonContainerIsScalar(jc))
	{
		Assert(count == 1);
		end = 0;
		JBE_ADVANCE_OFFSET(end, children[0]);
		return text_hash_child(th, dst, children[0], base, 0, end);
	}

	dst = text_hash_room(th, dst, 1);
	*dst++ = '[';
	start = 0;
	for (i = 0; i < count; i++)
	{
		if (i > 0)
		{
			dst = text_hash_room(th, dst, 2);
			*dst++ = ',';
			*dst++ = ' ';
		}
		end = start;
		JBE_ADVANCE_OFFSET(end, children[i]);
		dst = text_hash_child(th, dst, children[i], base, start, end);
		start = end;
	}
	dst = text_hash_room(th, dst, 1);
	*dst++ = ']';
	return dst;
}

/*
 * XXH3-64 (seed 0) of the text JsonbToCString(NULL, jc, ...) prints for jc,
 * which may be a root container or one nested in a larger value (it hashes
 * as it would print standalone).  len is the container's size in bytes
 * (VARSIZE - VARHDRSZ for a root); the walk reads nothing outside those
 * bytes.  The text is streamed into the hash, never built.  The number
 * text is allocated in the current memory context and freed before
 * returning; jc must stay valid meanwhile.
 */
uint64
CpHashContainer(JsonbContainer *jc, Size len)
{
	CpTextHash	th;
	uint64		hash;
	char	   *dst;

	th.state = (XXH3_state_t *) TYPEALIGN(64, th.state_space);
	th.streaming = false;
	th.bufend = th.buf + CP_HASH_BUFSIZE;
	th.limit = (const char *) jc + len;
	th.numcxt = NULL;
	th.nnumbers = 0;

	dst = text_hash_container(&th, th.buf, jc);

	/* A text that fit in the buffer is hashed in one call, else streamed */
	if (!th.streaming)
		hash = (uint64) XXH3_64bits(th.buf, dst - th.buf);
	else
	{
		(void) XXH3_64bits_update(th.state, th.buf, dst - th.buf);
		hash = (uint64) XXH3_64bits_digest(th.state);
	}

	if (th.numcxt != NULL)
		MemoryContextDelete(th.numcxt);

#ifdef USE_ASSERT_CHECKING
	{
		/* The definition: the hash of the text JsonbToCString prints */
		char	   *text = JsonbToCString(NULL, jc, -1);

		Assert(hash == (uint64) XXH3_64bits(text, strlen(text)));
		pfree(text);
	}
#endif

	return hash;
}

/*
 * The checksum of a whole (detoasted) jsonb value: CpHashContainer of its
 * root, as CP_CHECKSUM_LEN lowercase hex digits, most significant first
 * (printf's %016llx), plus a NUL, into out.
 */
void
CpChecksumJsonb(Jsonb *jb, char *out)
{
	uint64		hash = CpHashContainer(&jb->root, VARSIZE(jb) - VARHDRSZ);
	int			i;

	for (i = CP_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = hex_digits[hash & 0x0f];
		hash >>= 4;
	}
	out[CP_CHECKSUM_LEN] = '\0';
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

	CpChecksumJsonb(jb, hex);

	PG_FREE_IF_COPY(jb, 0);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(hex, CP_CHECKSUM_LEN));
}

/*
 * The running hash of an array's canonical text, kept with a conversation
 * so that an append need not read the array again (docs/design-2.0.md).
 * The text of an array is "[", its elements' texts joined by ", ", then
 * "]"; the state holds everything but the closing bracket, and a digest
 * adds it to a copy.  It is saved as the XXH3 fields that streaming
 * changes (the accumulators, the pending input and the counters), after a
 * format byte and the xxHash version; anything else is what
 * XXH3_64bits_reset sets.  A saved state that does not load, or whose
 * digest does not match the stored checksum, is recomputed by the caller.
 */
/* changes with the saved form and with the xxHash version it continues */
#define CP_ARRAY_HASH_FORMAT	(1 + (XXH_VERSION_NUMBER % 100) * 2)

struct CpArrayHash
{
	XXH3_state_t *state;		/* 64-byte aligned, inside raw */
	char	   *raw;
};

/*
 * The saved form: a format byte, the pending input's length (2 bytes), the
 * stripes done in the current block (1 byte), the total length (8 bytes),
 * the accumulators (64 bytes), the pending input, and when that is shorter
 * than a stripe, the end of the buffer that a digest reads to complete the
 * last stripe (XXH3's catch-up bytes, left from earlier input); integers
 * in the machine's byte order (the format byte changes with anything else)
 */
#define CP_SAVED_HEADER		(1 + 2 + 1 + 8)
#define CP_SAVED_FIXED		(CP_SAVED_HEADER + 8 * sizeof(XXH64_hash_t))
#define CP_CATCHUP(buffered) \
	((buffered) < XXH_STRIPE_LEN ? XXH_STRIPE_LEN - (buffered) : 0)

static CpArrayHash *
array_hash_alloc(void)
{
	CpArrayHash *ah = palloc(sizeof(CpArrayHash));

	ah->raw = palloc(sizeof(XXH3_state_t) + 64);
	ah->state = (XXH3_state_t *) TYPEALIGN(64, ah->raw);
	/* defined bytes throughout: a saved state may carry unused buffer bytes */
	memset(ah->state, 0, sizeof(XXH3_state_t));
	XXH3_INITSTATE(ah->state);
	(void) XXH3_64bits_reset(ah->state);
	return ah;
}

/* A running hash of an empty array's text, "[" */
CpArrayHash *
CpArrayHashStart(void)
{
	CpArrayHash *ah = array_hash_alloc();

	(void) XXH3_64bits_update(ah->state, "[", 1);
	return ah;
}

/*
 * Feed one element (a container of len bytes) to the running hash; first:
 * it is the array's first element (no ", " before it)
 */
void
CpArrayHashAdd(CpArrayHash *ah, JsonbContainer *jc, Size len, bool first)
{
	CpTextHash	th;
	char	   *dst;

	if (!first)
		(void) XXH3_64bits_update(ah->state, ", ", 2);

	th.streaming = true;
	th.state = ah->state;
	th.bufend = th.buf + CP_HASH_BUFSIZE;
	th.limit = (const char *) jc + len;
	th.numcxt = NULL;
	th.nnumbers = 0;

	dst = text_hash_container(&th, th.buf, jc);
	(void) XXH3_64bits_update(th.state, th.buf, dst - th.buf);
	if (th.numcxt != NULL)
		MemoryContextDelete(th.numcxt);
}

/* The checksum of the array so far, closed with "]", as CpChecksumJsonb */
void
CpArrayHashDigest(CpArrayHash *ah, char *out)
{
	CpArrayHash *copy = array_hash_alloc();
	uint64		hash;

	memcpy(copy->state, ah->state, sizeof(XXH3_state_t));
	(void) XXH3_64bits_update(copy->state, "]", 1);
	hash = (uint64) XXH3_64bits_digest(copy->state);
	for (int i = CP_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = hex_digits[hash & 0x0f];
		hash >>= 4;
	}
	out[CP_CHECKSUM_LEN] = '\0';
	pfree(copy->raw);
	pfree(copy);
}

/* The running hash as the bytea the conversation keeps */
bytea *
CpArrayHashSave(CpArrayHash *ah)
{
	XXH3_state_t *st = ah->state;
	Size		catchup = CP_CATCHUP(st->bufferedSize);
	Size		len = CP_SAVED_FIXED + st->bufferedSize + catchup;
	bytea	   *b = palloc(VARHDRSZ + len);
	char	   *p = VARDATA(b);
	uint16		buffered = (uint16) st->bufferedSize;
	uint8		stripes = (uint8) st->nbStripesSoFar;
	uint64		total = st->totalLen;

	StaticAssertStmt(XXH3_INTERNALBUFFER_SIZE <= PG_UINT16_MAX,
					 "pending input length does not fit two bytes");
	Assert(st->nbStripesSoFar < 256);
	SET_VARSIZE(b, VARHDRSZ + len);
	*p++ = CP_ARRAY_HASH_FORMAT;
	memcpy(p, &buffered, 2);
	p += 2;
	*p++ = (char) stripes;
	memcpy(p, &total, 8);
	p += 8;
	memcpy(p, st->acc, 8 * sizeof(XXH64_hash_t));
	p += 8 * sizeof(XXH64_hash_t);
	memcpy(p, st->buffer, st->bufferedSize);
	p += st->bufferedSize;
	memcpy(p, st->buffer + XXH3_INTERNALBUFFER_SIZE - catchup, catchup);
	return b;
}

/* A saved running hash, or NULL if b is not one this build can continue */
CpArrayHash *
CpArrayHashLoad(bytea *b)
{
	CpArrayHash *ah;
	const char *p = VARDATA_ANY(b);
	Size		len = VARSIZE_ANY_EXHDR(b);
	uint16		buffered;
	uint8		stripes;
	uint64		total;

	if (len < CP_SAVED_FIXED || p[0] != CP_ARRAY_HASH_FORMAT)
		return NULL;
	memcpy(&buffered, p + 1, 2);
	stripes = (uint8) p[3];
	memcpy(&total, p + 4, 8);
	if (buffered > XXH3_INTERNALBUFFER_SIZE ||
		len != CP_SAVED_FIXED + buffered + CP_CATCHUP(buffered) ||
		total < buffered)
		return NULL;

	ah = array_hash_alloc();
	if (stripes >= ah->state->nbStripesPerBlock)
		return NULL;
	ah->state->totalLen = total;
	ah->state->nbStripesSoFar = stripes;
	ah->state->bufferedSize = buffered;
	memcpy(ah->state->acc, p + CP_SAVED_HEADER, 8 * sizeof(XXH64_hash_t));
	memcpy(ah->state->buffer, p + CP_SAVED_FIXED, buffered);
	memcpy(ah->state->buffer + XXH3_INTERNALBUFFER_SIZE - CP_CATCHUP(buffered),
		   p + CP_SAVED_FIXED + buffered, CP_CATCHUP(buffered));
	return ah;
}
