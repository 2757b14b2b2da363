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
