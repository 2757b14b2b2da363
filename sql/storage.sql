--
-- storage: how 2.0 keeps a conversation (one row per message), checked
-- through what it must equal.  The running hash an append continues must
-- give the checksum of the whole array at every length (its saved state
-- crosses XXH3's 64-byte stripes, 256-byte buffer and 1024-byte blocks);
-- a whole-array save writes only the rows that changed and keeps the order
-- of the array in the rows' ordering keys; removed messages stay as rows;
-- the stamps say when a message appeared and changed.
--
\i sql/include/stored_array.sql
SET chatpersist.history_depth = 10;

-- 1. Appends of every size: after each, the checksum the call returned is
-- the checksum of the array read back, and of the rows; a state that does
-- not check out is rebuilt from the rows
DO $$
DECLARE
	u uuid := '00000000-0000-4000-8000-00000000a001';
	r chatpersist.save_result;
	arr jsonb;
	bad int := 0;
BEGIN
	FOR c IN 1..3 LOOP
		PERFORM chatpersist.save_conversation(u, 'grow' || c, 't', '[]');
		FOR i IN 1..120 LOOP
			r := chatpersist.append_messages(u, 'grow' || c,
				jsonb_build_array(jsonb_build_object('id', 'm' || i,
					'content', repeat(chr(97 + (i % 26)), (i * 37 * c) % 300))));
			SELECT messages INTO arr FROM chatpersist.load_conversation(u, 'grow' || c);
			IF r.status <> 'updated' OR r.checksum <> chatpersist.checksum(arr)
				OR r.checksum <> chatpersist.checksum(pg_temp.stored_array(u, 'grow' || c))
				OR r.message_count <> jsonb_array_length(arr) THEN
				bad := bad + 1;
			END IF;
		END LOOP;
	END LOOP;
	RAISE NOTICE 'appends with a wrong checksum: %', bad;
END $$;

SELECT count(*) AS heads, bool_and(array_length = jsonb_array_length(pg_temp.stored_array(user_id, id))) AS lengths_ok,
	   bool_and(hash_state IS NOT NULL) AS states_kept
  FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000a001';
-- A state that does not continue its array (garbage; another
-- conversation's, which loads but digests to another checksum) or none is
-- noticed and rebuilt from the rows: the next append is still right.  (The
-- triggers keep clients from writing it; replica mode bypasses them.)
SET session_replication_role = replica;
UPDATE chatpersist.conversations SET hash_state = '\x0102'
 WHERE user_id = '00000000-0000-4000-8000-00000000a001' AND id = 'grow1';
UPDATE chatpersist.conversations SET hash_state = (SELECT hash_state FROM chatpersist.conversations
	WHERE user_id = '00000000-0000-4000-8000-00000000a001' AND id = 'grow1')
 WHERE user_id = '00000000-0000-4000-8000-00000000a001' AND id = 'grow2';
UPDATE chatpersist.conversations SET hash_state = NULL, array_length = NULL
 WHERE user_id = '00000000-0000-4000-8000-00000000a001' AND id = 'grow3';
RESET session_replication_role;
CREATE TEMP TABLE after_append AS
SELECT c.user_id, c.id, r.*
  FROM chatpersist.conversations c,
	   LATERAL chatpersist.append_messages(c.user_id, c.id, '[{"id":"after"}]') r
 WHERE c.user_id = '00000000-0000-4000-8000-00000000a001';
SELECT a.id, a.status, a.checksum = chatpersist.checksum(pg_temp.stored_array(a.user_id, a.id)) AS checksum_ok,
	   a.message_count, c.hash_state <> '\x0102' AND c.array_length = 121 AS state_rebuilt
  FROM after_append a JOIN chatpersist.conversations c USING (user_id, id) ORDER BY a.id;

-- 2. A whole-array save writes only what changed
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000a002', 'w', 't',
	'[{"id":"a","content":"1"},{"id":"b","content":"2"},{"id":"c","content":"3"},{"id":"d","content":"4"}]');
CREATE TEMP TABLE before AS SELECT id, ctid AS tid, pos, changed_version FROM chatpersist.messages
 WHERE user_id = '00000000-0000-4000-8000-00000000a002';
-- b edited, x inserted between c and d, a removed
SELECT status, version, checksum = chatpersist.checksum(
	'[{"id":"b","content":"2!"},{"id":"c","content":"3"},{"id":"x","content":"new"},{"id":"d","content":"4"}]') AS checksum_ok
  FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000a002', 'w', 't',
	'[{"id":"b","content":"2!"},{"id":"c","content":"3"},{"id":"x","content":"new"},{"id":"d","content":"4"}]',
	p_expected_version => 1);
SELECT m.id, m.removed, m.added_version, m.changed_version,
	   b.tid IS NOT DISTINCT FROM m.ctid AS row_untouched,
	   m.pos = b.pos AS pos_kept
  FROM chatpersist.messages m LEFT JOIN before b USING (id)
 WHERE m.user_id = '00000000-0000-4000-8000-00000000a002' ORDER BY m.pos, m.id;
SELECT pg_temp.stored_array('00000000-0000-4000-8000-00000000a002', 'w');
-- the replaced and removed copies are history, valid until version 2
SELECT id, valid_from, valid_to, message FROM chatpersist.history_messages
 WHERE user_id = '00000000-0000-4000-8000-00000000a002' ORDER BY id;

-- 3. A reorder renumbers; the array is what was sent
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000a002', 'w', 't',
	'[{"id":"d","content":"4"},{"id":"b","content":"2!"},{"id":"x","content":"new"},{"id":"c","content":"3"}]',
	p_expected_version => 2);
SELECT pg_temp.stored_array('00000000-0000-4000-8000-00000000a002', 'w') AS array_now;
SELECT version, messages FROM chatpersist.conversation_history('00000000-0000-4000-8000-00000000a002', 'w') ORDER BY version;

-- 4. Inserting into a full gap renumbers too: 40 messages put one by one
-- between the first two
DO $$
DECLARE
	u uuid := '00000000-0000-4000-8000-00000000a003';
	arr jsonb := '[{"id":"first"},{"id":"last"}]';
	v bigint;
BEGIN
	SELECT version INTO v FROM chatpersist.save_conversation(u, 'gap', 't', arr);
	FOR i IN 1..40 LOOP
		arr := jsonb_insert(arr, '{1}', jsonb_build_object('id', 'n' || i));
		SELECT version INTO v FROM chatpersist.save_conversation(u, 'gap', 't', arr, p_expected_version => v);
	END LOOP;
	IF pg_temp.stored_array(u, 'gap') <> arr THEN
		RAISE EXCEPTION 'order lost: % <> %', pg_temp.stored_array(u, 'gap'), arr;
	END IF;
END $$;
SELECT count(*) AS rows, count(DISTINCT pos) AS distinct_positions
  FROM chatpersist.messages WHERE user_id = '00000000-0000-4000-8000-00000000a003';

-- 5. A tombstone save removes every row from the array but keeps them
SELECT status FROM chatpersist.delete_conversation('00000000-0000-4000-8000-00000000a002', 'w');
SELECT count(*) FILTER (WHERE removed) AS removed, count(*) AS rows
  FROM chatpersist.messages WHERE user_id = '00000000-0000-4000-8000-00000000a002';
-- and a plain DELETE of the head takes its rows with it
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000a002';
SELECT count(*) AS rows_left FROM chatpersist.messages WHERE user_id = '00000000-0000-4000-8000-00000000a002';

-- 6. A head restored with a checksum and count that its rows do not have
-- (the rows are restored apart, so a restore cannot compare them) is put
-- right by its next append, even one of nothing
INSERT INTO chatpersist.conversations (user_id, id, title, version, checksum, message_count, last_modified)
VALUES ('00000000-0000-4000-8000-00000000a004', 'restored', 't', 5, '09ecd2756b919163', 3, now());
SELECT status, version, checksum = chatpersist.checksum('[]') AS checksum_ok, message_count
  FROM chatpersist.append_messages('00000000-0000-4000-8000-00000000a004', 'restored', '[]', 5);
SELECT version, checksum = chatpersist.checksum('[]') AS checksum_ok, message_count
  FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000a004';
SELECT status, version FROM chatpersist.append_messages('00000000-0000-4000-8000-00000000a004', 'restored', '[]', 6);

-- 7. A write the guard trigger did not see (the triggers disabled, or on
-- Citus firing in another session) is refused with 55000 and undone: the
-- head would lack what the trigger stamps, and the message rows would not
-- match it.  (A first save fails earlier here, on the version that only
-- the trigger sets.)
SET session_replication_role = replica;
\set VERBOSITY terse
SELECT status FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000a005', 'unseen', 't', '[{"id":"u1"}]');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT status FROM chatpersist.append_messages('00000000-0000-4000-8000-00000000a004', 'restored', '[{"id":"u2"}]');
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
ALTER TABLE chatpersist.conversations DISABLE TRIGGER conversations_guard;
SELECT status FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000a004', 'restored', NULL, '[{"id":"u3"}]', true);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE chatpersist.conversations ENABLE TRIGGER conversations_guard;
SELECT count(*) AS heads FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000a005';
SELECT count(*) AS rows FROM chatpersist.messages
 WHERE user_id IN ('00000000-0000-4000-8000-00000000a004', '00000000-0000-4000-8000-00000000a005');
SELECT version, message_count FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000a004';
-- with the trigger back, the same calls work
SELECT status FROM chatpersist.append_messages('00000000-0000-4000-8000-00000000a004', 'restored', '[{"id":"u2"}]');
