--
-- Bad input: every error carries the contract's SQLSTATE, and nothing is
-- written.  pg_temp.try runs a statement and prints its SQLSTATE with the
-- message, detail and hint.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- 2.0 keeps a conversation's messages as rows of chatpersist.messages: its
-- array is the rows that are not removed, in pos order
CREATE FUNCTION pg_temp.stored_array(u uuid, c text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
	 WHERE m.user_id = u AND m.conversation_id = c AND NOT m.removed
$$;

SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T',
	'[{"id":"m1","created_at":1}]');
CREATE TEMP TABLE before_errors AS SELECT c.*, pg_temp.stored_array(c.user_id, c.id) AS messages
FROM chatpersist.conversations c
WHERE user_id = '00000000-0000-0000-0000-0000000000e1';
CREATE TEMP TABLE before_error_messages AS SELECT * FROM chatpersist.messages
WHERE user_id = '00000000-0000-0000-0000-0000000000e1';

-- NULL required arguments: 22004, never a silent NULL
SELECT pg_temp.try($$SELECT chatpersist.save_conversation(NULL, 'c1', 'T', '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', NULL, 'T', '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages(NULL, '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('[]', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('[]', NULL, '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.load_conversations(NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.load_conversation(NULL, 'c1')$$);
SELECT pg_temp.try($$SELECT chatpersist.load_conversation('00000000-0000-0000-0000-0000000000e1', NULL)$$);

-- messages not an array, elements not objects
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '{"id":"m1"}')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '"text"')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1"}, 42]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1"}, [{"id":"m2"}]]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[null]')$$);

-- id: missing, not a string, empty, over 255 bytes, repeated
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1"}, {"content":"x"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":7}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":null}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":""}]')$$);
SELECT pg_temp.try(format($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"%s"}]')$$, repeat('x', 256)));
SELECT pg_temp.try(format($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"%s"}]')$$, repeat('é', 128)));
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"a"}, {"id":"b"}, {"id":"a"}, {"id":"b"}]')$$);

-- ids of exactly 255 bytes are fine (checked here without writing)
SELECT jsonb_array_length(chatpersist.merge_messages(
	jsonb_build_array(jsonb_build_object('id', repeat('x', 255))), '[]')) AS id_255_bytes_ok;

-- created_at / updated_at: a number or an ISO-8601 string
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":true}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":null}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":"yesterday"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":"now"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":"2024-02-30T00:00:00Z"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":"2024-01-01T25:00:00Z"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","created_at":"2024-01-01T10:00:00Zjunk"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","updated_at":{"ms":1}}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","updated_at":[1]}]')$$);

-- accepted timestamp forms (merge writes nothing)
SELECT jsonb_array_length(chatpersist.merge_messages(jsonb_build_array(
	jsonb_build_object('id', 'a', 'created_at', '2024-11-23'),
	jsonb_build_object('id', 'b', 'created_at', '2024-11-23T22:13'),
	jsonb_build_object('id', 'c', 'created_at', '2024-11-23T22:13:20Z'),
	jsonb_build_object('id', 'd', 'created_at', '2024-11-23 22:13:20.123456+05:30'),
	jsonb_build_object('id', 'e', 'created_at', '2024-11-23t22:13:20,5-0800'),
	jsonb_build_object('id', 'f', 'created_at', '2024-02-29T00:00:00+01'),
	jsonb_build_object('id', 'g', 'created_at', 1e308),
	jsonb_build_object('id', 'h', 'created_at', -17.5)), '[]')) AS accepted;

-- deleted: a boolean
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","deleted":"yes"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","deleted":1}]')$$);

-- metadata: an object
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[]', p_metadata := '[1]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[]', p_metadata := '"x"')$$);

-- conversation id: 1..255 bytes
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', '', 'T', '[]')$$);
SELECT pg_temp.try(format($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', '%s', 'T', '[]')$$, repeat('c', 256)));

-- the merge functions name their arguments
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('[{"id":"a"}]', '[{"id":"a"},{"id":"a"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('{}', '[]', '[]')$$);

-- limits: 54000
SET chatpersist.max_messages = 3;
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"1"},{"id":"2"},{"id":"3"},{"id":"4"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('[]', '[{"id":"1"},{"id":"2"},{"id":"3"},{"id":"4"}]')$$);
-- the merged result is checked too: 1 stored + 2 new = 3
SET chatpersist.max_messages = 2;
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"n1"},{"id":"n2"}]')$$);
RESET chatpersist.max_messages;
SET chatpersist.max_conversation_bytes = 1024;
SELECT pg_temp.try(format($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e1', 'c1', 'T', '[{"id":"m1","content":"%s"}]')$$, repeat('x', 2000)));
RESET chatpersist.max_conversation_bytes;
SELECT pg_temp.try($$SET chatpersist.max_conversation_bytes = 10$$);
SELECT pg_temp.try($$SET chatpersist.history_depth = -1$$);

-- nothing was written by any of the failed calls
SELECT count(*) AS rows_now, (SELECT count(*) FROM before_errors) AS rows_before,
	   bool_and(c.version = b.version AND c.checksum = b.checksum
				AND pg_temp.stored_array(c.user_id, c.id) = b.messages) AS unchanged
FROM chatpersist.conversations c JOIN before_errors b USING (user_id, id)
WHERE c.user_id = '00000000-0000-0000-0000-0000000000e1';
-- ... down to each message row, stamps included
SELECT count(*) AS message_rows_changed FROM (
	(SELECT * FROM chatpersist.messages WHERE user_id = '00000000-0000-0000-0000-0000000000e1'
	 EXCEPT ALL SELECT * FROM before_error_messages)
	UNION ALL
	(SELECT * FROM before_error_messages
	 EXCEPT ALL SELECT * FROM chatpersist.messages WHERE user_id = '00000000-0000-0000-0000-0000000000e1')) d;
SELECT count(*) AS history_rows FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-0000000000e1';
SELECT count(*) AS history_message_rows FROM chatpersist.history_messages
WHERE user_id = '00000000-0000-0000-0000-0000000000e1';

DELETE FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-0000000000e1';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-0000000000e1';
DROP TABLE before_errors, before_error_messages;

-- an error detail quoting a long value is cut at a character boundary, so
-- a multibyte character is never split (a split one made the message
-- invalid UTF-8, and a LATIN1 client then got 22021 instead of 22023)
DO $$
DECLARE
	st text; det text;
BEGIN
	PERFORM chatpersist.merge_messages(
		jsonb_build_array(jsonb_build_object('id', 'm', 'created_at', repeat('2', 63) || 'é' || 'x')), '[]');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
	RAISE NOTICE '% %', st, convert_to(det, 'LATIN1') IS NOT NULL;
END $$;
SET client_encoding = 'LATIN1';
SELECT pg_temp.try($$SELECT chatpersist.merge_messages(jsonb_build_array(jsonb_build_object('id', 'm', 'created_at', repeat('2', 63) || chr(233) || 'x')), '[]')$$) ~ '^22023' AS still_22023;
RESET client_encoding;

-- a created_at/updated_at number that is not finite as a double precision
-- value (a client would read it back as an infinity): 22023 naming the
-- index and the field, through every path that writes messages, and
-- nothing is written
\set fin '''00000000-0000-0000-0000-0000000000e4'''
SELECT chatpersist.save_conversation(:fin, 'stored', 'T', '[{"id":"s1","created_at":1}]') IS NOT NULL AS saved;
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e4', 'new', 'T', '[{"id":"m1","created_at":1e400}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e4', 'stored', 'T', '[{"id":"s1","created_at":1},{"id":"m2","updated_at":-1e400}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-0000000000e4', 'new', 'T', '[{"id":"m1","created_at":1.8e308}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000e4', 'stored', '[{"id":"m3","created_at":-1e400}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000e4', 'new', '[{"id":"m3","updated_at":1e400}]')$$);
-- direct SQL: a new conversation (its row, then its message rows), and an
-- edit of a stored message row
SELECT pg_temp.try($q$DO $d$ BEGIN
	INSERT INTO chatpersist.conversations (user_id, id) VALUES ('00000000-0000-0000-0000-0000000000e4', 'new');
	INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('00000000-0000-0000-0000-0000000000e4', 'new', '{"id":"m1"}'), ('00000000-0000-0000-0000-0000000000e4', 'new', '{"id":"m4","created_at":1e400}');
END $d$ $q$);
SELECT pg_temp.try($$UPDATE chatpersist.messages SET message = '{"id":"s1","created_at":1,"updated_at":-1e400}' WHERE user_id = '00000000-0000-0000-0000-0000000000e4' AND conversation_id = 'stored' AND id = 's1'$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-0000000000e4', '{"conversations": {"new": {"messages": [{"id":"m1","created_at":1e400}]}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-0000000000e4', '[{"id": "stored", "messages": [{"id":"s1","created_at":1},{"id":"m5","updated_at":-1e400}]}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.merge_messages('[{"id":"a","created_at":1e400}]', '[]')$$);
SELECT id, version, pg_temp.stored_array(user_id, id) AS messages FROM chatpersist.conversations WHERE user_id = :fin ORDER BY id;

-- large but finite numbers stay accepted, as before, through every path:
-- the largest doubles, and numbers that jsonb stores in its long format
-- (a scale over 63 digits, a tiny magnitude that becomes 0)
SELECT (chatpersist.save_conversation(:fin, 'big', 'T', '[{"id":"b1","created_at":1e308}]')).status;
SELECT (chatpersist.append_messages(:fin, 'big', '[{"id":"b2","created_at":-1.7976931348623157e308,"updated_at":1e-400}]')).status;
SELECT (chatpersist.append_messages(:fin, 'big', '[{"id":"b3","created_at":1732400000000.0000000000000000000000000000000000000000000000000000000000000000001}]')).status;
-- (direct SQL: the conversation's row, then each message row, one version each)
INSERT INTO chatpersist.conversations (user_id, id) VALUES (:fin, 'big-direct') RETURNING version;
INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES (:fin, 'big-direct', '{"id":"d1","updated_at":1e308}') RETURNING changed_version;
UPDATE chatpersist.messages SET message = '{"id":"d1","updated_at":-1e308}' WHERE user_id = :fin AND conversation_id = 'big-direct' AND id = 'd1' RETURNING changed_version;
SELECT chatpersist.import_app_state(:fin, '[{"id": "big-import", "messages": [{"id":"i1","created_at":1.7e308}]}]') AS imported;
SELECT id, message_count FROM chatpersist.conversations WHERE user_id = :fin ORDER BY id;

DELETE FROM chatpersist.history WHERE user_id = :fin;
DELETE FROM chatpersist.conversations WHERE user_id = :fin;
