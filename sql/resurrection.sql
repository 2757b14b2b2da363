--
-- resurrection: what was deleted stays deleted (2.0, the stamp merge and
-- the retry memory; issue 13, item 3).  Each case was found against 1.x,
-- which revived the message; CONTRACT.md, Merge.
--
\set u '''00000000-0000-4000-8000-0000000000e1'''
SET chatpersist.history_depth = 2;

-- the array a conversation holds, as ids with their content or "deleted"
CREATE FUNCTION pg_temp.shape(p_conversation text) RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(m->>'id' || '=' || CASE WHEN (m->>'deleted')::boolean THEN 'deleted'
		   ELSE coalesce(m->>'content', '') END, ' ' ORDER BY ord)
	FROM chatpersist.load_conversation('00000000-0000-4000-8000-0000000000e1', p_conversation) c,
		 jsonb_array_elements(c.messages) WITH ORDINALITY AS e (m, ord)
$$;

--
-- 1. A device whose clock is 2 s behind deletes a message.  After more
-- writes than history keeps, a stale device that never saw the deletion
-- saves its old array back.  1.x had no base left (a union) and the later
-- updated_at won: the message came back.  The stamps say the stale device
-- did not touch it since its version.
--

-- (a) the deletion is a tombstone
SELECT status, version FROM chatpersist.save_conversation(:u, 'skew', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000}]',
	p_expected_version => 0);
SELECT status, version FROM chatpersist.save_conversation(:u, 'skew', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","deleted":true,"created_at":1733300001000,"updated_at":1733299999500}]',
	p_expected_version => 1);
SELECT a.status, a.version
FROM generate_series(1, 4) g,
	 LATERAL chatpersist.append_messages(:u, 'skew', jsonb_build_array(jsonb_build_object('id', 'n' || g, 'content', 'later'))) a;
-- version 1 is no longer in history
SELECT array_agg(version ORDER BY version) AS history FROM chatpersist.conversation_history(:u, 'skew');
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'skew', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000}]',
	p_expected_version => 1);
SELECT pg_temp.shape('skew');
-- the same with no expected version at all (a union, but for the replay)
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'skew', 'T',
	'[{"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000}]');
SELECT pg_temp.shape('skew');

-- (b) the deletion removes the message from the array
SELECT status, version FROM chatpersist.save_conversation(:u, 'skew2', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000}]',
	p_expected_version => 0);
SELECT status, version FROM chatpersist.save_conversation(:u, 'skew2', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000}]',
	p_expected_version => 1);
SELECT a.status, a.version
FROM generate_series(1, 4) g,
	 LATERAL chatpersist.append_messages(:u, 'skew2', jsonb_build_array(jsonb_build_object('id', 'n' || g, 'content', 'later'))) a;
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'skew2', 'T',
	'[{"id":"m1","content":"hi","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000}]',
	p_expected_version => 1);
SELECT pg_temp.shape('skew2');
-- the row remembers the removed message, out of the array
SELECT id, removed, changed_version FROM chatpersist.messages
WHERE user_id = :u AND conversation_id = 'skew2' AND id = 'm2';

-- (c) what the stale device did change still merges: its edit of m1 wins
-- (m1 unchanged since its version), its new message is added, and a
-- message it never had is kept
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'skew2', 'T',
	'[{"id":"m1","content":"hi, edited","created_at":1733300000000,"updated_at":1733300000000},
	  {"id":"m2","content":"there","created_at":1733300001000,"updated_at":1733300001000},
	  {"id":"m3","content":"new","created_at":1733300009000}]',
	p_expected_version => 1);
SELECT pg_temp.shape('skew2');

-- (d) a stale device that did edit the deleted message brings it back
-- (an edit beats a delete, as in 1.x with its base), counted as a conflict
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'skew2', 'T',
	'[{"id":"m2","content":"there, edited","created_at":1733300001000,"updated_at":1733300005000}]',
	p_expected_version => 1);
SELECT pg_temp.shape('skew2');

--
-- 2. A delayed retry.  append_messages(m1) is acknowledged, another device
-- deletes m1, and the first call arrives again.  1.x revived m1.
--

-- (a) tombstoned by another device's append
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m1","content":"hello","created_at":1733300000000}]', 0);
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m1","deleted":true,"created_at":1733300000000}]', 1);
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m1","content":"hello","created_at":1733300000000}]', 0);
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m1","content":"hello","created_at":1733300000000}]');
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m1","content":"hello","created_at":1733300000000}]', 2);
SELECT pg_temp.shape('retry');

-- (b) removed by another device's whole-array save; a retry that also
-- carries a new message adds only that one
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m2","content":"second","created_at":1733300001000}]');
SELECT status, version FROM chatpersist.save_conversation(:u, 'retry', 'T',
	'[{"id":"m1","deleted":true,"created_at":1733300000000}]', p_expected_version => 3);
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m2","content":"second","created_at":1733300001000}]', 2);
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m2","content":"second","created_at":1733300001000},
	  {"id":"m3","content":"third","created_at":1733300002000}]');
SELECT pg_temp.shape('retry');

-- (c) an older edit retried does not roll back a newer one
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m3","content":"third, edit 1","created_at":1733300002000}]');
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m3","content":"third, edit 2","created_at":1733300002000}]');
SELECT status, version FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m3","content":"third, edit 1","created_at":1733300002000}]');
SELECT status, version, conflicts FROM chatpersist.save_conversation(:u, 'retry', 'T',
	'[{"id":"m1","deleted":true,"created_at":1733300000000},
	  {"id":"m3","content":"third, edit 1","created_at":1733300002000}]',
	p_expected_version => 6);
SELECT pg_temp.shape('retry');
-- ... nor does the first copy ever sent
SELECT status FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m3","content":"third","created_at":1733300002000}]');
SELECT pg_temp.shape('retry');

-- (d) a copy never accepted before is an edit, and is taken
SELECT status FROM chatpersist.append_messages(:u, 'retry',
	'[{"id":"m3","content":"third, edit 3","created_at":1733300002000}]');
SELECT pg_temp.shape('retry');

--
-- 3. import_app_state run again after the new app removed a message.
-- 1.x imported it again.
--
SELECT chatpersist.import_app_state(:u, '{"conversations": {"legacy": {"title": "Old",
	"messages": [{"id":"a","content":"one"},{"id":"b","content":"two"}]}}}') AS imported;
SELECT status, version FROM chatpersist.save_conversation(:u, 'legacy', NULL,
	'[{"id":"a","content":"one"}]', p_expected_version => 1);
SELECT chatpersist.import_app_state(:u, '{"conversations": {"legacy": {"title": "Old",
	"messages": [{"id":"a","content":"one"},{"id":"b","content":"two"}]}}}') AS imported_again;
SELECT version, pg_temp.shape('legacy') FROM chatpersist.conversations
WHERE user_id = :u AND id = 'legacy';

--
-- 4. A stale whole-array save after the conversation was deleted revives
-- the conversation, with the stale array: the documented rule
-- (docs/sync.md, "After a conversation is deleted").
--
SELECT status, version FROM chatpersist.save_conversation(:u, 'gone', 'T',
	'[{"id":"m1","content":"hi"}]', p_expected_version => 0);
SELECT status, version FROM chatpersist.delete_conversation(:u, 'gone', 1);
SELECT status, version FROM chatpersist.save_conversation(:u, 'gone', 'T',
	'[{"id":"m1","content":"hi"}]', p_expected_version => 1);
SELECT pg_temp.shape('gone');

--
-- The retry memory: the rows keep the hashes of the copies they replaced
-- (the first one and the last 15), computed by the trigger, never taken
-- from the writer.
--
SELECT status FROM chatpersist.append_messages(:u, 'memory', '[{"id":"m","content":"0"}]');
SELECT count(*) AS edits
FROM generate_series(1, 20) g,
	 LATERAL chatpersist.append_messages(:u, 'memory', jsonb_build_array(jsonb_build_object('id', 'm', 'content', g::text))) a;
SELECT cardinality(accepted) AS remembered,
	   accepted[1] = ('x' || chatpersist.checksum('{"id":"m","content":"0"}'))::bit(64)::bigint AS first_kept,
	   accepted[16] = ('x' || chatpersist.checksum('{"id":"m","content":"19"}'))::bit(64)::bigint AS last_kept,
	   ('x' || chatpersist.checksum('{"id":"m","content":"3"}'))::bit(64)::bigint = ANY (accepted) AS third_forgotten
FROM chatpersist.messages WHERE user_id = :u AND conversation_id = 'memory';
-- the first copy and a recent one are replays; a forgotten one is an edit
SELECT status FROM chatpersist.append_messages(:u, 'memory', '[{"id":"m","content":"0"}]');
SELECT status FROM chatpersist.append_messages(:u, 'memory', '[{"id":"m","content":"17"}]');
SELECT status FROM chatpersist.append_messages(:u, 'memory', '[{"id":"m","content":"3"}]');
SELECT pg_temp.shape('memory');

-- direct SQL: a changed copy is remembered; the writer's own value is not
UPDATE chatpersist.messages SET message = '{"id":"m","content":"direct"}', accepted = '{42}'
WHERE user_id = :u AND conversation_id = 'memory' AND id = 'm';
SELECT accepted[cardinality(accepted)] = ('x' || chatpersist.checksum('{"id":"m","content":"3"}'))::bit(64)::bigint AS replaced_copy_kept,
	   42 = ANY (accepted) AS writers_value
FROM chatpersist.messages WHERE user_id = :u AND conversation_id = 'memory';
UPDATE chatpersist.messages SET accepted = '{42}'
WHERE user_id = :u AND conversation_id = 'memory' AND id = 'm';
SELECT 42 = ANY (accepted) AS writers_value
FROM chatpersist.messages WHERE user_id = :u AND conversation_id = 'memory';
INSERT INTO chatpersist.messages (user_id, conversation_id, id, message, accepted)
VALUES (:u, 'memory', 'x', '{"id":"x"}', '{42}');
SELECT accepted FROM chatpersist.messages WHERE user_id = :u AND conversation_id = 'memory' AND id = 'x';
-- a removal through direct SQL is remembered too: the copy is not revived
UPDATE chatpersist.messages SET removed = true
WHERE user_id = :u AND conversation_id = 'memory' AND id = 'x';
SELECT status FROM chatpersist.append_messages(:u, 'memory', '[{"id":"x"}]');
SELECT pg_temp.shape('memory');

RESET chatpersist.history_depth;
