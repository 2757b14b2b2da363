--
-- History: every write keeps what it replaced; conversation_history reads
-- it, restore_version writes an old version as a new one, and
-- chatpersist.history_depth bounds what is kept, pruned in the same
-- transaction.
--
\set u '''00000000-0000-0000-0000-0000000000b1'''

-- pg_temp.try prints an error's SQLSTATE, message, detail and hint
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- pg_temp.stored_array rebuilds a conversation's array from its message rows
\set stored_array_sql :abs_srcdir '/sql/include/stored_array.sql'
\i :stored_array_sql

SELECT chatpersist.save_conversation(:u, 'h', 'v1', '[{"id":"m1","content":"one"}]');
SELECT chatpersist.save_conversation(:u, 'h', 'v2', '[{"id":"m1","content":"one"},{"id":"m2","content":"two"}]', p_expected_version := 1);
SELECT chatpersist.save_conversation(:u, 'h', 'v3', '[{"id":"x","content":"forced"}]', p_force_overwrite := true);

-- newest first, with how each version was replaced
SELECT version, title, replaced_by, message_count, checksum = chatpersist.checksum(messages) AS checksum_ok
FROM chatpersist.conversation_history(:u, 'h');

-- undo the forced overwrite: restore version 2 as a new version 4
SELECT * FROM chatpersist.restore_version(:u, 'h', 2);
SELECT version, title, messages FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages WHERE user_id = :u AND id = 'h';
-- nothing was rewritten in place: version 3 (the overwrite) is archived
SELECT version, title, replaced_by FROM chatpersist.conversation_history(:u, 'h');

-- restoring the current content is unchanged
SELECT status, version FROM chatpersist.restore_version(:u, 'h', 4);
SELECT status, version FROM chatpersist.restore_version(:u, 'h', 2);

-- a version not in history: 22023, nothing written
SELECT pg_temp.try($$SELECT chatpersist.restore_version('00000000-0000-0000-0000-0000000000b1', 'h', 99)$$);
SELECT pg_temp.try($$SELECT chatpersist.restore_version('00000000-0000-0000-0000-0000000000b1', 'h', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.restore_version('00000000-0000-0000-0000-0000000000b1', 'nothing', 1)$$);
SELECT pg_temp.try($$SELECT chatpersist.conversation_history(NULL, 'h')$$);

-- restore revives a deleted conversation
SELECT status, version FROM chatpersist.delete_conversation(:u, 'h');
SELECT status, version, message_count FROM chatpersist.restore_version(:u, 'h', 4);
SELECT deleted, title FROM chatpersist.conversations WHERE user_id = :u AND id = 'h';

-- a conversation removed with a plain DELETE is archived and can be
-- created again from history, continuing its versions
DELETE FROM chatpersist.conversations WHERE user_id = :u AND id = 'h';
SELECT status, version, message_count FROM chatpersist.restore_version(:u, 'h', 6);
SELECT version, title, deleted FROM chatpersist.conversations WHERE user_id = :u AND id = 'h';

-- history_depth: exactly the newest N replaced versions are kept
SET chatpersist.history_depth = 3;
SELECT chatpersist.save_conversation(:u, 'deep', NULL, '[{"id":"m0"}]');
SELECT count(*) FROM (
	SELECT chatpersist.append_messages(:u, 'deep', jsonb_build_array(jsonb_build_object('id', 'm' || i)))
	FROM generate_series(1, 12) AS i) AS writes;
SELECT version FROM chatpersist.conversations WHERE user_id = :u AND id = 'deep';
SELECT array_agg(version ORDER BY version) AS kept FROM chatpersist.conversation_history(:u, 'deep');
-- pruning happens in the writing transaction: a rolled back write keeps
-- what was there
BEGIN;
SELECT status FROM chatpersist.append_messages(:u, 'deep', '[{"id":"rolled-back"}]');
SELECT array_agg(version ORDER BY version) AS kept_inside FROM chatpersist.conversation_history(:u, 'deep');
ROLLBACK;
SELECT array_agg(version ORDER BY version) AS kept_after_rollback FROM chatpersist.conversation_history(:u, 'deep');
-- lowering the depth prunes the conversation on its next write
SET chatpersist.history_depth = 1;
SELECT status FROM chatpersist.append_messages(:u, 'deep', '[{"id":"m13"}]');
SELECT array_agg(version ORDER BY version) AS kept FROM chatpersist.conversation_history(:u, 'deep');
-- 0 keeps none
SET chatpersist.history_depth = 0;
SELECT status FROM chatpersist.append_messages(:u, 'deep', '[{"id":"m14"}]');
SELECT count(*) AS kept FROM chatpersist.conversation_history(:u, 'deep');
RESET chatpersist.history_depth;
