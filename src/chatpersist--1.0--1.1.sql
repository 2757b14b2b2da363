/* src/chatpersist--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION chatpersist UPDATE TO '1.1'" to load this file. \quit

-- 1.1: change cursors that survive moves of the data (src/cursor.c), and
-- version floors, so that a version number is never reused (src/trigger.c).
-- There is no full chatpersist--1.1.sql: CREATE EXTENSION runs 1.0 and
-- then this script, so a fresh database and an upgraded one have exactly
-- the same objects, trigger states included.

--
-- Where untagged (1.0) cursors were issued.  Not dumped (not a
-- configuration table): a restore records its own transaction through
-- CREATE EXTENSION, so cursors of the dumped database read as foreign.
--

CREATE TABLE @extschema@.cursor_legacy (
	untagged_below	pg_catalog.xid8 NOT NULL
);

COMMENT ON TABLE @extschema@.cursor_legacy IS
	'internal: untagged (1.0) change cursors are stamps of this database only below untagged_below, the transaction that installed 1.1 here';

ALTER TABLE @extschema@.cursor_legacy ENABLE ROW LEVEL SECURITY;

INSERT INTO @extschema@.cursor_legacy (untagged_below)
	VALUES (pg_catalog.pg_current_xact_id());

--
-- Version floors: the newest version each conversation key has had, kept
-- when a plain DELETE removes the row (even when history keeps nothing),
-- and the row that every INSERT of the key locks while it chooses the new
-- row's version (src/history.c, CpHistoryNextVersion).  A key gets its row when it
-- is first inserted or deleted.  Not dumped: a restored database rebuilds
-- floors from history and its rows (see docs/reference.md).
--

CREATE TABLE @extschema@.version_floors (
	user_id			pg_catalog.uuid NOT NULL,
	conversation_id	pg_catalog.text NOT NULL,
	version			pg_catalog.int8 NOT NULL,
	CONSTRAINT version_floors_pkey PRIMARY KEY (user_id, conversation_id)
);

COMMENT ON TABLE @extschema@.version_floors IS
	'internal: per conversation key, the newest version a plain DELETE removed (a re-created row continues above it) and the row INSERTs of the key lock while they choose a version';

ALTER TABLE @extschema@.version_floors ENABLE ROW LEVEL SECURITY;

-- Keys that 1.0 deleted with a plain DELETE: their newest archived version
INSERT INTO @extschema@.version_floors (user_id, conversation_id, version)
SELECT h.user_id, h.conversation_id, pg_catalog.max(h.version)
  FROM @extschema@.history h
 WHERE NOT EXISTS (SELECT FROM @extschema@.conversations c
					WHERE c.user_id OPERATOR(pg_catalog.=) h.user_id
					  AND c.id OPERATOR(pg_catalog.=) h.conversation_id)
 GROUP BY h.user_id, h.conversation_id;

--
-- Stamps of rows that arrive in replica mode (logical replication, a
-- data load with session_replication_role = replica)
--

CREATE FUNCTION @extschema@.conversations_restamp()
RETURNS trigger
AS 'MODULE_PATHNAME', 'chatpersist_conversations_restamp'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.conversations_restamp() IS
	'internal: BEFORE INSERT OR UPDATE trigger of chatpersist.conversations, enabled ALWAYS, that stamps rows written in replica mode with the writing transaction';

CREATE TRIGGER conversations_restamp
	BEFORE INSERT OR UPDATE ON @extschema@.conversations
	FOR EACH ROW EXECUTE FUNCTION @extschema@.conversations_restamp();

-- fire in replica mode too, where logical replication's apply runs
ALTER TABLE @extschema@.conversations ENABLE ALWAYS TRIGGER conversations_restamp;

CREATE FUNCTION @extschema@.restamp()
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'chatpersist_restamp'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.restamp() IS
	'Re-stamp every conversation with the calling transaction (after pg_restore --disable-triggers or another load that bypassed the triggers) and re-enable the restamp trigger ALWAYS; owner or superuser only; returns the number of rows';

CREATE FUNCTION @extschema@.cursor_origin()
RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'chatpersist_cursor_origin'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.cursor_origin() IS
	'This database''s origin tag: the bits above the 40-bit stamp of every change cursor it hands out';

COMMENT ON FUNCTION @extschema@.changes_since(pg_catalog.uuid, pg_catalog.int8) IS
	'A user''s conversations changed after the cursor, tombstones included, in cursor order; passing the largest cursor seen never misses a committed change; a cursor of another database (a restore, a replica, another worker) returns everything';

REVOKE ALL ON FUNCTION @extschema@.conversations_restamp() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.restamp() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.cursor_origin() FROM PUBLIC;
