/*-------------------------------------------------------------------------
 *
 * canon.h
 *	  The byte-level pieces of jsonb's canonical text: finding the bytes of
 *	  a string that escape_json escapes, and printing a stored numeric as
 *	  numeric_out does.
 *
 * These are pure functions of their arguments: no server calls, no memory
 * allocation, no global state.  checksum.c builds the checksum's text
 * stream with them, and test/fuzz/canon_fuzz.c compiles them outside the
 * server, under libFuzzer and the sanitizers, against deliberately naive
 * reference implementations.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * src/canon.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHATPERSIST_CANON_H
#define CHATPERSIST_CANON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) && !defined(CP_NO_SIMD)
#include <emmintrin.h>
#define CP_SCAN_SSE2 1
#endif

/*
 * Does escape_json escape byte c?  Bytes below 0x20, the double quote and
 * the backslash; every other byte, multi-byte UTF-8 included, is copied.
 */
static inline int
cp_needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/*
 * cp_escape_mask(p) looks at the CP_SCAN_BLOCK bytes at p and returns a
 * mask with CP_MASK_BITS bits per byte, in memory order from the lowest
 * bit, nonzero exactly for the bytes that need an escape.
 */
#ifdef CP_SCAN_SSE2

typedef unsigned int cp_scanmask;

#define CP_SCAN_BLOCK	16
#define CP_MASK_BITS	1

static inline cp_scanmask
cp_escape_mask(const unsigned char *p)
{
	const __m128i v = _mm_loadu_si128((const __m128i *) p);

	/* min(v, 0x1f) == v exactly for the bytes <= 0x1f, unsigned */
	__m128i		m = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);

	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
	return (cp_scanmask) _mm_movemask_epi8(m);
}

#else							/* portable: 8 bytes in a 64-bit word */

typedef uint64_t cp_scanmask;

#define CP_SCAN_BLOCK	8
#define CP_MASK_BITS	8

/*
 * The word's bytes in memory order from the low end (a byte swap on
 * big-endian machines), then exact per-byte tests: a byte y is zero iff
 * ((y & 0x7f) + 0x7f) | y has its high bit clear, and nothing carries
 * between bytes; a byte is below 0x20 iff its top three bits are zero, a
 * '"' or '\\' iff its xor with that byte is zero.  The high bit of each
 * byte of the result is the answer for that byte.
 */
static inline cp_scanmask
cp_escape_mask(const unsigned char *p)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t low7 = UINT64_C(0x7f7f7f7f7f7f7f7f);
	uint64_t	w;
	uint64_t	y;
	uint64_t	z;

	memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	y = w & (ones * 0xe0);
	z = ~(((y & low7) + low7) | y | low7);
	y = w ^ (ones * '"');
	z |= ~(((y & low7) + low7) | y | low7);
	y = w ^ (ones * '\\');
	z |= ~(((y & low7) + low7) | y | low7);
	return z;
}

#endif

/* The index of the first byte a nonzero mask marks */
static inline size_t
cp_first_marked(cp_scanmask mask)
{
	if (sizeof(cp_scanmask) == 8)
		return (size_t) __builtin_ctzll((unsigned long long) mask) / CP_MASK_BITS;
	return (size_t) __builtin_ctz((unsigned int) mask) / CP_MASK_BITS;
}

/*
 * The number of bytes at the start of p[0..n) that escape_json copies
 * verbatim: the index of the first byte that needs an escape, or n.
 *
 * avail >= n is how many bytes from p may be read.  When the end of the
 * string is not the end of the readable memory (a string inside a larger
 * jsonb value), the last block is read whole and the bytes past n are
 * ignored, so a short string (a key, an id) costs one block.
 */
static inline size_t
cp_escape_scan(const unsigned char *p, size_t n, size_t avail)
{
	size_t		i = 0;
	cp_scanmask mask;

	/* Long runs: four blocks per test */
	while (n - i >= 4 * CP_SCAN_BLOCK)
	{
		if ((cp_escape_mask(p + i) | cp_escape_mask(p + i + CP_SCAN_BLOCK) |
			 cp_escape_mask(p + i + 2 * CP_SCAN_BLOCK) |
			 cp_escape_mask(p + i + 3 * CP_SCAN_BLOCK)) != 0)
			break;
		i += 4 * CP_SCAN_BLOCK;
	}
	while (n - i >= CP_SCAN_BLOCK)
	{
		mask = cp_escape_mask(p + i);
		if (mask != 0)
			return i + cp_first_marked(mask);
		i += CP_SCAN_BLOCK;
	}
	if (i == n)
		return n;
	if (avail - i >= CP_SCAN_BLOCK)
	{
		/* n - i < CP_SCAN_BLOCK: keep the marks of the string's bytes */
		mask = cp_escape_mask(p + i) &
			(((cp_scanmask) 1 << (CP_MASK_BITS * (n - i))) - 1);
		return mask != 0 ? i + cp_first_marked(mask) : n;
	}
	for (; i < n; i++)
		if (cp_needs_escape(p[i]))
			return i;
	return n;
}

/*
 * The stored form of a numeric (numeric.c, which does not export it; it
 * is part of the on-disk format, which pg_upgrade keeps, so it cannot
 * change): after the varlena header, either a 16-bit short header (flag
 * bits 10, a sign bit, 6 bits of display scale, a 7-bit signed weight) or,
 * flag bits 00 (positive) or 01 (negative), a 16-bit sign-and-dscale word
 * and a 16-bit weight; then the digits, base 10000, most significant
 * first, the first at the given weight (its power of 10000).  Flag bits 11
 * are NaN and the infinities.
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

/* Is a stored numeric (data: its bytes after the varlena header) NaN or infinite? */
static inline int
cp_numeric_is_special(const unsigned char *data)
{
	uint16_t	header;

	memcpy(&header, data, 2);
	return (header & CP_NUMERIC_SIGN_MASK) == CP_NUMERIC_SPECIAL;
}

/* "00" "01" ... "99": two decimal digits at a time */
static const char cp_digit_pairs[200] =
"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
"8081828384858687888990919293949596979899";

/* Write a base-10000 digit (0..9999) as exactly 4 decimal digits */
static inline void
cp_put4(char *out, int dig)
{
	memcpy(out, cp_digit_pairs + 2 * (dig / 100), 2);
	memcpy(out + 2, cp_digit_pairs + 2 * (dig % 100), 2);
}

/*
 * Print a stored numeric exactly as numeric_out does (get_str_from_var: a
 * '-' if negative, the integral digits without leading zeroes, or "0",
 * then a '.' and exactly display-scale digits).  data and len are the
 * numeric's bytes after its 4-byte varlena header.  Returns the length of
 * the text written to out, or -1 if the number is NaN or infinite, its
 * bytes are not a well-formed numeric, a digit is out of range, or it needs
 * more than outsize bytes; the caller then uses numeric_out.  Like
 * get_str_from_var, it may write up to 3 bytes past the text's end (the
 * fraction is written 4 digits at a time), and after a digit out of range
 * it has written part of the text; it never writes past outsize bytes.
 */
static inline int
cp_numeric_text(const unsigned char *data, size_t len, char *out, int outsize)
{
	uint16_t	header;
	const unsigned char *digits;
	int			ndigits;
	int			weight;
	int			dscale;
	int			neg;
	int			need;
	char	   *cp = out;
	int			d;

	if (len < 2)
		return -1;
	memcpy(&header, data, 2);

	switch (header & CP_NUMERIC_SIGN_MASK)
	{
		case CP_NUMERIC_SHORT:
			neg = (header & CP_NUMERIC_SHORT_SIGN_MASK) != 0;
			dscale = (header & CP_NUMERIC_SHORT_DSCALE_MASK) >>
				CP_NUMERIC_SHORT_DSCALE_SHIFT;
			weight = header & CP_NUMERIC_SHORT_WEIGHT_MASK;
			if (header & CP_NUMERIC_SHORT_WEIGHT_SIGN_MASK)
				weight -= CP_NUMERIC_SHORT_WEIGHT_MASK + 1;
			digits = data + 2;
			ndigits = (int) ((len - 2) / 2);
			break;
		case CP_NUMERIC_SPECIAL:
			return -1;
		default:
			{
				int16_t		w;

				if (len < 4)
					return -1;
				neg = (header & CP_NUMERIC_SIGN_MASK) == CP_NUMERIC_NEG;
				dscale = header & CP_NUMERIC_DSCALE_MASK;
				memcpy(&w, data + 2, 2);
				weight = w;
				digits = data + 4;
				ndigits = (int) ((len - 4) / 2);
			}
			break;
	}

	/* Sign, integral digits, point, fraction: as get_str_from_var sizes it */
	need = 1 + (weight >= 0 ? (weight + 1) * 4 : 1) + 1 + dscale + 4;
	if (need > outsize)
		return -1;

	if (neg)
		*cp++ = '-';

	if (weight < 0)
	{
		*cp++ = '0';
		d = weight + 1;
	}
	else
	{
		for (d = 0; d <= weight; d++)
		{
			int16_t		dig = 0;

			if (d < ndigits)
				memcpy(&dig, digits + 2 * d, 2);
			if (dig < 0 || dig > 9999)
				return -1;
			if (d == 0 && dig < 1000)
			{
				/* the leading digit: no leading zeroes */
				if (dig >= 100)
				{
					*cp++ = '0' + dig / 100;
					memcpy(cp, cp_digit_pairs + 2 * (dig % 100), 2);
					cp += 2;
				}
				else if (dig >= 10)
				{
					memcpy(cp, cp_digit_pairs + 2 * dig, 2);
					cp += 2;
				}
				else
					*cp++ = '0' + dig;
			}
			else
			{
				cp_put4(cp, dig);
				cp += 4;
			}
		}
	}

	if (dscale > 0)
	{
		char	   *endcp;
		int			i;

		*cp++ = '.';
		endcp = cp + dscale;
		for (i = 0; i < dscale; d++, i += 4)
		{
			int16_t		dig = 0;

			if (d >= 0 && d < ndigits)
				memcpy(&dig, digits + 2 * d, 2);
			if (dig < 0 || dig > 9999)
				return -1;
			cp_put4(cp, dig);
			cp += 4;
		}
		cp = endcp;
	}

	return (int) (cp - out);
}

#endif							/* CHATPERSIST_CANON_H */
