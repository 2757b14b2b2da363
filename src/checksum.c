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
 * directly and the text is produced token by token into a small fixed
 * buffer that is fed to a streaming XXH3 state whenever it fills up, so
 * hashing a large message array costs no memory proportional to its size.
 * The code below must stay byte-for-byte in step with JsonbToCStringWorker
 * (non-indented mode), escape_json and numeric_out of the server it is
 * built against; the regression test and test/checksum_props.sh compare
 * the two, and builds with assertions check every hash against the text
 * JsonbToCString prints.
 *
 * Everything here is a pure function of its input: no locks, no shared
 * state.  Memory is allocated in the caller's context, except the text of
 * numbers too long to print in place (numeric_text), which goes to a
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
static inline bool escape_word(uint64 w);
static int	numeric_text(Numeric num, char *out, int outsize);
static void text_hash_string(CpTextHash *th, const char *str, int len);
static void text_hash_numeric(CpTextHash *th, Numeric num);
static void text_hash_child(CpTextHash *th, JEntry entry, const char *base,
							uint32 start, uint32 end);
static void text_hash_container(CpTextHash *th, JsonbContainer *jc);

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
 * Does any of the 8 bytes of w need an escape (a byte below 0x20, '"' or
 * '\\')?  The classic word-at-a-time tests ("haszero" and "hasless" of
 * Bit Twiddling Hacks): (x - 0x01..01) & ~x & 0x80..80 is nonzero exactly
 * when some byte of x is zero, and with 0x20..20 in place of 0x01..01
 * exactly when some byte is below 0x20 (this holds for any bound up to
 * 0x80, and bytes of 0x80 and up never match); a zero byte of w ^ 0x22..22
 * or of w ^ 0x5c..5c is a '"' or a '\\'.  Only the yes-or-no answer is
 * exact (a borrow can mark a byte above a matching one), which is all we
 * use: the caller then looks at the bytes one by one.  So the byte order of
 * w does not matter either.
 */
static inline bool
escape_word(uint64 w)
{
	const uint64 ones = UINT64CONST(0x0101010101010101);
	const uint64 highs = UINT64CONST(0x8080808080808080);
	uint64		quote = w ^ (ones * '"');
	uint64		backslash = w ^ (ones * '\\');
	uint64		r;

	r = (w - ones * 0x20) & ~w;
	r |= (quote - ones) & ~quote;
	r |= (backslash - ones) & ~backslash;
	return (r & highs) != 0;
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

	/*
	 * The common case, a string that fits in the buffer with its quotes:
	 * copy it there word by word while checking for escapes, which saves
	 * the calls per run and per byte below on the many short strings (keys,
	 * ids).  At the first byte to escape, the general loop takes over.
	 */
	if (likely((size_t) len + 2 <= CP_HASH_BUFSIZE - th->used))
	{
		char	   *dst = th->buf + th->used;

		*dst++ = '"';
		while (end - p >= 8)
		{
			uint64		w;

			memcpy(&w, p, sizeof(w));
			if (escape_word(w))
				break;
			memcpy(dst, &w, sizeof(w));
			dst += 8;
			p += 8;
		}
		while (p < end && escape_kind[*p] == 0)
			*dst++ = (char) *p++;
		if (p == end)
		{
			*dst++ = '"';
			th->used = dst - th->buf;
			return;
		}
		th->used = dst - th->buf;
		run = p;
	}
	else
		text_hash_char(th, '"');

	while (p < end)
	{
		unsigned char c;
		char		kind;
		char	   *dst;

		/*
		 * Skip verbatim bytes 8 at a time while no byte of the word needs an
		 * escape: that is most of a message's text, and testing one byte at
		 * a time was the largest cost of hashing it.  See escape_word.
		 */
		while (end - p >= 8)
		{
			uint64		w;

			memcpy(&w, p, sizeof(w));
			if (escape_word(w))
				break;
			p += 8;
		}
		if (p >= end)
			break;

		c = *p;
		kind = escape_kind[c];
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
 * The on-disk layout of a numeric (src/backend/utils/adt/numeric.c, which
 * does not export it): a varlena header, then either a 16-bit short header
 * (flag bits 10, a sign bit, 6 bits of display scale, 7 bits of weight)
 * or, in the long format (flag bits 00 or 01, the sign), a 16-bit sign and
 * display scale and a 16-bit weight; then the digits, base 10000, most
 * significant first, the first one at the given weight (its power of
 * 10000).  Flag bits 11 are NaN and the infinities.  The layout is part of
 * the on-disk format, which pg_upgrade keeps, so it cannot change within a
 * major version or between them.
 */
#define CP_NUMERIC_SIGN_MASK		0xC000
#define CP_NUMERIC_NEG				0x4000
#define CP_NUMERIC_SHORT			0x8000
#define CP_NUMERIC_SPECIAL			0xC000
#define CP_NUMERIC_SHORT_SIGN_MASK	0x2000
#define CP_NUMERIC_SHORT_DSCALE_MASK	0x1F80
#define CP_NUMERIC_SHORT_DSCALE_SHIFT	7
#define CP_NUMERIC_SHORT_WEIGHT_SIGN_MASK	0x0040
#define CP_NUMERIC_SHORT_WEIGHT_MASK	0x003F
#define CP_NUMERIC_DSCALE_MASK		0x3FFF
#define CP_NBASE_DIGITS				4	/* decimal digits per base-10000 digit */

/* Longest number numeric_text prints; longer ones go through numeric_out */
#define CP_MAX_NUMBER_LEN			128

/*
 * Print num into out exactly as numeric_out does (get_str_from_var in
 * numeric.c: a '-' for a negative number, the integral digits without
 * leading zeroes, or "0", then a '.' and exactly display-scale digits).
 * Returns the length, or -1 without writing anything if num is NaN or an
 * infinity, has an unexpected header, or takes more than outsize bytes;
 * the caller then falls back to numeric_out.  (The assertion at the end
 * of CpHashContainer checks the whole text against JsonbToCString's.)
 */
static int
numeric_text(Numeric num, char *out, int outsize)
{
	const char *data;
	uint16		header;
	const int16 *digits;
	int			ndigits;
	int			weight;
	int			dscale;
	bool		neg;
	int			need;
	char	   *cp = out;
	int			d;
	int			i;

	if (!VARATT_IS_4B_U(num) || VARSIZE(num) < VARHDRSZ + sizeof(uint16))
		return -1;
	data = VARDATA(num);
	memcpy(&header, data, sizeof(uint16));

	switch (header & CP_NUMERIC_SIGN_MASK)
	{
		case CP_NUMERIC_SHORT:
			neg = (header & CP_NUMERIC_SHORT_SIGN_MASK) != 0;
			dscale = (header & CP_NUMERIC_SHORT_DSCALE_MASK) >>
				CP_NUMERIC_SHORT_DSCALE_SHIFT;
			weight = header & CP_NUMERIC_SHORT_WEIGHT_MASK;
			if (header & CP_NUMERIC_SHORT_WEIGHT_SIGN_MASK)
				weight |= ~CP_NUMERIC_SHORT_WEIGHT_MASK;
			digits = (const int16 *) (data + sizeof(uint16));
			ndigits = (VARSIZE(num) - VARHDRSZ - sizeof(uint16)) / sizeof(int16);
			break;
		case CP_NUMERIC_SPECIAL:
			return -1;
		default:
			{
				int16		w;

				if (VARSIZE(num) < VARHDRSZ + 2 * sizeof(uint16))
					return -1;
				neg = (header & CP_NUMERIC_SIGN_MASK) == CP_NUMERIC_NEG;
				dscale = header & CP_NUMERIC_DSCALE_MASK;
				memcpy(&w, data + sizeof(uint16), sizeof(int16));
				weight = w;
				digits = (const int16 *) (data + 2 * sizeof(uint16));
				ndigits = (VARSIZE(num) - VARHDRSZ - 2 * sizeof(uint16)) /
					sizeof(int16);
			}
			break;
	}

	/* As get_str_from_var sizes its buffer, with room to spare */
	need = 1 + Max(weight + 1, 1) * CP_NBASE_DIGITS + 1 + dscale +
		CP_NBASE_DIGITS;
	if (need > outsize)
		return -1;

	if (neg)
		*cp++ = '-';

	/* The integral part: leading zeroes of the first digit suppressed */
	if (weight < 0)
	{
		d = weight + 1;
		*cp++ = '0';
	}
	else
	{
		for (d = 0; d <= weight; d++)
		{
			int			dig = (d < ndigits) ? digits[d] : 0;
			char		tmp[CP_NBASE_DIGITS];

			for (i = CP_NBASE_DIGITS - 1; i >= 0; i--)
			{
				tmp[i] = '0' + dig % 10;
				dig /= 10;
			}
			i = 0;
			if (d == 0)
				while (i < CP_NBASE_DIGITS - 1 && tmp[i] == '0')
					i++;
			for (; i < CP_NBASE_DIGITS; i++)
				*cp++ = tmp[i];
		}
	}

	/* The fraction: exactly dscale digits, zero-padded */
	if (dscale > 0)
	{
		char	   *endcp;

		*cp++ = '.';
		endcp = cp + dscale;
		for (i = 0; i < dscale; d++, i += CP_NBASE_DIGITS)
		{
			int			dig = (d >= 0 && d < ndigits) ? digits[d] : 0;
			int			k;

			for (k = CP_NBASE_DIGITS - 1; k >= 0; k--)
			{
				cp[k] = '0' + dig % 10;
				dig /= 10;
			}
			cp += CP_NBASE_DIGITS;
		}
		cp = endcp;
	}

	return cp - out;
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
	int			len;

	/* Most numbers are printed here, straight into the buffer */
	if (unlikely(th->used > CP_HASH_BUFSIZE - CP_MAX_NUMBER_LEN))
		text_hash_flush(th);
	len = numeric_text(num, th->buf + th->used, CP_MAX_NUMBER_LEN);
	if (likely(len >= 0))
	{
		th->used += len;
		return;
	}

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
 * Append child i of a container, whose data is at base + start (see
 * text_hash_container): a scalar as JsonbToCString prints it, or a nested
 * container.  A numeric or a container starts at the next 4-byte boundary,
 * as in fillJsonbValue.
 */
static void
text_hash_child(CpTextHash *th, JEntry entry, const char *base,
				uint32 start, uint32 end)
{
	switch (entry & JENTRY_TYPEMASK)
	{
		case JENTRY_ISSTRING:
			text_hash_string(th, base + start, end - start);
			break;
		case JENTRY_ISNUMERIC:
			text_hash_numeric(th, (Numeric) (base + INTALIGN(start)));
			break;
		case JENTRY_ISBOOL_TRUE:
			text_hash_bytes(th, "true", 4);
			break;
		case JENTRY_ISBOOL_FALSE:
			text_hash_bytes(th, "false", 5);
			break;
		case JENTRY_ISNULL:
			text_hash_bytes(th, "null", 4);
			break;
		case JENTRY_ISCONTAINER:
			text_hash_container(th, (JsonbContainer *) (base + INTALIGN(start)));
			break;
		default:
			elog(ERROR, "unknown jsonb entry type: %u",
				 (unsigned int) (entry & JENTRY_TYPEMASK));
	}
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
static void
text_hash_container(CpTextHash *th, JsonbContainer *jc)
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

		base = (const char *) &children[count * 2];

		/* The values' data follow all of the keys' */
		for (i = 0; i < count; i++)
			JBE_ADVANCE_OFFSET(vstart, children[i]);

		text_hash_char(th, '{');
		for (i = 0; i < count; i++)
		{
			JEntry		kentry = children[i];
			JEntry		ventry = children[count + i];

			if (i > 0)
				text_hash_bytes(th, ", ", 2);

			end = kstart;
			JBE_ADVANCE_OFFSET(end, kentry);
			Assert(JBE_ISSTRING(kentry));
			text_hash_string(th, base + kstart, end - kstart);
			kstart = end;

			text_hash_bytes(th, ": ", 2);

			end = vstart;
			JBE_ADVANCE_OFFSET(end, ventry);
			text_hash_child(th, ventry, base, vstart, end);
			vstart = end;
		}
		text_hash_char(th, '}');
		return;
	}

	Assert(JsonContainerIsArray(jc));
	base = (const char *) &children[count];

	if (JsonContainerIsScalar(jc))
	{
		Assert(count == 1);
		end = 0;
		JBE_ADVANCE_OFFSET(end, children[0]);
		text_hash_child(th, children[0], base, 0, end);
		return;
	}

	text_hash_char(th, '[');
	start = 0;
	for (i = 0; i < count; i++)
	{
		if (i > 0)
			text_hash_bytes(th, ", ", 2);
		end = start;
		JBE_ADVANCE_OFFSET(end, children[i]);
		text_hash_child(th, children[i], base, start, end);
		start = end;
	}
	text_hash_char(th, ']');
}

/*
 * XXH3-64 (seed 0) of the text JsonbToCString(NULL, jc, ...) prints for jc,
 * which may be a root container or one nested in a larger value (it hashes
 * as it would print standalone).  The text is streamed into the hash, never
 * built.  The number text is allocated in the current memory context and
 * freed before returning; jc must stay valid meanwhile.
 */
uint64
CpHashContainer(JsonbContainer *jc)
{
	CpTextHash	th;
	uint64		hash;

	XXH3_INITSTATE(&th.state);
	(void) XXH3_64bits_reset(&th.state);
	th.used = 0;
	th.numcxt = NULL;
	th.nnumbers = 0;

	text_hash_container(&th, jc);

	text_hash_flush(&th);
	hash = (uint64) XXH3_64bits_digest(&th.state);

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
