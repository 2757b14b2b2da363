-- The catalog contract of chatpersist: tables, columns, keys, types,
-- function signatures, volatility, strictness, the trigger, privileges.
-- Runs in a database where pgtap and chatpersist are installed.
BEGIN;
SELECT plan(162);

SELECT has_schema('chatpersist');
SELECT has_table('chatpersist', 'conversations', 'conversations exists');
SELECT has_table('chatpersist', 'history', 'history exists');

-- conversations: the contract's columns
SELECT has_column('chatpersist', 'conversations', c, 'conversations.' || c)
FROM unnest(ARRAY['user_id', 'id', 'title', 'messages', 'metadata', 'version', 'checksum',
				  'message_count', 'created_at', 'last_modified', 'deleted', 'change_xid']) c;
SELECT col_type_is('chatpersist', 'conversations', c, t, 'conversations.' || c || ' is ' || t)
FROM (VALUES ('user_id', 'uuid'), ('id', 'text'), ('title', 'text'), ('messages', 'jsonb'),
			 ('metadata', 'jsonb'), ('version', 'bigint'), ('checksum', 'text'),
			 ('message_count', 'integer'), ('created_at', 'timestamp with time zone'),
			 ('last_modified', 'timestamp with time zone'), ('deleted', 'boolean'),
			 ('change_xid', 'xid8')) v(c, t);
SELECT col_not_null('chatpersist', 'conversations', c, 'conversations.' || c || ' is not null')
FROM unnest(ARRAY['user_id', 'id', 'title', 'messages', 'metadata', 'version', 'checksum',
				  'message_count', 'created_at', 'last_modified', 'deleted', 'change_xid']) c;
SELECT col_default_is('chatpersist', 'conversations', 'title', '', 'title defaults to empty');
SELECT col_default_is('chatpersist', 'conversations', 'messages', '[]'::jsonb, 'messages default to []');
SELECT col_default_is('chatpersist', 'conversations', 'metadata', '{}'::jsonb, 'metadata defaults to {}');
SELECT col_default_is('chatpersist', 'conversations', 'deleted', false, 'deleted defaults to false');
SELECT col_is_pk('chatpersist', 'conversations', ARRAY['user_id', 'id'], 'primary key (user_id, id)');
SELECT col_is_pk('chatpersist', 'history', ARRAY['user_id', 'conversation_id', 'version'],
				 'history primary key (user_id, conversation_id, version)');

-- lz4 TOAST compression of the jsonb columns (Debian's server has lz4)
SELECT is(
	(SELECT string_agg(attname || ':' || attcompression::text, ',' ORDER BY attname) FROM pg_attribute
	  WHERE attrelid = 'chatpersist.conversations'::regclass AND attname IN ('messages', 'metadata')),
	'messages:l,metadata:l', 'messages and metadata use lz4');

-- save_result
SELECT has_type('chatpersist', 'save_result', 'save_result exists');
SELECT is(
	(SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	   FROM pg_attribute WHERE attrelid = 'chatpersist.save_result'::regclass AND attnum > 0),
	'status text, conversation_id text, version bigint, checksum text, message_count integer, conflicts integer',
	'save_result has the contract''s fields in order');

-- functions: signatures, results, volatility, not strict
SELECT has_function('chatpersist', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']);
SELECT has_function('chatpersist', 'load_conversations', ARRAY['uuid']);
SELECT has_function('chatpersist', 'load_conversation', ARRAY['uuid', 'text']);
SELECT has_function('chatpersist', 'checksum', ARRAY['jsonb']);
SELECT has_function('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb']);
SELECT has_function('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']);
SELECT has_function('chatpersist', 'conversations_guard', ARRAY[]::text[]);

SELECT function_returns('chatpersist', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb'], 'chatpersist.save_result');
SELECT function_returns('chatpersist', 'load_conversations', ARRAY['uuid'], 'setof chatpersist.conversations');
SELECT function_returns('chatpersist', 'load_conversation', ARRAY['uuid', 'text'], 'setof chatpersist.conversations');
SELECT function_returns('chatpersist', 'checksum', ARRAY['jsonb'], 'text');
SELECT function_returns('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb'], 'jsonb');
SELECT function_returns('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb'], 'jsonb');
SELECT function_returns('chatpersist', 'conversations_guard', ARRAY[]::text[], 'trigger');

SELECT volatility_is('chatpersist', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb'], 'volatile');
SELECT volatility_is('chatpersist', 'load_conversations', ARRAY['uuid'], 'stable');
SELECT volatility_is('chatpersist', 'load_conversation', ARRAY['uuid', 'text'], 'stable');
SELECT volatility_is('chatpersist', 'checksum', ARRAY['jsonb'], 'immutable');
SELECT volatility_is('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb'], 'immutable');
SELECT volatility_is('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb'], 'immutable');

SELECT isnt_strict('chatpersist', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']);
SELECT isnt_strict('chatpersist', 'load_conversations', ARRAY['uuid']);
SELECT isnt_strict('chatpersist', 'load_conversation', ARRAY['uuid', 'text']);
SELECT isnt_strict('chatpersist', 'checksum', ARRAY['jsonb']);
SELECT isnt_strict('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb']);
SELECT isnt_strict('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']);

SELECT is(
	(SELECT proparallel FROM pg_proc WHERE oid = 'chatpersist.checksum(jsonb)'::regprocedure),
	's'::"char", 'checksum is parallel safe');
SELECT is(
	(SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'chatpersist'::regnamespace
	   AND proname = 'merge_messages' AND proparallel = 's'),
	2, 'both merge_messages are parallel safe');

-- the seed's named arguments
SELECT is(
	(SELECT proargnames FROM pg_proc
	  WHERE oid = 'chatpersist.save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb)'::regprocedure),
	ARRAY['p_user_id', 'p_conversation_id', 'p_title', 'p_messages', 'p_force_overwrite',
		  'p_expected_version', 'p_metadata']::text[],
	'save_conversation argument names');
SELECT is(
	(SELECT pronargdefaults::int FROM pg_proc
	  WHERE oid = 'chatpersist.save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb)'::regprocedure),
	3, 'save_conversation has three defaults');
SELECT is(
	(SELECT proargnames FROM pg_proc WHERE oid = 'chatpersist.merge_messages(jsonb, jsonb, jsonb)'::regprocedure),
	ARRAY['p_base', 'p_ours', 'p_theirs']::text[], 'three-way merge argument names');

-- the sync surface: append, delete, restore, the change feed, history, stats
SELECT has_function('chatpersist', f, a)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('stats', ARRAY[]::text[]),
			 ('conversations_notify', ARRAY[]::text[])) v(f, a);
SELECT function_returns('chatpersist', f, a, r)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint'], 'chatpersist.save_result'),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint'], 'chatpersist.save_result'),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint'], 'chatpersist.save_result'),
			 ('changes_since', ARRAY['uuid', 'bigint'], 'setof record'),
			 ('conversation_history', ARRAY['uuid', 'text'], 'setof chatpersist.history'),
			 ('stats', ARRAY[]::text[], 'setof record'),
			 ('conversations_notify', ARRAY[]::text[], 'trigger')) v(f, a, r);
SELECT volatility_is('chatpersist', f, a, vol)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint'], 'volatile'),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint'], 'volatile'),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint'], 'volatile'),
			 ('changes_since', ARRAY['uuid', 'bigint'], 'stable'),
			 ('conversation_history', ARRAY['uuid', 'text'], 'stable'),
			 ('stats', ARRAY[]::text[], 'volatile')) v(f, a, vol);
SELECT isnt_strict('chatpersist', f, a)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('stats', ARRAY[]::text[])) v(f, a);
SELECT is(proargnames, names, proname || ' argument names')
FROM pg_proc, (VALUES ('chatpersist.append_messages(uuid, text, jsonb, bigint)'::regprocedure,
					   ARRAY['p_user_id', 'p_conversation_id', 'p_messages', 'p_expected_version']),
					  ('chatpersist.delete_conversation(uuid, text, bigint)'::regprocedure,
					   ARRAY['p_user_id', 'p_conversation_id', 'p_expected_version']),
					  ('chatpersist.restore_version(uuid, text, bigint)'::regprocedure,
					   ARRAY['p_user_id', 'p_conversation_id', 'p_version']),
					  ('chatpersist.changes_since(uuid, bigint)'::regprocedure,
					   ARRAY['p_user_id', 'p_cursor', 'conversation_id', 'version', 'checksum',
							 'deleted', 'last_modified', 'cursor'])) v(fn, names)
WHERE pg_proc.oid = v.fn;
SELECT is(pronargdefaults::int, 1, proname || ' has one default')
FROM pg_proc WHERE oid IN ('chatpersist.append_messages(uuid, text, jsonb, bigint)'::regprocedure,
						   'chatpersist.delete_conversation(uuid, text, bigint)'::regprocedure,
						   'chatpersist.changes_since(uuid, bigint)'::regprocedure);

-- security and migrations
SELECT has_function('chatpersist', f, a)
FROM (VALUES ('current_user_id', ARRAY[]::text[]),
			 ('migrate_user', ARRAY['uuid', 'uuid']),
			 ('import_app_state', ARRAY['uuid', 'jsonb'])) v(f, a);
SELECT function_returns('chatpersist', f, a, r)
FROM (VALUES ('current_user_id', ARRAY[]::text[], 'uuid'),
			 ('migrate_user', ARRAY['uuid', 'uuid'], 'integer'),
			 ('import_app_state', ARRAY['uuid', 'jsonb'], 'integer')) v(f, a, r);
SELECT volatility_is('chatpersist', f, a, vol)
FROM (VALUES ('current_user_id', ARRAY[]::text[], 'stable'),
			 ('migrate_user', ARRAY['uuid', 'uuid'], 'volatile'),
			 ('import_app_state', ARRAY['uuid', 'jsonb'], 'volatile')) v(f, a, vol);
SELECT isnt_strict('chatpersist', f, a)
FROM (VALUES ('current_user_id', ARRAY[]::text[]),
			 ('migrate_user', ARRAY['uuid', 'uuid']),
			 ('import_app_state', ARRAY['uuid', 'jsonb'])) v(f, a);
SELECT is(
	(SELECT proparallel FROM pg_proc WHERE oid = 'chatpersist.current_user_id()'::regprocedure),
	's'::"char", 'current_user_id is parallel safe');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = ('chatpersist.' || t)::regclass),
		  'row-level security is enabled on ' || t)
FROM unnest(ARRAY['conversations', 'history']) t;

-- no function is SECURITY DEFINER
SELECT is(
	(SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'chatpersist'::regnamespace AND prosecdef),
	0, 'no SECURITY DEFINER functions');

-- the trigger
SELECT has_trigger('chatpersist', 'conversations', 'conversations_guard', 'conversations has the guard trigger');
SELECT trigger_is('chatpersist', 'conversations', 'conversations_guard', 'chatpersist', 'conversations_guard');
SELECT is(
	(SELECT tgtype::int FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.conversations'::regclass AND tgname = 'conversations_guard'),
	1 | 2 | 4 | 8 | 16, 'conversations_guard is BEFORE ROW INSERT OR UPDATE OR DELETE');

SELECT has_trigger('chatpersist', 'conversations', 'conversations_notify', 'conversations has the notify trigger');
SELECT trigger_is('chatpersist', 'conversations', 'conversations_notify', 'chatpersist', 'conversations_notify');
SELECT is(
	(SELECT tgtype::int FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.conversations'::regclass AND tgname = 'conversations_notify'),
	1 | 4 | 8 | 16, 'conversations_notify is AFTER ROW INSERT OR UPDATE OR DELETE');
SELECT ok(
	(SELECT pg_get_triggerdef(oid) ~ 'WHEN .*chatpersist\.notify' FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.conversations'::regclass AND tgname = 'conversations_notify'),
	'conversations_notify fires only while chatpersist.notify is on');

-- nothing for PUBLIC until granted
SELECT function_privs_are('chatpersist', f, a, 'public', ARRAY[]::text[], 'no EXECUTE for PUBLIC on ' || f)
FROM (VALUES ('save_conversation', ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']),
			 ('load_conversations', ARRAY['uuid']),
			 ('load_conversation', ARRAY['uuid', 'text']),
			 ('checksum', ARRAY['jsonb']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']),
			 ('conversations_guard', ARRAY[]::text[]),
			 ('conversations_notify', ARRAY[]::text[]),
			 ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('stats', ARRAY[]::text[]),
			 ('current_user_id', ARRAY[]::text[]),
			 ('migrate_user', ARRAY['uuid', 'uuid']),
			 ('import_app_state', ARRAY['uuid', 'jsonb'])) v(f, a);
SELECT table_privs_are('chatpersist', t, 'public', ARRAY[]::text[], 'no privileges for PUBLIC on ' || t)
FROM unnest(ARRAY['conversations', 'history', 'cursor_legacy']) t;
SELECT schema_privs_are('chatpersist', 'public', ARRAY[]::text[], 'no USAGE for PUBLIC on the schema');

-- the extension owns its objects and is not relocatable
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'chatpersist'), false, 'not relocatable');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'), '1.1', 'version 1.1');
-- 1.1: the restamp trigger fires in replica mode too (logical replication)
SELECT is((SELECT tgenabled::text FROM pg_trigger
			WHERE tgrelid = 'chatpersist.conversations'::regclass AND tgname = 'conversations_restamp'),
	'A', 'the restamp trigger is enabled ALWAYS');
SELECT ok(EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
				   WHERE e.extname = 'chatpersist' AND d.deptype = 'e'
					 AND d.objid = 'chatpersist.cursor_legacy'::regclass),
	'cursor_legacy belongs to the extension (and is not dumped, see below)');
SELECT is(
	(SELECT count(*)::int FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	  WHERE e.extname = 'chatpersist' AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
		AND d.objid IN ('chatpersist.conversations'::regclass, 'chatpersist.history'::regclass)),
	2, 'both tables belong to the extension');
SELECT is(
	(SELECT array_length(extconfig, 1) FROM pg_extension WHERE extname = 'chatpersist'),
	2, 'both tables are dumped by pg_dump');

SELECT * FROM finish();
ROLLBACK;
