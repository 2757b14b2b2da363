-- test/bench/micro.sql
--
-- The microbenchmarks' functions (run.sh calls them, alternating the two
-- sides of each comparison over several rounds):
--	 bench.micro_checksum(size, which, n): microseconds per call of
--	   chatpersist.checksum(m) (which = 'checksum') or md5(m::text)
--	   (which = 'md5') over the benchmark's array of that size;
--	 bench.micro_merge(which, n): microseconds per merge of the 1000 + 1000
--	   message inputs of bench.merge_input, with chatpersist.merge_messages
--	   ('cp3' three-way, 'cp2' two-way) or bench.sql_merge ('sql3', 'sql2').
-- Each loop holds its value in a PL/pgSQL variable, parsed once, so no call
-- pays for reading or detoasting it.
--
-- The merge inputs: a base of 950 messages; ours edits 10 of them
-- (m000100..m000109) and adds 50 (o...), theirs edits 10 others
-- (m000200..m000209) and adds 50 (t...): 1000 messages on each side, a
-- merged result of 1050 messages and no conflict.
--
-- Copyright (c) 2026, chatpersist developers

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE FUNCTION bench.merge_message(id text, i integer, edited integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE
RETURN bench.message(i, edited) || jsonb_build_object('id', id);

CREATE TABLE bench.merge_input AS
SELECT
	(SELECT jsonb_agg(bench.message(i, 0) ORDER BY i)
	 FROM generate_series(0, 949) AS i) AS base,
	(SELECT jsonb_agg(m ORDER BY i) FROM (
		SELECT i, bench.message(i, CASE WHEN i BETWEEN 100 AND 109 THEN 1 ELSE 0 END) AS m
		FROM generate_series(0, 949) AS i
		UNION ALL
		SELECT 950 + i, bench.merge_message('o' || lpad(i::text, 6, '0'), 950 + 2 * i, 0)
		FROM generate_series(0, 49) AS i) x) AS ours,
	(SELECT jsonb_agg(m ORDER BY i) FROM (
		SELECT i, bench.message(i, CASE WHEN i BETWEEN 200 AND 209 THEN 1 ELSE 0 END) AS m
		FROM generate_series(0, 949) AS i
		UNION ALL
		SELECT 950 + i, bench.merge_message('t' || lpad(i::text, 6, '0'), 951 + 2 * i, 0)
		FROM generate_series(0, 49) AS i) x) AS theirs;

CREATE FUNCTION bench.micro_checksum(p_size integer, p_which text, p_n integer)
RETURNS float8
LANGUAGE plpgsql
AS $$
DECLARE
	m	jsonb;
	x	text;
	t0	timestamptz;
BEGIN
	SELECT arr::text::jsonb INTO m FROM bench.payload WHERE size = p_size AND k = 0;
	t0 := clock_timestamp();
	IF p_which = 'checksum' THEN
		FOR i IN 1 .. p_n LOOP
			x := chatpersist.checksum(m);
		END LOOP;
	ELSE
		FOR i IN 1 .. p_n LOOP
			x := md5(m::text);
		END LOOP;
	END IF;
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / p_n;
END
$$;

CREATE FUNCTION bench.micro_merge(p_which text, p_n integer)
RETURNS float8
LANGUAGE plpgsql
AS $$
DECLARE
	b	jsonb;
	o	jsonb;
	t	jsonb;
	x	jsonb;
	t0	timestamptz;
BEGIN
	SELECT base::text::jsonb, ours::text::jsonb, theirs::text::jsonb INTO b, o, t
	FROM bench.merge_input;
	t0 := clock_timestamp();
	FOR i IN 1 .. p_n LOOP
		CASE p_which
			WHEN 'cp3' THEN x := chatpersist.merge_messages(b, o, t);
			WHEN 'cp2' THEN x := chatpersist.merge_messages(o, t);
			WHEN 'sql3' THEN x := bench.sql_merge(b, o, t);
			WHEN 'sql2' THEN x := bench.sql_merge(NULL, o, t);
		END CASE;
	END LOOP;
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / p_n;
END
$$;

-- Both merges must agree on these inputs, or the comparison means nothing
SELECT chatpersist.merge_messages(base, ours, theirs) = bench.sql_merge(base, ours, theirs)
	AND chatpersist.merge_messages(ours, theirs) = bench.sql_merge(NULL, ours, theirs)
	AND jsonb_array_length(chatpersist.merge_messages(base, ours, theirs)) = 1050
	AS merge_agree
FROM bench.merge_input \gset
\if :merge_agree
\else
\echo 'micro: chatpersist.merge_messages and bench.sql_merge disagree on the inputs'
SELECT 1 / 0;
\endif
