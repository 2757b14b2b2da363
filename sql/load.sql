--
-- load_conversations and load_conversation
--
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000c001', 'old', 'Old', '[{"id":"m1"}]');
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000c001', 'gone', 'Gone', '[]');
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000c002', 'other', 'Not yours', '[]');
SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000c001', 'new', 'New', '[{"id":"m1"},{"id":"m2"}]');
UPDATE chatpersist.conversations SET deleted = true WHERE id = 'gone';

-- live conversations of one user only, newest last_modified first
SELECT id, title, version, message_count, deleted
FROM chatpersist.load_conversations('00000000-0000-0000-0000-00000000c001');
SELECT (SELECT array_agg(id) FROM chatpersist.load_conversations('00000000-0000-0000-0000-00000000c001'))
	 = (SELECT array_agg(id ORDER BY last_modified DESC, id) FROM chatpersist.conversations
		 WHERE user_id = '00000000-0000-0000-0000-00000000c001' AND NOT deleted) AS newest_first;

-- the full row, as the table has it
SELECT user_id, id, title, messages, metadata, version, checksum, message_count, deleted
FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', 'new');

-- no row: missing, deleted, or another user's
SELECT count(*) FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', 'missing');
SELECT count(*) FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', 'gone');
SELECT count(*) FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', 'other');
SELECT count(*) FROM chatpersist.load_conversations('00000000-0000-0000-0000-00000000c003');

-- usable as a row source in joins
SELECT c.id, jsonb_array_length(c.messages) AS n
FROM (VALUES ('old'), ('new')) v(id),
	 LATERAL chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', v.id) c
ORDER BY c.id;

-- large conversations load whole
SELECT status, message_count FROM chatpersist.save_conversation('00000000-0000-0000-0000-00000000c001', 'big', 'Big',
	(SELECT jsonb_agg(jsonb_build_object('id', 'm' || i, 'content', repeat('x', 300), 'created_at', i))
	   FROM generate_series(1, 2000) i));
SELECT message_count, jsonb_array_length(messages), checksum = chatpersist.checksum(messages) AS checksum_ok
FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c001', 'big');

DELETE FROM chatpersist.history WHERE user_id IN ('00000000-0000-0000-0000-00000000c001', '00000000-0000-0000-0000-00000000c002');
DELETE FROM chatpersist.conversations WHERE user_id IN ('00000000-0000-0000-0000-00000000c001', '00000000-0000-0000-0000-00000000c002');

-- loads stay right after a column of the table was dropped (the row type
-- keeps a dropped column that SELECT * leaves out).  Since 2.0 the loads
-- return chatpersist.conversation, not the table's row type, so a column
-- added to the table is not in their rows: every column they return must
-- still be the table's value of that column.
ALTER TABLE chatpersist.conversations ADD COLUMN extra_a text, ADD COLUMN extra_b int;
SELECT chatpersist.save_conversation('00000000-0000-0000-0000-00000000c003', 'd', 'Dropped', '[{"id":"m1"}]');
UPDATE chatpersist.conversations SET extra_a = 'aaaa', extra_b = 7 WHERE user_id = '00000000-0000-0000-0000-00000000c003';
ALTER TABLE chatpersist.conversations DROP COLUMN extra_a;
SELECT id, title, version, messages FROM chatpersist.load_conversations('00000000-0000-0000-0000-00000000c003');
SELECT id, title, deleted FROM chatpersist.load_conversation('00000000-0000-0000-0000-00000000c003', 'd');
SELECT c.extra_b,
	   (l.user_id, l.id, l.title, l.metadata, l.version, l.checksum, l.message_count,
		l.created_at, l.last_modified, l.deleted, l.change_xid)
	   IS NOT DISTINCT FROM
	   (c.user_id, c.id, c.title, c.metadata, c.version, c.checksum, c.message_count,
		c.created_at, c.last_modified, c.deleted, c.change_xid) AS load_is_the_row
FROM chatpersist.conversations c,
	 chatpersist.load_conversation('00000000-0000-0000-0000-00000000c003', 'd') l
WHERE c.user_id = '00000000-0000-0000-0000-00000000c003' AND c.id = 'd';
SELECT count(*) AS load_conversations_is_the_row
FROM chatpersist.conversations c
JOIN chatpersist.load_conversations('00000000-0000-0000-0000-00000000c003') l USING (user_id, id)
WHERE (l.title, l.metadata, l.version, l.checksum, l.message_count,
	   l.created_at, l.last_modified, l.deleted, l.change_xid)
	  IS NOT DISTINCT FROM
	  (c.title, c.metadata, c.version, c.checksum, c.message_count,
	   c.created_at, c.last_modified, c.deleted, c.change_xid);
SELECT version, title FROM chatpersist.conversation_history('00000000-0000-0000-0000-00000000c003', 'd');
ALTER TABLE chatpersist.conversations DROP COLUMN extra_b;
DELETE FROM chatpersist.history WHERE user_id = '00000000-0000-0000-0000-00000000c003';
DELETE FROM chatpersist.conversations WHERE user_id = '00000000-0000-0000-0000-00000000c003';
