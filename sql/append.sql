--
-- append_messages: add or update only the given messages.  The call means
-- "the version I saw, plus these messages": NULL or current expected
-- version writes directly (updated), a stale one merges like a stale
-- save_conversation (merged), a missing conversation is created.
--
\set u '''00000000-0000-0000-0000-0000000000a7'''

-- pg_temp.try prints an error's SQLSTATE, message, detail and hint
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- pg_temp.stored_array rebuilds a conversation's array from its message rows
\set stored_array_sql :abs_srcdir '/sql/include/stored_array.sql'
\i :stored_array_sql

-- creates a missing conversation, title '' and metadata {}
SELECT * FROM chatpersist.append_messages(:u, 'chat', '[{"id":"m1","content":"hi","created_at":1000}]');
SELECT title, metadata, version, message_count FROM chatpersist.conversations WHERE user_id = :u AND id = 'chat';

-- the common call: one new message, no version; it goes at the end even
-- without created_at
SELECT * FROM chatpersist.append_messages(:u, 'chat', '[{"id":"m2","content":"there"}]');
SELECT jsonb_path_query_array(messages, '$[*].id') AS ids, checksum = chatpersist.checksum(messages) AS checksum_ok
FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';

-- a retry of the same append is unchanged: same version, nothing archived
SELECT * FROM chatpersist.append_messages(:u, 'chat', '[{"id":"m2","content":"there"}]');
SELECT count(*) AS archived FROM chatpersist.history WHERE user_id = :u AND conversation_id = 'chat';

-- with the current version: updates the given message in place, others untouched
SELECT status, version, message_count FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"m1","content":"hi (edited)","created_at":1000,"updated_at":5000}, {"id":"m3","content":"new"}]',
	p_expected_version := 2);
SELECT messages FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';

-- a message tombstone through append: counted as a message, not as live
SELECT status, version, message_count FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"m2","content":"there","deleted":true}]');

-- stale: a device still at version 2 appends d1; meanwhile m1 was edited,
-- m3 added and m2 deleted.  Three-way against version 2: everything the
-- other device did stays, and d1 is added
SELECT status, version, message_count, conflicts FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"d1","content":"from the stale device","created_at":4000}]', p_expected_version := 2);
SELECT jsonb_path_query_array(messages, '$[*].id') AS ids,
	   messages -> 0 ->> 'content' AS m1, messages -> 1 ->> 'deleted' AS m2_deleted
FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';

-- stale, and the device edits m1, which the other side also edited since
-- version 2, but earlier (updated_at 4500 < 5000): the stored copy wins and
-- the conflict is counted.  The content does not change, yet the losing
-- copy must stay retrievable: a new version is written and the loser is
-- kept in history's discarded column
SELECT status, version, message_count, conflicts FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"m1","content":"hi (stale edit)","created_at":1000,"updated_at":4500}]', p_expected_version := 2);
SELECT messages -> 0 ->> 'content' AS m1 FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';
SELECT version, replaced_by, discarded, checksum = (SELECT checksum FROM chatpersist.conversations
	WHERE user_id = :u AND id = 'chat') AS same_content_as_current
FROM chatpersist.conversation_history(:u, 'chat') LIMIT 1;
-- its retry finds the loser already kept: unchanged, no new version
SELECT status, version, conflicts FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"m1","content":"hi (stale edit)","created_at":1000,"updated_at":4500}]', p_expected_version := 2);
-- a later edit wins; the stored copy it replaces is in history as the
-- replaced version, so discarded (incoming losers only) is empty
SELECT status, version, conflicts FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"m1","content":"hi (late edit)","created_at":1000,"updated_at":9000}]', p_expected_version := 2);
SELECT messages -> 0 ->> 'content' AS m1 FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';
SELECT version, replaced_by, messages -> 0 ->> 'content' AS replaced_m1, discarded
FROM chatpersist.conversation_history(:u, 'chat') LIMIT 1;

-- stale with a version no longer (or never) in history: a two-way union
SELECT status, version, message_count FROM chatpersist.append_messages(:u, 'chat',
	'[{"id":"x1","created_at":99999}]', p_expected_version := 999);
SELECT jsonb_path_query_array(messages, '$[*].id') AS ids FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';

-- equals a stale save of the same view: append(v, msgs) and
-- save(v, view_v + msgs) decide the same
SELECT chatpersist.append_messages(:u, 'twin-a', '[{"id":"a","created_at":1},{"id":"b","created_at":2}]');
SELECT chatpersist.append_messages(:u, 'twin-a', '[{"id":"c","created_at":3}]');
SELECT chatpersist.append_messages(:u, 'twin-b', '[{"id":"a","created_at":1},{"id":"b","created_at":2}]');
SELECT chatpersist.append_messages(:u, 'twin-b', '[{"id":"c","created_at":3}]');
SELECT status, version FROM chatpersist.append_messages(:u, 'twin-a', '[{"id":"b","created_at":2,"content":"edit"},{"id":"d","created_at":4}]', 1);
SELECT status, version FROM chatpersist.save_conversation(:u, 'twin-b', NULL,
	'[{"id":"a","created_at":1},{"id":"b","created_at":2,"content":"edit"},{"id":"d","created_at":4}]', p_expected_version := 1);
SELECT pg_temp.stored_array(a.user_id, a.id) = pg_temp.stored_array(b.user_id, b.id) AS same_messages, a.checksum = b.checksum AS same_checksum
FROM chatpersist.conversations a, chatpersist.conversations b
WHERE a.user_id = :u AND a.id = 'twin-a' AND b.user_id = :u AND b.id = 'twin-b';

-- bad input: the contract's SQLSTATEs, nothing written
SELECT pg_temp.try($$SELECT chatpersist.append_messages(NULL, 'chat', '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', NULL, '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', 'chat', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', 'chat', '{"id":"m9"}')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', 'chat', '[{"id":"m9"},{"id":"m9"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', '', '[{"id":"m9"}]')$$);
SET chatpersist.max_messages = 3;
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-0000000000a7', 'chat', '[{"id":"m9"}]')$$);
RESET chatpersist.max_messages;
SELECT version, message_count FROM chatpersist.conversations WHERE user_id = :u AND id = 'chat';

-- append to a tombstone revives the conversation with the given messages
SELECT status FROM chatpersist.delete_conversation(:u, 'chat');
SELECT status, version, message_count FROM chatpersist.append_messages(:u, 'chat', '[{"id":"after","content":"back"}]');
SELECT deleted, jsonb_path_query_array(messages, '$[*].id') AS ids FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'chat';
