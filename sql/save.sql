--
-- save_conversation: every status, the seed's call form, titles, metadata,
-- three-way merges from history, and conflicts.
--

-- 2.0 keeps a conversation's messages as rows of chatpersist.messages: its
-- array is the rows that are not removed, in pos order
CREATE FUNCTION pg_temp.stored_array(u uuid, c text) RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
	 WHERE m.user_id = u AND m.conversation_id = c AND NOT m.removed
$$;

-- the seed's call, with named arguments, verbatim
SELECT chatpersist.save_conversation(p_user_id := '00000000-0000-0000-0000-00000000a001', p_conversation_id := 'c1', p_title := 'T', p_messages := '[]'::jsonb, p_force_overwrite := false);

-- created: version 1, checksum of the messages, live count
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000}]');

-- unchanged: the same content again (a retry) writes nothing
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000}]', p_expected_version := 1);
-- "nothing written" is literal: the row is still the same tuple, and so
-- is each of its message rows
CREATE TEMP TABLE tuple_before AS SELECT ctid AS at, xmin::text AS x FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';
CREATE TEMP TABLE message_tuples_before AS SELECT id, ctid AS at, xmin::text AS x FROM chatpersist.messages
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND conversation_id = 'trip';
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000}]', p_expected_version := 1);
SELECT c.ctid = b.at AND c.xmin::text = b.x AS same_tuple FROM chatpersist.conversations c, tuple_before b
WHERE c.user_id = '00000000-0000-0000-0000-00000000a001' AND c.id = 'trip';
SELECT count(*) AS message_rows,
	   bool_and(m.ctid IS NOT DISTINCT FROM b.at AND m.x IS NOT DISTINCT FROM b.x) AS same_message_tuples
FROM (SELECT id, ctid, xmin::text AS x FROM chatpersist.messages
	   WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND conversation_id = 'trip') m
FULL JOIN message_tuples_before b USING (id);
-- key order and white space do not make content different
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[ {"created_at":1000, "content":"Where to?", "role":"user", "id":"m1"} ]');

-- updated: the expected version is current, the array replaces the stored one
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000},
	  {"id":"a1","role":"assistant","content":"Lisbon","created_at":2000}]', p_expected_version := 1);

-- merged: device B still at version 1 adds its own message; device A's a1
-- is kept, since B's array lacks it but the base (version 1) lacked it too
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000},
	  {"id":"b1","role":"user","content":"Or Porto?","created_at":1500}]', p_expected_version := 1);
SELECT version, message_count, checksum = chatpersist.checksum(pg_temp.stored_array(user_id, id)) AS checksum_ok,
	   jsonb_path_query_array(pg_temp.stored_array(user_id, id), '$[*].id') AS ids
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- a stale retry of an already merged save is unchanged
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000},
	  {"id":"b1","role":"user","content":"Or Porto?","created_at":1500}]', p_expected_version := 1);

-- three-way delete: a device at version 3 drops b1; its save is stale
-- (version 4 is current, after another device's edit), so it merges against
-- version 3 from history, and b1 stays deleted
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000},
	  {"id":"b1","role":"user","content":"Or Porto?","created_at":1500},
	  {"id":"a1","role":"assistant","content":"Lisbon!","created_at":2000,"updated_at":2100}]', p_expected_version := 3);
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip',
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1000},
	  {"id":"a1","role":"assistant","content":"Lisbon","created_at":2000}]', p_expected_version := 3);
SELECT version, jsonb_path_query_array(pg_temp.stored_array(user_id, id), '$[*].id') AS ids,
	   pg_temp.stored_array(user_id, id) -> 1 ->> 'content' AS a1
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- without a usable base (no expected version, or one not in history) the
-- merge is a union: nothing is deleted
SELECT status, version, message_count FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"x1","created_at":3000}]');
SELECT status, version, message_count FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"x2","created_at":3001}]', p_expected_version := 999);
SELECT jsonb_path_query_array(pg_temp.stored_array(user_id, id), '$[*].id') AS ids
FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- edit vs edit: both devices changed a1 since version 7; the later
-- updated_at wins and the conflict is counted
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	jsonb_set(pg_temp.stored_array('00000000-0000-0000-0000-00000000a001', 'trip'), '{1}', '{"id":"a1","role":"assistant","content":"Lisbon (A)","created_at":2000,"updated_at":5000}'),
	p_expected_version := 7);
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	(SELECT jsonb_set(messages, '{1}', '{"id":"a1","role":"assistant","content":"Lisbon (B)","created_at":2000,"updated_at":4000}')
	   FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000a001', 'trip') WHERE version = 7),
	p_expected_version := 7);
SELECT pg_temp.stored_array(user_id, id) -> 1 ->> 'content' AS a1 FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';
-- the content did not change, but the losing copy must stay retrievable:
-- a new version (same content) is written and the loser is kept in the
-- discarded column of the version it replaced
SELECT version, replaced_by, discarded -> 0 ->> 'content' AS kept_loser FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND conversation_id = 'trip' AND version = 8;
-- B's edit is newer this time: it wins, and A's copy is in history
SELECT status, version, conflicts FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	(SELECT jsonb_set(messages, '{1}', '{"id":"a1","role":"assistant","content":"Lisbon (B2)","created_at":2000,"updated_at":6000}')
	   FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000a001', 'trip') WHERE version = 7),
	p_expected_version := 7);
SELECT pg_temp.stored_array(user_id, id) -> 1 ->> 'content' AS a1 FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';
SELECT version, replaced_by, messages -> 1 ->> 'content' AS replaced_a1, discarded
FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000a001', 'trip')
ORDER BY version DESC LIMIT 1;
-- a stale save whose copy loses keeps that copy in discarded
SELECT status, version, conflicts FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"a1","role":"assistant","content":"Lisbon (old)","created_at":2000,"updated_at":1},{"id":"z9","created_at":9000}]',
	p_expected_version := 2);
SELECT version, replaced_by, discarded FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND conversation_id = 'trip' ORDER BY version DESC LIMIT 1;

-- the same when TOAST compressed the row's conversation id in place (a
-- long, compressible id in a row just over 2 kB): the save must still
-- recognise the row it writes, or the trigger takes the write for a
-- foreign one, keeps the version and drops the loser (found by test/fuzz).
-- The messages are rows of their own in 2.0: incompressible metadata makes
-- the conversation's row that large.
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a003', repeat('é', 127) || 'x', NULL,
	(SELECT jsonb_agg(jsonb_build_object('id', 'p' || i, 'content', md5(i::text))) FROM generate_series(1, 46) i)
	|| '[{"id":"a1","content":"new","updated_at":2000}]',
	p_metadata := (SELECT jsonb_build_object('pad', string_agg(md5(i::text), '')) FROM generate_series(1, 52) i));
SELECT pg_column_compression(id) AS id_compression FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a003';
SELECT status, version, conflicts FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a003', repeat('é', 127) || 'x', NULL,
	'[{"id":"a1","content":"old","updated_at":1000}]');
SELECT version, replaced_by, discarded FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000a003';

-- overwritten: force replaces; the old content goes to history
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip (clean)',
	'[{"id":"only","created_at":1}]', p_force_overwrite := true);
SELECT version, replaced_by, jsonb_array_length(messages) AS old_messages
FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000a001', 'trip') ORDER BY version DESC LIMIT 1;
-- force with the same content is still unchanged
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Trip (clean)',
	'[{"id":"only","created_at":1}]', p_force_overwrite := true);

-- titles: NULL keeps the stored title; a new title alone is a change
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1}]', p_expected_version := 12);
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', 'Renamed',
	'[{"id":"only","created_at":1}]', p_expected_version := 12);
SELECT title FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- metadata: NULL keeps it; a given object replaces it; on a merge its keys
-- are laid over the stored ones
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1}]', p_expected_version := 13, p_metadata := '{"model":"m1","pinned":true}');
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1}]', p_expected_version := 14);
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1},{"id":"new","created_at":2}]', p_expected_version := 13, p_metadata := '{"model":"m2"}');
SELECT version, metadata FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1},{"id":"new","created_at":2}]', p_expected_version := 15, p_metadata := '{}');
SELECT version, metadata FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- message tombstones count as messages but not as live ones
SELECT status, version, message_count FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a001', 'trip', NULL,
	'[{"id":"only","created_at":1,"deleted":true},{"id":"new","created_at":2}]', p_expected_version := 16);
SELECT message_count, jsonb_array_length(pg_temp.stored_array(user_id, id)) AS messages FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a001' AND id = 'trip';

-- two users may use the same conversation id
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a002', 'trip', 'Mine',
	'[{"id":"m1"}]');
SELECT user_id, id, title, version FROM chatpersist.conversations WHERE id = 'trip' ORDER BY user_id;

-- a conversation deleted by a tombstone is revived by a save
UPDATE chatpersist.conversations SET deleted = true
WHERE user_id = '00000000-0000-0000-0000-00000000a002' AND id = 'trip';
SELECT * FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a002', 'trip', NULL, '[{"id":"again"}]');
SELECT deleted, version, title, pg_temp.stored_array(user_id, id) AS messages FROM chatpersist.conversations
WHERE user_id = '00000000-0000-0000-0000-00000000a002' AND id = 'trip';

-- chatpersist.debug logs each decision
SET chatpersist.debug = on;
SET client_min_messages = log;
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a002', 'trip', NULL, '[{"id":"again"}]');
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000a002', 'trip', NULL, '[{"id":"more"}]', p_expected_version := 2);
RESET client_min_messages;
RESET chatpersist.debug;

-- history holds the replaced versions, at most history_depth (10) each
SELECT conversation_id, count(*), min(version), max(version) FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000a001' GROUP BY 1;
SELECT conversation_id, count(*) FROM chatpersist.history
WHERE user_id = '00000000-0000-0000-0000-00000000a002' GROUP BY 1;

DELETE FROM chatpersist.history WHERE user_id IN ('00000000-0000-0000-0000-00000000a001', '00000000-0000-0000-0000-00000000a002', '00000000-0000-0000-0000-00000000a003');
DELETE FROM chatpersist.conversations WHERE user_id IN ('00000000-0000-0000-0000-00000000a001', '00000000-0000-0000-0000-00000000a002', '00000000-0000-0000-0000-00000000a003');
