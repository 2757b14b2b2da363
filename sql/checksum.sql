--
-- checksum: XXH3-64 (seed 0) of the canonical text, 16 lowercase hex digits.
--
-- Each expected value below was computed outside PostgreSQL with xxhsum
-- 0.8.1 (Debian package xxhash) over the exact canonical text, e.g.
--   printf '%s' '[]' | xxhsum -H3        ->  XXH3 (stdin) = 831154110e30ac6a
-- test/checksum_props.sh repeats that comparison for ~2000 generated values.
--
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; hin text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hin = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || coalesce(E'\n  HINT: ' || nullif(hin, ''), '');
END $$;

-- printf '%s' '[]' | xxhsum -H3
SELECT chatpersist.checksum('[]') = '831154110e30ac6a' AS empty_array;
-- printf '%s' '{}' | xxhsum -H3
SELECT chatpersist.checksum('{}') = '1349cde127705c16' AS empty_object;
-- printf '%s' '[{"id": "m1", "role": "user", "content": "Hello", "created_at": 1732400000000}]' | xxhsum -H3
SELECT chatpersist.checksum('[{"id":"m1","role":"user","content":"Hello","created_at":1732400000000}]') = '29739b8aa23f2144' AS message_array;
-- printf '%s' '"hello"' | xxhsum -H3   (a top-level scalar prints bare)
SELECT chatpersist.checksum('"hello"') = '7fa86191cb5433a3' AS scalar;
-- printf '%s' '{"a": 1, "b": [true, null]}' | xxhsum -H3
SELECT chatpersist.checksum('{"a": 1, "b": [true, null]}') = '67686ed0d3ca9f8f' AS object;
-- printf '%s' '["tab\there \"q\" back\\slash \u0001 é 😀"]' | xxhsum -H3
SELECT chatpersist.checksum('["tab\there \"q\" back\\slash \u0001 é 😀"]') = '11fe36320819060a' AS escapes;

-- the values themselves
SELECT chatpersist.checksum('[]'), chatpersist.checksum('{}'), chatpersist.checksum('"hello"');

-- key order and white space do not change the checksum
SELECT chatpersist.checksum('{"b": [true, null], "a": 1}') = chatpersist.checksum('{"a":1,"b":[true,null]}') AS key_order,
	   chatpersist.checksum(E'[ {"id" : "m1" ,\n "role":"user"} ]') = chatpersist.checksum('[{"id":"m1","role":"user"}]') AS white_space;

-- numeric scale does: [1.0] and [1.00] are jsonb-equal but print differently
-- printf '%s' '[1.0]' | xxhsum -H3    ->  442fd42666d59ae0
-- printf '%s' '[1.00]' | xxhsum -H3   ->  42e1ad0587e56ffb
SELECT '[1.0]'::jsonb = '[1.00]'::jsonb AS jsonb_equal,
	   chatpersist.checksum('[1.0]') AS one_point_zero,
	   chatpersist.checksum('[1.00]') AS one_point_zero_zero;

-- it is the checksum of the text: hashing the value or its re-parsed text agrees
SELECT bool_and(chatpersist.checksum(j) = chatpersist.checksum(j::text::jsonb)) AS stable
FROM (SELECT jsonb_build_object('id', 'm' || g, 'n', g / 7.0, 's', repeat('é', g % 50)) AS j
	  FROM generate_series(1, 500) g) s;

-- always 16 lowercase hex digits
SELECT bool_and(chatpersist.checksum(to_jsonb(g)) ~ '^[0-9a-f]{16}$') AS hex16,
	   count(DISTINCT chatpersist.checksum(to_jsonb(g))) AS distinct_sums
FROM generate_series(1, 1000) g;

-- large values hash in bounded memory and match the stored checksum
SELECT status, checksum = chatpersist.checksum(
	(SELECT jsonb_agg(jsonb_build_object('id', 'm' || i, 'content', repeat('x', 300), 'n', i * 1.5))
	   FROM generate_series(1, 5000) i)) AS same
FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000d001', 'big', 'Big',
	(SELECT jsonb_agg(jsonb_build_object('id', 'm' || i, 'content', repeat('x', 300), 'n', i * 1.5))
	   FROM generate_series(1, 5000) i));

-- NULL is an error, not a NULL result
SELECT pg_temp.try($$SELECT chatpersist.checksum(NULL)$$);

DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000d001';
DELETE FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000d001';
