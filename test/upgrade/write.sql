-- test/upgrade/write.sql: the history that test/upgrade.sh writes with the
-- old library (the oracle) before it installs this build and updates the
-- extension.  Three users; saves, merges with conflicts, appends,
-- tombstones, a plain DELETE and a re-create, a restore, direct SQL,
-- metadata, history beyond history_depth, and ids and content that
-- exercise the canonical text (escapes, numeric scale, key order).
\set ON_ERROR_STOP 1
SET chatpersist.history_depth = 4;

SELECT status, version FROM chatpersist.save_conversation(
	'00000000-0000-4000-8000-0000000000c1', 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where?","created_at":1733300000000}]');
SELECT status, version FROM chatpersist.save_conversation(
	'00000000-0000-4000-8000-0000000000c1', 'trip', NULL,
	'[{"id":"m1","role":"user","content":"Where?","created_at":1733300000000},{"id":"a1","content":"Lisbon","created_at":1733300001000}]',
	p_expected_version := 1);
-- a stale device: merged, with a conflict on m1
SELECT status, version, conflicts FROM chatpersist.save_conversation(
	'00000000-0000-4000-8000-0000000000c1', 'trip', NULL,
	'[{"id":"m1","role":"user","content":"Where to?","created_at":1733300000000,"updated_at":1733300005000},{"id":"b1","content":"Porto","created_at":1733300002000}]',
	p_expected_version := 1, p_metadata := '{"pinned": true, "n": 1.50}');
SELECT status, version FROM chatpersist.append_messages(
	'00000000-0000-4000-8000-0000000000c1', 'trip',
	'[{"id":"c1","content":"tab\tquote\" backslash\\ é 🙂","created_at":"2024-12-04T10:00:00Z","x":{"b":2,"a":[1.0,1.00]}}]');
SELECT status, version FROM chatpersist.append_messages(
	'00000000-0000-4000-8000-0000000000c1', 'trip', '[{"id":"a1","deleted":true}]');
SELECT status, version FROM chatpersist.restore_version(
	'00000000-0000-4000-8000-0000000000c1', 'trip', 3);
SELECT status, version FROM chatpersist.append_messages(
	'00000000-0000-4000-8000-0000000000c1', 'notes', '[{"id":"n1","content":"one"}]');
SELECT status, version FROM chatpersist.delete_conversation(
	'00000000-0000-4000-8000-0000000000c1', 'notes');

-- direct SQL: an INSERT, an UPDATE of the chatpersist kind, a plain DELETE
-- and a re-create of the same key
INSERT INTO chatpersist.conversations (user_id, id, title, messages)
VALUES ('00000000-0000-4000-8000-0000000000c2', 'sql', 'Direct', '[{"id":"d1","content":"psql"}]');
UPDATE chatpersist.conversations SET messages = messages || '[{"id":"d2"}]', version = 1
 WHERE user_id = '00000000-0000-4000-8000-0000000000c2' AND id = 'sql';
DELETE FROM chatpersist.conversations
 WHERE user_id = '00000000-0000-4000-8000-0000000000c2' AND id = 'sql';
INSERT INTO chatpersist.conversations (user_id, id, messages)
VALUES ('00000000-0000-4000-8000-0000000000c2', 'sql', '[{"id":"d3"}]');

-- a long history: more versions than history_depth keeps
SELECT count(*) FROM (
	SELECT chatpersist.append_messages('00000000-0000-4000-8000-0000000000c3', 'long',
		pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('id', 'l' || i, 'content', repeat('x', i))))
	  FROM generate_series(1, 12) i) s;
-- an import from the legacy layout
SELECT chatpersist.import_app_state('00000000-0000-4000-8000-0000000000c3',
	'{"conversations": {"old": {"title": "Imported", "messages": [{"id": "o1", "content": "hi"}]}}}');
