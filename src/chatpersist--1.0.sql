/* src/chatpersist--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION chatpersist" to load this file. \quit

--
-- Types
--

CREATE TYPE @extschema@.save_result AS (
	status			pg_catalog.text,
	conversation_id	pg_catalog.text,
	version			pg_catalog.int8,
	checksum		pg_catalog.text,
	message_count	pg_catalog.int4,
	conflicts		pg_catalog.int4
);

COMMENT ON TYPE @extschema@.save_result IS
	'Result of a chatpersist save: status (created, updated, unchanged, merged, overwritten), the conversation id, its version, checksum and live message count after the call, and the number of message-level conflicts resolved';

--
-- Tables
--

CREATE TABLE @extschema@.conversations (
	user_id			pg_catalog.uuid NOT NULL,
	id				pg_catalog.text NOT NULL,
	title			pg_catalog.text NOT NULL DEFAULT '',
	messages		pg_catalog.jsonb NOT NULL DEFAULT '[]',
	metadata		pg_catalog.jsonb NOT NULL DEFAULT '{}',
	version			pg_catalog.int8 NOT NULL,
	checksum		pg_catalog.text NOT NULL,
	message_count	pg_catalog.int4 NOT NULL,
	created_at		pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_modified	pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
	deleted			pg_catalog.bool NOT NULL DEFAULT false,
	change_xid		pg_catalog.xid8 NOT NULL,
	CONSTRAINT conversations_pkey PRIMARY KEY (user_id, id),
	CONSTRAINT conversations_id_length
		CHECK (pg_catalog.octet_length(id) OPERATOR(pg_catalog.>=) 1
			   AND pg_catalog.octet_length(id) OPERATOR(pg_catalog.<=) 255)
);

COMMENT ON TABLE @extschema@.conversations IS
	'Chat conversations, one row each; written through the chatpersist functions or guarded direct SQL';
COMMENT ON COLUMN @extschema@.conversations.change_xid IS
	'Transaction that last changed the row (the change cursor)';

CREATE TABLE @extschema@.history (
	user_id			pg_catalog.uuid NOT NULL,
	conversation_id	pg_catalog.text NOT NULL,
	version			pg_catalog.int8 NOT NULL,
	title			pg_catalog.text NOT NULL,
	messages		pg_catalog.jsonb NOT NULL,
	metadata		pg_catalog.jsonb NOT NULL,
	checksum		pg_catalog.text NOT NULL,
	message_count	pg_catalog.int4 NOT NULL,
	deleted			pg_catalog.bool NOT NULL,
	last_modified	pg_catalog.timestamptz NOT NULL,
	replaced_at		pg_catalog.timestamptz NOT NULL,
	replaced_by		pg_catalog.text NOT NULL,
	discarded		pg_catalog.jsonb,
	CONSTRAINT history_pkey PRIMARY KEY (user_id, conversation_id, version)
);

COMMENT ON TABLE @extschema@.history IS
	'Content replaced by each write, kept for the last chatpersist.history_depth versions of each conversation';
COMMENT ON COLUMN @extschema@.history.replaced_by IS
	'How the version was replaced: created (a write reviving a deleted conversation), updated, merged, overwritten, deleted, restored (the functions), direct (SQL UPDATE) or delete (SQL DELETE)';
COMMENT ON COLUMN @extschema@.history.discarded IS
	'Incoming message copies that lost a message-level conflict in the merge that replaced this version';

-- jsonb columns compress with lz4 where the server was built with it
DO $$
BEGIN
	ALTER TABLE @extschema@.conversations
		ALTER COLUMN messages SET COMPRESSION lz4,
		ALTER COLUMN metadata SET COMPRESSION lz4;
	ALTER TABLE @extschema@.history
		ALTER COLUMN messages SET COMPRESSION lz4,
		ALTER COLUMN metadata SET COMPRESSION lz4,
		ALTER COLUMN discarded SET COMPRESSION lz4;
EXCEPTION
	WHEN feature_not_supported THEN
		RAISE NOTICE 'lz4 is not available in this server; chatpersist keeps the default TOAST compression';
END
$$;

-- Chat rows are user data: pg_dump must dump them
SELECT pg_catalog.pg_extension_config_dump('@extschema@.conversations', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.history', '');

--
-- Row-level security: a role that is not the owner and has no BYPASSRLS
-- sees and changes only the rows of chatpersist.current_user_id().  The
-- policies compare the leading key column with a STABLE function, which is
-- evaluated once per scan and uses the primary key (Citus refuses the
-- subquery form on distributed tables).
--

CREATE FUNCTION @extschema@.current_user_id()
RETURNS pg_catalog.uuid
AS 'MODULE_PATHNAME', 'chatpersist_current_user_id'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.current_user_id() IS
	'The caller''s user id for row-level security: chatpersist.user_id, else the sub of request.jwt.claims, else request.jwt.claim.sub, else NULL';

ALTER TABLE @extschema@.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.history ENABLE ROW LEVEL SECURITY;

CREATE POLICY conversations_own ON @extschema@.conversations
	USING (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id())
	WITH CHECK (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id());

CREATE POLICY history_own ON @extschema@.history
	USING (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id())
	WITH CHECK (user_id OPERATOR(pg_catalog.=) @extschema@.current_user_id());

--
-- The guard trigger: validation, computed columns, version check, history
--

CREATE FUNCTION @extschema@.conversations_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'chatpersist_conversations_guard'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.conversations_guard() IS
	'internal: BEFORE INSERT OR UPDATE OR DELETE trigger of chatpersist.conversations';

CREATE TRIGGER conversations_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.conversations
	FOR EACH ROW EXECUTE FUNCTION @extschema@.conversations_guard();

CREATE FUNCTION @extschema@.conversations_notify()
RETURNS trigger
AS 'MODULE_PATHNAME', 'chatpersist_conversations_notify'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.conversations_notify() IS
	'internal: AFTER trigger of chatpersist.conversations that sends NOTIFY chatpersist_changes while chatpersist.notify is on';

-- The WHEN clause keeps the trigger from queueing anything while the
-- setting is off (the default)
CREATE TRIGGER conversations_notify
	AFTER INSERT OR UPDATE OR DELETE ON @extschema@.conversations
	FOR EACH ROW
	WHEN (pg_catalog.current_setting('chatpersist.notify', true) OPERATOR(pg_catalog.=) 'on')
	EXECUTE FUNCTION @extschema@.conversations_notify();

--
-- Functions
--

CREATE FUNCTION @extschema@.checksum(p_messages pg_catalog.jsonb)
RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'chatpersist_checksum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.checksum(pg_catalog.jsonb) IS
	'XXH3-64 (seed 0) of the canonical text of a jsonb value, as 16 lowercase hex digits';

CREATE FUNCTION @extschema@.merge_messages(p_ours pg_catalog.jsonb, p_theirs pg_catalog.jsonb)
RETURNS pg_catalog.jsonb
AS 'MODULE_PATHNAME', 'chatpersist_merge_messages'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.merge_messages(pg_catalog.jsonb, pg_catalog.jsonb) IS
	'Two-way merge of two message arrays: the union by message id, each side''s order kept';

CREATE FUNCTION @extschema@.merge_messages(p_base pg_catalog.jsonb, p_ours pg_catalog.jsonb, p_theirs pg_catalog.jsonb)
RETURNS pg_catalog.jsonb
AS 'MODULE_PATHNAME', 'chatpersist_merge_messages3'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.merge_messages(pg_catalog.jsonb, pg_catalog.jsonb, pg_catalog.jsonb) IS
	'Three-way merge of two message arrays against their common base (NULL base: two-way merge)';

CREATE FUNCTION @extschema@.save_conversation(
	p_user_id pg_catalog.uuid,
	p_conversation_id pg_catalog.text,
	p_title pg_catalog.text,
	p_messages pg_catalog.jsonb,
	p_force_overwrite pg_catalog.bool DEFAULT false,
	p_expected_version pg_catalog.int8 DEFAULT NULL,
	p_metadata pg_catalog.jsonb DEFAULT NULL)
RETURNS @extschema@.save_result
AS 'MODULE_PATHNAME', 'chatpersist_save_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.save_conversation(pg_catalog.uuid, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8, pg_catalog.jsonb) IS
	'Save a conversation with a version compare-and-swap; a stale or missing expected version merges instead of losing messages';

CREATE FUNCTION @extschema@.append_messages(
	p_user_id pg_catalog.uuid,
	p_conversation_id pg_catalog.text,
	p_messages pg_catalog.jsonb,
	p_expected_version pg_catalog.int8 DEFAULT NULL)
RETURNS @extschema@.save_result
AS 'MODULE_PATHNAME', 'chatpersist_append_messages'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.append_messages(pg_catalog.uuid, pg_catalog.text, pg_catalog.jsonb, pg_catalog.int8) IS
	'Add or update only the given messages (by id), creating the conversation if missing; a stale expected version merges like save_conversation';

CREATE FUNCTION @extschema@.delete_conversation(
	p_user_id pg_catalog.uuid,
	p_conversation_id pg_catalog.text,
	p_expected_version pg_catalog.int8 DEFAULT NULL)
RETURNS @extschema@.save_result
AS 'MODULE_PATHNAME', 'chatpersist_delete_conversation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.delete_conversation(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) IS
	'Turn a conversation into a tombstone (status deleted) that other devices learn of through changes_since; its content stays in history';

CREATE FUNCTION @extschema@.restore_version(
	p_user_id pg_catalog.uuid,
	p_conversation_id pg_catalog.text,
	p_version pg_catalog.int8)
RETURNS @extschema@.save_result
AS 'MODULE_PATHNAME', 'chatpersist_restore_version'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.restore_version(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) IS
	'Write an archived version''s content as a new version (status updated)';

CREATE FUNCTION @extschema@.load_conversations(p_user_id pg_catalog.uuid)
RETURNS SETOF @extschema@.conversations
AS 'MODULE_PATHNAME', 'chatpersist_load_conversations'
LANGUAGE C STABLE ROWS 100;

COMMENT ON FUNCTION @extschema@.load_conversations(pg_catalog.uuid) IS
	'A user''s live (not deleted) conversations, newest last_modified first';

CREATE FUNCTION @extschema@.load_conversation(p_user_id pg_catalog.uuid, p_conversation_id pg_catalog.text)
RETURNS SETOF @extschema@.conversations
AS 'MODULE_PATHNAME', 'chatpersist_load_conversation'
LANGUAGE C STABLE ROWS 1;

COMMENT ON FUNCTION @extschema@.load_conversation(pg_catalog.uuid, pg_catalog.text) IS
	'One live conversation of a user, or no row';

CREATE FUNCTION @extschema@.changes_since(p_user_id pg_catalog.uuid, p_cursor pg_catalog.int8 DEFAULT 0)
RETURNS TABLE (
	conversation_id	pg_catalog.text,
	version			pg_catalog.int8,
	checksum		pg_catalog.text,
	deleted			pg_catalog.bool,
	last_modified	pg_catalog.timestamptz,
	cursor			pg_catalog.int8)
AS 'MODULE_PATHNAME', 'chatpersist_changes_since'
LANGUAGE C STABLE ROWS 10;

COMMENT ON FUNCTION @extschema@.changes_since(pg_catalog.uuid, pg_catalog.int8) IS
	'A user''s conversations changed after the cursor, tombstones included, in cursor order; passing the largest cursor seen never misses a committed change';

CREATE FUNCTION @extschema@.conversation_history(p_user_id pg_catalog.uuid, p_conversation_id pg_catalog.text)
RETURNS SETOF @extschema@.history
AS 'MODULE_PATHNAME', 'chatpersist_conversation_history'
LANGUAGE C STABLE ROWS 10;

COMMENT ON FUNCTION @extschema@.conversation_history(pg_catalog.uuid, pg_catalog.text) IS
	'The archived versions of a conversation, newest first, with how each was replaced and the message copies that lost a conflict';

CREATE FUNCTION @extschema@.migrate_user(p_from_user pg_catalog.uuid, p_to_user pg_catalog.uuid)
RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'chatpersist_migrate_user'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.migrate_user(pg_catalog.uuid, pg_catalog.uuid) IS
	'Move every conversation of a guest to a signed-in account, merging those both have; returns how many moved. The caller must be able to write both users'' rows';

CREATE FUNCTION @extschema@.import_app_state(p_user_id pg_catalog.uuid, p_app_state pg_catalog.jsonb)
RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'chatpersist_import_app_state'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.import_app_state(pg_catalog.uuid, pg_catalog.jsonb) IS
	'Import conversations kept in a legacy app_state value (an object keyed by conversation id, or an array of conversations); idempotent; returns how many were created or changed';

CREATE FUNCTION @extschema@.stats()
RETURNS TABLE (name pg_catalog.text, value pg_catalog.int8)
AS 'MODULE_PATHNAME', 'chatpersist_stats'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.stats() IS
	'Counters of saves by status, merges, conflicts, stale direct updates and rejected inputs; cluster-wide when chatpersist is in shared_preload_libraries (row cluster_wide = 1), else this session''s';

--
-- No privileges for anyone but the owner until granted (see docs/)
--

REVOKE ALL ON FUNCTION @extschema@.conversations_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.conversations_notify() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.append_messages(pg_catalog.uuid, pg_catalog.text, pg_catalog.jsonb, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.delete_conversation(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.restore_version(pg_catalog.uuid, pg_catalog.text, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.changes_since(pg_catalog.uuid, pg_catalog.int8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.conversation_history(pg_catalog.uuid, pg_catalog.text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.current_user_id() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.migrate_user(pg_catalog.uuid, pg_catalog.uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.import_app_state(pg_catalog.uuid, pg_catalog.jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.checksum(pg_catalog.jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.merge_messages(pg_catalog.jsonb, pg_catalog.jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.merge_messages(pg_catalog.jsonb, pg_catalog.jsonb, pg_catalog.jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.save_conversation(pg_catalog.uuid, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.bool, pg_catalog.int8, pg_catalog.jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.load_conversations(pg_catalog.uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.load_conversation(pg_catalog.uuid, pg_catalog.text) FROM PUBLIC;
