#!/usr/bin/env bash
# checksum_props.sh: chatpersist.checksum(v) must equal XXH3-64 of v::text,
# computed outside PostgreSQL by xxhsum (Debian's xxhash package), for a few
# thousand generated jsonb values: nested arrays and objects, keys in any
# order, every control character, quotes and backslashes, multi-byte UTF-8,
# long strings, numbers of every scale, top-level scalars.
#
# Connection: the standard PG* environment variables. The database must have
# the chatpersist extension. Ends with "checksum_props: N passed, M failed".
set -euo pipefail

min_cases=2000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

psql -X -q -v ON_ERROR_STOP=1 -At -F $'\t' >"$work/cases.tsv" <<'SQL'
SELECT setseed(0.1234) \g /dev/null

CREATE FUNCTION pg_temp.rand_string() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	pieces text[] := ARRAY['plain', 'a"quote', 'back\slash', E'new\nline', E'tab\there',
		E'cr\rlf', E'\b\f', 'ünïcödé', '中文字', '😀🎉', '<>&''', '/', E'\x7f', ''];
	s text := '';
BEGIN
	FOR i IN 0..floor(random() * 4)::int LOOP
		IF random() < 0.15 THEN
			s := s || chr(1 + floor(random() * 31)::int);
		ELSE
			s := s || pieces[1 + floor(random() * array_length(pieces, 1))::int];
		END IF;
	END LOOP;
	RETURN s;
END $$;

CREATE FUNCTION pg_temp.rand_number() RETURNS jsonb LANGUAGE sql AS $$
	SELECT (ARRAY['0', '-0', '1', '1.0', '1.00', '-0.0', '1e10', '1E-10', '2.5e+3',
		'123456789012345678901234567890.123456789', '0.000001', '-42', '1e300',
		'3.14159265358979323846264338327950288', '100', '7.000'])
		[1 + floor(random() * 16)::int]::jsonb
$$;

CREATE FUNCTION pg_temp.rand_value(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r float8 := random();
	result jsonb;
	n int;
BEGIN
	IF depth <= 0 OR r < 0.35 THEN
		r := random();
		RETURN CASE
			WHEN r < 0.4 THEN to_jsonb(pg_temp.rand_string())
			WHEN r < 0.7 THEN pg_temp.rand_number()
			WHEN r < 0.8 THEN 'true'::jsonb
			WHEN r < 0.9 THEN 'false'::jsonb
			ELSE 'null'::jsonb END;
	END IF;
	n := floor(random() * 5)::int;
	IF r < 0.65 THEN
		SELECT coalesce(jsonb_agg(pg_temp.rand_value(depth - 1)), '[]') INTO result
		FROM generate_series(1, n);
	ELSE
		SELECT coalesce(jsonb_object_agg(pg_temp.rand_string() || k, pg_temp.rand_value(depth - 1)), '{}')
		INTO result FROM generate_series(1, n) k;
	END IF;
	RETURN result;
END $$;

CREATE TEMP TABLE v (j jsonb);
-- random values of every shape
INSERT INTO v SELECT pg_temp.rand_value(1 + (g % 5)) FROM generate_series(1, 1800) g;
-- message arrays like an app sends
INSERT INTO v
SELECT jsonb_agg(jsonb_build_object('id', 'm' || i, 'role', 'user',
				 'content', pg_temp.rand_string() || repeat('x', (g * 37) % 400),
				 'created_at', 1732400000000 + i, 'n', pg_temp.rand_number()))
FROM generate_series(1, 150) g, generate_series(1, 1 + g % 20) i GROUP BY g;
-- long strings, and every control character alone
INSERT INTO v SELECT to_jsonb(repeat(pg_temp.rand_string() || 'long ', 3000)) FROM generate_series(1, 10);
INSERT INTO v SELECT to_jsonb('c' || chr(c) || 'c') FROM generate_series(1, 127) c;
INSERT INTO v SELECT jsonb_build_object(chr(c), chr(c)) FROM generate_series(1, 31) c;
-- the same object written with other key orders and white space
INSERT INTO v VALUES ('{"b": 1, "a": [1, 2]}'), ('{ "a":[1,2] ,"b":1 }'), ('[]'), ('{}'), ('""'), ('[[]]'), ('[{}]');

SELECT chatpersist.checksum(j), j::text FROM v;
SQL

# One file per value, hashed by a single xxhsum run
n=0
while IFS=$'\t' read -r sum text; do
	n=$((n + 1))
	printf '%s' "$text" >"$work/$n.txt"
	printf '%s\n' "$sum" >>"$work/ours"
done <"$work/cases.tsv"

if [ "$n" -eq 0 ]; then
	echo "checksum_props: no values were generated"
	echo "checksum_props: 0 passed, 1 failed"
	exit 1
fi

(cd "$work" && for i in $(seq 1 "$n"); do printf '%s.txt\n' "$i"; done | xargs xxhsum -H3) |
	sed -E 's/^XXH3 \(([0-9]+)\.txt\) = ([0-9a-f]{16})$/\1 \2/' | sort -n | cut -d' ' -f2 >"$work/theirs"

passed=0
failed=0
i=0
while IFS= read -r -u 3 ours && IFS= read -r -u 4 theirs; do
	i=$((i + 1))
	if [ "$ours" = "$theirs" ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "checksum mismatch for value $i: chatpersist $ours, xxhsum $theirs: $(head -c 200 "$work/$i.txt")"
	fi
done 3<"$work/ours" 4<"$work/theirs"

if [ "$i" -ne "$n" ]; then
	echo "checksum_props: xxhsum gave $i hashes for $n values"
	failed=$((failed + n - i))
fi
if [ "$passed" -lt "$min_cases" ]; then
	echo "checksum_props: only $passed values checked, fewer than $min_cases"
	failed=$((failed + 1))
fi

echo "checksum_props: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
