#!/usr/bin/env bash
#
# checksum_props.sh
#	  Property test of chatpersist.checksum: for thousands of generated jsonb
#	  values, the checksum must equal XXH3-64 (seed 0) of the exact bytes of
#	  the value's text output, as computed independently by xxhsum -H3.
#
# Usage: PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... test/checksum_props.sh
#
# The chatpersist extension must already exist in the database, which must
# be UTF8.  Needs psql, awk and xxhsum (Debian/Ubuntu package "xxhash").
# Optional: CHECKSUM_PROPS_COUNT (values to generate, default 2500; fewer
# than 2000 fails the run) and CHECKSUM_PROPS_SEED (setseed() argument,
# default 0.4242, so a run is reproducible).
#
# Prints one line per failing value and ends with
#	checksum_props: N passed, M failed
# It exits non-zero exactly when M > 0: fewer than 2000 values passing, a
# missing tool, an SQL error or any other exit before the end each count as
# a failure in that line.  Creates only temporary functions
# (pg_temp) in the database and removes its temporary files.
#
# Copyright (c) 2026, chatpersist developers
#
# test/checksum_props.sh
#

set -euo pipefail

export LC_ALL=C
export PGCLIENTENCODING=UTF8

# Remove the temporary files and print the summary line, on every exit.  A
# run that stopped before its end (a missing tool, no connection, an SQL
# error) or exits non-zero with no failure counted gets one failure more, so
# the line and the exit status always agree.
passed=0
failed=0
summary_done=
tmpdir=
# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	local rc=$?

	[ -z "$tmpdir" ] || rm -rf "$tmpdir"
	if [ -z "$summary_done" ]; then
		echo "FAIL the test aborted with exit status $rc"
		failed=$((failed + 1))
	elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		echo "FAIL exit status $rc"
		failed=1
	fi
	[ "$failed" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
	echo "checksum_props: $passed passed, $failed failed"
	exit "$rc"
}

trap finish EXIT

count=${CHECKSUM_PROPS_COUNT:-2500}
seed=${CHECKSUM_PROPS_SEED:-0.4242}
min_passed=2000

case $count in
	'' | *[!0-9]*)
		echo "checksum_props: CHECKSUM_PROPS_COUNT must be a number" >&2
		exit 2
		;;
esac

for tool in psql xxhsum awk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "checksum_props: $tool not found (xxhsum is in the xxhash package)" >&2
		exit 2
	fi
done

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/checksum_props.XXXXXX")
mkdir "$tmpdir/v"

# Generate the values and their checksums as COPY text rows
# "<n> TAB <checksum> TAB <v::text>".  COPY, unlike psql's table printer
# (which silently drops Unicode noncharacters such as U+10FFFF), passes the
# bytes through unchanged; in its text format it only escapes bytes below
# 0x20 and the backslash, and jsonb's text output holds no byte below 0x20,
# so undoing the doubled backslashes gives back the exact text.
psql -X -q -v ON_ERROR_STOP=1 -v count="$count" -v seed="$seed" \
	>"$tmpdir/copy" <<'EOSQL'
DO $$
BEGIN
	IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
		RAISE EXCEPTION 'checksum_props needs a UTF8 database, not %',
			pg_catalog.current_setting('server_encoding');
	END IF;
END
$$;

-- A random string, one of several shapes meant to hit every escaping rule
CREATE FUNCTION pg_temp.rand_string(short boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	atoms	text[] := ARRAY['a', 'b', 'Z', '0', '9', ' ', '"', '\', '/', '''',
						'{', '}', '[', ']', ':', ',', chr(1), chr(7), chr(8),
						chr(9), chr(10), chr(11), chr(12), chr(13), chr(27),
						chr(31), chr(127), 'é', 'ß', 'ñ', 'Ω', '€', '日', '本',
						'語', '한', chr(8232), chr(8233), chr(65279), '😀', '👍🏽',
						'👨‍👩‍👧', chr(1114111), 'u', '\u0041', '\n'];
	-- one string in 25 (never a key) is a long one, kinds 6 to 8
	kind	int := CASE WHEN NOT short AND pg_catalog.random() < 0.04
					THEN 6 + pg_catalog.floor(pg_catalog.random() * 3)::int
					ELSE pg_catalog.floor(pg_catalog.random() * 6)::int END;
	len		int;
BEGIN
	CASE kind
		WHEN 0 THEN
			RETURN '';
		WHEN 1 THEN				-- plain ASCII word
			RETURN pg_catalog.substr(pg_catalog.md5(pg_catalog.random()::text), 1,
									 1 + pg_catalog.floor(pg_catalog.random() * 20)::int);
		WHEN 2 THEN				-- random mix of atoms
			len := 1 + pg_catalog.floor(pg_catalog.random() * 30)::int;
			RETURN (SELECT pg_catalog.string_agg(atoms[1 + pg_catalog.floor(pg_catalog.random() * pg_catalog.array_length(atoms, 1))::int], '')
					FROM pg_catalog.generate_series(1, len));
		WHEN 3 THEN				-- every control character 0x01-0x1f, shuffled
			RETURN (SELECT pg_catalog.string_agg(chr(c), '' ORDER BY pg_catalog.random())
					FROM pg_catalog.generate_series(1, 31) c);
		WHEN 4 THEN				-- quotes and backslashes
			RETURN pg_catalog.repeat('"\', 1 + pg_catalog.floor(pg_catalog.random() * 4)::int) || 'x\"' || '\\';
		WHEN 5 THEN				-- multi-byte UTF-8 and emoji
			RETURN 'héllo wörld ñ 日本語 中文 한국어 Ελληνικά 😀🎉 👍🏽 👨‍👩‍👧 ' || chr(1114111);
		WHEN 6 THEN				-- long plain ASCII, 10-40 KB
			RETURN pg_catalog.repeat(pg_catalog.md5(pg_catalog.random()::text),
									 320 + pg_catalog.floor(pg_catalog.random() * 960)::int);
		WHEN 7 THEN				-- long text with escapes and multi-byte characters
			RETURN pg_catalog.repeat('line "one"\ttab' || chr(10) || chr(1) || 'é😀 ',
									 400 + pg_catalog.floor(pg_catalog.random() * 600)::int);
		WHEN 8 THEN				-- long random mix of atoms (> 10 KB)
			len := 4000 + pg_catalog.floor(pg_catalog.random() * 4000)::int;
			RETURN (SELECT pg_catalog.string_agg(atoms[1 + pg_catalog.floor(pg_catalog.random() * pg_catalog.array_length(atoms, 1))::int], '')
					FROM pg_catalog.generate_series(1, len));
		ELSE
			RETURN 'plain text';
	END CASE;
END
$$;

-- A random JSON number literal, as text
CREATE FUNCTION pg_temp.rand_number() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	fixed	text[] := ARRAY['0', '-0', '0.0', '-0.0', '0.00', '1', '-1', '1.0',
						'1.00', '1.000000', '1e10', '1E10', '1e+10', '1.5e-7',
						'-2.5E+3', '0.1e2', '100e-2', '1e-300', '1e300', '-1e-20',
						'123456789012345678901234567890',
						'3.14159265358979323846264338327950288419716939937510',
						'9007199254740993', '-9223372036854775809',
						'0.000000000000000000000000000001', '1e1000', '5e-1000',
						pg_catalog.repeat('9', 2000) || '.' || pg_catalog.repeat('1', 500)];
	r		float8 := pg_catalog.random();
BEGIN
	IF r < 0.4 THEN
		RETURN fixed[1 + pg_catalog.floor(pg_catalog.random() * pg_catalog.array_length(fixed, 1))::int];
	ELSIF r < 0.7 THEN			-- random value, random scale
		RETURN pg_catalog.round(((pg_catalog.random() - 0.5) *
								 10 ^ pg_catalog.floor(pg_catalog.random() * 15))::numeric,
								pg_catalog.floor(pg_catalog.random() * 8)::int)::text;
	ELSIF r < 0.85 THEN			-- exponent form
		RETURN pg_catalog.format('%s%se%s',
								 CASE WHEN pg_catalog.random() < 0.5 THEN '-' ELSE '' END,
								 pg_catalog.round((pg_catalog.random() * 100)::numeric,
												  pg_catalog.floor(pg_catalog.random() * 4)::int),
								 pg_catalog.floor(pg_catalog.random() * 61)::int - 30);
	ELSE						-- integer, like a millisecond timestamp
		RETURN (1600000000000 + pg_catalog.floor(pg_catalog.random() * 1e11))::bigint::text;
	END IF;
END
$$;

-- Random white space, which the canonical text must not depend on
CREATE FUNCTION pg_temp.ws() RETURNS text
LANGUAGE sql AS $$
	SELECT (ARRAY['', '', ' ', '  ', chr(10), chr(9), chr(13) || chr(10)])
		[1 + pg_catalog.floor(pg_catalog.random() * 7)::int]
$$;

-- A random scalar as JSON text
CREATE FUNCTION pg_temp.rand_scalar() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r		float8 := pg_catalog.random();
BEGIN
	IF r < 0.45 THEN
		RETURN pg_catalog.to_json(pg_temp.rand_string(false))::text;
	ELSIF r < 0.8 THEN
		RETURN pg_temp.rand_number();
	ELSIF r < 0.87 THEN
		RETURN 'true';
	ELSIF r < 0.94 THEN
		RETURN 'false';
	ELSE
		RETURN 'null';
	END IF;
END
$$;

-- A random object key as JSON text (duplicates happen: the last one wins)
CREATE FUNCTION pg_temp.rand_key() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	keys	text[] := ARRAY['id', 'role', 'content', 'created_at', 'updated_at',
						'deleted', 'a', 'b', 'A', 'aa', 'ab', 'ba', '', 'é', '😀',
						'key with space', 'tab' || chr(9) || 'key', '"quoted"',
						'back\slash', 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'];
BEGIN
	IF pg_catalog.random() < 0.7 THEN
		RETURN pg_catalog.to_json(keys[1 + pg_catalog.floor(pg_catalog.random() * pg_catalog.array_length(keys, 1))::int])::text;
	END IF;
	RETURN pg_catalog.to_json(pg_temp.rand_string(true))::text;
END
$$;

-- A random JSON value as text, nested at most depth levels
CREATE FUNCTION pg_temp.rand_json(depth int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r		float8 := pg_catalog.random();
	n		int;
	parts	text[] := '{}';
BEGIN
	IF depth <= 0 OR r < 0.3 THEN
		RETURN pg_temp.rand_scalar();
	END IF;
	n := CASE WHEN pg_catalog.random() < 0.15 THEN 0
			  ELSE 1 + pg_catalog.floor(pg_catalog.random() * 6)::int END;
	IF r < 0.55 THEN
		FOR i IN 1..n LOOP
			parts := parts || (pg_temp.ws() || pg_temp.rand_json(depth - 1) || pg_temp.ws());
		END LOOP;
		RETURN '[' || pg_temp.ws() || pg_catalog.array_to_string(parts, ',') || ']';
	ELSIF r < 0.85 THEN
		FOR i IN 1..n LOOP
			parts := parts || (pg_temp.ws() || pg_temp.rand_key() || pg_temp.ws() || ':' ||
							   pg_temp.ws() || pg_temp.rand_json(depth - 1) || pg_temp.ws());
		END LOOP;
		RETURN '{' || pg_temp.ws() || pg_catalog.array_to_string(parts, ',') || '}';
	ELSE
		-- a chat message array, keys in random order
		FOR i IN 1..n LOOP
			parts := parts || (
				SELECT '{' || pg_catalog.string_agg(kv, ', ' ORDER BY pg_catalog.random()) || '}'
				FROM (VALUES
					('"id": ' || pg_catalog.to_json('m' || i)::text),
					('"role": ' || (ARRAY['"user"', '"assistant"', '"system"'])[1 + pg_catalog.floor(pg_catalog.random() * 3)::int]),
					('"content": ' || pg_catalog.to_json(pg_temp.rand_string(false))::text),
					('"created_at": ' || pg_temp.rand_number()),
					('"meta": ' || pg_temp.rand_json(depth - 1))) AS t(kv));
		END LOOP;
		RETURN '[' || pg_catalog.array_to_string(parts, ', ') || ']';
	END IF;
END
$$;

SELECT pg_catalog.setseed(:seed) \g /dev/null

COPY (WITH fixed(v) AS (
	VALUES ('[]'), ('{}'), ('[[]]'), ('[{}]'), ('{"a": {}}'), ('{"a": []}'),
		   ('""'), ('"x"'), ('0'), ('-0.0'), ('1.0'), ('1.00'), ('1e-300'),
		   ('true'), ('false'), ('null'), ('[null, true, false]'),
		   ('"\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"'),
		   ('{"\u001f\\\"": "\"\\\/\u00e9\ud83d\ude00\u007f"}'),
		   ('[{"id": "a", "role": "user", "content": "hi"}, {"id": "b", "role": "assistant", "content": "hello\nworld"}]'),
		   ('{"b": 1, "a": 2, "a": 3}')
), generated(n, v) AS MATERIALIZED (
	SELECT pg_catalog.row_number() OVER (), v::jsonb
	FROM (SELECT v FROM fixed
		  UNION ALL
		  SELECT pg_temp.rand_json(pg_catalog.floor(pg_catalog.random() * 7)::int)
		  FROM pg_catalog.generate_series(1, GREATEST(:count - (SELECT pg_catalog.count(*) FROM fixed), 0))) s
)
SELECT n, chatpersist.checksum(v), v::text FROM generated ORDER BY n
) TO STDOUT;
EOSQL

sed 's/\\\\/\\/g' "$tmpdir/copy" >"$tmpdir/rows"

# One file per value holding the exact bytes of its text (no newline), and
# the checksums the server computed
awk -F '\t' -v dir="$tmpdir/v" -v sums="$tmpdir/server" -v bad="$tmpdir/bad" '
$1 !~ /^[0-9]+$/ || NF < 3 {
	printf "FAIL unexpected output line %d: %.200s\n", NR, $0
	nbad++
	next
}
{
	text = $0
	sub(/^[^\t]*\t[^\t]*\t/, "", text)
	file = dir "/" $1
	printf "%s", text > file
	close(file)
	print $1 "\t" $2 > sums
}
END { print nbad + 0 > bad }' "$tmpdir/rows"

# xxhsum -H3 prints "XXH3 (<file>) = <16 hex digits>", big-endian: the same
# digits as printf("%016llx") of the hash
(cd "$tmpdir/v" && find . -type f -name '[0-9]*' -print0 | xargs -0 -r xxhsum -q -H3) |
	sed -n 's/^XXH3 (\.\/\([0-9]*\)) = \([0-9a-f]*\)$/\1\t\2/p' >"$tmpdir/xxhsum"

# Compare; a value xxhsum did not hash counts as a failure
awk -F '\t' -v dir="$tmpdir/v" -v out="$tmpdir/result" '
FILENAME == ARGV[1] { ref[$1] = $2; next }
{
	if (!($1 in ref))
	{
		printf "FAIL value %s: xxhsum gave no hash\n", $1
		failed++
	}
	else if ($2 !~ /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/ || $2 != ref[$1])
	{
		text = ""
		getline text < (dir "/" $1)
		close(dir "/" $1)
		printf "FAIL value %s: checksum %s, xxhsum -H3 %s, text %.120s\n", $1, $2, ref[$1], text
		failed++
	}
	else
		passed++
}
END { print passed + 0, failed + 0 > out }' "$tmpdir/xxhsum" "$tmpdir/server"

read -r passed failed <"$tmpdir/result"
read -r nbad <"$tmpdir/bad"
failed=$((failed + nbad))
if [ "$passed" -lt "$min_passed" ]; then
	echo "FAIL only $passed values passed, fewer than $min_passed"
	failed=$((failed + 1))
fi
# finish (the EXIT trap) prints the summary line
summary_done=1
[ "$failed" -eq 0 ]
