--
-- changes_since: what changed after a cursor, in cursor order.  Cursors are
-- transaction ids, so this file prints only their order, never their
-- values.  test/specs/changes_order.spec proves that no commit is missed
-- when transactions commit out of order.
--
\set u '''00000000-0000-0000-0000-0000000000c5'''
\set other '''00000000-0000-0000-0000-0000000000c6'''

-- pg_temp.try prints an error's SQLSTATE, message, detail and hint
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql

-- nothing yet
SELECT count(*) FROM chatpersist.changes_since(:u);

SELECT chatpersist.save_conversation(:u, 'a', 'A', '[{"id":"m1"}]');
SELECT chatpersist.save_conversation(:u, 'b', 'B', '[{"id":"m1"}]');
SELECT chatpersist.save_conversation(:other, 'a', 'not mine', '[{"id":"m1"}]');

-- a separate transaction's writes are visible once it is older than our
-- snapshot's xmin; every write above was its own transaction
SELECT conversation_id, version, deleted, checksum = chatpersist.checksum('[{"id":"m1"}]') AS checksum_ok
FROM chatpersist.changes_since(:u, 0);
CREATE TEMP TABLE seen AS SELECT * FROM chatpersist.changes_since(:u, 0);
-- cursors grow along the result
SELECT bool_and(c.cursor > p.cursor) AS increasing
FROM seen c JOIN seen p ON p.conversation_id = 'a' AND c.conversation_id = 'b';

-- the largest cursor seen returns nothing new
SELECT count(*) FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen));

-- a later change comes back with a larger cursor; a delete too
SELECT chatpersist.append_messages(:u, 'a', '[{"id":"m2"}]');
SELECT chatpersist.delete_conversation(:u, 'b');
SELECT conversation_id, version, deleted, cursor > (SELECT max(cursor) FROM seen) AS newer
FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen));

-- an unchanged save does not move the cursor
CREATE TEMP TABLE seen2 AS SELECT * FROM chatpersist.changes_since(:u, 0);
SELECT status FROM chatpersist.append_messages(:u, 'a', '[{"id":"m2"}]');
SELECT count(*) FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen2));

-- the reader's own uncommitted writes are not reported until committed
-- (they are not below its own snapshot's xmin)
BEGIN;
SELECT chatpersist.append_messages(:u, 'a', '[{"id":"m3"}]') IS NOT NULL AS written;
SELECT count(*) FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen2));
COMMIT;
SELECT conversation_id, version FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen2));

-- direct SQL writes are reported too
UPDATE chatpersist.conversations SET title = 'A (renamed)' WHERE user_id = :u AND id = 'a';
SELECT conversation_id, version FROM chatpersist.changes_since(:u, (SELECT max(cursor) FROM seen2));

-- NULL cursor means 0; a negative one is refused
SELECT count(*) FROM chatpersist.changes_since(:u, NULL);
SELECT pg_temp.try($$SELECT count(*) FROM chatpersist.changes_since('00000000-0000-0000-0000-0000000000c5', -1)$$);
SELECT pg_temp.try($$SELECT count(*) FROM chatpersist.changes_since(NULL, 0)$$);

--
-- 1.1: a cursor says where it comes from: (origin << 40) | stamp
--
SELECT bool_and(cursor >> 40 = chatpersist.cursor_origin()) AS tagged,
	   bool_and(cursor < (1::int8 << 53)) AS below_2_53
FROM chatpersist.changes_since(:u, 0);
CREATE TEMP TABLE everything AS SELECT conversation_id, version FROM chatpersist.changes_since(:u, 0);
CREATE TEMP TABLE newest AS SELECT max(cursor) AS c FROM chatpersist.changes_since(:u, 0);
-- this database's newest cursor: nothing new
SELECT count(*) FROM chatpersist.changes_since(:u, (SELECT c FROM newest));
-- the same stamp under another origin: a full resync
SELECT count(*) = (SELECT count(*) FROM everything) AS full_resync
FROM chatpersist.changes_since(:u,
	(SELECT (((c >> 40) % 8191 + 1) << 40) | (c & ((1::int8 << 40) - 1)) FROM newest));
-- this origin with a stamp in this database's future (a backup restored
-- to an earlier point): a full resync
SELECT count(*) = (SELECT count(*) FROM everything) AS full_resync
FROM chatpersist.changes_since(:u, (SELECT c | ((1::int8 << 40) - 1) FROM newest));
-- an untagged (1.0) cursor: a stamp of this database only below the
-- transaction that installed 1.1 here; rows written since are all newer
SELECT count(*) = (SELECT count(*) FROM everything) AS all_newer
FROM chatpersist.changes_since(:u, (SELECT untagged_below::text::int8 - 1 FROM chatpersist.cursor_legacy));
SELECT count(*) = (SELECT count(*) FROM everything) AS full_resync
FROM chatpersist.changes_since(:u, (SELECT c & ((1::int8 << 40) - 1) FROM newest));
-- the largest cursor: another origin's, a full resync
SELECT count(*) = (SELECT count(*) FROM everything) AS full_resync
FROM chatpersist.changes_since(:u, 9223372036854775807);

-- a stamp in the future (a row loaded with its triggers disabled) is
-- served as changed now, and restamp() gives it a stamp of this database
ALTER TABLE chatpersist.conversations DISABLE TRIGGER USER;
UPDATE chatpersist.conversations SET change_xid = '1000000000000'::xid8
 WHERE user_id = :u AND id = 'a';
ALTER TABLE chatpersist.conversations ENABLE TRIGGER USER;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'chatpersist.conversations'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT conversation_id, cursor > (SELECT c FROM newest) AS newer
FROM chatpersist.changes_since(:u, (SELECT c FROM newest));
SELECT count(*) AS n_rows FROM chatpersist.conversations \gset
SELECT chatpersist.restamp() = :n_rows AS every_row;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'chatpersist.conversations'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT count(*) AS future_stamps FROM chatpersist.conversations
 WHERE change_xid >= pg_snapshot_xmax(pg_current_snapshot());
SELECT string_agg(conversation_id, ',' ORDER BY conversation_id) AS restamped_rows
FROM chatpersist.changes_since(:u, (SELECT c FROM newest));
-- restamp() kept versions, checksums and history
SELECT e.conversation_id, e.version = c.version AS same_version
FROM everything e JOIN chatpersist.conversations c ON c.user_id = :u AND c.id = e.conversation_id
ORDER BY 1;

-- replica mode (logical replication's apply): the guard is skipped, the
-- restamp trigger stamps the row with the writing transaction
CREATE TEMP TABLE before_replica AS SELECT max(cursor) AS c FROM chatpersist.changes_since(:u, 0);
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE chatpersist.conversations SET title = 'applied', version = version WHERE user_id = :u AND id = 'a';
COMMIT;
SELECT conversation_id, version FROM chatpersist.changes_since(:u, (SELECT c FROM before_replica));

-- restamp() is the owner's: anyone else gets 42501
CREATE ROLE chatpersist_changes_stranger;
GRANT USAGE ON SCHEMA chatpersist TO chatpersist_changes_stranger;
GRANT EXECUTE ON FUNCTION chatpersist.restamp() TO chatpersist_changes_stranger;
SET ROLE chatpersist_changes_stranger;
SELECT pg_temp.try($$SELECT chatpersist.restamp()$$);
RESET ROLE;
REVOKE ALL ON FUNCTION chatpersist.restamp() FROM chatpersist_changes_stranger;
REVOKE ALL ON SCHEMA chatpersist FROM chatpersist_changes_stranger;
DROP ROLE chatpersist_changes_stranger;
