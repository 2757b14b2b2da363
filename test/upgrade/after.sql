-- test/upgrade/after.sql: writes after the update, through the functions
-- and the head's direct SQL (the same in 1.x and 2.0), and then everything
-- a client can read, without timestamps (they are now's) and cursors.
-- test/upgrade.sh runs it twice: in a copy of the oracle's database with the
-- oracle's library (the 1.x answers), and in the updated database; the two
-- outputs must be equal.  Both have first appended {"id":"after-upgrade"}
-- to every live conversation.  The writes lean on what was written before
-- the update: a base archived then, versions restored from then, a
-- conversation deleted then, a key re-created then.  ON_ERROR_STOP is the
-- caller's: on for the oracle, off for the updated database, so that its
-- output shows every statement that answers differently.
\pset format unaligned
\pset tuples_only on
\set c1 '''00000000-0000-4000-8000-0000000000c1'''
\set c2 '''00000000-0000-4000-8000-0000000000c2'''
\set c3 '''00000000-0000-4000-8000-0000000000c3'''

-- an append at the current version
SELECT 'append trip ' || row_to_json(r)::text
  FROM chatpersist.append_messages(:c1, 'trip', '[{"id":"p1","content":"after the update"}]',
	   (SELECT version FROM chatpersist.conversations WHERE user_id = :c1 AND id = 'trip')) r;
-- a save at the current version that edits m1, drops b1 and adds s1
SELECT 'save trip ' || row_to_json(r)::text
  FROM chatpersist.save_conversation(:c1, 'trip', 'Weekend trip, saved',
	   (SELECT jsonb_agg(CASE WHEN e->>'id' = 'm1'
							  THEN e || '{"content":"Where exactly?","updated_at":1733400000000}'
							  ELSE e END ORDER BY o)
		  FROM jsonb_array_elements((SELECT messages FROM chatpersist.load_conversation(:c1, 'trip')))
			   WITH ORDINALITY AS x (e, o)
		 WHERE e->>'id' <> 'b1') || '[{"id":"s1","content":"saved"}]',
	   p_expected_version := (SELECT version FROM chatpersist.conversations WHERE user_id = :c1 AND id = 'trip')) r;
-- a stale device whose base (version 5) was archived before the update:
-- merged, with a conflict on m1
SELECT 'merge trip ' || row_to_json(r)::text
  FROM chatpersist.save_conversation(:c1, 'trip', NULL,
	   '[{"id":"m1","role":"user","content":"Where to, then?","created_at":1733300000000,"updated_at":1733300009000},{"id":"z1","content":"from a stale device"}]',
	   p_expected_version := 5) r;
-- a version archived before the update, restored
SELECT 'restore trip ' || row_to_json(r)::text FROM chatpersist.restore_version(:c1, 'trip', 3) r;
-- a conversation deleted before the update, revived from its history
SELECT 'restore notes ' || row_to_json(r)::text FROM chatpersist.restore_version(:c1, 'notes', 1) r;
-- the first life of a key that was deleted and re-created before the update
SELECT 'restore sql ' || row_to_json(r)::text FROM chatpersist.restore_version(:c2, 'sql', 2) r;
-- a merge over a long history, base archived before the update
SELECT 'merge long ' || row_to_json(r)::text
  FROM chatpersist.save_conversation(:c3, 'long', NULL,
	   '[{"id":"l1","content":"x, edited","updated_at":5},{"id":"l99","content":"new"}]',
	   p_expected_version := 10) r;
-- an overwrite, a direct UPDATE of a head, a delete
SELECT 'overwrite old ' || row_to_json(r)::text
  FROM chatpersist.save_conversation(:c3, 'old', 'Overwritten', '[{"id":"o2"}]', p_force_overwrite := true) r;
UPDATE chatpersist.conversations SET title = 'Renamed', metadata = '{"renamed": true}'
 WHERE user_id = :c2 AND id = 'sql';
SELECT 'delete old ' || row_to_json(r)::text FROM chatpersist.delete_conversation(:c3, 'old') r;
-- an append to the revived conversation, at a stale version: merged
SELECT 'append notes ' || row_to_json(r)::text
  FROM chatpersist.append_messages(:c1, 'notes', '[{"id":"n2","content":"two"}]', 1) r;

-- what a client reads now
SELECT 'load ' || c.user_id || ' ' || c.id || ' ' || c.title || ' ' || c.messages::text || ' ' ||
	   c.metadata::text || ' ' || c.version || ' ' || c.checksum || ' ' || c.message_count || ' ' || c.deleted
  FROM unnest(ARRAY[:c1, :c2, :c3]::uuid[]) u,
	   LATERAL chatpersist.load_conversations(u) c
 ORDER BY c.user_id, c.id;
SELECT 'head ' || user_id || ' ' || id || ' ' || title || ' ' || metadata::text || ' ' || version || ' ' ||
	   checksum || ' ' || message_count || ' ' || deleted
  FROM chatpersist.conversations ORDER BY user_id, id;
SELECT 'changes ' || u || ' ' || ch.conversation_id || ' ' || ch.version || ' ' || ch.checksum || ' ' || ch.deleted
  FROM unnest(ARRAY[:c1, :c2, :c3]::uuid[]) u,
	   LATERAL chatpersist.changes_since(u, 0) ch
 ORDER BY u, ch.conversation_id;
SELECT 'history ' || h.user_id || ' ' || h.conversation_id || ' ' || h.version || ' ' || h.title || ' ' ||
	   h.messages::text || ' ' || h.metadata::text || ' ' || h.checksum || ' ' || h.message_count || ' ' ||
	   h.deleted || ' ' || h.replaced_by || ' ' || coalesce(h.discarded::text, '-')
  FROM (SELECT DISTINCT user_id, conversation_id FROM chatpersist.history) k,
	   LATERAL chatpersist.conversation_history(k.user_id, k.conversation_id) h
 ORDER BY h.user_id, h.conversation_id, h.version;
