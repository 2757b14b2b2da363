-- test/bench/load.sql
--
-- The conversations every workload starts from: for each size, users
-- 0 .. users-1 hold S(2) at version 2 (see setup.sql), with version 1 (S(1))
-- in history for the PL/pgSQL and chatpersist tables, so that a stale save
-- finds its base.  Every workload has its own conversations (raw:
-- bench.raw_conv, raw-lz4: bench.raw_lz4_conv, PL/pgSQL: bench.pl_conv, chatpersist:
-- chatpersist.conversations); the chatpersist workloads share theirs,
-- which all follow the same cycle of versions.
--
-- Copyright (c) 2026, chatpersist developers

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

INSERT INTO bench.raw_conv (user_id, id, messages, version)
SELECT bench.uid(u), 'c' || s.size, p.arr, 2
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 2;

INSERT INTO bench.rawh_conv SELECT * FROM bench.raw_conv;
-- from the payloads (uncompressed), not from raw_conv: a value copied from
-- there would keep its pglz compression
INSERT INTO bench.raw_lz4_conv (user_id, id, messages, version)
SELECT bench.uid(u), 'c' || s.size, p.arr, 2
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 2;
INSERT INTO bench.rawh_history (user_id, conversation_id, version, messages)
SELECT c.user_id, c.id, 1, p.arr
FROM bench.raw_conv c JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = 1;

SELECT count(*) AS pl_created
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 1
	CROSS JOIN LATERAL bench.pl_save_conversation(bench.uid(u), 'c' || s.size, 'bench', p.arr) AS r
WHERE r.status = 'created' \gset
SELECT count(*) AS pl_updated
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 2
	CROSS JOIN LATERAL bench.pl_save_conversation(bench.uid(u), 'c' || s.size, NULL, p.arr, false, 1) AS r
WHERE r.status = 'updated' AND r.version = 2 \gset

SELECT count(*) AS cp_created
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 1
	CROSS JOIN LATERAL chatpersist.save_conversation(bench.uid(u), 'c' || s.size, 'bench', p.arr) AS r
WHERE r.status = 'created' \gset
SELECT count(*) AS cp_updated
FROM bench.sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 2
	CROSS JOIN LATERAL chatpersist.save_conversation(bench.uid(u), 'c' || s.size, NULL, p.arr, false, 1) AS r
WHERE r.status = 'updated' AND r.version = 2 \gset

SELECT sum(users) AS expected FROM bench.sizes \gset
SELECT :pl_created = :expected AND :pl_updated = :expected
	AND :cp_created = :expected AND :cp_updated = :expected AS load_ok \gset
\if :load_ok
\else
\echo 'load: not every conversation was created and updated'
SELECT 1 / 0;
\endif

VACUUM ANALYZE bench.raw_conv;
VACUUM ANALYZE bench.raw_lz4_conv;
VACUUM ANALYZE bench.rawh_conv;
VACUUM ANALYZE bench.rawh_history;
VACUUM ANALYZE bench.pl_conv;
VACUUM ANALYZE bench.pl_history;
VACUUM ANALYZE chatpersist.conversations;
VACUUM ANALYZE chatpersist.history;
-- 2.0: the message rows and the message copies of history
SELECT to_regclass('chatpersist.messages') IS NOT NULL AS message_rows \gset
\if :message_rows
VACUUM ANALYZE chatpersist.messages;
VACUUM ANALYZE chatpersist.history_messages;
\endif
CHECKPOINT;
