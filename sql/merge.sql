--
-- merge_messages: the rules by example, then the properties over many
-- generated cases.
--
SET extra_float_digits = 0;

-- two devices each appended one message to the same base
SELECT chatpersist.merge_messages(
	'[{"id":"m1","created_at":1}]',
	'[{"id":"m1","created_at":1},{"id":"a1","created_at":30}]',
	'[{"id":"m1","created_at":1},{"id":"b1","created_at":20}]');

-- the same without a base: a union; argument order does not matter
SELECT chatpersist.merge_messages(
	'[{"id":"m1","created_at":1},{"id":"a1","created_at":30}]',
	'[{"id":"m1","created_at":1},{"id":"b1","created_at":20}]');
SELECT chatpersist.merge_messages(
	'[{"id":"m1","created_at":1},{"id":"b1","created_at":20}]',
	'[{"id":"m1","created_at":1},{"id":"a1","created_at":30}]');

-- inserts at the same place with equal created_at are ordered by id
SELECT chatpersist.merge_messages(
	'[{"id":"x","created_at":5},{"id":"end","created_at":9}]',
	'[{"id":"w","created_at":5},{"id":"end","created_at":9}]');

-- a missing created_at sorts first; ISO strings and numbers compare as times
SELECT chatpersist.merge_messages(
	'[{"id":"n1","created_at":"2024-01-01T00:00:01Z"}]',
	'[{"id":"n2"},{"id":"n3","created_at":1704067200500}]');

-- each side's own order is kept, even when not sorted by created_at
SELECT chatpersist.merge_messages(
	'[{"id":"a2","created_at":50},{"id":"a1","created_at":10}]',
	'[{"id":"b1","created_at":30}]');

-- edit vs edit without a base: the later updated_at wins
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"old","updated_at":100}]',
	'[{"id":"m","content":"new","updated_at":200}]');

-- a missing updated_at counts as older than any
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"no time"}]',
	'[{"id":"m","content":"timed","updated_at":1}]');

-- equal updated_at: a tombstone wins
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"hi","updated_at":5}]',
	'[{"id":"m","content":"hi","updated_at":5,"deleted":true}]');

-- equal updated_at, neither a tombstone: the greater canonical text wins
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"apple","updated_at":5}]',
	'[{"id":"m","content":"banana","updated_at":5}]');
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"banana","updated_at":5}]',
	'[{"id":"m","content":"apple","updated_at":5}]');

-- a newer edit beats an older tombstone (edit after delete)
SELECT chatpersist.merge_messages(
	'[{"id":"m","deleted":true,"updated_at":5}]',
	'[{"id":"m","content":"edited","updated_at":9}]');

-- three-way: the side that changed a message since the base wins, even
-- with an older updated_at
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"base","updated_at":100}]',
	'[{"id":"m","content":"base","updated_at":100}]',
	'[{"id":"m","content":"edited","updated_at":50}]');

-- three-way delete: a side dropped m2, the other left it unchanged
SELECT chatpersist.merge_messages(
	'[{"id":"m1"},{"id":"m2"},{"id":"m3"}]',
	'[{"id":"m1"},{"id":"m3"}]',
	'[{"id":"m1"},{"id":"m2"},{"id":"m3"},{"id":"b1"}]');

-- edit vs delete: the edit is kept
SELECT chatpersist.merge_messages(
	'[{"id":"m1"},{"id":"m2","content":"v1"}]',
	'[{"id":"m1"}]',
	'[{"id":"m1"},{"id":"m2","content":"v2","updated_at":7}]');

-- edit vs edit with a base: later updated_at wins
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"v1","updated_at":1}]',
	'[{"id":"m","content":"ours","updated_at":3}]',
	'[{"id":"m","content":"theirs","updated_at":2}]');

-- a NULL base is a two-way merge: nothing is deleted
SELECT chatpersist.merge_messages(NULL,
	'[{"id":"m1"}]',
	'[{"id":"m1"},{"id":"m2"}]');

-- the sides disagree on order: the result is sorted by (created_at, id),
-- whichever side comes first
SELECT chatpersist.merge_messages(
	'[{"id":"x","created_at":2},{"id":"y","created_at":1}]',
	'[{"id":"y","created_at":1},{"id":"x","created_at":2},{"id":"z","created_at":0}]');
SELECT chatpersist.merge_messages(
	'[{"id":"y","created_at":1},{"id":"x","created_at":2},{"id":"z","created_at":0}]',
	'[{"id":"x","created_at":2},{"id":"y","created_at":1}]');

-- unknown fields are kept as they are; empty arrays merge to the other side
SELECT chatpersist.merge_messages('[]', '[{"id":"m","role":"user","extra":{"k":[1,2]}}]');
SELECT chatpersist.merge_messages('[]', '[]');

-- the result is a well-formed jsonb value: it round-trips through text and
-- works with jsonb operators
SELECT m = (m::text)::jsonb AS round_trips, jsonb_array_length(m) AS n,
	   m -> 1 ->> 'id' AS second_id
FROM (SELECT chatpersist.merge_messages(
		(SELECT jsonb_agg(jsonb_build_object('id', 'a' || i, 'created_at', i * 2))
		   FROM generate_series(1, 40) i),
		(SELECT jsonb_agg(jsonb_build_object('id', 'b' || i, 'created_at', i * 2 + 1, 'n', 1.50))
		   FROM generate_series(1, 40) i)) AS m) s;

--
-- Properties over generated cases.  Each case derives two sides from a
-- random base: messages are kept, dropped or edited (updated_at in 100..104,
-- so edit-vs-edit ties happen), some are turned into tombstones, new ones
-- are inserted at random places, and in some cases one side is shuffled.
--
SELECT setseed(0.4242);

CREATE FUNCTION pg_temp.derive(base jsonb, side text, shuffle boolean)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	result jsonb := '[]';
	m jsonb;
	r float8;
	k int := 0;
BEGIN
	FOR m IN SELECT value FROM jsonb_array_elements(base)
	LOOP
		r := random();
		IF r < 0.2 THEN
			CONTINUE;					-- deleted by this side
		ELSIF r < 0.4 THEN
			m := m || jsonb_build_object('content', side || ' edit',
										 'updated_at', 100 + floor(random() * 5)::int);
		ELSIF r < 0.45 THEN
			m := m || jsonb_build_object('deleted', true,
										 'updated_at', 100 + floor(random() * 5)::int);
		END IF;
		IF random() < 0.3 THEN
			k := k + 1;
			result := result || jsonb_build_array(jsonb_build_object(
				'id', side || k, 'created_at', floor(random() * 100)::int,
				'content', 'new from ' || side));
		END IF;
		result := result || jsonb_build_array(m);
	END LOOP;
	IF random() < 0.5 THEN
		k := k + 1;
		result := result || jsonb_build_array(jsonb_build_object(
			'id', side || k, 'created_at', floor(random() * 100)::int));
	END IF;
	IF shuffle THEN
		SELECT coalesce(jsonb_agg(value ORDER BY random()), '[]') INTO result
		  FROM jsonb_array_elements(result);
	END IF;
	RETURN result;
END $$;

-- ids of an array, and the copy of one id
CREATE FUNCTION pg_temp.ids(a jsonb) RETURNS text[] LANGUAGE sql AS
$$ SELECT coalesce(array_agg(e->>'id' ORDER BY o), '{}') FROM jsonb_array_elements(a) WITH ORDINALITY x(e, o) $$;
CREATE FUNCTION pg_temp.copy_of(a jsonb, id text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT e FROM jsonb_array_elements(a) e WHERE e->>'id' = id $$;
-- is the order of a's ids that are also in m the same in m?
CREATE FUNCTION pg_temp.keeps_order(m jsonb, a jsonb) RETURNS boolean LANGUAGE sql AS
$$ SELECT coalesce(array_agg(id ORDER BY mo), '{}') = coalesce(array_agg(id ORDER BY ao), '{}')
	 FROM (SELECT e->>'id' AS id, o AS ao FROM jsonb_array_elements(a) WITH ORDINALITY x(e, o)) sa
	 JOIN (SELECT e->>'id' AS id, o AS mo FROM jsonb_array_elements(m) WITH ORDINALITY x(e, o)) sm USING (id) $$;

CREATE TEMP TABLE cases AS
SELECT n, base, pg_temp.derive(base, 'a', n % 10 = 0) AS a,
	   pg_temp.derive(base, 'b', n % 7 = 0) AS b
FROM (SELECT n, coalesce((SELECT jsonb_agg(jsonb_build_object(
							'id', 'm' || k, 'created_at', k * 10, 'content', 'base'))
						   FROM generate_series(1, (n * 7919) % 12) k), '[]') AS base
	  FROM generate_series(1, 600) n) g;

CREATE TEMP TABLE results AS
SELECT n, base, a, b,
	   chatpersist.merge_messages(a, b) AS ab,
	   chatpersist.merge_messages(b, a) AS ba,
	   chatpersist.merge_messages(base, a, b) AS m3,
	   chatpersist.merge_messages(base, b, a) AS m3r
FROM cases;

CREATE TEMP TABLE props (property text, cases int, failures int);

INSERT INTO props
SELECT 'two-way commutative', count(*), count(*) FILTER (WHERE ab::text <> ba::text) FROM results;
INSERT INTO props
SELECT 'three-way commutative', count(*), count(*) FILTER (WHERE m3::text <> m3r::text) FROM results;
INSERT INTO props
SELECT 'merge(a, a) = a', count(*),
	   count(*) FILTER (WHERE chatpersist.merge_messages(a, a)::text <> a::text
					  OR chatpersist.merge_messages(b, b)::text <> b::text) FROM results;
INSERT INTO props
SELECT 'merge(base, a, a) = a', count(*),
	   count(*) FILTER (WHERE chatpersist.merge_messages(base, a, a)::text <> a::text) FROM results;
INSERT INTO props
SELECT 're-merging a result with an input changes nothing', count(*),
	   count(*) FILTER (WHERE chatpersist.merge_messages(ab, a)::text <> ab::text
					  OR chatpersist.merge_messages(ab, b)::text <> ab::text
					  OR chatpersist.merge_messages(a, ab)::text <> ab::text
					  OR chatpersist.merge_messages(ab, ab)::text <> ab::text) FROM results;
INSERT INTO props
SELECT 'two-way loses no message', count(*),
	   count(*) FILTER (WHERE NOT (pg_temp.ids(ab) @> pg_temp.ids(a) AND pg_temp.ids(ab) @> pg_temp.ids(b)
							   AND cardinality(pg_temp.ids(ab)) =
								   (SELECT count(DISTINCT x) FROM unnest(pg_temp.ids(a) || pg_temp.ids(b)) x)))
FROM results;
INSERT INTO props
SELECT 'two-way keeps each side''s order (sides agree)', count(*),
	   count(*) FILTER (WHERE NOT (pg_temp.keeps_order(ab, a) AND pg_temp.keeps_order(ab, b)))
FROM results WHERE n % 10 <> 0 AND n % 7 <> 0;
INSERT INTO props
SELECT 'three-way keeps each side''s order (sides agree)', count(*),
	   count(*) FILTER (WHERE NOT (pg_temp.keeps_order(m3, a) AND pg_temp.keeps_order(m3, b)))
FROM results WHERE n % 10 <> 0 AND n % 7 <> 0;
INSERT INTO props
SELECT 'order conflicts sort by (created_at, id)', count(*),
	   count(*) FILTER (WHERE pg_temp.ids(ab) <> (SELECT array_agg(e->>'id' ORDER BY (e->>'created_at')::numeric NULLS FIRST, convert_to(e->>'id', 'UTF8'))
												   FROM jsonb_array_elements(ab) e))
FROM results WHERE NOT (pg_temp.keeps_order(ab, a) AND pg_temp.keeps_order(ab, b));

-- per-message three-way outcomes
CREATE TEMP TABLE outcomes AS
SELECT r.n, id,
	   pg_temp.copy_of(r.base, id) AS bc, pg_temp.copy_of(r.a, id) AS ac,
	   pg_temp.copy_of(r.b, id) AS bcb, pg_temp.copy_of(r.m3, id) AS mc,
	   pg_temp.copy_of(r.ab, id) AS uc
FROM results r,
	 LATERAL (SELECT DISTINCT x AS id
				FROM unnest(pg_temp.ids(r.base) || pg_temp.ids(r.a) || pg_temp.ids(r.b)) x) i;

INSERT INTO props
SELECT 'three-way honours a delete of an unchanged message', count(*),
	   count(*) FILTER (WHERE mc IS NOT NULL) FROM outcomes
WHERE bc IS NOT NULL AND ((ac IS NULL AND bcb = bc) OR (bcb IS NULL AND ac = bc));
INSERT INTO props
SELECT 'three-way: edit beats delete', count(*),
	   count(*) FILTER (WHERE mc IS DISTINCT FROM coalesce(ac, bcb)) FROM outcomes
WHERE bc IS NOT NULL AND ((ac IS NULL AND bcb <> bc) OR (bcb IS NULL AND ac <> bc));
INSERT INTO props
SELECT 'three-way: the side that changed a message wins', count(*),
	   count(*) FILTER (WHERE mc IS DISTINCT FROM (CASE WHEN ac = bc THEN bcb ELSE ac END)) FROM outcomes
WHERE bc IS NOT NULL AND ac IS NOT NULL AND bcb IS NOT NULL AND (ac = bc) <> (bcb = bc);
INSERT INTO props
SELECT 'edit vs edit: the later updated_at wins', count(*),
	   count(*) FILTER (WHERE mc IS DISTINCT FROM (CASE WHEN (ac->>'updated_at')::int > (bcb->>'updated_at')::int
														THEN ac ELSE bcb END)) FROM outcomes
WHERE bc IS NOT NULL AND ac <> bc AND bcb <> bc AND ac <> bcb
  AND (ac->>'updated_at')::int <> (bcb->>'updated_at')::int;
INSERT INTO props
SELECT 'edit vs edit tie: tombstone, then greater text wins', count(*),
	   count(*) FILTER (WHERE mc IS DISTINCT FROM (CASE
			WHEN (ac->>'deleted') IS NOT NULL AND (bcb->>'deleted') IS NULL THEN ac
			WHEN (bcb->>'deleted') IS NOT NULL AND (ac->>'deleted') IS NULL THEN bcb
			WHEN convert_to(ac::text, 'UTF8') > convert_to(bcb::text, 'UTF8') THEN ac
			ELSE bcb END)) FROM outcomes
WHERE bc IS NOT NULL AND ac <> bc AND bcb <> bc AND ac <> bcb
  AND (ac->>'updated_at')::int = (bcb->>'updated_at')::int;
INSERT INTO props
SELECT 'three-way keeps every message added by a side', count(*),
	   count(*) FILTER (WHERE mc IS DISTINCT FROM coalesce(ac, bcb)) FROM outcomes
WHERE bc IS NULL;
INSERT INTO props
SELECT 'two-way keeps every message of either side', count(*),
	   count(*) FILTER (WHERE uc IS NULL) FROM outcomes
WHERE ac IS NOT NULL OR bcb IS NOT NULL;

-- every property was exercised, and none failed
SELECT property, cases > 0 AS exercised, failures FROM props ORDER BY property;
SELECT sum(cases) > 5000 AS many_cases FROM props;

DROP TABLE props, outcomes, results, cases;

-- ISO-8601 fractions are exact: 00.3 seconds is the instant 300 ms, so
-- these updated_at are equal and the tie-break (greater text) decides, in
-- either order
SELECT chatpersist.merge_messages(
	'[{"id":"m","content":"aaa","updated_at":"1970-01-01T00:00:00.3Z"}]',
	'[{"id":"m","content":"zzz","updated_at":300}]') -> 0 ->> 'content' AS winner,
	   chatpersist.merge_messages(
	'[{"id":"m","content":"zzz","updated_at":300}]',
	'[{"id":"m","content":"aaa","updated_at":"1970-01-01T00:00:00.3Z"}]') -> 0 ->> 'content' AS winner_swapped;
