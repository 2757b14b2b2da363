--
-- delete_conversation: a tombstone that other devices learn of through
-- changes_since; its content stays restorable in history.
--
\set u '''00000000-0000-0000-0000-0000000000d1'''

-- pg_temp.try prints an error's SQLSTATE, message, detail and hint
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- pg_temp.stored_array rebuilds a conversation's array from its message rows
\set stored_array_sql :abs_srcdir '/sql/include/stored_array.sql'
\i :stored_array_sql

SELECT chatpersist.save_conversation(:u, 'c1', 'Title', '[{"id":"m1","content":"secret plans"}]', p_metadata := '{"pinned":true}');
SELECT chatpersist.save_conversation(:u, 'c2', 'Other', '[{"id":"m1"}]');

-- deleted: a new version, messages emptied, title and metadata kept
SELECT * FROM chatpersist.delete_conversation(:u, 'c1');
SELECT title, messages, metadata, version, deleted, message_count, checksum = chatpersist.checksum('[]') AS checksum_ok
FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'c1';
-- the content is in history, replaced by the delete (the head in
-- chatpersist.history, the array as conversation_history rebuilds it)
SELECT h.version, h.replaced_by, a.messages
FROM chatpersist.history h
LEFT JOIN chatpersist.conversation_history(:u, 'c1') a USING (version)
WHERE h.user_id = :u AND h.conversation_id = 'c1';

-- loads skip it; the change feed reports it
SELECT id FROM chatpersist.load_conversations(:u);
SELECT count(*) FROM chatpersist.load_conversation(:u, 'c1');
SELECT conversation_id, version, deleted FROM chatpersist.changes_since(:u) ORDER BY conversation_id;

-- deleting again is unchanged (a retry is harmless)
SELECT * FROM chatpersist.delete_conversation(:u, 'c1');
-- deleting what never existed is unchanged, with no version
SELECT * FROM chatpersist.delete_conversation(:u, 'never');
SELECT count(*) FROM chatpersist.conversations WHERE user_id = :u AND id = 'never';

-- with an expected version: a device never deletes messages it has not seen
SELECT chatpersist.append_messages(:u, 'c2', '[{"id":"m2"}]');
SELECT pg_temp.try($$SELECT * FROM chatpersist.delete_conversation('00000000-0000-0000-0000-0000000000d1', 'c2', p_expected_version := 1)$$);
SELECT version, deleted FROM chatpersist.conversations WHERE user_id = :u AND id = 'c2';
SELECT status, version FROM chatpersist.delete_conversation(:u, 'c2', p_expected_version := 2);

-- The rule for writes to a tombstone: they revive the conversation
-- (deleting is not a lock against other devices).  A device that saw the
-- delete (expected version = the tombstone's) and a stale device alike get
-- status created, with only the messages they send; the version goes on.
SELECT status, version, message_count FROM chatpersist.save_conversation(:u, 'c2', NULL, '[{"id":"fresh"}]', p_expected_version := 3);
SELECT deleted, version, title, jsonb_path_query_array(messages, '$[*].id') AS ids FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'c2';
SELECT chatpersist.delete_conversation(:u, 'c2');
SELECT status, version, message_count FROM chatpersist.save_conversation(:u, 'c2', NULL, '[{"id":"m1"},{"id":"m2"},{"id":"stale"}]', p_expected_version := 2);
SELECT deleted, version, jsonb_path_query_array(messages, '$[*].id') AS ids FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'c2';

-- a revived conversation's deleted content can still be restored
SELECT version, replaced_by FROM chatpersist.conversation_history(:u, 'c2') ORDER BY version;

-- NULL key arguments: 22004
SELECT pg_temp.try($$SELECT chatpersist.delete_conversation(NULL, 'c1')$$);
SELECT pg_temp.try($$SELECT chatpersist.delete_conversation('00000000-0000-0000-0000-0000000000d1', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.delete_conversation('00000000-0000-0000-0000-0000000000d1', repeat('x', 256))$$);
