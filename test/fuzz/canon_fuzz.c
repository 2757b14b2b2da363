/*-------------------------------------------------------------------------
 *
 * canon_fuzz.c
 *	  libFuzzer harness for src/canon.h, the pure-C pieces of the checksum's
 *	  canonical text: the escape scan and numeric printing.
 *
 * canon.h has no server dependencies, so it is compiled here on its own,
 * under libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer, and
 * each function is compared with a deliberately naive reference written
 * from the specification (escape_json's byte classes; numeric_out's text
 * of the stored form) rather than from canon.h's code:
 *
 *	- cp_escape_scan(p, n, avail) on a buffer of exactly avail bytes
 *	  (malloc'd, so AddressSanitizer catches a read past it) must return
 *	  the index of the first byte below 0x20, '"' or '\\', or n; and the
 *	  escaped text assembled from its runs must equal a byte-at-a-time
 *	  escape_json;
 *	- cp_numeric_text on arbitrary stored-numeric bytes must print what the
 *	  reference prints, decline (-1) exactly the same inputs, and never
 *	  write past the room it is given;
 *	- cp_numeric_is_special must agree with the header's flag bits.
 *
 * Built twice by test/fuzz/run_canon_fuzz.sh: with the SSE2 scan and with
 * -DCP_NO_SIMD (the portable word-at-a-time scan other platforms use).
 * A mismatch aborts, which libFuzzer reports with the input that caused it.
 *
 * Copyright (c) 2026, chatpersist developers
 *
 * test/fuzz/canon_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "canon_fuzz: " __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

/* The specification of escape_json's byte classes, byte by byte */
static int
ref_needs_escape(unsigned char c)
{
	if (c == '"' || c == '\\')
		return 1;
	return c <= 0x1f;
}

static size_t
ref_escape_scan(const unsigned char *p, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (ref_needs_escape(p[i]))
			return i;
	return n;
}

/* escape_json's output for one byte, appended at out; returns the length */
static size_t
ref_escape_byte(unsigned char c, char *out)
{
	static const char hex[] = "0123456789abcdef";

	switch (c)
	{
		case '\b':
			memcpy(out, "\\b", 2);
			return 2;
		case '\f':
			memcpy(out, "\\f", 2);
			return 2;
		case '\n':
			memcpy(out, "\\n", 2);
			return 2;
		case '\r':
			memcpy(out, "\\r", 2);
			return 2;
		case '\t':
			memcpy(out, "\\t", 2);
			return 2;
		case '"':
			memcpy(out, "\\\"", 2);
			return 2;
		case '\\':
			memcpy(out, "\\\\", 2);
			return 2;
		default:
			if (c < 0x20)
			{
				out[0] = '\\';
				out[1] = 'u';
				out[2] = '0';
				out[3] = '0';
				out[4] = hex[c >> 4];
				out[5] = hex[c & 15];
				return 6;
			}
			out[0] = (char) c;
			return 1;
	}
}

/* Escape p[0..n) byte by byte */
static size_t
ref_escape(const unsigned char *p, size_t n, char *out)
{
	size_t		len = 0;

	for (size_t i = 0; i < n; i++)
		len += ref_escape_byte(p[i], out + len);
	return len;
}

/* Escape p[0..n) run by run, the way the checksum walk uses the scan */
static size_t
scan_escape(const unsigned char *p, size_t n, size_t avail, char *out)
{
	size_t		len = 0;
	size_t		i = 0;

	while (i < n)
	{
		size_t		run = cp_escape_scan(p + i, n - i, avail - i);

		CHECK(run <= n - i, "scan returned %zu past the end (%zu left)", run, n - i);
		CHECK(run == ref_escape_scan(p + i, n - i),
			  "scan at %zu of %zu returned %zu, expected %zu", i, n, run,
			  ref_escape_scan(p + i, n - i));
		memcpy(out + len, p + i, run);
		len += run;
		i += run;
		if (i < n)
		{
			len += ref_escape_byte(p[i], out + len);
			i++;
		}
	}
	return len;
}

/*
 * The text numeric_out prints for a stored numeric, decoded bit field by
 * bit field and printed digit by digit with snprintf, the slow way: every
 * base-10000 digit as 4 decimal digits, the point after weight + 1 of
 * them, the first digit's leading zeroes dropped (a weight below 0 prints
 * "0" before the point), the fraction cut or zero-padded to exactly
 * dscale digits.  Returns -1 for
 * NaN/infinity, a malformed or out-of-range digit, or text longer than
 * cp_numeric_text's outsize would allow.
 */
static int
ref_numeric_text(const unsigned char *data, size_t len, char *out, int outsize)
{
	unsigned int header;
	int			neg,
				weight,
				dscale;
	size_t		first;
	int			ndigits;
	char	   *all;
	size_t		nall;
	long		point;
	int			pos = 0;

	if (len < 2)
		return -1;
	header = data[0] | (data[1] << 8);	/* little-endian, as stored here */
	if ((header >> 14) == 3)
		return -1;				/* NaN, +Infinity, -Infinity */
	if ((header >> 14) == 2)
	{
		/* short: 1 0 sign dscale(6) weight-sign weight(6) */
		neg = (header >> 13) & 1;
		dscale = (header >> 7) & 0x3f;
		weight = header & 0x3f;
		if ((header >> 6) & 1)
			weight -= 64;
		first = 2;
	}
	else
	{
		/* long: sign(2) dscale(14), then a signed 16-bit weight */
		int			w;

		if (len < 4)
			return -1;
		neg = (header >> 14) == 1;
		dscale = header & 0x3fff;
		w = data[2] | (data[3] << 8);
		weight = w >= 32768 ? w - 65536 : w;
		first = 4;
	}
	ndigits = (int) ((len - first) / 2);

	/* Room as get_str_from_var sizes it: the same limit as canon.h's */
	if (1 + (weight >= 0 ? (weight + 1) * 4 : 1) + 1 + dscale + 4 > outsize)
		return -1;

	/*
	 * Every digit position from min(0, weight + 1) to the end of the
	 * fraction, as decimal text, zero where no digit is stored
	 */
	{
		long		lo = weight >= 0 ? 0 : weight + 1;
		long		hi = (weight + 1) + (dscale + 3) / 4;
		long		d;

		nall = 0;
		all = malloc((size_t) (hi - lo + 1) * 4 + 1);
		for (d = lo; d < hi; d++)
		{
			int			dig = 0;

			if (d >= 0 && d < ndigits)
			{
				int			raw = data[first + 2 * d] | (data[first + 2 * d + 1] << 8);

				dig = raw >= 32768 ? raw - 65536 : raw;
				if (dig < 0 || dig > 9999)
				{
					free(all);
					return -1;
				}
			}
			snprintf(all + nall, 5, "%04d", dig);
			nall += 4;
		}
		point = (weight + 1 - lo) * 4;	/* the point's index in all */
	}

	if (neg)
		out[pos++] = '-';
	if (weight < 0)
		out[pos++] = '0';
	else
	{
		/*
		 * get_str_from_var suppresses leading zeroes only within the first
		 * base-10000 digit: a stored form with zero leading digits (which
		 * the server never makes, it normalises) prints them
		 */
		long		i = 0;

		while (i < 3 && all[i] == '0')
			i++;
		for (; i < point; i++)
			out[pos++] = all[i];
	}
	if (dscale > 0)
	{
		out[pos++] = '.';
		for (int i = 0; i < dscale; i++)
			out[pos++] = (size_t) (point + i) < nall ? all[point + i] : '0';
	}
	free(all);
	return pos;
}

/* Checks on one numeric input of len bytes (the bytes after the varlena header) */
static void
check_numeric(const unsigned char *data, size_t len, int outsize)
{
	char		got[512 + 64];
	char		want[512 + 64];
	int			n;
	int			m;

	memset(got, 0x7e, sizeof(got));
	n = cp_numeric_text(data, len, got, outsize);
	m = ref_numeric_text(data, len, want, outsize);
	CHECK(n == m, "cp_numeric_text returned %d, the reference %d", n, m);
	if (n >= 0)
	{
		CHECK(n <= outsize, "printed %d bytes into %d", n, outsize);
		CHECK(memcmp(got, want, n) == 0, "printed \"%.*s\", expected \"%.*s\"",
			  n, got, n, want);
	}
	/* Whatever it returns, nothing past outsize is written */
	for (int i = outsize; i < (int) sizeof(got); i++)
		CHECK(got[i] == 0x7e, "wrote byte %d past outsize %d", i, outsize);
	if (len >= 2)
		CHECK(cp_numeric_is_special(data) == (((data[0] | (data[1] << 8)) >> 14) == 3),
			  "cp_numeric_is_special disagrees with the flag bits");
}

/*
 * One fuzz input.  Byte 0 picks the target; the rest is the data, with
 * two more bytes used as parameters.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;

	switch (data[0] % 3)
	{
		case 0:
		case 1:
			{
				/*
				 * The scan: the string is the first n of avail bytes; the
				 * buffer is exactly avail bytes long
				 */
				size_t		avail = size - 3;
				size_t		n = avail == 0 ? 0 :
					((size_t) data[1] | ((size_t) data[2] << 8)) % (avail + 1);
				unsigned char *buf = malloc(avail ? avail : 1);
				char	   *a;
				char	   *b;
				size_t		la,
							lb;

				/* case 1: mostly plain text with a rare byte to escape */
				memcpy(buf, data + 3, avail);
				if (data[0] % 3 == 1)
					for (size_t i = 0; i < avail; i++)
						if (buf[i] % 7 != 0)
							buf[i] = 'a' + buf[i] % 26;

				a = malloc(n * 6 + 1);
				b = malloc(n * 6 + 1);
				CHECK(cp_escape_scan(buf, n, avail) == ref_escape_scan(buf, n),
					  "scan of %zu bytes (of %zu readable) is wrong", n, avail);
				la = scan_escape(buf, n, avail, a);
				lb = ref_escape(buf, n, b);
				CHECK(la == lb && memcmp(a, b, la) == 0,
					  "escaped text differs (%zu vs %zu bytes)", la, lb);
				/* and with nothing readable past the string */
				CHECK(cp_escape_scan(buf, n, n) == ref_escape_scan(buf, n),
					  "scan of %zu bytes with none past them is wrong", n);
				free(a);
				free(b);
				free(buf);
				break;
			}
		case 2:
			{
				/* A stored numeric, in a buffer of exactly its length */
				size_t		len = size - 3;
				unsigned char *buf = malloc(len ? len : 1);
				int			outsize = 1 + data[1] % 200;

				memcpy(buf, data + 3, len);
				check_numeric(buf, len, outsize);
				check_numeric(buf, len, 128);
				free(buf);
				break;
			}
	}
	return 0;
}
