--
-- ORM optimistic locking on chatpersist.conversations (issue 11, item 2).
--
-- Rails (lock_version), Hibernate/JPA (@Version), Sequelize (version: true)
-- and django-concurrency write SET version = <read> + 1 ... WHERE version =
-- <read>; TypeORM (@VersionColumn) writes SET version = version + 1.  The
-- guard trigger accepts a new version equal to the stored one (chatpersist's
-- convention) or the stored one plus one (the ORMs'); either way the row
-- ends at the stored version plus one.  Any other value is 40001, naming
-- both versions.  A stale ORM write matches no row (0 rows), which is how
-- every one of these ORMs detects the conflict.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql

SELECT status, version FROM chatpersist.save_conversation(
	'00000000-0000-4000-8000-00000000e001', 'orm', 'Title',
	'[{"id":"m1","content":"hi"}]');

-- The shape of each ORM, as a prepared statement with parameters (the way
-- their drivers send it): title, new version, user, id, read version
PREPARE rails_update(text, bigint, uuid, text, bigint) AS
	UPDATE chatpersist.conversations SET title = $1, version = $2
	 WHERE user_id = $3 AND id = $4 AND version = $5;
PREPARE hibernate_update(text, bigint, uuid, text, bigint) AS
	update chatpersist.conversations set title=$1, version=$2
	 where user_id=$3 and id=$4 and version=$5;
PREPARE sequelize_update(text, bigint, uuid, text, bigint) AS
	UPDATE "chatpersist"."conversations" SET "title"=$1,"version"=$2
	 WHERE "user_id" = $3 AND "id" = $4 AND "version" = $5;
PREPARE django_update(text, bigint, uuid, text, bigint) AS
	UPDATE "chatpersist"."conversations" SET "title" = $1, "version" = $2
	 WHERE ("chatpersist"."conversations"."user_id" = $3
			AND "chatpersist"."conversations"."id" = $4
			AND "chatpersist"."conversations"."version" = $5);
-- TypeORM increments in SQL and returns the new version
PREPARE typeorm_update(text, uuid, text) AS
	UPDATE "chatpersist"."conversations" SET "title" = $1, "version" = "version" + 1
	 WHERE "user_id" = $2 AND "id" = $3 RETURNING "version";

CREATE FUNCTION pg_temp.row_state() RETURNS TABLE (title text, version bigint, checksum_ok boolean, archived bigint)
LANGUAGE sql AS $$
	SELECT c.title, c.version,
		   -- the array: the conversation's message rows that are not removed, in pos order
		   c.checksum = chatpersist.checksum((SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]')
												FROM chatpersist.messages m
											   WHERE m.user_id = c.user_id AND m.conversation_id = c.id
												 AND NOT m.removed)),
		   (SELECT max(h.version) FROM chatpersist.history h
			 WHERE h.user_id = c.user_id AND h.conversation_id = c.id)
	  FROM chatpersist.conversations c
	 WHERE c.user_id = '00000000-0000-4000-8000-00000000e001' AND c.id = 'orm'
$$;

-- Each ORM, fresh: read version n, write n + 1 where version = n.  One row
-- updated, and the row is at n + 1 with the replaced version in history.
EXECUTE rails_update('rails', 2, '00000000-0000-4000-8000-00000000e001', 'orm', 1);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
EXECUTE hibernate_update('hibernate', 3, '00000000-0000-4000-8000-00000000e001', 'orm', 2);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
EXECUTE sequelize_update('sequelize', 4, '00000000-0000-4000-8000-00000000e001', 'orm', 3);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
EXECUTE django_update('django', 5, '00000000-0000-4000-8000-00000000e001', 'orm', 4);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
EXECUTE typeorm_update('typeorm', '00000000-0000-4000-8000-00000000e001', 'orm');
SELECT * FROM pg_temp.row_state();

-- Each ORM, stale: it read version 3, the row is at 6.  No row matches
-- (UPDATE 0), nothing changes, and the ORM raises its stale-object error.
EXECUTE rails_update('stale rails', 4, '00000000-0000-4000-8000-00000000e001', 'orm', 3);
SELECT :ROW_COUNT AS rows_updated;
EXECUTE hibernate_update('stale hibernate', 4, '00000000-0000-4000-8000-00000000e001', 'orm', 3);
SELECT :ROW_COUNT AS rows_updated;
EXECUTE sequelize_update('stale sequelize', 4, '00000000-0000-4000-8000-00000000e001', 'orm', 3);
SELECT :ROW_COUNT AS rows_updated;
EXECUTE django_update('stale django', 4, '00000000-0000-4000-8000-00000000e001', 'orm', 3);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();

-- The same stale write without the WHERE guard (an ORM configured without
-- it, or hand-written SQL) reaches the trigger: 40001 names both versions
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'stale', version = 4
	WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND id = 'orm'$$);
-- ahead of the row by two: also refused
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'ahead', version = 8
	WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND id = 'orm'$$);
-- NULL: refused
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'null', version = NULL
	WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND id = 'orm'$$);
SELECT * FROM pg_temp.row_state();

-- chatpersist's own convention still works: the stored version, bumped by one
UPDATE chatpersist.conversations SET title = 'own', version = 6
 WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND id = 'orm'
RETURNING version;

-- An ORM write that changes nothing but the version (Rails' touch, an
-- optimistic "lock!" without changes) still moves the row to the version
-- the ORM now holds, so that its next write, guarded by that version, matches
EXECUTE rails_update('own', 8, '00000000-0000-4000-8000-00000000e001', 'orm', 7);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
EXECUTE rails_update('after touch', 9, '00000000-0000-4000-8000-00000000e001', 'orm', 8);
SELECT :ROW_COUNT AS rows_updated;
SELECT * FROM pg_temp.row_state();
-- ... while the chatpersist convention with the same content writes nothing
UPDATE chatpersist.conversations SET title = 'after touch', version = 9
 WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND id = 'orm'
RETURNING version;

-- The functions go on from the ORM's versions: a save expecting 9 updates
SELECT status, version FROM chatpersist.save_conversation(
	'00000000-0000-4000-8000-00000000e001', 'orm', NULL,
	'[{"id":"m1","content":"hi"},{"id":"m2","content":"yo"}]',
	p_expected_version := 9);

-- Every replaced version is in history once, each with its own content
SELECT version, title, replaced_by FROM chatpersist.history
 WHERE user_id = '00000000-0000-4000-8000-00000000e001' AND conversation_id = 'orm'
 ORDER BY version;

DEALLOCATE ALL;
TRUNCATE chatpersist.conversations, chatpersist.messages, chatpersist.history, chatpersist.history_messages;
