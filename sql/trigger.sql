--
-- The guard trigger: direct SQL gets the same guarantees as the functions.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- the same, without the detail (for errors whose detail shows the row)
CREATE FUNCTION pg_temp.try_brief(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- INSERT: computed columns are computed, whatever the client sent
INSERT INTO chatpersist.conversations (user_id, id, title, messages, version, checksum, message_count, last_modified, created_at)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', 'Direct',
		'[{"id":"m1","created_at":1},{"id":"m2","deleted":true}]',
		42, 'forged', 99, '2000-01-01', '2001-02-03 04:05:06+00')
RETURNING version, checksum = chatpersist.checksum(messages) AS checksum_ok, checksum <> 'forged' AS not_forged,
		  message_count, last_modified = now() AS stamped, created_at, change_xid = pg_current_xact_id() AS stamped_xid;

-- a plain INSERT relying on defaults
INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2')
RETURNING title, messages, metadata, version, message_count, deleted;

-- invalid content is rejected as by the functions, naming the column
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id, messages) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '[{"id":"a"},{"id":"a"}]')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id, messages) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '{}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id, metadata) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '[]')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', '')$$);
SELECT pg_temp.try_brief($$INSERT INTO chatpersist.conversations (user_id, id, messages) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', NULL)$$);
SELECT pg_temp.try_brief($$INSERT INTO chatpersist.conversations (user_id, id) VALUES (NULL, 'd3')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1')$$);
SET chatpersist.max_messages = 1;
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id, messages) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '[{"id":"a"},{"id":"b"}]')$$);
RESET chatpersist.max_messages;

-- UPDATE with the stored version: accepted, version + 1, history kept
UPDATE chatpersist.conversations SET messages = messages || '[{"id":"m3","created_at":3}]', version = 1
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, message_count, checksum = chatpersist.checksum(messages) AS checksum_ok, created_at;
SELECT version, replaced_by, messages FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1';

-- UPDATE with a stale version: 40001 naming both versions, nothing written
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET messages = '[]', version = 1 WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'x', version = 7 WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET version = NULL WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT version, jsonb_array_length(messages) AS n FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- UPDATE without version: the stored version is kept, so it is accepted
UPDATE chatpersist.conversations SET title = 'Renamed'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING title, version, checksum = chatpersist.checksum(messages) AS checksum_ok;

-- computed columns cannot be forged by UPDATE either
UPDATE chatpersist.conversations SET checksum = 'forged', message_count = 0, last_modified = '2000-01-01',
	   created_at = '1999-01-01', messages = '[{"id":"only"}]'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, checksum = chatpersist.checksum(messages) AS checksum_ok, message_count,
		  last_modified = now() AS stamped, created_at;

-- an UPDATE that changes no content keeps version and computed columns
UPDATE chatpersist.conversations SET title = title, checksum = 'forged'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, checksum = chatpersist.checksum(messages) AS checksum_ok;

-- the key cannot change
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET id = 'moved' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET user_id = '00000000-0000-0000-0000-00000000b002' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);

-- invalid content on UPDATE
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET messages = '[{"id":"x","deleted":"no"}]' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET metadata = 'null' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);

-- INSERT ... ON CONFLICT DO UPDATE goes through the same checks
INSERT INTO chatpersist.conversations AS c (user_id, id, messages)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '[{"id":"upsert"}]')
ON CONFLICT (user_id, id) DO UPDATE SET messages = c.messages || excluded.messages
RETURNING version, messages;
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations AS c (user_id, id, messages) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '[]') ON CONFLICT (user_id, id) DO UPDATE SET version = 1$$);

-- history_depth bounds the kept versions, pruned in the same transaction
SET chatpersist.history_depth = 3;
DO $$
BEGIN
	FOR i IN 1..6 LOOP
		UPDATE chatpersist.conversations SET title = 'v' || i
		WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
	END LOOP;
END $$;
SELECT c.version, array_agg(h.version ORDER BY h.version) AS kept
FROM chatpersist.conversations c JOIN chatpersist.history h
  ON h.user_id = c.user_id AND h.conversation_id = c.id
WHERE c.user_id = '00000000-0000-0000-0000-00000000b001' AND c.id = 'd1'
GROUP BY c.version;
SET chatpersist.history_depth = 0;
UPDATE chatpersist.conversations SET title = 'no history'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
SELECT count(*) AS kept FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1';
RESET chatpersist.history_depth;

-- a write that fails after archiving one row leaves history as it was
UPDATE chatpersist.conversations SET title = 'kept' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
SELECT count(*) AS history_before FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
SELECT pg_temp.try($q$DO $d$ BEGIN
	UPDATE chatpersist.conversations SET messages = '[{"id":"fine"}]' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
	UPDATE chatpersist.conversations SET messages = '[1]' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
END $d$ $q$);
SELECT count(*) AS history_after FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
SELECT title, messages FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- DELETE archives the removed row, so it stays restorable, and a
-- conversation created again under the same key continues its version
-- numbers: versions never repeat
UPDATE chatpersist.conversations SET title = 'a' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
UPDATE chatpersist.conversations SET title = 'b' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
SELECT version, title, replaced_by FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd2' ORDER BY version;
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000b001', 'd2', 'again', '[]');
UPDATE chatpersist.conversations SET title = 'c' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2'
RETURNING version;

-- the trigger function refuses to be called any other way
SELECT pg_temp.try($$SELECT chatpersist.conversations_guard()$$);
CREATE TABLE pg_temp.not_ours (x int);
CREATE TRIGGER g BEFORE INSERT ON pg_temp.not_ours FOR EACH ROW EXECUTE FUNCTION chatpersist.conversations_guard();
SELECT pg_temp.try($$INSERT INTO pg_temp.not_ours VALUES (1)$$);
CREATE TRIGGER g2 AFTER INSERT ON chatpersist.conversations FOR EACH STATEMENT EXECUTE FUNCTION chatpersist.conversations_guard();
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd9')$$);
DROP TRIGGER g2 ON chatpersist.conversations;

DELETE FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001';
