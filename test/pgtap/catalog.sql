-- The catalog contract of chatpersist: tables, columns, keys, types,
-- function signatures, volatility, strictness, the trigger, privileges.
-- Runs in a database where pgtap and chatpersist are installed.
BEGIN;
SELECT plan(250);

SELECT has_schema('chatpersist');
SELECT has_table('chatpersist', 'conversations', 'conversations exists');
SELECT has_table('chatpersist', 'history', 'history exists');
SELECT has_table('chatpersist', 'messages', 'messages exists');
SELECT has_table('chatpersist', 'history_messages', 'history_messages exists');

-- conversations: the contract's columns (2.0: the head; the messages are
-- rows of chatpersist.messages, and four internal columns are computed)
SELECT has_column('chatpersist', 'conversations', c, 'conversations.' || c)
FROM unnest(ARRAY['user_id', 'id', 'title', 'metadata', 'version', 'checksum',
				  'message_count', 'created_at', 'last_modified', 'deleted', 'change_xid']) c;
SELECT hasnt_column('chatpersist', 'conversations', 'messages', 'conversations has no messages column (2.0)');
SELECT hasnt_column('chatpersist', 'history', 'messages', 'history has no messages column (2.0)');
SELECT columns_are('chatpersist', 'conversations',
	ARRAY['user_id', 'id', 'title', 'metadata', 'version', 'checksum', 'message_count', 'created_at',
		  'last_modified', 'deleted', 'change_xid', 'hash_state', 'array_length', 'array_bytes', 'last_pos'],
	'conversations has exactly the head''s columns and the internal ones');
SELECT columns_are('chatpersist', 'history',
	ARRAY['user_id', 'conversation_id', 'version', 'title', 'metadata', 'checksum', 'message_count',
		  'deleted', 'last_modified', 'replaced_at', 'replaced_by', 'discarded'],
	'history has exactly the archived head''s columns');
SELECT col_type_is('chatpersist', 'conversations', c, t, 'conversations.' || c || ' is ' || t)
FROM (VALUES ('user_id', 'uuid'), ('id', 'text'), ('title', 'text'),
			 ('metadata', 'jsonb'), ('version', 'bigint'), ('checksum', 'text'),
			 ('message_count', 'integer'), ('created_at', 'timestamp with time zone'),
			 ('last_modified', 'timestamp with time zone'), ('deleted', 'boolean'),
			 ('change_xid', 'xid8'), ('hash_state', 'bytea'), ('array_length', 'integer'),
			 ('array_bytes', 'bigint'), ('last_pos', 'bigint')) v(c, t);
SELECT col_not_null('chatpersist', 'conversations', c, 'conversations.' || c || ' is not null')
FROM unnest(ARRAY['user_id', 'id', 'title', 'metadata', 'version', 'checksum',
				  'message_count', 'created_at', 'last_modified', 'deleted', 'change_xid', 'last_pos']) c;
SELECT col_is_null('chatpersist', 'conversations', c, 'conversations.' || c || ' may be null (recomputed)')
FROM unnest(ARRAY['hash_state', 'array_length', 'array_bytes']) c;
SELECT col_default_is('chatpersist', 'conversations', 'title', '', 'title defaults to empty');
SELECT col_default_is('chatpersist', 'conversations', 'last_pos', 0::bigint, 'last_pos defaults to 0 (no message rows)');
SELECT col_default_is('chatpersist', 'conversations', 'metadata', '{}'::jsonb, 'metadata defaults to {}');
SELECT col_default_is('chatpersist', 'conversations', 'deleted', false, 'deleted defaults to false');
SELECT col_is_pk('chatpersist', 'conversations', ARRAY['user_id', 'id'], 'primary key (user_id, id)');
SELECT col_is_pk('chatpersist', 'history', ARRAY['user_id', 'conversation_id', 'version'],
				 'history primary key (user_id, conversation_id, version)');

-- messages: one row per message (the array: NOT removed, ORDER BY pos)
SELECT columns_are('chatpersist', 'messages',
	ARRAY['user_id', 'conversation_id', 'id', 'pos', 'message', 'hash', 'added_version',
		  'changed_version', 'removed', 'accepted'],
	'messages has exactly the message row''s columns');
SELECT col_type_is('chatpersist', 'messages', c, t, 'messages.' || c || ' is ' || t)
FROM (VALUES ('user_id', 'uuid'), ('conversation_id', 'text'), ('id', 'text'), ('pos', 'bigint'),
			 ('message', 'jsonb'), ('hash', 'bigint'), ('added_version', 'bigint'),
			 ('changed_version', 'bigint'), ('removed', 'boolean'),
			 ('accepted', 'bigint[]')) v(c, t);
SELECT col_not_null('chatpersist', 'messages', c, 'messages.' || c || ' is not null')
FROM unnest(ARRAY['user_id', 'conversation_id', 'id', 'pos', 'message', 'hash', 'added_version',
				  'changed_version', 'removed']) c;
SELECT col_default_is('chatpersist', 'messages', 'removed', false, 'messages.removed defaults to false');
SELECT col_is_null('chatpersist', 'messages', 'accepted', 'messages.accepted (the retry memory) is NULL until a copy is replaced');
SELECT col_is_pk('chatpersist', 'messages', ARRAY['user_id', 'conversation_id', 'id'],
				 'messages primary key (user_id, conversation_id, id)');
SELECT col_has_check('chatpersist', 'messages', 'id', 'messages.id has a check (1 to 255 bytes)');
SELECT ok(
	(SELECT pg_get_constraintdef(oid) ~ 'octet_length\(id\) >= 1.*octet_length\(id\) <= 255'
	   FROM pg_constraint WHERE conrelid = 'chatpersist.messages'::regclass AND conname = 'messages_id_length'),
	'messages_id_length bounds the message id to 1..255 bytes');

-- history_messages: the replaced message copies
SELECT columns_are('chatpersist', 'history_messages',
	ARRAY['user_id', 'conversation_id', 'id', 'valid_from', 'valid_to', 'pos', 'message'],
	'history_messages has exactly the copy''s columns');
SELECT col_type_is('chatpersist', 'history_messages', c, t, 'history_messages.' || c || ' is ' || t)
FROM (VALUES ('user_id', 'uuid'), ('conversation_id', 'text'), ('id', 'text'), ('valid_from', 'bigint'),
			 ('valid_to', 'bigint'), ('pos', 'bigint'), ('message', 'jsonb')) v(c, t);
SELECT col_not_null('chatpersist', 'history_messages', c, 'history_messages.' || c || ' is not null')
FROM unnest(ARRAY['user_id', 'conversation_id', 'id', 'valid_from', 'valid_to', 'pos', 'message']) c;
SELECT col_is_pk('chatpersist', 'history_messages', ARRAY['user_id', 'conversation_id', 'id', 'valid_from'],
				 'history_messages primary key (user_id, conversation_id, id, valid_from)');

-- the composites the functions return: the 1.x rows' columns, in their order
SELECT has_composite('chatpersist', 'conversation', 'the type conversation exists');
SELECT is(
	(SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	   FROM pg_attribute WHERE attrelid = 'chatpersist.conversation'::regclass AND attnum > 0 AND NOT attisdropped),
	'user_id uuid, id text, title text, messages jsonb, metadata jsonb, version bigint, checksum text, '
	'message_count integer, created_at timestamp with time zone, last_modified timestamp with time zone, '
	'deleted boolean, change_xid xid8',
	'conversation has the 1.x conversations row''s columns in order');
SELECT has_composite('chatpersist', 'message_delta', 'the type message_delta exists');
SELECT is(
	(SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	   FROM pg_attribute WHERE attrelid = 'chatpersist.message_delta'::regclass AND attnum > 0 AND NOT attisdropped),
	'conversation_id text, version bigint, checksum text, title text, metadata jsonb, '
	'message_count integer, deleted boolean, last_modified timestamp with time zone, '
	'full_reload boolean, changes jsonb',
	'message_delta has the head''s columns, full_reload and changes');
SELECT has_composite('chatpersist', 'archived_version', 'the type archived_version exists');
SELECT is(
	(SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	   FROM pg_attribute WHERE attrelid = 'chatpersist.archived_version'::regclass AND attnum > 0 AND NOT attisdropped),
	'user_id uuid, conversation_id text, version bigint, title text, messages jsonb, metadata jsonb, '
	'checksum text, message_count integer, deleted boolean, last_modified timestamp with time zone, '
	'replaced_at timestamp with time zone, replaced_by text, discarded jsonb',
	'archived_version has the 1.x history row''s columns in order');

-- lz4 TOAST compression of the jsonb columns (Debian's server has lz4)
SELECT is(
	(SELECT string_agg(attrelid::regclass::text || '.' || attname || ':' || attcompression::text, ','
					   ORDER BY attrelid::regclass::text, attname) FROM pg_attribute
	  WHERE attrelid IN ('chatpersist.conversations'::regclass, 'chatpersist.messages'::regclass,
						 'chatpersist.history_messages'::regclass)
		AND attname IN ('message', 'metadata')),
	'chatpersist.conversations.metadata:l,chatpersist.history_messages.message:l,chatpersist.messages.message:l',
	'metadata and the message copies use lz4');

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
SELECT has_function('chatpersist', 'messages_guard', ARRAY[]::text[]);

SELECT function_returns('chatpersist', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb'], 'chatpersist.save_result');
SELECT function_returns('chatpersist', 'load_conversations', ARRAY['uuid'], 'setof chatpersist.conversation');
SELECT function_returns('chatpersist', 'load_conversation', ARRAY['uuid', 'text'], 'setof chatpersist.conversation');
SELECT function_returns('chatpersist', 'checksum', ARRAY['jsonb'], 'text');
SELECT function_returns('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb'], 'jsonb');
SELECT function_returns('chatpersist', 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb'], 'jsonb');
SELECT function_returns('chatpersist', 'conversations_guard', ARRAY[]::text[], 'trigger');
SELECT function_returns('chatpersist', 'messages_guard', ARRAY[]::text[], 'trigger');

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
			 ('messages_since', ARRAY['uuid', 'text', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('stats', ARRAY[]::text[]),
			 ('conversations_notify', ARRAY[]::text[])) v(f, a);
SELECT function_returns('chatpersist', f, a, r)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint'], 'chatpersist.save_result'),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint'], 'chatpersist.save_result'),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint'], 'chatpersist.save_result'),
			 ('changes_since', ARRAY['uuid', 'bigint'], 'setof record'),
			 ('messages_since', ARRAY['uuid', 'text', 'bigint'], 'setof chatpersist.message_delta'),
			 ('conversation_history', ARRAY['uuid', 'text'], 'setof chatpersist.archived_version'),
			 ('stats', ARRAY[]::text[], 'setof record'),
			 ('conversations_notify', ARRAY[]::text[], 'trigger')) v(f, a, r);
SELECT volatility_is('chatpersist', f, a, vol)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint'], 'volatile'),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint'], 'volatile'),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint'], 'volatile'),
			 ('changes_since', ARRAY['uuid', 'bigint'], 'stable'),
			 ('messages_since', ARRAY['uuid', 'text', 'bigint'], 'stable'),
			 ('conversation_history', ARRAY['uuid', 'text'], 'stable'),
			 ('stats', ARRAY[]::text[], 'volatile')) v(f, a, vol);
SELECT isnt_strict('chatpersist', f, a)
FROM (VALUES ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('messages_since', ARRAY['uuid', 'text', 'bigint']),
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
							 'deleted', 'last_modified', 'cursor']),
					  ('chatpersist.messages_since(uuid, text, bigint)'::regprocedure,
					   ARRAY['p_user_id', 'p_conversation_id', 'p_version'])) v(fn, names)
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
FROM unnest(ARRAY['conversations', 'history', 'messages', 'history_messages']) t;
SELECT policies_are('chatpersist', t, ARRAY[p], t || ' has exactly the policy ' || p)
FROM (VALUES ('messages', 'messages_own'), ('history_messages', 'history_messages_own')) v(t, p);
SELECT policy_cmd_is('chatpersist', t, p, 'ALL', p || ' covers every command')
FROM (VALUES ('messages', 'messages_own'), ('history_messages', 'history_messages_own')) v(t, p);
SELECT is(polroles, ARRAY[0]::oid[], polname || ' applies to every role (PUBLIC)')
  FROM pg_policy WHERE polrelid IN ('chatpersist.messages'::regclass, 'chatpersist.history_messages'::regclass)
 ORDER BY polname;
SELECT is(pg_get_expr(polqual, polrelid) || ' / ' || pg_get_expr(polwithcheck, polrelid),
		  '(user_id = chatpersist.current_user_id()) / (user_id = chatpersist.current_user_id())',
		  polname || ': USING and WITH CHECK compare user_id with current_user_id()')
  FROM pg_policy WHERE polrelid IN ('chatpersist.messages'::regclass, 'chatpersist.history_messages'::regclass)
 ORDER BY polname;

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

SELECT has_trigger('chatpersist', 'messages', 'messages_guard', 'messages has the guard trigger');
SELECT trigger_is('chatpersist', 'messages', 'messages_guard', 'chatpersist', 'messages_guard');
SELECT is(
	(SELECT tgtype::int FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.messages'::regclass AND tgname = 'messages_guard'),
	1 | 2 | 4 | 8 | 16, 'messages_guard is BEFORE ROW INSERT OR UPDATE OR DELETE');
SELECT is(
	(SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.messages'::regclass AND NOT tgisinternal),
	'messages_guard', 'messages_guard is the only trigger of messages');
SELECT is(
	(SELECT count(*)::int FROM pg_trigger
	  WHERE tgrelid = 'chatpersist.history_messages'::regclass AND NOT tgisinternal),
	0, 'history_messages has no trigger');

-- nothing for PUBLIC until granted
SELECT function_privs_are('chatpersist', f, a, 'public', ARRAY[]::text[], 'no EXECUTE for PUBLIC on ' || f)
FROM (VALUES ('save_conversation', ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']),
			 ('load_conversations', ARRAY['uuid']),
			 ('load_conversation', ARRAY['uuid', 'text']),
			 ('checksum', ARRAY['jsonb']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']),
			 ('conversations_guard', ARRAY[]::text[]),
			 ('messages_guard', ARRAY[]::text[]),
			 ('conversations_notify', ARRAY[]::text[]),
			 ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('messages_since', ARRAY['uuid', 'text', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('stats', ARRAY[]::text[]),
			 ('current_user_id', ARRAY[]::text[]),
			 ('migrate_user', ARRAY['uuid', 'uuid']),
			 ('import_app_state', ARRAY['uuid', 'jsonb'])) v(f, a);
SELECT table_privs_are('chatpersist', t, 'public', ARRAY[]::text[], 'no privileges for PUBLIC on ' || t)
FROM unnest(ARRAY['conversations', 'history', 'messages', 'history_messages', 'cursor_legacy']) t;
SELECT schema_privs_are('chatpersist', 'public', ARRAY[]::text[], 'no USAGE for PUBLIC on the schema');

-- the extension owns its objects and is not relocatable
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'chatpersist'), false, 'not relocatable');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'), '2.0', 'version 2.0');
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
		AND d.objid IN ('chatpersist.conversations'::regclass, 'chatpersist.history'::regclass,
						'chatpersist.messages'::regclass, 'chatpersist.history_messages'::regclass)),
	4, 'the four data tables belong to the extension');
SELECT is(
	(SELECT array_agg(c::regclass::text ORDER BY c::regclass::text)
	   FROM pg_extension, unnest(extconfig) c WHERE extname = 'chatpersist'),
	ARRAY['chatpersist.conversations', 'chatpersist.history', 'chatpersist.history_messages',
		  'chatpersist.messages'],
	'the four data tables, and only they, are dumped by pg_dump');
SELECT ok(EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
				   WHERE e.extname = 'chatpersist' AND d.deptype = 'e' AND d.classid = 'pg_type'::regclass
					 AND d.objid = t::regtype),
	t || ' belongs to the extension')
FROM unnest(ARRAY['chatpersist.conversation', 'chatpersist.archived_version']) t;
-- 2.0: room on the conversations' pages for HOT updates of the rows every
-- write updates; the insert-mostly tables keep the default
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'chatpersist.conversations'::regclass),
	ARRAY['fillfactor=70'], 'conversations leave 30% of each page for updates');
SELECT is((SELECT count(*)::int FROM pg_class
			WHERE oid IN ('chatpersist.messages'::regclass, 'chatpersist.history'::regclass,
						  'chatpersist.history_messages'::regclass)
			  AND reloptions IS NOT NULL),
	0, 'messages and history keep the default fillfactor');

SELECT * FROM finish();
ROLLBACK;
