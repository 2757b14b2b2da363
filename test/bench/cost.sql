-- test/bench/cost.sql
--
-- Schema and data of the cost benchmark (bash test/bench/run.sh --cost,
-- issue 13's targets), loaded after setup.sql and load.sql, with psql -v
-- append_10=... append_1000=... append_10000=... (conversations per size).
--
-- The baseline is what an engineer would hand-write with one row per
-- message, on plain tables with PostgreSQL's default storage: a
-- conversation row with a version, and one row per message keyed by
-- (user_id, conversation_id, id), with an ordering key (the message's
-- created_at) and the message as jsonb.  Its write is one statement, one
-- round trip like a function call (workloads/rpm_append.sql):
--
--	WITH ins AS (INSERT INTO bench.rpm_msg ... RETURNING 1)
--	UPDATE bench.rpm_conv SET version = version + 1 WHERE ...
--
-- The appends of chatpersist (workloads/cp_append_new.sql) and of the
-- baseline both add a new message: the template bench.new_message with a
-- fresh id (gen_random_uuid(), in both).  Their conversations grow during a
-- timed run; run.sh --cost checks and resets them after each run
-- (bench.cost_reset_rpm and bench.cost_reset_cp, outside the timing), so
-- every run starts at the nominal length.  chatpersist's append
-- conversations are 'a<size>' (its 'c<size>' ones follow load.sql's cycle
-- for the fast-forward saves); the baseline's are 'c<size>' in its own
-- tables.
--
-- Copyright (c) 2026, chatpersist developers

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- The message every append sends, with its id replaced by a fresh one
-- (a uuid): a payload message, about 325 bytes of JSON text with that id,
-- created after all of them
CREATE TABLE bench.new_message (msg jsonb NOT NULL);
INSERT INTO bench.new_message
SELECT jsonb_set(bench.message(20000, 0), '{id}', to_jsonb(repeat('x', 36)));

CREATE TABLE bench.cost_sizes (
	size	integer PRIMARY KEY,
	users	integer NOT NULL
);
INSERT INTO bench.cost_sizes VALUES
	(10, :append_10), (1000, :append_1000), (10000, :append_10000);

-- The hand-written row-per-message schema
CREATE TABLE bench.rpm_conv (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	version		bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);
CREATE TABLE bench.rpm_msg (
	user_id			uuid NOT NULL,
	conversation_id	text NOT NULL,
	id				text NOT NULL,
	created_at		bigint NOT NULL,	-- the ordering key
	message			jsonb NOT NULL,
	PRIMARY KEY (user_id, conversation_id, id)
);

-- Each baseline conversation holds the messages of S(0) (setup.sql), at
-- version 0; the messages appended since the last reset are those whose id
-- is not a payload id ('m...'), and there are exactly version of them
-- (the conversations 'h<size>' are rpm-hist's, workloads/rpm_hist.sql: the
-- same write plus a history of the replaced versions, in bench.rpm_hist)
INSERT INTO bench.rpm_conv (user_id, id, version)
SELECT bench.uid(u), c || s.size, 0
FROM bench.cost_sizes s CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u,
	(VALUES ('c'), ('h')) AS k (c);

INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
SELECT bench.uid(u), c || s.size, e->>'id', (e->>'created_at')::bigint, e
FROM bench.cost_sizes s
	JOIN bench.payload p ON p.size = s.size AND p.k = 0
	CROSS JOIN LATERAL jsonb_array_elements(p.arr) AS e
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u,
	(VALUES ('c'), ('h')) AS k (c);

CREATE TABLE bench.rpm_hist (
	user_id			uuid NOT NULL,
	conversation_id	text NOT NULL,
	version			bigint NOT NULL,
	replaced_at		timestamptz NOT NULL,
	PRIMARY KEY (user_id, conversation_id, version)
);

-- Each rpm-hist conversation starts with a full history (versions -10 to
-- -1), so that the table keeps its size through a run and its plans are
-- made on its real size (an empty table's would scan it)
CREATE FUNCTION bench.rpm_hist_fill() RETURNS void
LANGUAGE sql AS $$
	DELETE FROM bench.rpm_hist;
	INSERT INTO bench.rpm_hist (user_id, conversation_id, version, replaced_at)
	SELECT c.user_id, c.id, v, now()
	  FROM bench.rpm_conv c CROSS JOIN generate_series(-10, -1) AS v
	 WHERE c.id LIKE 'h%';
$$;
SELECT bench.rpm_hist_fill();
ANALYZE bench.rpm_hist;

-- chatpersist's append conversations, S(0) each; cost_mark holds the
-- version of each at its last reset
CREATE TABLE bench.cost_mark (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	version		bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);

SELECT count(*) AS a_created
FROM bench.cost_sizes s
	CROSS JOIN LATERAL generate_series(0, s.users - 1) AS u
	JOIN bench.payload p ON p.size = s.size AND p.k = 0
	CROSS JOIN LATERAL chatpersist.save_conversation(bench.uid(u), 'a' || s.size, 'bench', p.arr) AS r
WHERE r.status = 'created' \gset
SELECT sum(users) AS a_expected FROM bench.cost_sizes \gset
SELECT :a_created = :a_expected AS a_ok \gset
\if :a_ok
\else
\echo 'cost: not every append conversation was created'
SELECT 1 / 0;
\endif

INSERT INTO bench.cost_mark (user_id, id, version)
SELECT user_id, id, version FROM chatpersist.conversations WHERE id LIKE 'a%';

-- Check that every baseline write since the last reset added exactly one
-- message (version = messages appended), then remove them.  Returns the
-- messages appended and the largest number in one conversation.
CREATE FUNCTION bench.cost_reset_rpm(OUT appended bigint, OUT most bigint)
LANGUAGE plpgsql AS $$
DECLARE
	bad		bigint;
BEGIN
	SELECT coalesce(sum(c.version), 0), coalesce(max(c.version), 0)
	  INTO appended, most
	  FROM bench.rpm_conv c;
	SELECT count(*) INTO bad
	  FROM bench.rpm_conv c
	  LEFT JOIN (SELECT m.user_id, m.conversation_id, count(*) AS n
				   FROM bench.rpm_msg m
				  WHERE m.id NOT LIKE 'm%'
				  GROUP BY 1, 2) a
		ON a.user_id = c.user_id AND a.conversation_id = c.id
	 WHERE c.version <> coalesce(a.n, 0);
	IF bad > 0 THEN
		RAISE EXCEPTION 'cost: % baseline conversations do not hold one new message per version', bad;
	END IF;
	-- rpm-hist's conversations hold their last 10 replaced versions (the
	-- ones before 0 from bench.rpm_hist_fill)
	SELECT count(*) INTO bad
	  FROM bench.rpm_conv c
	  LEFT JOIN (SELECT h.user_id, h.conversation_id, count(*) AS n, min(h.version) AS lo
				   FROM bench.rpm_hist h GROUP BY 1, 2) a
		ON a.user_id = c.user_id AND a.conversation_id = c.id
	 WHERE c.id LIKE 'h%'
	   AND (a.n IS DISTINCT FROM 10 OR a.lo <> c.version - 10);
	IF bad > 0 THEN
		RAISE EXCEPTION 'cost: % rpm-hist conversations do not hold their last 10 versions', bad;
	END IF;
	DELETE FROM bench.rpm_msg WHERE id NOT LIKE 'm%';
	UPDATE bench.rpm_conv SET version = 0 WHERE version <> 0;
	PERFORM bench.rpm_hist_fill();
END
$$;

-- The same for chatpersist's append conversations: each write since the
-- last reset added one message (message_count = size + versions since),
-- then a forced save of S(0) brings each back to its nominal length
CREATE FUNCTION bench.cost_reset_cp(OUT appended bigint, OUT most bigint)
LANGUAGE plpgsql AS $$
DECLARE
	bad		bigint;
	n		bigint;
BEGIN
	SELECT count(*) FILTER (WHERE c.message_count <> substr(c.id, 2)::int + (c.version - k.version)
								 OR c.deleted),
		   coalesce(sum(c.version - k.version), 0), coalesce(max(c.version - k.version), 0)
	  INTO bad, appended, most
	  FROM chatpersist.conversations c
	  JOIN bench.cost_mark k USING (user_id, id);
	IF bad > 0 THEN
		RAISE EXCEPTION 'cost: % chatpersist conversations do not hold one new message per version', bad;
	END IF;
	SELECT count(*) INTO n
	  FROM chatpersist.conversations c
	  JOIN bench.cost_mark k USING (user_id, id)
	  JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = 0,
		   LATERAL chatpersist.save_conversation(c.user_id, c.id, NULL, p.arr, true) r
	 WHERE c.version > k.version AND r.status = 'overwritten';
	-- The reset's forced save archived the copies of every message it
	-- removed (2.0); the appends of the next run would prune them as they
	-- leave the 10 versions history keeps, a cost of the reset, not of an
	-- append (at 10000 messages, hundreds of copies: 0.5 kB of WAL per
	-- measured call).  Appends replace no copy, so these are all the reset's.
	IF to_regclass('chatpersist.history_messages') IS NOT NULL THEN
		EXECUTE 'DELETE FROM chatpersist.history_messages WHERE conversation_id LIKE ''a%''';
	END IF;
	UPDATE bench.cost_mark k SET version = c.version
	  FROM chatpersist.conversations c
	 WHERE c.user_id = k.user_id AND c.id = k.id AND c.version <> k.version;
	SELECT count(*) INTO bad
	  FROM chatpersist.conversations c
	  JOIN bench.cost_mark k USING (user_id, id)
	 WHERE c.message_count <> substr(c.id, 2)::int;
	IF bad > 0 THEN
		RAISE EXCEPTION 'cost: % chatpersist conversations were not reset', bad;
	END IF;
END
$$;

-- Bytes of one conversation as stored, after 100 one-message writes: each
-- row's pg_column_size(t.*), which counts the tuple header and every value
-- as stored (a TOASTed value by its compressed size; the TOAST chunks' own
-- tuple headers and all indexes are not counted), summed over the
-- conversation row, its message rows (chatpersist.messages, where it
-- exists: 2.0) and its history rows (2.0: the heads in chatpersist.history
-- and the message copies in chatpersist.history_messages).  messages_alone
-- is the sum of pg_column_size of each message of the loaded array (jsonb,
-- uncompressed).
CREATE FUNCTION bench.cost_bytes(p_user uuid, p_id text)
RETURNS TABLE (what text, value bigint)
LANGUAGE plpgsql AS $$
DECLARE
	v		bigint;
BEGIN
	RETURN QUERY SELECT 'conversation_row', sum(pg_column_size(c.*))::bigint
		FROM chatpersist.conversations c WHERE c.user_id = p_user AND c.id = p_id;
	IF to_regclass('chatpersist.messages') IS NOT NULL THEN
		EXECUTE 'SELECT sum(pg_column_size(m.*))::bigint, count(*) FROM chatpersist.messages m
				  WHERE m.user_id = $1 AND m.conversation_id = $2'
		   INTO v USING p_user, p_id;
		RETURN QUERY SELECT 'message_rows', coalesce(v, 0);
	ELSE
		RETURN QUERY SELECT 'message_rows', 0::bigint;
	END IF;
	v := 0;
	IF to_regclass('chatpersist.history_messages') IS NOT NULL THEN
		EXECUTE 'SELECT coalesce(sum(pg_column_size(m.*)), 0)::bigint FROM chatpersist.history_messages m
				  WHERE m.user_id = $1 AND m.conversation_id = $2'
		   INTO v USING p_user, p_id;
	END IF;
	RETURN QUERY SELECT 'history_rows', coalesce(sum(pg_column_size(h.*)), 0)::bigint + v
		FROM chatpersist.history h WHERE h.user_id = p_user AND h.conversation_id = p_id;
	RETURN QUERY SELECT 'history_versions', count(*)
		FROM chatpersist.history h WHERE h.user_id = p_user AND h.conversation_id = p_id;
	RETURN QUERY SELECT 'messages', sum(jsonb_array_length(l.messages))::bigint
		FROM chatpersist.load_conversation(p_user, p_id) l;
	RETURN QUERY SELECT 'messages_alone', sum(pg_column_size(e))::bigint
		FROM chatpersist.load_conversation(p_user, p_id) l, jsonb_array_elements(l.messages) e;
	RETURN QUERY SELECT 'reload_text', octet_length(l.messages::text)::bigint
		FROM chatpersist.load_conversation(p_user, p_id) l;
	RETURN QUERY SELECT 'rpm_conversation_row', sum(pg_column_size(c.*))::bigint
		FROM bench.rpm_conv c WHERE c.user_id = p_user AND c.id = p_id;
	RETURN QUERY SELECT 'rpm_message_rows', sum(pg_column_size(m.*))::bigint
		FROM bench.rpm_msg m WHERE m.user_id = p_user AND m.conversation_id = p_id;
END
$$;

ANALYZE bench.new_message, bench.cost_sizes;
VACUUM ANALYZE bench.rpm_conv;
VACUUM ANALYZE bench.rpm_msg;
VACUUM ANALYZE bench.cost_mark;
VACUUM ANALYZE chatpersist.conversations;
VACUUM ANALYZE chatpersist.history;
-- 2.0: the message rows and the message copies of history
SELECT to_regclass('chatpersist.messages') IS NOT NULL AS message_rows \gset
\if :message_rows
VACUUM ANALYZE chatpersist.messages;
VACUUM ANALYZE chatpersist.history_messages;
\endif
CHECKPOINT;
