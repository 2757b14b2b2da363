--
-- messages_since: what a device holding one version needs to reach the
-- current one.  test/delta_props.sh applies the answers over random
-- histories; this file shows their shape, the full reloads and the errors.
--
\set u '''00000000-0000-0000-0000-0000000000d5'''
\set other '''00000000-0000-0000-0000-0000000000d6'''

-- pg_temp.try prints an error's SQLSTATE, message, detail and hint
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql

SELECT status, version FROM chatpersist.save_conversation(:u, 'c', 'Trip',
	'[{"id":"m1","content":"hi"},{"id":"m2","content":"where to?"}]');
SELECT status, version FROM chatpersist.append_messages(:u, 'c', '[{"id":"m3","content":"Lisbon"}]', 1);

-- from version 1: only m3, after m2
SELECT version, full_reload, changes, checksum = chatpersist.checksum(
	'[{"id":"m1","content":"hi"},{"id":"m2","content":"where to?"},{"id":"m3","content":"Lisbon"}]') AS checksum_ok
FROM chatpersist.messages_since(:u, 'c', 1);

-- the current version: nothing to do
SELECT version, full_reload, changes FROM chatpersist.messages_since(:u, 'c', 2);

-- an edit, a tombstone, a removal and an insertion at the front, in one save
SELECT status, version FROM chatpersist.save_conversation(:u, 'c', 'Trip',
	'[{"id":"m0","content":"first"},{"id":"m1","content":"hello"},{"id":"m3","content":"Lisbon","deleted":true}]',
	false, 2);
SELECT full_reload, jsonb_pretty(changes) FROM chatpersist.messages_since(:u, 'c', 2);
-- from version 1 as well: m2's removal, and m3 comes as its current copy
SELECT full_reload, changes FROM chatpersist.messages_since(:u, 'c', 1);

-- a direct DELETE forgets m0: only history still knows a device had it
DELETE FROM chatpersist.messages WHERE user_id = :u AND conversation_id = 'c' AND id = 'm0';
SELECT version, full_reload, changes FROM chatpersist.messages_since(:u, 'c', 3);
-- a direct UPDATE of pos moves m3 to the front: it comes with after = null
UPDATE chatpersist.messages SET pos = -1 WHERE user_id = :u AND conversation_id = 'c' AND id = 'm3';
SELECT version, full_reload, changes FROM chatpersist.messages_since(:u, 'c', 4);

-- everything, marked full_reload: no version (0 or NULL), a version newer
-- than the conversation's (a device ahead of a restored server), and one
-- that history no longer holds
SELECT full_reload, changes FROM chatpersist.messages_since(:u, 'c', 0);
SELECT full_reload, jsonb_array_length(changes) FROM chatpersist.messages_since(:u, 'c', NULL);
SELECT full_reload, jsonb_array_length(changes) FROM chatpersist.messages_since(:u, 'c', 99);
SET chatpersist.history_depth = 1;
SELECT status, version FROM chatpersist.append_messages(:u, 'c', '[{"id":"m4"}]');
SELECT version FROM chatpersist.conversation_history(:u, 'c');
SELECT full_reload, jsonb_array_length(changes) FROM chatpersist.messages_since(:u, 'c', 4);
SELECT full_reload, changes FROM chatpersist.messages_since(:u, 'c', 5);
RESET chatpersist.history_depth;

-- a deleted conversation: the head says so and every message goes
SELECT status, version FROM chatpersist.delete_conversation(:u, 'c');
SELECT version, deleted, message_count, full_reload, changes, checksum = chatpersist.checksum('[]') AS empty_checksum
FROM chatpersist.messages_since(:u, 'c', 6);

-- no such conversation, or another user's: no row
SELECT count(*) FROM chatpersist.messages_since(:u, 'nope', 1);
SELECT count(*) FROM chatpersist.messages_since(:other, 'c', 1);

-- row-level security: a role that is not the owner sees only its own
-- conversations through messages_since, as through load_conversation
CREATE ROLE chatpersist_delta_reader;
GRANT USAGE ON SCHEMA chatpersist TO chatpersist_delta_reader;
GRANT SELECT ON chatpersist.conversations TO chatpersist_delta_reader;
GRANT EXECUTE ON FUNCTION chatpersist.messages_since(uuid, text, bigint) TO chatpersist_delta_reader;
GRANT EXECUTE ON FUNCTION chatpersist.current_user_id() TO chatpersist_delta_reader;
SELECT status FROM chatpersist.save_conversation(:other, 'x', 'Other', '[{"id":"o1","content":"private"}]');
SET ROLE chatpersist_delta_reader;
SET chatpersist.user_id = '00000000-0000-0000-0000-0000000000d5';
SELECT count(*) AS others_conversation FROM chatpersist.messages_since(:other, 'x', 0);
SET chatpersist.user_id = '00000000-0000-0000-0000-0000000000d6';
SELECT full_reload, changes FROM chatpersist.messages_since(:other, 'x', 0);
RESET chatpersist.user_id;
RESET ROLE;
REVOKE ALL ON FUNCTION chatpersist.messages_since(uuid, text, bigint) FROM chatpersist_delta_reader;
REVOKE ALL ON FUNCTION chatpersist.current_user_id() FROM chatpersist_delta_reader;
REVOKE ALL ON chatpersist.conversations FROM chatpersist_delta_reader;
REVOKE ALL ON SCHEMA chatpersist FROM chatpersist_delta_reader;
DROP ROLE chatpersist_delta_reader;

-- errors: NULL keys (22004), a negative version (22023)
SELECT pg_temp.try($$SELECT * FROM chatpersist.messages_since(NULL, 'c', 1)$$);
SELECT pg_temp.try($$SELECT * FROM chatpersist.messages_since('00000000-0000-0000-0000-0000000000d5', NULL, 1)$$);
SELECT pg_temp.try($$SELECT * FROM chatpersist.messages_since('00000000-0000-0000-0000-0000000000d5', 'c', -1)$$);
