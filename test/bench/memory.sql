-- test/bench/memory.sql
--
-- The memory benchmark's loop: bench.save_loop(from, to) makes saves
-- from .. to of the size-10 chatpersist conversations, one transaction
-- each (COMMIT in the loop), in turn a fast-forward save_conversation, a
-- stale one (the merge path) and an append_messages, over all the size's
-- users.  run.sh calls it in one session to 10,000 and then to 200,000
-- saves, and reads the backend's /proc/self/status and memory contexts
-- after each.
--
-- Copyright (c) 2026, chatpersist developers

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE PROCEDURE bench.save_loop(p_from integer, p_to integer)
LANGUAGE plpgsql
AS $$
DECLARE
	n		integer;
	u		integer;
	v		bigint;
	arr		jsonb;
	r		chatpersist.save_result;
BEGIN
	SELECT users INTO n FROM bench.sizes WHERE size = 10;
	FOR i IN p_from .. p_to LOOP
		u := i % n;
		SELECT c.version INTO v FROM chatpersist.conversations c
		 WHERE c.user_id = bench.uid(u) AND c.id = 'c10';
		CASE i % 3
			WHEN 0 THEN
				SELECT p.arr INTO arr FROM bench.payload p WHERE p.size = 10 AND p.k = (v + 1) % 4;
				r := chatpersist.save_conversation(bench.uid(u), 'c10', NULL, arr, false, v);
			WHEN 1 THEN
				SELECT p.arr INTO arr FROM bench.payload p WHERE p.size = 10 AND p.k = (v + 2) % 4;
				r := chatpersist.save_conversation(bench.uid(u), 'c10', NULL, arr, false, v - 1);
			ELSE
				SELECT p.arr INTO arr FROM bench.append_payload p WHERE p.size = 10 AND p.k = (v + 1) % 4;
				r := chatpersist.append_messages(bench.uid(u), 'c10', arr);
		END CASE;
		IF r.status NOT IN ('updated', 'merged') THEN
			RAISE EXCEPTION 'save % of user % returned %', i, u, r.status;
		END IF;
		COMMIT;
	END LOOP;
END
$$;

-- The backend's memory: /proc/self/status (the server reads its own) and
-- the bytes held by its memory contexts
CREATE FUNCTION bench.backend_memory()
RETURNS TABLE (vm_rss_kb bigint, rss_anon_kb bigint, rss_file_kb bigint,
			   rss_shmem_kb bigint, contexts_kb bigint)
LANGUAGE sql
AS $$
	WITH s AS (
		SELECT split_part(l, ':', 1) AS k,
			   (regexp_match(l, '(\d+) kB'))[1]::bigint AS kb
		FROM regexp_split_to_table(pg_read_file('/proc/self/status'), E'\n') AS l
	)
	SELECT (SELECT kb FROM s WHERE k = 'VmRSS'),
		   (SELECT kb FROM s WHERE k = 'RssAnon'),
		   (SELECT kb FROM s WHERE k = 'RssFile'),
		   (SELECT kb FROM s WHERE k = 'RssShmem'),
		   (SELECT sum(total_bytes)::bigint / 1024 FROM pg_backend_memory_contexts)
$$;
