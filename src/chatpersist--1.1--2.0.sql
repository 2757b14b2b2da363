/* src/chatpersist--1.1--2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION chatpersist UPDATE TO '2.0'" to load this file. \quit

-- 2.0: one row per message (docs/design-2.0.md).  A conversation's array
-- moves from conversations.messages into rows of chatpersist.messages, and
-- history keeps, per archived version, the head (title, metadata,
-- checksum, ...) in chatpersist.history and only the message copies a write
-- replaced in chatpersist.history_messages.  Versions, checksums,
-- timestamps, change stamps and history are kept as they are.  As for 1.1,
-- there is no full chatpersist--2.0.sql: CREATE EXTENSION runs 1.0, 1.1 and
-- this script, so that a fresh database and an upgraded one have the same
-- objects.

--
-- Message rows
--

CREATE TABLE @extschema@.messages (
	user_id			pg_catalog.uuid NOT NULL,
	conversation_id	pg_catalog.text NOT NULL,
	id				pg_catalog.text NOT NULL,
	pos				pg_catalog.int8 NOT NULL,
	message			pg_catalog.jsonb NOT NULL,
	hash			pg_catalog.int8 NOT NULL,
	added_version	pg_catalog.int8 NOT NULL,
	changed_version	pg_catalog.int8 NOT NULL,
	removed			pg_catalog.bool NOT NULL DEFAULT false,
	accepted		pg_catalog.int8[],
	CONSTRAINT messages_pkey PRIMARY KEY (user_id, conversation_id, id),
	CONSTRAINT messages_id_length
		CHECK (pg_catalog.octet_length(id) OPERATOR(pg_catalog.>=) 1
			   AND pg_catalog.octet_length(id) OPERATOR(pg_catalog.<=) 255)
);

COMMENT ON TABLE @extschema@.messages IS
	'One row per message of every conversation: live messages and message tombstones (the array, in pos order) and messages a write removed (removed = true, kept so that a stale device cannot bring them back)';
COMMENT ON COLUMN @extschema@.messages.pos IS
	'Ordering key: the array is the rows that are not removed, in pos order';
COMMENT ON COLUMN @extschema@.messages.message IS
	'The message object exactly as stored, as the arrays the functions return hold it';
COMMENT ON COLUMN @extschema@.messages.hash IS
	'XXH3-64 of the message''s canonical text (computed, never taken from a client)';
COMMENT ON COLUMN @extschema@.messages.added_version IS
	'The conversation version at which this message id first appeared';
COMMENT ON COLUMN @extschema@.messages.changed_version IS
	'The conversation version at which the current copy, its position or its removal was written';
COMMENT ON COLUMN @extschema@.messages.removed IS
	'Removed from the array by a write; the row is kept as memory of the id';
COMMENT ON COLUMN @extschema@.messages.accepted IS
	'Hashes of earlier copies the server accepted for this id (the first and the last 15; computed, never taken from a client): a save or append that sends one of them again is a replay and changes nothing';

CREATE TABLE @extschema@.history_messages (
	user_id			pg_catalog.uuid NOT NULL,
	conversation_id	pg_catalog.text NOT NULL,
	id				pg_catalog.text NOT NULL,
	valid_from		pg_catalog.int8 NOT NULL,
	valid_to		pg_catalog.int8 NOT NULL,
	pos				pg_catalog.int8 NOT NULL,
	message			pg_catalog.jsonb NOT NULL,
	CONSTRAINT history_messages_pkey PRIMARY KEY (user_id, conversation_id, id, valid_from)
);

COMMENT ON TABLE @extschema@.history_messages IS
	'Message copies a write replaced or removed, each with the versions [valid_from, valid_to) in which it was current and its position then; with chatpersist.history they rebuild the archived versions';

ALTER TABLE @extschema@.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.history_messages ENABLE ROW LEVEL SECURITY;

CREATE POLICY messages_own ON @extschema@.messages
	USING (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id())
	WITH CHECK (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id());

CREATE POLICY history_messages_own ON @extschema@.history_messages
	USING (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id())
	WITH CHECK (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id());

DO $$
BEGIN
	ALTER TABLE @extschema@.messages
		ALTER COLUMN message SET COMPRESSION lz4;
	ALTER TABLE @extschema@.history_messages
		ALTER COLUMN message SET COMPRESSION lz4;
EXCEPTION
	WHEN feature_not_supported THEN
		NULL;					-- the 1.0 script said so already
END
$$;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.history_messages', '');

--
-- What the head keeps so that an append need not read the array: the XXH3
-- state after the array's text without its closing bracket, the array's
-- length (tombstones included) and its size as one jsonb value, and the
-- largest ordering key in use.  NULL state: recompute from the rows.
--

ALTER TABLE @extschema@.conversations
	ADD COLUMN hash_state pg_catalog.bytea,
	ADD COLUMN array_length pg_catalog.int4,
	ADD COLUMN array_bytes pg_catalog.int8,
	ADD COLUMN last_pos pg_catalog.int8 NOT NULL DEFAULT 0;

COMMENT ON COLUMN @extschema@.conversations.hash_state IS
	'internal: XXH3 streaming state of the array''s canonical text without its closing bracket (NULL: recomputed from the rows)';
COMMENT ON COLUMN @extschema@.conversations.array_length IS
	'internal: messages in the array, tombstones included (NULL: recomputed from the rows)';
COMMENT ON COLUMN @extschema@.conversations.array_bytes IS
	'internal: size of the array as one jsonb value, for chatpersist.max_conversation_bytes (NULL: recomputed from the rows)';
COMMENT ON COLUMN @extschema@.conversations.last_pos IS
	'internal: the largest ordering key of the conversation''s message rows';

-- Every write updates its conversation's row: leave room on each page so
-- that the new row version goes on the same page (a HOT update, with no
-- index entry and no row moved to another page).  Rows already stored
-- keep their pages until they are next updated.
ALTER TABLE @extschema@.conversations SET (fillfactor = 70);

--
-- Move the arrays into rows.  The guard triggers must not see this as a
-- client write, and 1.0 knew no better stamp than the conversation's
-- version for each message.
--

ALTER TABLE @extschema@.conversations DISABLE TRIGGER USER;

INSERT INTO @extschema@.messages
	(user_id, conversation_id, id, pos, message, hash, added_version, changed_version)
SELECT c.user_id, c.id, e.m OPERATOR(pg_catalog.->>) 'id',
	   e.ord OPERATOR(pg_catalog.<<) 16, e.m,
	   ('x' OPERATOR(pg_catalog.||) @extschema@.checksum(e.m))::pg_catalog.bit(64)::pg_catalog.int8,
	   c.version, c.version
  FROM @extschema@.conversations c,
	   pg_catalog.jsonb_array_elements(c.messages) WITH ORDINALITY AS e (m, ord);

UPDATE @extschema@.conversations
   SET last_pos = pg_catalog.jsonb_array_length(messages)::pg_catalog.int8 OPERATOR(pg_catalog.<<) 16;

-- Each archived version keeps its whole array, valid for that version only
INSERT INTO @extschema@.history_messages
	(user_id, conversation_id, id, valid_from, valid_to, pos, message)
SELECT h.user_id, h.conversation_id, e.m OPERATOR(pg_catalog.->>) 'id',
	   h.version, h.version OPERATOR(pg_catalog.+) 1,
	   e.ord OPERATOR(pg_catalog.<<) 16, e.m
  FROM @extschema@.history h,
	   pg_catalog.jsonb_array_elements(h.messages) WITH ORDINALITY AS e (m, ord);

-- The retry memory starts with the copies history kept: every other copy of
-- an id, oldest first (the first and the last 15, as writes keep it)
UPDATE @extschema@.messages m
   SET accepted = a.hashes[1:1] OPERATOR(pg_catalog.||)
				  a.hashes[GREATEST(2, pg_catalog.cardinality(a.hashes) OPERATOR(pg_catalog.-) 14):]
  FROM (SELECT x.user_id, x.conversation_id, x.id,
			   pg_catalog.array_agg(x.hash ORDER BY x.first_seen) AS hashes
		  FROM (SELECT hm.user_id, hm.conversation_id, hm.id,
					   ('x' OPERATOR(pg_catalog.||) @extschema@.checksum(hm.message))::pg_catalog.bit(64)::pg_catalog.int8 AS hash,
					   pg_catalog.min(hm.valid_from) AS first_seen
				  FROM @extschema@.history_messages hm
				 GROUP BY 1, 2, 3, 4) x
		 GROUP BY 1, 2, 3) a
 WHERE m.user_id OPERATOR(pg_catalog.=) a.user_id
   AND m.conversation_id OPERATOR(pg_catalog.=) a.conversation_id
   AND m.id OPERATOR(pg_catalog.=) a.id;
UPDATE @extschema@.messages
   SET accepted = NULLIF(pg_catalog.array_remove(accepted, hash), '{}')
 WHERE accepted IS NOT NULL;

ALTER TABLE @extschema@.conversations ENABLE TRIGGER USER;
ALTER TABLE @extschema@.conversations ENABLE ALWAYS TRIGGER conversations_restamp;

--
-- The functions that returned the 1.x rows return composites of the same
-- shape, built from the rows.  Their grants are carried over.
--

CREATE TYPE @extschema@.conversation AS (
	user_id			pg_catalog.uuid,
	id				pg_catalog.text,
	title			pg_catalog.text,
	messages		pg_catalog.jsonb,
	metadata		pg_catalog.jsonb,
	version			pg_catalog.int8,
	checksum		pg_catalog.text,
	message_count	pg_catalog.int4,
	created_at		pg_catalog.timestamptz,
	last_modified	pg_catalog.timestamptz,
	deleted			pg_catalog.bool,
	change_xid		pg_catalog.xid8
);

COMMENT ON TYPE @extschema@.conversation IS
	'A conversation as load_conversation(s) return it: the head''s columns and its message array';

CREATE TYPE @extschema@.archived_version AS (
	user_id			pg_catalog.uuid,
	conversation_id	pg_catalog.text,
	version			pg_catalog.int8,
	title			pg_catalog.text,
	messages		pg_catalog.jsonb,
	metadata		pg_catalog.jsonb,
	checksum		pg_catalog.text,
	message_count	pg_catalog.int4,
	deleted			pg_catalog.bool,
	last_modified	pg_catalog.timestamptz,
	replaced_at		pg_catalog.timestamptz,
	replaced_by		pg_catalog.text,
	discarded		pg_catalog.jsonb
);

COMMENT ON TYPE @extschema@.archived_version IS
	'An archived version as conversation_history returns it, its message array rebuilt';

-- (kept in a transaction-local setting: a table made here would become a
-- member of the extension)
SELECT pg_catalog.set_config('cp_upgrade.kept_grants', COALESCE(pg_catalog.jsonb_agg(g)::pg_catalog.text, '[]'), true)
  FROM (SELECT p.proname::pg_catalog.text AS fn, a.grantee::pg_catalog.int8 AS grantee,
			   a.is_grantable
		  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
		 WHERE p.pronamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
		   AND p.proname IN ('load_conversations', 'load_conversation', 'conversation_history')
		   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner) AS g;

DROP FUNCTION @extschema@.load_conversations(pg_catalog.uuid);
DROP FUNCTION @extschema@.load_conversation(pg_catalog.uuid, pg_catalog.text);
DROP FUNCTION @extschema@.conversation_history(pg_catalog.uuid, pg_catalog.text);

CREATE FUNCTION @extschema@.load_conversations(p_user_id pg_catalog.uuid)
RETURNS SETOF @extschema@.conversation
AS 'MODULE_PATHNAME', 'chatpersist_load_conversations'
LANGUAGE C STABLE ROWS 100;

COMMENT ON FUNCTION @extschema@.load_conversations(pg_catalog.uuid) IS
	'A user''s live (not deleted) conversations, newest last_modified first';

CREATE FUNCTION @extschema@.load_conversation(p_user_id pg_catalog.uuid, p_conversation_id pg_catalog.text)
RETURNS SETOF @extschema@.conversation
AS 'MODULE_PATHNAME', 'chatpersist_load_conversation'
LANGUAGE C STABLE ROWS 1;

COMMENT ON FUNCTION @extschema@.load_conversation(pg_catalog.uuid, pg_catalog.text) IS
	'One live conversation of a user, or no row';

CREATE FUNCTION @extschema@.conversation_history(p_user_id pg_catalog.uuid, p_conversation_id pg_catalog.text)
RETURNS SETOF @extschema@.archived_version
AS 'MODULE_PATHNAME', 'chatpersist_conversation_history'
LANGUAGE C STABLE ROWS 10;

COMMENT ON FUNCTION @extschema@.conversation_history(pg_catalog.uuid, pg_catalog.text) IS
	'The archived versions of a conversation, newest first, with how each was replaced and the message copies that lost a conflict';

REVOKE ALL ON FUNCTION @extschema@.load_conversations(pg_catalog.uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.load_conversation(pg_catalog.uuid, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.conversation_history(pg_catalog.uuid, pg_catalog.text) FROM PUBLIC;

DO $$
DECLARE
	g record;
	sig pg_catalog.text;
BEGIN
	FOR g IN SELECT * FROM pg_catalog.jsonb_to_recordset(
				pg_catalog.current_setting('cp_upgrade.kept_grants')::pg_catalog.jsonb)
			AS k (fn pg_catalog.text, grantee pg_catalog.int8, is_grantable pg_catalog.bool) LOOP
		sig := CASE g.fn
			WHEN 'load_conversations' THEN '(pg_catalog.uuid)'
			ELSE '(pg_catalog.uuid, pg_catalog.text)' END;
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.%I%s TO %s%s',
			g.fn, sig,
			CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
				 ELSE g.grantee::pg_catalog.oid::pg_catalog.regrole::pg_catalog.text END,
			CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
END
$$;

--
-- The arrays are gone from the heads and from history
--

ALTER TABLE @extschema@.conversations DROP COLUMN messages;
ALTER TABLE @extschema@.history DROP COLUMN messages;

COMMENT ON TABLE @extschema@.conversations IS
	'Chat conversations, one row each (the head: title, metadata, version, checksum; the messages are rows of chatpersist.messages); written through the chatpersist functions or guarded direct SQL';
COMMENT ON TABLE @extschema@.history IS
	'The head of each archived version (the last chatpersist.history_depth versions of each conversation); the message copies are in chatpersist.history_messages';

--
-- Direct SQL on message rows: validated, stamped and folded into a new
-- version of the conversation, one version per row (src/trigger.c)
--

CREATE FUNCTION @extschema@.messages_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'chatpersist_messages_guard'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.messages_guard() IS
	'internal: BEFORE INSERT OR UPDATE OR DELETE trigger of chatpersist.messages';

CREATE TRIGGER messages_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.messages
	FOR EACH ROW EXECUTE FUNCTION @extschema@.messages_guard();

REVOKE ALL ON FUNCTION @extschema@.messages_guard() FROM PUBLIC;

--
-- Delta sync: what a device holding one version needs to reach the
-- current one (src/delta.c, docs/sync.md)
--

CREATE TYPE @extschema@.message_delta AS (
	conversation_id	pg_catalog.text,
	version			pg_catalog.int8,
	checksum		pg_catalog.text,
	title			pg_catalog.text,
	metadata		pg_catalog.jsonb,
	message_count	pg_catalog.int4,
	deleted			pg_catalog.bool,
	last_modified	pg_catalog.timestamptz,
	full_reload		pg_catalog.bool,
	changes			pg_catalog.jsonb
);

COMMENT ON TYPE @extschema@.message_delta IS
	'messages_since''s answer: the head, whether the changes are the whole array (full_reload) or a delta, and the changes';

CREATE FUNCTION @extschema@.messages_since(p_user_id pg_catalog.uuid, p_conversation_id pg_catalog.text, p_version pg_catalog.int8)
RETURNS SETOF @extschema@.message_delta
AS 'MODULE_PATHNAME', 'chatpersist_messages_since'
LANGUAGE C STABLE ROWS 1;

COMMENT ON FUNCTION @extschema@.messages_since(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) IS
	'What a device holding version p_version of a conversation needs to reach the current version: the head and the messages stamped after p_version, each with the id it follows; everything (full_reload) when history no longer holds p_version, or for 0';

REVOKE ALL ON FUNCTION @extschema@.messages_since(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) FROM PUBLIC;
