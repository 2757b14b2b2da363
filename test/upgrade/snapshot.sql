-- test/upgrade/snapshot.sql: everything a client can read of the users of
-- test/upgrade/write.sql, through the functions (the storage behind them
-- may change), one line per fact, in a fixed order.  Cursors are left out
-- (test/upgrade.sh checks them apart); timestamps are kept.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SELECT 'load ' || u || ' ' || row_to_json(c)::text
  FROM unnest(ARRAY['00000000-0000-4000-8000-0000000000c1',
					'00000000-0000-4000-8000-0000000000c2',
					'00000000-0000-4000-8000-0000000000c3']::uuid[]) u,
	   LATERAL chatpersist.load_conversations(u) c
 ORDER BY u, c.id;
SELECT 'changes ' || u || ' ' || ch.conversation_id || ' ' || ch.version || ' ' ||
	   ch.checksum || ' ' || ch.deleted || ' ' || ch.last_modified
  FROM unnest(ARRAY['00000000-0000-4000-8000-0000000000c1',
					'00000000-0000-4000-8000-0000000000c2',
					'00000000-0000-4000-8000-0000000000c3']::uuid[]) u,
	   LATERAL chatpersist.changes_since(u, 0) ch
 ORDER BY u, ch.conversation_id;
SELECT 'history ' || row_to_json(h)::text
  FROM (VALUES ('00000000-0000-4000-8000-0000000000c1'::uuid, 'trip'),
			   ('00000000-0000-4000-8000-0000000000c1', 'notes'),
			   ('00000000-0000-4000-8000-0000000000c2', 'sql'),
			   ('00000000-0000-4000-8000-0000000000c3', 'long'),
			   ('00000000-0000-4000-8000-0000000000c3', 'old')) k(u, c),
	   LATERAL chatpersist.conversation_history(k.u, k.c) h
 ORDER BY h.user_id, h.conversation_id, h.version;
