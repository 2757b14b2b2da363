-- test/bench/sql_merge.sql
--
-- The merge of two message arrays written in SQL the way an application
-- would, with jsonb_array_elements: the comparison point of the
-- merge_messages microbenchmark, and the merge of the PL/pgSQL save
-- (plpgsql_save.sql).
--
-- It follows chatpersist's rules where SQL makes that easy: messages
-- matched by id; a side that left a message as in the base loses to the
-- side that changed it; a message one side dropped and the other left
-- unchanged is dropped; otherwise the later updated_at wins, then a
-- tombstone, then the greater text.  The order is simplified to
-- (created_at, id), which is what chatpersist's order gives for arrays
-- already sorted that way, like the benchmark's; run.sh checks that both
-- merges return the same array on the benchmark's inputs.  created_at and
-- updated_at must be numbers here (chatpersist also reads ISO-8601).
--
-- Copyright (c) 2026, chatpersist developers

CREATE FUNCTION bench.sql_merge(p_base jsonb, p_ours jsonb, p_theirs jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
	WITH o AS (
		SELECT e ->> 'id' AS id, e FROM jsonb_array_elements(p_ours) AS x(e)
	), t AS (
		SELECT e ->> 'id' AS id, e FROM jsonb_array_elements(p_theirs) AS x(e)
	), b AS (
		SELECT e ->> 'id' AS id, e
		FROM jsonb_array_elements(coalesce(p_base, '[]'::jsonb)) AS x(e)
	), m AS (
		SELECT coalesce(o.id, t.id) AS id, o.e AS oe, t.e AS te, b.e AS be
		FROM o FULL JOIN t ON o.id = t.id
			LEFT JOIN b ON b.id = coalesce(o.id, t.id)
	), w AS (
		SELECT id,
			CASE
				WHEN te IS NULL THEN oe
				WHEN oe IS NULL THEN te
				WHEN oe = te THEN oe
				WHEN be = oe THEN te
				WHEN be = te THEN oe
				WHEN coalesce((te ->> 'updated_at')::numeric, -1) >
					 coalesce((oe ->> 'updated_at')::numeric, -1) THEN te
				WHEN coalesce((te ->> 'updated_at')::numeric, -1) <
					 coalesce((oe ->> 'updated_at')::numeric, -1) THEN oe
				WHEN coalesce((te ->> 'deleted')::boolean, false) THEN te
				WHEN coalesce((oe ->> 'deleted')::boolean, false) THEN oe
				WHEN te::text > oe::text THEN te
				ELSE oe
			END AS msg
		FROM m
		-- one side dropped it, the other left it as in the base: dropped
		WHERE NOT (oe IS NULL AND be IS NOT NULL AND be = te)
		  AND NOT (te IS NULL AND be IS NOT NULL AND be = oe)
	)
	SELECT coalesce(jsonb_agg(msg ORDER BY (msg ->> 'created_at')::numeric NULLS FIRST,
								  id COLLATE "C"),
					'[]'::jsonb)
	FROM w
$$;

COMMENT ON FUNCTION bench.sql_merge(jsonb, jsonb, jsonb) IS
	'Three-way merge of message arrays in SQL (NULL base: two-way), the comparison point of merge_messages';
