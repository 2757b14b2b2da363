--
-- checksum: XXH3-64 (seed 0) of the canonical text output of a jsonb value,
-- as 16 lowercase hex digits.
--
-- Every pinned value was computed outside PostgreSQL with xxhsum 0.8.1
-- (Debian package xxhash) over the exact text v::text prints, with no
-- trailing newline; the comment above each query gives the command.
-- xxhsum -H3 prints the hash big-endian, e.g. "XXH3 (stdin) = 831154110e30ac6a".
-- test/checksum_props.sh repeats the comparison for thousands of values.
--

-- empty containers
-- printf '%s' '[]' | xxhsum -H3
SELECT chatpersist.checksum('[]') AS empty_array;
-- printf '%s' '{}' | xxhsum -H3
SELECT chatpersist.checksum('{}') AS empty_object;

-- a typical message array
-- printf '%s' '[{"id": "m1", "role": "user", "content": "Hello!", "created_at": 1732400000000}, {"id": "m2", "role": "assistant", "content": "Hi, how can I help?", "created_at": 1732400001000}]' | xxhsum -H3
SELECT chatpersist.checksum('[{"id": "m1", "role": "user", "content": "Hello!", "created_at": 1732400000000},
							  {"id": "m2", "role": "assistant", "content": "Hi, how can I help?", "created_at": 1732400001000}]') AS messages;

-- top-level scalars print bare, without the pseudo-array around them
-- printf '%s' '"hello"' | xxhsum -H3
SELECT chatpersist.checksum('"hello"') AS string_scalar;
-- printf '%s' '10000000000' | xxhsum -H3
SELECT chatpersist.checksum('1e10') AS number_scalar;
-- printf '%s' 'null' | xxhsum -H3
SELECT chatpersist.checksum('null') AS null_scalar;

-- key order, white space and duplicate keys do not matter: all three are
-- the same jsonb value, whose text is {"id": "m1", "role": "user"}
-- printf '%s' '{"id": "m1", "role": "user"}' | xxhsum -H3
SELECT chatpersist.checksum('{"id": "m1", "role": "user"}') AS canonical,
	   chatpersist.checksum(E'{ "role":"user",\n\t"id" : "m1" }') AS reordered,
	   chatpersist.checksum('{"role": "nobody", "id": "m1", "role": "user"}') AS duplicate_key;

-- an element of an array hashes like the same object standalone
-- printf '%s' '{"id": "m1", "role": "user"}' | xxhsum -H3
SELECT chatpersist.checksum('[{"role": "user", "id": "m1"}, {"id": "m2"}]'::jsonb -> 0) AS first_element;

-- nested containers, keys printed in jsonb's order (shorter keys first)
-- printf '%s' '{"a": 2, "b": {"a": {}, "z": []}}' | xxhsum -H3
SELECT chatpersist.checksum('{"b": {"z": [], "a": {}}, "a": 1, "a": 2}') AS nested;

-- numeric scale is kept: [1.0] and [1.00] are equal jsonb values but print,
-- and so hash, differently
-- printf '%s' '[1.0]' | xxhsum -H3
-- printf '%s' '[1.00]' | xxhsum -H3
SELECT '[1.0]'::jsonb = '[1.00]'::jsonb AS jsonb_equal,
	   chatpersist.checksum('[1.0]') AS one_point_zero,
	   chatpersist.checksum('[1.00]') AS one_point_zero_zero;

-- numbers exactly as numeric_out prints them (-0.0 prints as 0.0)
-- printf '%s' '[1.0, 1.00, 0.0, 100, 0.0015, 100000000000000000000.000001]' | xxhsum -H3
SELECT chatpersist.checksum('[1.0, 1.00, -0.0, 1e2, 1.5e-3, 100000000000000000000.000001]') AS numbers;

-- escapes: \t \" \\ and \u00XX for other control characters; UTF-8 and
-- emoji verbatim, also when the input spelled them as \u escapes
-- printf '%s' '["tab\there", "quote\" back\\slash", "\u0001\u001f", "é 日本 😀", "😀"]' | xxhsum -H3
SELECT chatpersist.checksum('["tab\there", "quote\" back\\slash", "\u0001\u001f", "é 日本 😀", "\ud83d\ude00"]') AS escapes;

-- every control character 0x01-0x1f
-- printf '%s' '"\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"' | xxhsum -H3
SELECT chatpersist.checksum(pg_catalog.to_jsonb(
	(SELECT pg_catalog.string_agg(pg_catalog.chr(c), '' ORDER BY c)
	 FROM pg_catalog.generate_series(1, 31) c))) AS control_characters;

-- long strings: plain bytes beyond the 8 kB hash buffer, and escapes that
-- straddle buffer boundaries
-- { printf '"'; printf 'x%.0s' $(seq 20000); printf '"'; } | xxhsum -H3
SELECT chatpersist.checksum(pg_catalog.to_jsonb(pg_catalog.repeat('x', 20000))) AS long_plain;
-- { printf '"'; for i in $(seq 5000); do printf '%s' 'a\"b\\'; done; printf '"'; } | xxhsum -H3
SELECT chatpersist.checksum(pg_catalog.to_jsonb(pg_catalog.repeat('a"b\', 5000))) AS long_escaped;

-- a 330 kB message array, stored compressed in a table and detoasted
CREATE TEMP TABLE checksum_big AS
SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
		'id', 'm' || i,
		'role', CASE WHEN i % 2 = 0 THEN 'assistant' ELSE 'user' END,
		'content', pg_catalog.repeat('word ', 50) || i,
		'created_at', 1732400000000 + i * 1000)) AS m
FROM pg_catalog.generate_series(1, 1000) i;
-- psql -XAtc "SELECT m::text FROM checksum_big" | head -c -1 | xxhsum -H3
SELECT pg_catalog.octet_length(m::text) AS text_bytes,
	   pg_catalog.pg_column_size(m) < pg_catalog.octet_length(m::text) AS compressed,
	   chatpersist.checksum(m) AS big
FROM checksum_big;
DROP TABLE checksum_big;

-- always 16 lowercase hex digits, zero-padded
SELECT pg_catalog.bool_and(s ~ '^[0-9a-f]{16}$') AS all_hex16,
	   pg_catalog.count(DISTINCT s) AS distinct_checksums,
	   pg_catalog.count(*) FILTER (WHERE s ~ '^0') > 0 AS some_leading_zero
FROM (SELECT chatpersist.checksum(v) AS s
	  FROM (SELECT pg_catalog.to_jsonb(g) AS v FROM pg_catalog.generate_series(1, 1000) g
			UNION ALL
			SELECT pg_catalog.to_jsonb(g::text) FROM pg_catalog.generate_series(1, 1000) g
			UNION ALL
			SELECT pg_catalog.jsonb_build_array(g, pg_catalog.repeat('x', g % 100), g % 3 = 0)
			FROM pg_catalog.generate_series(1, 1000) g) vals) sums;

-- NULL is an error (22004), not a NULL result; the SQLSTATE is printed
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.try('SELECT chatpersist.checksum(NULL)');
SELECT chatpersist.checksum(NULL);
