--
-- The guard triggers: direct SQL gets the same guarantees as the functions.
-- In 2.0 a conversation's messages are rows of chatpersist.messages (its
-- array: the rows that are not removed, in pos order); direct SQL on those
-- rows is validated and folded into a new version of the conversation, one
-- version per row, and direct SQL on the conversation's row keeps the
-- version rules.
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
-- a conversation's array, from its message rows
CREATE FUNCTION pg_temp.stored_array(u uuid, c text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
	 WHERE m.user_id = u AND m.conversation_id = c AND NOT m.removed
$$;
-- the largest ordering key of a conversation's message rows
CREATE FUNCTION pg_temp.max_pos(u uuid, c text) RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(max(m.pos), 0) FROM chatpersist.messages m
	 WHERE m.user_id = u AND m.conversation_id = c
$$;

-- INSERT: computed columns are computed, whatever the client sent (the
-- conversation starts without messages: they are rows of their own)
INSERT INTO chatpersist.conversations (user_id, id, title, version, checksum, message_count, last_modified, created_at,
									   hash_state, array_length, array_bytes, last_pos)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', 'Direct',
		42, 'forged', 99, '2000-01-01', '2001-02-03 04:05:06+00',
		'\x00', 7, 7, 7)
RETURNING version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, checksum <> 'forged' AS not_forged,
		  message_count, last_modified = now() AS stamped, created_at, change_xid = pg_current_xact_id() AS stamped_xid,
		  hash_state IS DISTINCT FROM '\x00' AND coalesce(array_length, 0) = 0 AND coalesce(array_bytes, 0) <> 7
		  AND last_pos = 0 AS summary_not_forged;

-- INSERT of message rows appends them, each a new version; the id is the
-- message's, and hash, stamps and removed are computed, whatever the
-- client sent
BEGIN;
INSERT INTO chatpersist.messages (user_id, conversation_id, message, hash, added_version, changed_version, removed)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"m1","created_at":1}', 5, 42, 42, true),
	   ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"m2","deleted":true}', 5, 42, 42, true)
RETURNING id, hash = ('x' || chatpersist.checksum(message))::bit(64)::int8 AS hash_ok,
		  added_version, changed_version, removed;
SELECT version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok,
	   checksum = chatpersist.checksum('[{"id":"m1","created_at":1},{"id":"m2","deleted":true}]') AS same_as_functions,
	   message_count, pg_temp.stored_array(user_id, id) AS messages, array_length,
	   last_pos = pg_temp.max_pos(user_id, id) AS last_pos_ok, last_modified = now() AS stamped, created_at,
	   change_xid = pg_current_xact_id() AS stamped_xid
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
COMMIT;
SELECT version, replaced_by, checksum = chatpersist.checksum(messages) AS checksum_ok, messages
FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd1') ORDER BY version;

-- a plain INSERT relying on defaults
INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2')
RETURNING title, pg_temp.stored_array(user_id, id) AS messages, metadata, version, message_count, deleted;

-- invalid content is rejected as by the functions, naming the column
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"m1"}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2', '{"id":"a"}'), ('00000000-0000-0000-0000-00000000b001', 'd2', '{"id":"a"}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '[{"id":"a"}]')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":""}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"a","created_at":"yesterday"}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', 'b', '{"id":"a"}')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id, metadata) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '[]')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', '')$$);
SELECT pg_temp.try_brief($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', NULL)$$);
SELECT pg_temp.try_brief($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES (NULL, 'd1', '{"id":"a"}')$$);
SELECT pg_temp.try_brief($$INSERT INTO chatpersist.conversations (user_id, id) VALUES (NULL, 'd3')$$);
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1')$$);
-- a message row needs its conversation, and a live one
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd3', '{"id":"a"}')$$);
UPDATE chatpersist.conversations SET deleted = true WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2', '{"id":"a"}')$$);
UPDATE chatpersist.conversations SET deleted = false WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
-- the limits: 2 messages stored, a third is one too many
SET chatpersist.max_messages = 2;
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"a"}')$$);
RESET chatpersist.max_messages;
SET chatpersist.max_conversation_bytes = 1024;
SELECT pg_temp.try(format($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"a","content":"%s"}')$$, repeat('x', 2000)));
RESET chatpersist.max_conversation_bytes;
-- none of them wrote anything
SELECT c.id, c.version, c.deleted, pg_temp.stored_array(c.user_id, c.id) AS messages,
	   (SELECT count(*) FROM chatpersist.messages m WHERE m.user_id = c.user_id AND m.conversation_id = c.id) AS message_rows
FROM chatpersist.conversations c WHERE c.user_id = '00000000-0000-0000-0000-00000000b001' ORDER BY c.id;

-- a message row appended: version + 1, history kept
INSERT INTO chatpersist.messages (user_id, conversation_id, message)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"m3","created_at":3}')
RETURNING added_version, changed_version;
SELECT version, message_count, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, created_at
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
SELECT version, replaced_by, messages FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd1')
WHERE version = 3;

-- UPDATE of the conversation's row with the stored version: accepted,
-- version + 1, history kept
UPDATE chatpersist.conversations SET title = 'Direct (2)', version = 4
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, message_count, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, created_at;
SELECT version, replaced_by, title, messages FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd1')
WHERE version = 4;

-- UPDATE with a stale version: 40001 naming both versions, nothing written
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'stale', deleted = true, version = 1 WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'x', version = 7 WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET version = NULL WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT version, title, deleted, jsonb_array_length(pg_temp.stored_array(user_id, id)) AS n FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- UPDATE without version: the stored version is kept, so it is accepted
UPDATE chatpersist.conversations SET title = 'Renamed'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING title, version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok;

-- computed columns cannot be forged by UPDATE either: not on the
-- conversation's row ...
UPDATE chatpersist.conversations SET checksum = 'forged', message_count = 0, last_modified = '2000-01-01',
	   created_at = '1999-01-01', title = 'Forged?', hash_state = '\x00', array_length = 0, array_bytes = 0, last_pos = 0
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, message_count,
		  last_modified = now() AS stamped, created_at, array_length,
		  last_pos = pg_temp.max_pos(user_id, id) AS last_pos_ok, hash_state IS DISTINCT FROM '\x00' AS hash_state_not_forged;
-- ... nor on a message row
BEGIN;
UPDATE chatpersist.messages SET message = '{"id":"m1","created_at":1,"content":"only"}',
	   hash = 0, added_version = 99, changed_version = 99
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'
RETURNING hash = ('x' || chatpersist.checksum(message))::bit(64)::int8 AS hash_ok, added_version, changed_version, removed;
SELECT version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, message_count,
	   pg_temp.stored_array(user_id, id) AS messages, last_modified = now() AS stamped, created_at,
	   change_xid = pg_current_xact_id() AS stamped_xid
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
COMMIT;

-- an UPDATE that changes no content keeps version and computed columns
UPDATE chatpersist.conversations SET title = title, checksum = 'forged'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'
RETURNING version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok;
UPDATE chatpersist.messages SET message = message, hash = 0, added_version = 0, changed_version = 0
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'
RETURNING hash = ('x' || chatpersist.checksum(message))::bit(64)::int8 AS hash_ok, added_version, changed_version;
SELECT version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- the key cannot change
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET id = 'moved' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET user_id = '00000000-0000-0000-0000-00000000b002' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.messages SET id = 'moved' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.messages SET conversation_id = 'd2' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.messages SET user_id = '00000000-0000-0000-0000-00000000b002' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);

-- invalid content on UPDATE
SELECT pg_temp.try($$UPDATE chatpersist.messages SET message = '{"id":"m1","deleted":"no"}' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.messages SET message = '{"id":"other"}' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);
SELECT pg_temp.try_brief($$UPDATE chatpersist.messages SET message = NULL WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1'$$);
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET metadata = 'null' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1'$$);
SELECT version FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- INSERT ... ON CONFLICT DO UPDATE goes through the same checks
INSERT INTO chatpersist.conversations AS c (user_id, id, title)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', 'upsert')
ON CONFLICT (user_id, id) DO UPDATE SET title = c.title || ' + ' || excluded.title
RETURNING version, title;
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations AS c (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1') ON CONFLICT (user_id, id) DO UPDATE SET version = 1$$);
INSERT INTO chatpersist.messages AS m (user_id, conversation_id, message)
VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"upsert"}')
ON CONFLICT (user_id, conversation_id, id) DO UPDATE SET message = excluded.message
RETURNING added_version, changed_version;
SELECT pg_temp.try($$INSERT INTO chatpersist.messages AS m (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"upsert"}') ON CONFLICT (user_id, conversation_id, id) DO UPDATE SET message = '{"id":"upsert","deleted":"no"}'$$);
SELECT version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, message_count,
	   pg_temp.stored_array(user_id, id) AS messages
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- moving and removing messages: pos orders the array; removed = true takes
-- a message out and keeps its row; DELETE forgets the row.  Each is a new
-- version, with the replaced one in history.
UPDATE chatpersist.messages SET pos = 1
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm3'
RETURNING pos, changed_version;
UPDATE chatpersist.messages SET removed = true
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm2'
RETURNING removed, message, changed_version;
-- removing a removed row again changes nothing
UPDATE chatpersist.messages SET removed = true
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm2'
RETURNING removed, changed_version;
DELETE FROM chatpersist.messages
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'upsert';
SELECT id, removed FROM chatpersist.messages
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' ORDER BY pos;
SELECT version, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok, message_count,
	   pg_temp.stored_array(user_id, id) AS messages
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
SELECT version, replaced_by, checksum = chatpersist.checksum(messages) AS checksum_ok, messages
FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd1') WHERE version >= 11 ORDER BY version;

-- history_depth bounds the kept versions, pruned in the same transaction,
-- for writes to the conversation's row and to message rows alike
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
DO $$
BEGIN
	FOR i IN 1..6 LOOP
		UPDATE chatpersist.messages SET message = jsonb_build_object('id', 'm3', 'created_at', 3, 'content', 'v' || i)
		WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm3';
	END LOOP;
END $$;
SELECT c.version, array_agg(h.version ORDER BY h.version) AS kept
FROM chatpersist.conversations c JOIN chatpersist.history h
  ON h.user_id = c.user_id AND h.conversation_id = c.id
WHERE c.user_id = '00000000-0000-0000-0000-00000000b001' AND c.id = 'd1'
GROUP BY c.version;
SELECT version, checksum = chatpersist.checksum(messages) AS checksum_ok, messages -> 0 ->> 'content' AS m3
FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd1') ORDER BY version;
SET chatpersist.history_depth = 0;
UPDATE chatpersist.conversations SET title = 'no history'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
UPDATE chatpersist.messages SET message = '{"id":"m3","created_at":3}'
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm3';
SELECT count(*) AS kept FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1';
SELECT count(*) AS kept_messages FROM chatpersist.history_messages
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1';
RESET chatpersist.history_depth;

-- a write that fails after archiving one row leaves history as it was
UPDATE chatpersist.conversations SET title = 'kept' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';
SELECT count(*) AS history_before,
	   (SELECT count(*) FROM chatpersist.history_messages WHERE user_id = '00000000-0000-0000-0000-00000000b001') AS copies_before
FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
SELECT pg_temp.try($q$DO $d$ BEGIN
	UPDATE chatpersist.messages SET message = '{"id":"m1","content":"fine"}' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd1' AND id = 'm1';
	INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2', '1');
END $d$ $q$);
SELECT count(*) AS history_after,
	   (SELECT count(*) FROM chatpersist.history_messages WHERE user_id = '00000000-0000-0000-0000-00000000b001') AS copies_after
FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
SELECT title, pg_temp.stored_array(user_id, id) AS messages FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd1';

-- DELETE archives the removed row, so it stays restorable, and a
-- conversation created again under the same key continues its version
-- numbers: versions never repeat.  Its message rows go with it, their
-- copies into history.
INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd2', '{"id":"x1"}');
UPDATE chatpersist.conversations SET title = 'a' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
UPDATE chatpersist.conversations SET title = 'b' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2';
SELECT version, title, replaced_by FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd2' ORDER BY version;
SELECT count(*) AS message_rows FROM chatpersist.messages
WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND conversation_id = 'd2';
SELECT version, replaced_by, messages FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000b001', 'd2')
WHERE replaced_by = 'delete';
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000b001', 'd2', 'again', '[]');
UPDATE chatpersist.conversations SET title = 'c' WHERE user_id = '00000000-0000-0000-0000-00000000b001' AND id = 'd2'
RETURNING version, pg_temp.stored_array(user_id, id) AS messages;

-- the trigger functions refuse to be called any other way
SELECT pg_temp.try($$SELECT chatpersist.conversations_guard()$$);
SELECT pg_temp.try($$SELECT chatpersist.messages_guard()$$);
CREATE TABLE pg_temp.not_ours (x int);
CREATE TRIGGER g BEFORE INSERT ON pg_temp.not_ours FOR EACH ROW EXECUTE FUNCTION chatpersist.conversations_guard();
SELECT pg_temp.try($$INSERT INTO pg_temp.not_ours VALUES (1)$$);
DROP TRIGGER g ON pg_temp.not_ours;
CREATE TRIGGER g BEFORE INSERT ON pg_temp.not_ours FOR EACH ROW EXECUTE FUNCTION chatpersist.messages_guard();
SELECT pg_temp.try($$INSERT INTO pg_temp.not_ours VALUES (1)$$);
CREATE TRIGGER g2 AFTER INSERT ON chatpersist.conversations FOR EACH STATEMENT EXECUTE FUNCTION chatpersist.conversations_guard();
SELECT pg_temp.try($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-00000000b001', 'd9')$$);
DROP TRIGGER g2 ON chatpersist.conversations;
CREATE TRIGGER g2 AFTER INSERT ON chatpersist.messages FOR EACH STATEMENT EXECUTE FUNCTION chatpersist.messages_guard();
SELECT pg_temp.try($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-00000000b001', 'd1', '{"id":"d9"}')$$);
DROP TRIGGER g2 ON chatpersist.messages;

DELETE FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000b001';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000b001';
