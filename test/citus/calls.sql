-- test/citus/calls.sql: one user's call sequence, run by test/citus/check.sh
-- against a Citus coordinator and against a plain PostgreSQL server; the
-- two outputs must be equal.  psql variable u: the user id.  Every call is
-- its own statement outside a transaction block, so that Citus pushes it
-- down to the worker of the user's shard (docs/citus.md: writes must be).
-- Nothing printed depends on the node: no timestamps, no change_xid, no
-- cursors.  After a statement that must fail, SQLSTATE is printed.
\pset null '<null>'
\set VERBOSITY terse

\echo == first save, its retry, fast-forward saves
SELECT * FROM chatpersist.save_conversation(:'u', 'trip', 'Weekend trip',
  '[{"id":"m1","role":"user","content":"Where to?","created_at":1732400000000}]');
SELECT * FROM chatpersist.save_conversation(:'u', 'trip', 'Weekend trip',
  '[{"id":"m1","role":"user","content":"Where to?","created_at":1732400000000}]');
SELECT * FROM chatpersist.save_conversation(:'u', 'trip', 'Weekend trip',
  '[{"id":"m1","role":"user","content":"Where to?","created_at":1732400000000},
    {"id":"m2","role":"assistant","content":"Lisbon or Porto?","created_at":1732400001000}]',
  p_expected_version := 1);
-- device A, from version 2
SELECT * FROM chatpersist.save_conversation(:'u', 'trip', 'Weekend trip',
  '[{"id":"m1","role":"user","content":"Where to?","created_at":1732400000000},
    {"id":"m2","role":"assistant","content":"Lisbon or Porto?","created_at":1732400001000},
    {"id":"a1","role":"user","content":"Lisbon","created_at":1732400002000}]',
  p_expected_version := 2);

\echo == stale save from version 2: merged
SELECT * FROM chatpersist.save_conversation(:'u', 'trip', 'Weekend trip',
  '[{"id":"m1","role":"user","content":"Where to?","created_at":1732400000000},
    {"id":"m2","role":"assistant","content":"Lisbon or Porto?","created_at":1732400001000},
    {"id":"b1","role":"user","content":"Porto","created_at":1732400003000}]',
  p_expected_version := 2, p_metadata := '{"pinned":true}');
SELECT jsonb_path_query_array(messages, '$[*].id'), metadata, version, checksum,
       CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversation(:'u', 'trip');

\echo == appends
SELECT * FROM chatpersist.append_messages(:'u', 'trip',
  '[{"id":"m3","role":"assistant","content":"Both!","created_at":1732400004000}]');
SELECT * FROM chatpersist.append_messages(:'u', 'trip',
  '[{"id":"m2","role":"assistant","content":"Lisbon or Porto? Or Faro?","created_at":1732400001000,"updated_at":1732400005000}]',
  p_expected_version := 5);
SELECT * FROM chatpersist.append_messages(:'u', 'trip',
  '[{"id":"m4","role":"user","content":"ok","created_at":1732400006000}]',
  p_expected_version := 6);
-- stale append whose copy of m2 is older than the stored one: a conflict it loses
SELECT * FROM chatpersist.append_messages(:'u', 'trip',
  '[{"id":"m2","role":"assistant","content":"Lisbon!","created_at":1732400001000,"updated_at":1732400004500}]',
  p_expected_version := 5);
-- its retry
SELECT * FROM chatpersist.append_messages(:'u', 'trip',
  '[{"id":"m2","role":"assistant","content":"Lisbon!","created_at":1732400001000,"updated_at":1732400004500}]',
  p_expected_version := 5);

\echo == second conversation: create, fast-forward, forced overwrite, three-way stale save
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', 'Notes',
  '[{"id":"n1","content":"milk"},{"id":"n2","content":"eggs"}]');
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', NULL,
  '[{"id":"n1","content":"milk"},{"id":"n2","content":"eggs"},{"id":"n4","content":"jam"}]',
  p_expected_version := 1);
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', NULL,
  '[{"id":"n3","content":"bread"}]', p_force_overwrite := true);
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', 'Shopping',
  '[{"id":"n1","content":"milk"},{"id":"n2","content":"eggs"},{"id":"n4","content":"jam"},{"id":"n5","content":"tea"}]',
  p_expected_version := 2);
SELECT jsonb_path_query_array(messages, '$[*].id'), title, version, checksum,
       CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversation(:'u', 'notes');

\echo == bad input
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', NULL, '[]',
  p_metadata := '["not", "an", "object"]');
\echo sqlstate :SQLSTATE
SELECT * FROM chatpersist.save_conversation(:'u', 'bad', NULL, '[{"id":"x"},{"id":"x"}]');
\echo sqlstate :SQLSTATE

\echo == guard trigger: a hand-written UPDATE of the head
UPDATE chatpersist.conversations SET title = 'Porto only', version = 1
 WHERE user_id = :'u' AND id = 'trip';
\echo sqlstate :SQLSTATE
UPDATE chatpersist.conversations SET title = 'Trip', version = version
 WHERE user_id = :'u' AND id = 'trip'
RETURNING version, checksum, message_count;

\echo == direct SQL on chatpersist.messages
INSERT INTO chatpersist.messages (user_id, conversation_id, id, message)
VALUES (:'u', 'trip', 'd1', '{"id":"d1","role":"user","content":"direct","created_at":1732400007000}')
RETURNING id, changed_version, added_version, removed, hash <> 0 AS hashed;
UPDATE chatpersist.messages
   SET message = '{"id":"d1","role":"user","content":"direct, edited","created_at":1732400007000,"updated_at":1732400008000}'
 WHERE user_id = :'u' AND conversation_id = 'trip' AND id = 'd1'
RETURNING id, changed_version, cardinality(accepted);
UPDATE chatpersist.messages SET removed = true
 WHERE user_id = :'u' AND conversation_id = 'trip' AND id = 'm3'
RETURNING id, changed_version, removed;
INSERT INTO chatpersist.messages (user_id, conversation_id, id, message)
VALUES (:'u', 'trip', 'd2', '{"id":"d2","content":"second"}'),
       (:'u', 'trip', 'd3', '{"id":"d3","content":"third"}')
RETURNING id, changed_version;
DELETE FROM chatpersist.messages
 WHERE user_id = :'u' AND conversation_id = 'trip' AND id = 'd2'
RETURNING id;
-- a message row of a conversation that does not exist
INSERT INTO chatpersist.messages (user_id, conversation_id, id, message)
VALUES (:'u', 'nope', 'x1', '{"id":"x1"}');
\echo sqlstate :SQLSTATE
-- a message the trigger refuses
INSERT INTO chatpersist.messages (user_id, conversation_id, id, message)
VALUES (:'u', 'trip', 'x2', '{"id":"x2","deleted":"yes"}');
\echo sqlstate :SQLSTATE
SELECT version, checksum, message_count FROM chatpersist.conversations
 WHERE user_id = :'u' AND id = 'trip';
SELECT id, pos, changed_version, removed FROM chatpersist.messages
 WHERE user_id = :'u' AND conversation_id = 'trip' ORDER BY pos, id;
SELECT jsonb_path_query_array(messages, '$[*].id'), version, checksum,
       CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversation(:'u', 'trip');

\echo == conversation_history
SELECT version, title, messages, metadata, checksum, message_count, deleted,
       replaced_by, discarded
FROM chatpersist.conversation_history(:'u', 'trip');
SELECT count(*) AS history_messages_rows FROM chatpersist.history_messages
 WHERE user_id = :'u';

\echo == restore_version
SELECT * FROM chatpersist.restore_version(:'u', 'trip', 7);
SELECT * FROM chatpersist.restore_version(:'u', 'trip', 16);
SELECT * FROM chatpersist.restore_version(:'u', 'trip', 999);
\echo sqlstate :SQLSTATE
SELECT title, messages, metadata, version, checksum, message_count, deleted,
       CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversation(:'u', 'trip');

\echo == delete, revive, import
SELECT * FROM chatpersist.delete_conversation(:'u', 'notes', 3);
\echo sqlstate :SQLSTATE
SELECT * FROM chatpersist.delete_conversation(:'u', 'notes');
SELECT * FROM chatpersist.save_conversation(:'u', 'notes', NULL, '[{"id":"n9","content":"again"}]');
SELECT * FROM chatpersist.import_app_state(:'u',
  '{"conversations":{"imp":{"title":"Imported","messages":[{"id":"i1","content":"from app_state"}]}}}');
SELECT * FROM chatpersist.import_app_state(:'u',
  '{"conversations":{"imp":{"title":"Imported","messages":[{"id":"i1","content":"from app_state"}]}}}');

\echo == load_conversations, changes_since
SELECT id, title, messages, metadata, version, checksum, message_count, deleted,
       CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversations(:'u');
SELECT conversation_id, version, checksum, deleted
FROM chatpersist.changes_since(:'u', 0) ORDER BY conversation_id;

\echo == save_conversation: a stale copy that loses a conflict is kept in history
SELECT * FROM chatpersist.save_conversation(:'u', 'txn', 'Txn',
  '[{"id":"t1","content":"one","created_at":1732400000000}]');
SELECT * FROM chatpersist.save_conversation(:'u', 'txn', 'Txn',
  '[{"id":"t1","content":"one, edited","created_at":1732400000000,"updated_at":1732400009000}]',
  p_expected_version := 1);
-- stale, and its copy of t1 loses the conflict: kept in history
SELECT * FROM chatpersist.save_conversation(:'u', 'txn', 'Txn',
  '[{"id":"t1","content":"one, older edit","created_at":1732400000000,"updated_at":1732400008000},
    {"id":"t2","content":"two","created_at":1732400001000}]',
  p_expected_version := 1);
SELECT * FROM chatpersist.append_messages(:'u', 'txn',
  '[{"id":"t1","content":"one, oldest edit","created_at":1732400000000,"updated_at":1732400007000}]',
  p_expected_version := 1);
SELECT version, messages, checksum, message_count, replaced_by, discarded
FROM chatpersist.conversation_history(:'u', 'txn');
SELECT messages, version, checksum, CASE WHEN chatpersist.checksum(messages) = checksum THEN 'checksum ok' ELSE 'checksum BAD' END
FROM chatpersist.load_conversation(:'u', 'txn');

\echo == messages_since: a few writes, then what a device at each version gets
SELECT * FROM chatpersist.save_conversation(:'u', 'sync', 'Sync',
  '[{"id":"s1","content":"one"},{"id":"s2","content":"two"}]');
SELECT * FROM chatpersist.append_messages(:'u', 'sync', '[{"id":"s3","content":"three"}]',
  p_expected_version := 1);
-- an edit, a removal, a tombstone and an insertion at the front, in one save
SELECT * FROM chatpersist.save_conversation(:'u', 'sync', 'Sync',
  '[{"id":"s0","content":"zero"},{"id":"s1","content":"one, edited"},{"id":"s3","content":"three","deleted":true}]',
  p_expected_version := 2);
-- a stale save that merges
SELECT * FROM chatpersist.save_conversation(:'u', 'sync', 'Sync',
  '[{"id":"s1","content":"one"},{"id":"s2","content":"two"},{"id":"s4","content":"four"}]',
  p_expected_version := 1);
-- direct SQL: a row deleted, a row moved to the front
DELETE FROM chatpersist.messages WHERE user_id = :'u' AND conversation_id = 'sync' AND id = 's0';
UPDATE chatpersist.messages SET pos = -1 WHERE user_id = :'u' AND conversation_id = 'sync' AND id = 's4';
-- each call alone (pushed down on Citus): a full reload (0, NULL, ahead of
-- the conversation), deltas from 1, 2, 3, 4, and none from the current version
SELECT conversation_id, version, checksum, title, metadata, message_count, deleted, full_reload, changes
FROM chatpersist.messages_since(:'u', 'sync', 0);
SELECT conversation_id, version, full_reload, changes FROM chatpersist.messages_since(:'u', 'sync', NULL);
SELECT conversation_id, version, checksum, message_count, full_reload, changes
FROM chatpersist.messages_since(:'u', 'sync', 1);
SELECT conversation_id, version, checksum, message_count, full_reload, changes
FROM chatpersist.messages_since(:'u', 'sync', 2);
SELECT conversation_id, version, full_reload, changes FROM chatpersist.messages_since(:'u', 'sync', 3);
SELECT conversation_id, version, full_reload, changes FROM chatpersist.messages_since(:'u', 'sync', 4);
SELECT conversation_id, version, full_reload, changes FROM chatpersist.messages_since(:'u', 'sync', 6);
SELECT conversation_id, version, full_reload, changes FROM chatpersist.messages_since(:'u', 'sync', 99);
-- the other conversations, from every version (in a join: not pushed
-- down, so on Citus the function runs on the coordinator)
SELECT c, v, d.version, d.checksum, d.message_count, d.deleted, d.full_reload, d.changes
FROM unnest(ARRAY['trip', 'notes', 'txn', 'imp']) c, generate_series(0, 20) v,
     LATERAL chatpersist.messages_since(:'u', c, v) d
ORDER BY c, v;
-- a deleted conversation, and one that does not exist
SELECT * FROM chatpersist.delete_conversation(:'u', 'sync');
SELECT conversation_id, version, deleted, message_count, full_reload, changes
FROM chatpersist.messages_since(:'u', 'sync', 5);
SELECT count(*) FROM chatpersist.messages_since(:'u', 'nope', 1);
