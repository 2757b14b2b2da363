-- Security: row-level security, identity and privileges of chatpersist as
-- Supabase/PostgREST use them.  Runs as a superuser (pg_prove) in a database
-- where pgtap and chatpersist are installed, with chatpersist preloaded or
-- not.  Everything it creates, the roles included, goes with the ROLLBACK.
--
-- Users: U1 = 11111111-1111-4111-8111-111111111111,
--        U2 = 22222222-2222-4222-8222-222222222222,
--        U3 = 33333333-3333-4333-8333-333333333333 (has nothing at all).
-- Both U1 and U2 have a conversation with the id "chat"; U2 also has
-- "notes", and U2's "chat" has one archived version (1, current is 2, which
-- edited message m1, so U2 also has a replaced copy in history_messages).
-- 2.0: the messages are rows of chatpersist.messages and the replaced copies
-- rows of chatpersist.history_messages, both under row-level security too.
--
-- The role x identity matrix: authenticated acting as U1 with the identity
-- from chatpersist.user_id, from request.jwt.claims and from
-- request.jwt.claim.sub, each through the functions and through direct SQL
-- (one function, pg_temp.u1_matrix, run once for each of the three);
-- authenticated without identity and with malformed identities; anon;
-- service_role.  After each block U2's rows are compared with the seed.
--
-- The claims are set with set_config(..., true), as PostgREST sets them;
-- "\g /dev/null" discards that statement's output, which is no TAP.  The
-- roles are created here, so the database must not have them already (it
-- cannot be a Supabase database).
BEGIN;
SELECT plan(429);

-- ---------------------------------------------------------------------------
-- The Supabase roles and the grants of docs/supabase.md (that block, as it
-- stands there; keep the two in step)
-- ---------------------------------------------------------------------------
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE service_role NOLOGIN BYPASSRLS;

GRANT USAGE ON SCHEMA chatpersist TO authenticated, service_role;

GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.conversations TO authenticated, service_role;
GRANT SELECT ON chatpersist.history TO authenticated;
GRANT ALL ON chatpersist.history TO service_role;

GRANT EXECUTE ON FUNCTION
	chatpersist.save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb),
	chatpersist.append_messages(uuid, text, jsonb, bigint),
	chatpersist.delete_conversation(uuid, text, bigint),
	chatpersist.restore_version(uuid, text, bigint),
	chatpersist.load_conversations(uuid),
	chatpersist.load_conversation(uuid, text),
	chatpersist.changes_since(uuid, bigint),
	chatpersist.messages_since(uuid, text, bigint),
	chatpersist.conversation_history(uuid, text),
	chatpersist.merge_messages(jsonb, jsonb),
	chatpersist.merge_messages(jsonb, jsonb, jsonb),
	chatpersist.checksum(jsonb),
	chatpersist.current_user_id()
	TO authenticated, service_role;

GRANT EXECUTE ON FUNCTION chatpersist.stats() TO service_role;

GRANT EXECUTE ON FUNCTION
	chatpersist.migrate_user(uuid, uuid),
	chatpersist.import_app_state(uuid, jsonb)
	TO service_role;

-- 2.0: direct SQL on message rows needs privileges on the message tables, as
-- direct SQL on conversations does (the functions need none: see "the
-- functions need no privilege on the message tables" below)
GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.messages TO authenticated, service_role;
GRANT SELECT ON chatpersist.history_messages TO authenticated;
GRANT ALL ON chatpersist.history_messages TO service_role;

-- ---------------------------------------------------------------------------
-- Helpers (pg_temp, gone at the end of the session)
-- ---------------------------------------------------------------------------

-- SQLSTATE, message, detail and hint of the error a statement raises, to
-- compare two errors in full
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	st text;
	msg text;
	det text;
	hnt text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || ' | ' || coalesce(det, '') || ' | ' || coalesce(hnt, '');
END
$f$;

-- Every conversation row with what identifies its content, the number of
-- its archived versions, its message rows (removed ones too, with their
-- stamps) and its replaced message copies (read as the superuser, who
-- bypasses RLS)
CREATE FUNCTION pg_temp.snapshot()
RETURNS TABLE (user_id uuid, id text, title text, version bigint, checksum text,
			   deleted boolean, history_rows bigint, message_rows jsonb, history_message_rows jsonb)
LANGUAGE sql AS $f$
	SELECT c.user_id, c.id, c.title, c.version, c.checksum, c.deleted,
		   (SELECT count(*) FROM chatpersist.history h
			 WHERE h.user_id = c.user_id AND h.conversation_id = c.id),
		   (SELECT jsonb_agg(jsonb_build_array(m.id, m.pos, m.message, m.hash, m.added_version,
											   m.changed_version, m.removed) ORDER BY m.pos, m.id)
			  FROM chatpersist.messages m
			 WHERE m.user_id = c.user_id AND m.conversation_id = c.id),
		   (SELECT jsonb_agg(jsonb_build_array(hm.id, hm.valid_from, hm.valid_to, hm.pos, hm.message)
							 ORDER BY hm.id, hm.valid_from)
			  FROM chatpersist.history_messages hm
			 WHERE hm.user_id = c.user_id AND hm.conversation_id = c.id)
	  FROM chatpersist.conversations c
	 ORDER BY c.user_id, c.id
$f$;

-- A conversation's array rebuilt from its message rows in plain SQL
CREATE FUNCTION pg_temp.array_of(p_user uuid, p_id text) RETURNS jsonb LANGUAGE sql AS $f$
	SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]')
	  FROM chatpersist.messages m
	 WHERE m.user_id = p_user AND m.conversation_id = p_id AND NOT m.removed
$f$;

-- ---------------------------------------------------------------------------
-- Seed, as the superuser (who bypasses RLS)
-- ---------------------------------------------------------------------------
SELECT is(s.status || ' ' || s.version, 'created 1', 'seed: U1''s "chat"')
  FROM chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', 'chat', 'u1 chat',
	   '[{"id":"m1","role":"user","content":"hello from u1"}]') s;
SELECT is(s.status || ' ' || s.version, 'created 1', 'seed: U2''s "chat"')
  FROM chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'chat', 'u2 chat',
	   '[{"id":"m1","role":"user","content":"secret of u2"}]') s;
SELECT is(s.status || ' ' || s.version, 'updated 2', 'seed: U2''s "chat" again, version 1 goes to history')
  FROM chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'chat', NULL,
	   '[{"id":"m1","role":"user","content":"secret of u2, edited"},{"id":"m2","role":"assistant","content":"more secrets"}]',
	   p_expected_version := 1) s;
SELECT is(s.status || ' ' || s.version, 'created 1', 'seed: U2''s "notes"')
  FROM chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'notes', 'u2 notes',
	   '[{"id":"n1","content":"u2 only"}]') s;

CREATE TEMP TABLE seeded AS SELECT * FROM pg_temp.snapshot();
SELECT results_eq(
	$$SELECT user_id::text, id, version, history_rows FROM seeded$$,
	$$VALUES ('11111111-1111-4111-8111-111111111111', 'chat', 1::bigint, 0::bigint),
			 ('22222222-2222-4222-8222-222222222222', 'chat', 2, 1),
			 ('22222222-2222-4222-8222-222222222222', 'notes', 1, 0)$$,
	'seed: the rows the tests start from');
SELECT results_eq(
	$$SELECT user_id::text, id, pg_temp.array_of(user_id, id), checksum = chatpersist.checksum(pg_temp.array_of(user_id, id)),
			 jsonb_array_length(history_message_rows)
		FROM seeded$$,
	$$VALUES ('11111111-1111-4111-8111-111111111111', 'chat', '[{"id":"m1","role":"user","content":"hello from u1"}]'::jsonb, true, NULL::int),
			 ('22222222-2222-4222-8222-222222222222', 'chat',
			  '[{"id":"m1","role":"user","content":"secret of u2, edited"},{"id":"m2","role":"assistant","content":"more secrets"}]', true, 1),
			 ('22222222-2222-4222-8222-222222222222', 'notes', '[{"id":"n1","content":"u2 only"}]', true, NULL)$$,
	'seed: the message rows hold the saved arrays, and U2''s edited m1 has a replaced copy');

-- ---------------------------------------------------------------------------
-- Catalog: policies, SECURITY INVOKER, privileges
-- ---------------------------------------------------------------------------
SELECT is(
	(SELECT string_agg(relname || ':' || relrowsecurity, ',' ORDER BY relname) FROM pg_class
	  WHERE relnamespace = 'chatpersist'::regnamespace AND relkind = 'r'),
	'conversations:true,cursor_legacy:true,history:true,history_messages:true,messages:true,version_floors:true',
	'row-level security is on for every table');
SELECT policies_are('chatpersist', 'conversations', ARRAY['conversations_own'],
	'conversations has exactly the policy conversations_own');
SELECT policies_are('chatpersist', 'history', ARRAY['history_own'],
	'history has exactly the policy history_own');
SELECT policies_are('chatpersist', 'messages', ARRAY['messages_own'],
	'messages has exactly the policy messages_own');
SELECT policies_are('chatpersist', 'history_messages', ARRAY['history_messages_own'],
	'history_messages has exactly the policy history_messages_own');
SELECT policy_cmd_is('chatpersist', t, p, 'ALL', p || ' covers every command')
FROM (VALUES ('conversations', 'conversations_own'), ('history', 'history_own'),
			 ('messages', 'messages_own'), ('history_messages', 'history_messages_own')) v(t, p);
-- (pgTAP's policy_roles_are cannot name PUBLIC, whose oid 0 is no role)
SELECT is(polroles, ARRAY[0]::oid[], polname || ' applies to every role (PUBLIC)')
  FROM pg_policy WHERE polrelid IN ('chatpersist.conversations'::regclass, 'chatpersist.history'::regclass,
									'chatpersist.messages'::regclass, 'chatpersist.history_messages'::regclass)
 ORDER BY polname;
-- the plain comparison, not the (SELECT ...) subquery form that Citus refuses
SELECT is(pg_get_expr(polqual, polrelid) || ' / ' || pg_get_expr(polwithcheck, polrelid),
		  '(user_id = chatpersist.current_user_id()) / (user_id = chatpersist.current_user_id())',
		  polname || ': USING and WITH CHECK compare user_id with current_user_id()')
  FROM pg_policy WHERE polrelid IN ('chatpersist.conversations'::regclass, 'chatpersist.history'::regclass,
									'chatpersist.messages'::regclass, 'chatpersist.history_messages'::regclass)
 ORDER BY polname;

-- every function is SECURITY INVOKER
SELECT isnt_definer('chatpersist', f, a, f || '(' || array_to_string(a, ', ') || ') is SECURITY INVOKER')
FROM (VALUES ('save_conversation', ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']),
			 ('append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 ('delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 ('restore_version', ARRAY['uuid', 'text', 'bigint']),
			 ('load_conversations', ARRAY['uuid']),
			 ('load_conversation', ARRAY['uuid', 'text']),
			 ('changes_since', ARRAY['uuid', 'bigint']),
			 ('messages_since', ARRAY['uuid', 'text', 'bigint']),
			 ('conversation_history', ARRAY['uuid', 'text']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb']),
			 ('merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']),
			 ('checksum', ARRAY['jsonb']),
			 ('current_user_id', ARRAY[]::text[]),
			 ('stats', ARRAY[]::text[]),
			 ('migrate_user', ARRAY['uuid', 'uuid']),
			 ('import_app_state', ARRAY['uuid', 'jsonb']),
			 ('conversations_guard', ARRAY[]::text[]),
			 ('conversations_notify', ARRAY[]::text[]),
			 ('conversations_restamp', ARRAY[]::text[]),
			 ('restamp', ARRAY[]::text[]),
			 ('cursor_origin', ARRAY[]::text[]),
			 ('messages_guard', ARRAY[]::text[])) v(f, a);
SELECT is(
	(SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'chatpersist'::regnamespace),
	22, 'the list above names every function of the schema');

-- function privileges of the three roles
SELECT function_privs_are('chatpersist', f, a, r,
		CASE WHEN (r = 'authenticated' AND f NOT IN ('stats', 'migrate_user', 'import_app_state',
													  'conversations_guard', 'conversations_notify',
													  'conversations_restamp', 'restamp', 'cursor_origin',
													  'messages_guard'))
				  OR (r = 'service_role' AND f NOT IN ('conversations_guard', 'conversations_notify',
													  'conversations_restamp', 'restamp', 'cursor_origin',
													  'messages_guard'))
			 THEN ARRAY['EXECUTE'] ELSE ARRAY[]::text[] END,
		r || ': privileges on ' || f || '(' || array_to_string(a, ', ') || ')')
FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r,
	 (VALUES (1, 'save_conversation', ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb']),
			 (2, 'append_messages', ARRAY['uuid', 'text', 'jsonb', 'bigint']),
			 (3, 'delete_conversation', ARRAY['uuid', 'text', 'bigint']),
			 (4, 'restore_version', ARRAY['uuid', 'text', 'bigint']),
			 (5, 'load_conversations', ARRAY['uuid']),
			 (6, 'load_conversation', ARRAY['uuid', 'text']),
			 (7, 'changes_since', ARRAY['uuid', 'bigint']),
			 (8, 'conversation_history', ARRAY['uuid', 'text']),
			 (9, 'merge_messages', ARRAY['jsonb', 'jsonb']),
			 (10, 'merge_messages', ARRAY['jsonb', 'jsonb', 'jsonb']),
			 (11, 'checksum', ARRAY['jsonb']),
			 (12, 'current_user_id', ARRAY[]::text[]),
			 (13, 'stats', ARRAY[]::text[]),
			 (14, 'conversations_guard', ARRAY[]::text[]),
			 (15, 'conversations_notify', ARRAY[]::text[]),
			 (16, 'migrate_user', ARRAY['uuid', 'uuid']),
			 (17, 'import_app_state', ARRAY['uuid', 'jsonb']),
			 (18, 'conversations_restamp', ARRAY[]::text[]),
			 (19, 'restamp', ARRAY[]::text[]),
			 (20, 'cursor_origin', ARRAY[]::text[]),
			 (21, 'messages_guard', ARRAY[]::text[]),
			 (22, 'messages_since', ARRAY['uuid', 'text', 'bigint'])) v(n, f, a)
ORDER BY r, n;

-- table and schema privileges
SELECT table_privs_are('chatpersist', t, r, p, r || ': privileges on ' || t)
FROM (VALUES ('conversations', 'anon', ARRAY[]::text[]),
			 ('history', 'anon', ARRAY[]::text[]),
			 ('conversations', 'authenticated', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
			 ('history', 'authenticated', ARRAY['SELECT']),
			 ('conversations', 'service_role', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
			 ('history', 'service_role', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
											  'REFERENCES', 'TRIGGER']),
			 ('messages', 'anon', ARRAY[]::text[]),
			 ('history_messages', 'anon', ARRAY[]::text[]),
			 ('messages', 'authenticated', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
			 ('history_messages', 'authenticated', ARRAY['SELECT']),
			 ('messages', 'service_role', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
			 ('history_messages', 'service_role', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
											  'REFERENCES', 'TRIGGER'])) v(t, r, p);
SELECT schema_privs_are('chatpersist', r, p, r || ': privileges on the schema')
FROM (VALUES ('anon', ARRAY[]::text[]),
			 ('authenticated', ARRAY['USAGE']),
			 ('service_role', ARRAY['USAGE'])) v(r, p);
SELECT is((SELECT rolbypassrls FROM pg_roles WHERE rolname = r), r = 'service_role',
		  r || (CASE WHEN r = 'service_role' THEN ' has' ELSE ' has no' END) || ' BYPASSRLS')
FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r;

-- ---------------------------------------------------------------------------
-- Identity: how current_user_id() resolves, as authenticated
-- ---------------------------------------------------------------------------
SET LOCAL ROLE authenticated;
SELECT is(chatpersist.current_user_id(), NULL, 'nothing set: current_user_id() is NULL');

SET LOCAL chatpersist.user_id = '11111111-1111-4111-8111-111111111111';
SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-111111111111',
	'chatpersist.user_id gives the user');
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-4222-8222-222222222222","role":"authenticated"}', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-111111111111',
	'chatpersist.user_id wins over the claims');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.conversations$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
	'chatpersist.user_id wins over the claims in the policy too');
SET LOCAL chatpersist.user_id = '';
SELECT is(chatpersist.current_user_id(), '22222222-2222-4222-8222-222222222222',
	'an empty chatpersist.user_id falls through to the claims');
SELECT set_config('request.jwt.claim.sub', '11111111-1111-4111-8111-111111111111', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), '22222222-2222-4222-8222-222222222222',
	'the claims win over request.jwt.claim.sub');
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-111111111111',
	'claims without sub fall through to request.jwt.claim.sub');
SELECT set_config('request.jwt.claim.sub', '', true) \g /dev/null
SELECT lives_ok($$SELECT chatpersist.current_user_id()$$, 'claims without sub are no error');
SELECT is(chatpersist.current_user_id(), NULL, 'claims without sub: current_user_id() is NULL');
SELECT is_empty($$SELECT * FROM chatpersist.conversations$$, 'claims without sub see no row');
SELECT set_config('request.jwt.claims', '{"sub":null,"role":"authenticated"}', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), NULL, 'a JSON null sub is no user');
SELECT set_config('request.jwt.claims', '{"sub":"","role":"authenticated"}', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), NULL, 'an empty sub is no user');
SET LOCAL chatpersist.user_id = '{11111111-1111-4111-8111-11111111111F}';
SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-11111111111f',
	'braces and upper case are read as uuid_in reads them');

-- malformed identity: 22023, never a silent NULL
SET LOCAL chatpersist.user_id = 'not-a-uuid';
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'chatpersist.user_id is not a valid user id', 'chatpersist.user_id = ''not-a-uuid'': 22023');
SELECT throws_ok($$SELECT count(*) FROM chatpersist.conversations$$,
	'22023', 'chatpersist.user_id is not a valid user id', 'a malformed identity fails a direct SELECT');
SELECT throws_ok($$SELECT * FROM chatpersist.load_conversations('11111111-1111-4111-8111-111111111111')$$,
	'22023', 'chatpersist.user_id is not a valid user id', 'a malformed identity fails load_conversations');
SET LOCAL chatpersist.user_id = '11111111-1111-4111-8111-1111111111111';
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'chatpersist.user_id is not a valid user id', 'a uuid with a digit too many: 22023');
SET LOCAL chatpersist.user_id = '11111111-1111-4111-8111-111111111111';
SELECT set_config('request.jwt.claims', '{bad json', true) \g /dev/null
SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-111111111111',
	'with chatpersist.user_id set the claims are not read');
SET LOCAL chatpersist.user_id = '';
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'request.jwt.claims is not valid JSON', 'claims ''{bad json'': 22023');
SELECT set_config('request.jwt.claims', '[1]', true) \g /dev/null
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'request.jwt.claims is not a JSON object', 'claims ''[1]'': 22023');
SELECT set_config('request.jwt.claims', '{"sub":5}', true) \g /dev/null
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'the "sub" claim of request.jwt.claims is not a string', 'claims with "sub": 5: 22023');
SELECT set_config('request.jwt.claims', '{"sub":"not-a-uuid"}', true) \g /dev/null
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'the "sub" claim of request.jwt.claims is not a valid user id', 'claims with a sub that is no uuid: 22023');
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
SELECT set_config('request.jwt.claim.sub', 'nobody', true) \g /dev/null
SELECT throws_ok($$SELECT chatpersist.current_user_id()$$,
	'22023', 'request.jwt.claim.sub is not a valid user id', 'request.jwt.claim.sub that is no uuid: 22023');
SELECT set_config('request.jwt.claim.sub', '', true) \g /dev/null
RESET chatpersist.user_id;
RESET ROLE;
SELECT is(chatpersist.current_user_id(), NULL, 'identity cleared');

-- ---------------------------------------------------------------------------
-- authenticated as U1: the same matrix for each place the identity can come
-- from (pg_temp.u1_matrix, called three times below)
--
-- SETTING is the parameter that carries U1's id (VALUE is what it is set
-- to), as chatpersist.user_id, as the sub of request.jwt.claims (set as
-- PostgREST sets it) or as request.jwt.claim.sub (older PostgREST).
-- ID_PREFIX names the conversations a run creates (<prefix>-fn,
-- <prefix>-sql, <prefix>-new), so that the three runs do not meet; LABEL
-- starts every test's description.  The function switches to authenticated
-- and sets the identity itself (set_config(..., true), to the end of the
-- transaction), clears both, then compares U2's rows with the seed as the
-- superuser: 50 tests a run.  It goes with the ROLLBACK.
-- ---------------------------------------------------------------------------
CREATE FUNCTION pg_temp.u1_matrix(label text, id_prefix text, setting text, value text)
RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
	fn_id text := id_prefix || '-fn';
	sql_id text := id_prefix || '-sql';
	new_id text := id_prefix || '-new';
BEGIN
	PERFORM set_config('role', 'authenticated', true);
	PERFORM set_config(setting, value, true);

	RETURN QUERY SELECT is(chatpersist.current_user_id(), '11111111-1111-4111-8111-111111111111'::uuid, label || ': current_user_id() is U1');

	-- reads: own rows visible, U2's invisible (U2 also has a conversation "chat")
	RETURN QUERY SELECT results_eq(
		$$SELECT user_id, id, title, version FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', 'chat')$$,
		$$VALUES ('11111111-1111-4111-8111-111111111111'::uuid, 'chat'::text, 'u1 chat'::text, 1::bigint)$$,
		label || ': load_conversation of an own conversation returns it');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.load_conversation('22222222-2222-4222-8222-222222222222', 'chat')$$,
		label || ': load_conversation of U2''s conversation returns no row');
	RETURN QUERY SELECT results_eq(
		$$SELECT id FROM chatpersist.load_conversations('11111111-1111-4111-8111-111111111111')$$,
		ARRAY['chat'],
		label || ': load_conversations of U1 returns U1''s live conversations');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.load_conversations('22222222-2222-4222-8222-222222222222')$$,
		label || ': load_conversations of U2 returns no row');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.conversation_history('22222222-2222-4222-8222-222222222222', 'chat')$$,
		label || ': conversation_history of U2''s conversation returns no row');
	-- (changes_since reports only rows committed before the reader's snapshot,
	-- so inside this one test transaction it returns nothing even for own rows;
	-- only the denial can be checked here)
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.changes_since('22222222-2222-4222-8222-222222222222', 0)$$,
		label || ': changes_since of U2 returns no row');
	RETURN QUERY SELECT results_eq(
		$$SELECT user_id, title FROM chatpersist.conversations WHERE id = 'chat'$$,
		$$VALUES ('11111111-1111-4111-8111-111111111111'::uuid, 'u1 chat'::text)$$,
		label || ': direct SELECT of id "chat" sees only U1''s row');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.conversations WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
		label || ': direct SELECT of U2''s rows returns nothing');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.history WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
		label || ': direct SELECT of U2''s history returns nothing');
	RETURN QUERY SELECT results_eq(
		$$SELECT DISTINCT user_id FROM chatpersist.messages WHERE conversation_id = 'chat'$$,
		ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
		label || ': direct SELECT of the message rows of "chat" sees only U1''s');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.messages WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
		label || ': direct SELECT of U2''s message rows returns nothing');
	RETURN QUERY SELECT is_empty(
		$$SELECT * FROM chatpersist.history_messages WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
		label || ': direct SELECT of U2''s history_messages returns nothing');

	-- writes through the functions: own conversation, the whole life cycle
	RETURN QUERY SELECT results_eq(
		format($$SELECT status, version, message_count
		    FROM chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', %L, 'mine', '[{"id":"a","content":"one"}]')$$, fn_id),
		$$VALUES ('created'::text, 1::bigint, 1)$$,
		label || ': save_conversation creates an own conversation');
	RETURN QUERY SELECT results_eq(
		format($$SELECT status, version, message_count
		    FROM chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', %L, 'mine',
		         '[{"id":"a","content":"one"},{"id":"b","content":"two"}]', p_expected_version := 1)$$, fn_id),
		$$VALUES ('updated'::text, 2::bigint, 2)$$,
		label || ': save_conversation updates an own conversation');
	RETURN QUERY SELECT results_eq(
		format($$SELECT status, version, message_count
		    FROM chatpersist.append_messages('11111111-1111-4111-8111-111111111111', %L, '[{"id":"c","content":"three"}]', 2)$$, fn_id),
		$$VALUES ('updated'::text, 3::bigint, 3)$$,
		label || ': append_messages appends to an own conversation');
	RETURN QUERY SELECT results_eq(
		format($$SELECT version, replaced_by FROM chatpersist.conversation_history('11111111-1111-4111-8111-111111111111', %L)$$, fn_id),
		$$VALUES (2::bigint, 'updated'::text), (1, 'updated')$$,
		label || ': conversation_history shows the own conversation''s history');
	RETURN QUERY SELECT results_eq(
		format($$SELECT status, version, message_count FROM chatpersist.restore_version('11111111-1111-4111-8111-111111111111', %L, 1)$$, fn_id),
		$$VALUES ('updated'::text, 4::bigint, 1)$$,
		label || ': restore_version restores an own version');
	RETURN QUERY SELECT results_eq(
		format($$SELECT status, version, message_count FROM chatpersist.delete_conversation('11111111-1111-4111-8111-111111111111', %L, 4)$$, fn_id),
		$$VALUES ('deleted'::text, 5::bigint, 0)$$,
		label || ': delete_conversation deletes an own conversation');

	-- writes through the functions: U2's conversations
	RETURN QUERY SELECT throws_ok(
		$$SELECT chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'chat', 'stolen', '[{"id":"x","content":"by u1"}]', true)$$,
		'42501', 'new row violates row-level security policy for table "conversations"',
		label || ': a forced save_conversation of U2''s conversation fails with 42501');
	RETURN QUERY SELECT throws_ok(
		format($$SELECT chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', %L, 'planted', '[{"id":"x","content":"by u1"}]')$$, new_id),
		'42501', 'new row violates row-level security policy for table "conversations"',
		label || ': save_conversation creating a conversation for U2 fails with 42501');
	RETURN QUERY SELECT throws_ok(
		$$SELECT chatpersist.append_messages('22222222-2222-4222-8222-222222222222', 'chat', '[{"id":"x","content":"by u1"}]')$$,
		'42501', 'new row violates row-level security policy for table "conversations"',
		label || ': append_messages to U2''s conversation fails with 42501');
	RETURN QUERY SELECT results_eq(
		$$SELECT status, version, checksum FROM chatpersist.delete_conversation('22222222-2222-4222-8222-222222222222', 'chat')$$,
		$$VALUES ('unchanged'::text, NULL::bigint, NULL::text)$$,
		label || ': delete_conversation of U2''s conversation finds nothing to delete');
	RETURN QUERY SELECT throws_ok(
		$$SELECT chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 1)$$,
		'22023', 'version 1 of conversation "chat" is not in history',
		label || ': restore_version of U2''s archived version is "not in history"');

	-- direct SQL: own rows (2.0: an INSERT of the head makes an empty
	-- conversation; its messages are rows of chatpersist.messages, each direct
	-- write of one a new version)
	RETURN QUERY WITH i AS (
		INSERT INTO chatpersist.conversations (user_id, id, title)
		VALUES ('11111111-1111-4111-8111-111111111111', sql_id, 'direct')
		RETURNING version, message_count)
	SELECT is(array_agg(version || ' ' || message_count), ARRAY['1 0'], label || ': direct INSERT of an own row') FROM i;
	RETURN QUERY WITH i AS (
		INSERT INTO chatpersist.messages (user_id, conversation_id, message)
		VALUES ('11111111-1111-4111-8111-111111111111', sql_id, '{"id":"a","content":"one"}'),
			   ('11111111-1111-4111-8111-111111111111', sql_id, '{"id":"b","content":"two"}'),
			   ('11111111-1111-4111-8111-111111111111', sql_id, '{"id":"c","content":"three"}')
		RETURNING id, changed_version)
	SELECT is(array_agg(id || ' ' || changed_version ORDER BY id), ARRAY['a 2', 'b 3', 'c 4'],
		label || ': direct INSERT of own message rows') FROM i;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.messages SET message = '{"id":"a","content":"one, edited"}'
		 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = sql_id AND id = 'a'
		RETURNING changed_version)
	SELECT is(array_agg(changed_version), ARRAY[5::bigint], label || ': direct UPDATE of an own message row') FROM u;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.messages SET removed = true
		 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = sql_id AND id = 'b'
		RETURNING changed_version)
	SELECT is(array_agg(changed_version), ARRAY[6::bigint], label || ': direct removal of an own message row') FROM u;
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.messages
		 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = sql_id AND id = 'c'
		RETURNING 1)
	SELECT is(count(*)::int, 1, label || ': direct DELETE of an own message row') FROM d;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.conversations SET title = 'direct 2'
		 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = sql_id
		RETURNING version)
	SELECT is(array_agg(version), ARRAY[8::bigint], label || ': direct UPDATE of an own row') FROM u;
	RETURN QUERY SELECT results_eq(
		format($$SELECT messages, checksum, message_count
			FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', %L)$$, sql_id),
		$$VALUES ('[{"id":"a","content":"one, edited"}]'::jsonb, chatpersist.checksum('[{"id":"a","content":"one, edited"}]'), 1)$$,
		label || ': the own conversation holds what the direct SQL wrote');
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.conversations WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = sql_id
		RETURNING version)
	SELECT is(array_agg(version), ARRAY[8::bigint], label || ': direct DELETE of an own row') FROM d;
	RETURN QUERY SELECT is_empty(
		format($$SELECT * FROM chatpersist.messages
		   WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = %L$$, sql_id),
		label || ': the direct DELETE of an own row took its message rows');

	-- direct SQL: U2's rows
	RETURN QUERY SELECT throws_ok(
		format($$INSERT INTO chatpersist.conversations (user_id, id, title)
		  VALUES ('22222222-2222-4222-8222-222222222222', %L, 'planted')$$, sql_id),
		'42501', 'new row violates row-level security policy for table "conversations"',
		label || ': direct INSERT of a row for U2 fails with 42501');
	RETURN QUERY SELECT throws_ok(
		$$INSERT INTO chatpersist.conversations (user_id, id, title)
		  VALUES ('22222222-2222-4222-8222-222222222222', 'chat', 'stolen')
		  ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title$$,
		'42501', 'new row violates row-level security policy for table "conversations"',
		label || ': direct upsert onto U2''s row fails with 42501');
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.conversations SET title = 'stolen' WHERE user_id = '22222222-2222-4222-8222-222222222222'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct UPDATE of U2''s rows affects no row') FROM u;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.conversations SET title = title WHERE id = 'chat'
		RETURNING user_id)
	SELECT is(array_agg(user_id), ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
		label || ': direct UPDATE by the shared id "chat" reaches only U1''s row') FROM u;
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.conversations WHERE user_id = '22222222-2222-4222-8222-222222222222'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct DELETE of U2''s rows affects no row') FROM d;
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.conversations WHERE id = 'notes'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct DELETE by U2''s conversation id affects no row') FROM d;

	-- direct SQL on message rows: U2's (the trigger looks for the head with the
	-- caller's rights, so U2's conversation is as missing as one that does not
	-- exist)
	RETURN QUERY SELECT throws_ok(
		$$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
		  VALUES ('22222222-2222-4222-8222-222222222222', 'chat', '{"id":"x","content":"by u1"}')$$,
		'23503', 'conversation "chat" does not exist',
		label || ': direct INSERT of a message row into U2''s conversation fails');
	RETURN QUERY SELECT is(
		pg_temp.error_of($$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
							VALUES ('22222222-2222-4222-8222-222222222222', 'chat', '{"id":"x","content":"by u1"}')$$),
		pg_temp.error_of($$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
							VALUES ('33333333-3333-4333-8333-333333333333', 'chat', '{"id":"x","content":"by u1"}')$$),
		label || ': ... exactly as into a conversation that does not exist');
	RETURN QUERY SELECT throws_ok(
		$$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
		  VALUES ('11111111-1111-4111-8111-111111111111', 'notes', '{"id":"x","content":"by u1"}')$$,
		'23503', 'conversation "notes" does not exist',
		label || ': direct INSERT of an own message row under U2''s conversation id fails');
	RETURN QUERY SELECT throws_ok(
		$$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
		  VALUES ('22222222-2222-4222-8222-222222222222', 'chat', '{"id":"m1","content":"stolen"}')
		  ON CONFLICT (user_id, conversation_id, id) DO UPDATE SET message = excluded.message$$,
		'23503', 'conversation "chat" does not exist',
		label || ': direct upsert onto U2''s message row fails');
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.messages SET message = '{"id":"m1","content":"stolen"}'
		 WHERE user_id = '22222222-2222-4222-8222-222222222222'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct UPDATE of U2''s message rows affects no row') FROM u;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.messages SET removed = true WHERE user_id = '22222222-2222-4222-8222-222222222222'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct removal of U2''s message rows affects no row') FROM u;
	RETURN QUERY WITH u AS (
		UPDATE chatpersist.messages SET message = message WHERE conversation_id = 'chat' AND id = 'm1'
		RETURNING user_id)
	SELECT is(array_agg(user_id), ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
		label || ': direct UPDATE by the shared ids "chat" and "m1" reaches only U1''s message row') FROM u;
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.messages WHERE user_id = '22222222-2222-4222-8222-222222222222'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct DELETE of U2''s message rows affects no row') FROM d;
	RETURN QUERY WITH d AS (
		DELETE FROM chatpersist.messages WHERE conversation_id = 'notes'
		RETURNING 1)
	SELECT is(count(*)::int, 0, label || ': direct DELETE by U2''s conversation id affects no message row') FROM d;

	PERFORM set_config('role', 'none', true);
	PERFORM set_config(setting, '', true);
	RETURN QUERY SELECT is(chatpersist.current_user_id(), NULL, label || ': identity cleared again');
	RETURN QUERY SELECT results_eq(
		$$SELECT * FROM pg_temp.snapshot() WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
		$$SELECT * FROM seeded WHERE user_id = '22222222-2222-4222-8222-222222222222' ORDER BY id$$,
		label || ': U2''s rows and history are as seeded');
END
$f$;

SELECT * FROM pg_temp.u1_matrix('GUC', 'g', 'chatpersist.user_id', '11111111-1111-4111-8111-111111111111');
SELECT * FROM pg_temp.u1_matrix('claims', 'c', 'request.jwt.claims',
								'{"sub":"11111111-1111-4111-8111-111111111111","role":"authenticated"}');
SELECT * FROM pg_temp.u1_matrix('claim.sub', 's', 'request.jwt.claim.sub', '11111111-1111-4111-8111-111111111111');


-- ---------------------------------------------------------------------------
-- authenticated without any identity: sees nothing, writes nothing
-- ---------------------------------------------------------------------------
SET LOCAL ROLE authenticated;
SELECT is(chatpersist.current_user_id(), NULL, 'none: current_user_id() is NULL');
SELECT is_empty($$SELECT * FROM chatpersist.load_conversations('11111111-1111-4111-8111-111111111111')$$,
	'none: load_conversations of U1 returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', 'chat')$$,
	'none: load_conversation of U1''s "chat" returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.load_conversations('22222222-2222-4222-8222-222222222222')$$,
	'none: load_conversations of U2 returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.conversation_history('22222222-2222-4222-8222-222222222222', 'chat')$$,
	'none: conversation_history of U2''s "chat" returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.conversations$$, 'none: a direct SELECT returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.history$$, 'none: a direct SELECT of history returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.messages$$, 'none: a direct SELECT of messages returns no row');
SELECT is_empty($$SELECT * FROM chatpersist.history_messages$$, 'none: a direct SELECT of history_messages returns no row');
SELECT throws_ok(
	$$SELECT chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', 'none-fn', 't', '[]')$$,
	'42501', 'new row violates row-level security policy for table "conversations"',
	'none: save_conversation fails with 42501');
SELECT throws_ok(
	$$SELECT chatpersist.append_messages('11111111-1111-4111-8111-111111111111', 'chat', '[{"id":"x"}]')$$,
	'42501', 'new row violates row-level security policy for table "conversations"',
	'none: append_messages to an existing conversation fails with 42501');
SELECT results_eq(
	$$SELECT status, version FROM chatpersist.delete_conversation('11111111-1111-4111-8111-111111111111', 'chat')$$,
	$$VALUES ('unchanged'::text, NULL::bigint)$$,
	'none: delete_conversation finds nothing to delete');
SELECT throws_ok(
	$$SELECT chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 1)$$,
	'22023', 'version 1 of conversation "chat" is not in history',
	'none: restore_version finds no version');
SELECT throws_ok(
	$$INSERT INTO chatpersist.conversations (user_id, id)
	  VALUES ('11111111-1111-4111-8111-111111111111', 'none-sql')$$,
	'42501', 'new row violates row-level security policy for table "conversations"',
	'none: a direct INSERT fails with 42501');
WITH u AS (UPDATE chatpersist.conversations SET title = 'x' RETURNING 1)
SELECT is(count(*)::int, 0, 'none: a direct UPDATE of every row affects no row') FROM u;
WITH d AS (DELETE FROM chatpersist.conversations RETURNING 1)
SELECT is(count(*)::int, 0, 'none: a direct DELETE of every row affects no row') FROM d;
SELECT throws_ok(
	$$INSERT INTO chatpersist.messages (user_id, conversation_id, message)
	  VALUES ('11111111-1111-4111-8111-111111111111', 'chat', '{"id":"x"}')$$,
	'23503', 'conversation "chat" does not exist',
	'none: a direct INSERT of a message row fails');
WITH u AS (UPDATE chatpersist.messages SET message = '{"id":"x"}' RETURNING 1)
SELECT is(count(*)::int, 0, 'none: a direct UPDATE of every message row affects no row') FROM u;
WITH u AS (UPDATE chatpersist.messages SET removed = true RETURNING 1)
SELECT is(count(*)::int, 0, 'none: a direct removal of every message row affects no row') FROM u;
WITH d AS (DELETE FROM chatpersist.messages RETURNING 1)
SELECT is(count(*)::int, 0, 'none: a direct DELETE of every message row affects no row') FROM d;
RESET ROLE;
SELECT results_eq(
	$$SELECT * FROM pg_temp.snapshot() WHERE (user_id, id) IN (SELECT user_id, id FROM seeded)$$,
	$$SELECT * FROM seeded ORDER BY user_id, id$$,
	'none: every seeded row is as seeded');

-- ---------------------------------------------------------------------------
-- anon: no privilege at all, whatever the claims say
-- ---------------------------------------------------------------------------
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-4111-8111-111111111111","role":"anon"}', true) \g /dev/null
SELECT throws_ok(s, '42501', 'permission denied for schema chatpersist', 'anon: ' || s)
FROM (VALUES ($$SELECT chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', 'a', 't', '[]')$$),
			 ($$SELECT chatpersist.append_messages('11111111-1111-4111-8111-111111111111', 'a', '[]')$$),
			 ($$SELECT chatpersist.delete_conversation('11111111-1111-4111-8111-111111111111', 'chat')$$),
			 ($$SELECT chatpersist.restore_version('11111111-1111-4111-8111-111111111111', 'chat', 1)$$),
			 ($$SELECT * FROM chatpersist.load_conversations('11111111-1111-4111-8111-111111111111')$$),
			 ($$SELECT * FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', 'chat')$$),
			 ($$SELECT * FROM chatpersist.changes_since('11111111-1111-4111-8111-111111111111', 0)$$),
			 ($$SELECT * FROM chatpersist.messages_since('11111111-1111-4111-8111-111111111111', 'chat', 0)$$),
			 ($$SELECT * FROM chatpersist.conversation_history('11111111-1111-4111-8111-111111111111', 'chat')$$),
			 ($$SELECT chatpersist.merge_messages('[]', '[]')$$),
			 ($$SELECT chatpersist.merge_messages('[]', '[]', '[]')$$),
			 ($$SELECT chatpersist.checksum('[]')$$),
			 ($$SELECT chatpersist.current_user_id()$$),
			 ($$SELECT * FROM chatpersist.stats()$$),
			 ($$SELECT chatpersist.migrate_user('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111')$$),
			 ($$SELECT chatpersist.import_app_state('11111111-1111-4111-8111-111111111111', '[]')$$),
			 ($$SELECT * FROM chatpersist.conversations$$),
			 ($$INSERT INTO chatpersist.conversations (user_id, id) VALUES ('11111111-1111-4111-8111-111111111111', 'a')$$),
			 ($$UPDATE chatpersist.conversations SET title = 'x'$$),
			 ($$DELETE FROM chatpersist.conversations$$),
			 ($$SELECT * FROM chatpersist.history$$),
			 ($$SELECT * FROM chatpersist.messages$$),
			 ($$INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ('11111111-1111-4111-8111-111111111111', 'chat', '{"id":"x"}')$$),
			 ($$UPDATE chatpersist.messages SET removed = true$$),
			 ($$DELETE FROM chatpersist.messages$$),
			 ($$SELECT * FROM chatpersist.history_messages$$)) v(s);
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
RESET ROLE;

-- ---------------------------------------------------------------------------
-- History: each user reads only their own; nobody but service_role writes it
-- ---------------------------------------------------------------------------
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-4222-8222-222222222222","role":"authenticated"}', true) \g /dev/null
SELECT results_eq(
	$$SELECT user_id, conversation_id, version, replaced_by
	    FROM chatpersist.conversation_history('22222222-2222-4222-8222-222222222222', 'chat')$$,
	$$VALUES ('22222222-2222-4222-8222-222222222222'::uuid, 'chat'::text, 1::bigint, 'updated'::text)$$,
	'history: U2 reads the history of U2''s "chat"');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.history$$,
	ARRAY['22222222-2222-4222-8222-222222222222'::uuid],
	'history: a direct SELECT as U2 returns only U2''s rows');
SELECT results_eq(
	$$SELECT version, messages FROM chatpersist.conversation_history('22222222-2222-4222-8222-222222222222', 'chat')$$,
	$$VALUES (1::bigint, '[{"id":"m1","role":"user","content":"secret of u2"}]'::jsonb)$$,
	'history: U2''s archived version holds U2''s array');
SELECT results_eq($$SELECT user_id, conversation_id, id, valid_from, valid_to FROM chatpersist.history_messages$$,
	$$VALUES ('22222222-2222-4222-8222-222222222222'::uuid, 'chat'::text, 'm1'::text, 1::bigint, 2::bigint)$$,
	'history: a direct SELECT of history_messages as U2 returns only U2''s replaced copy');
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-4111-8111-111111111111","role":"authenticated"}', true) \g /dev/null
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.history$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
	'history: a direct SELECT as U1 returns only U1''s rows');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.history_messages$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid],
	'history: a direct SELECT of history_messages as U1 returns only U1''s rows');
SELECT throws_ok(
	$$INSERT INTO chatpersist.history
	  SELECT user_id, conversation_id, 99, title, metadata, checksum, message_count,
			 deleted, last_modified, replaced_at, replaced_by, discarded
	    FROM chatpersist.history$$,
	'42501', 'permission denied for table history', 'history: authenticated cannot INSERT');
SELECT throws_ok($$UPDATE chatpersist.history SET title = 'x'$$,
	'42501', 'permission denied for table history', 'history: authenticated cannot UPDATE');
SELECT throws_ok($$DELETE FROM chatpersist.history$$,
	'42501', 'permission denied for table history', 'history: authenticated cannot DELETE');
SELECT throws_ok(
	$$INSERT INTO chatpersist.history_messages
	  SELECT user_id, conversation_id, id, 99, 100, pos, message FROM chatpersist.history_messages$$,
	'42501', 'permission denied for table history_messages', 'history: authenticated cannot INSERT into history_messages');
SELECT throws_ok($$UPDATE chatpersist.history_messages SET message = '{"id":"x"}'$$,
	'42501', 'permission denied for table history_messages', 'history: authenticated cannot UPDATE history_messages');
SELECT throws_ok($$DELETE FROM chatpersist.history_messages$$,
	'42501', 'permission denied for table history_messages', 'history: authenticated cannot DELETE from history_messages');

-- no oracle: another user's conversation fails exactly like one that does
-- not exist (U3 has nothing at all)
SELECT is(pg_temp.error_of($$SELECT chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 1)$$),
		  '22023: version 1 of conversation "chat" is not in history |  | chatpersist.conversation_history() lists the versions that can be restored.',
		  'no oracle: restore_version of U2''s archived version is refused as not in history');
SELECT is(pg_temp.error_of($$SELECT chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 1)$$),
		  pg_temp.error_of($$SELECT chatpersist.restore_version('33333333-3333-4333-8333-333333333333', 'chat', 1)$$),
		  'no oracle: restore_version of U2''s archived version fails like a missing conversation');
SELECT is(pg_temp.error_of($$SELECT chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 2)$$),
		  pg_temp.error_of($$SELECT chatpersist.restore_version('33333333-3333-4333-8333-333333333333', 'chat', 2)$$),
		  'no oracle: restore_version of U2''s current version fails like a missing conversation');
SELECT is(pg_temp.error_of($$SELECT chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'chat', 't', '[]')$$),
		  pg_temp.error_of($$SELECT chatpersist.save_conversation('33333333-3333-4333-8333-333333333333', 'chat', 't', '[]')$$),
		  'no oracle: save_conversation for U2 fails like one for a user with nothing');
SELECT is(pg_temp.error_of($$SELECT chatpersist.append_messages('22222222-2222-4222-8222-222222222222', 'chat', '[]')$$),
		  pg_temp.error_of($$SELECT chatpersist.append_messages('33333333-3333-4333-8333-333333333333', 'chat', '[]')$$),
		  'no oracle: append_messages for U2 fails like one for a user with nothing');
SELECT results_eq(
	$$SELECT * FROM chatpersist.delete_conversation('22222222-2222-4222-8222-222222222222', 'chat')$$,
	$$SELECT * FROM chatpersist.delete_conversation('33333333-3333-4333-8333-333333333333', 'chat')$$,
	'no oracle: delete_conversation for U2 returns what it returns for a user with nothing');
SELECT set_config('request.jwt.claims', '', true) \g /dev/null

-- ---------------------------------------------------------------------------
-- What a client cannot do to its own rows either
-- ---------------------------------------------------------------------------
SET LOCAL chatpersist.user_id = '11111111-1111-4111-8111-111111111111';
WITH u AS (
	UPDATE chatpersist.conversations SET title = 'u1 chat 2'
	 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = 'chat'
	RETURNING version)
SELECT is(array_agg(version), ARRAY[2::bigint], 'own: a direct UPDATE makes "chat" version 2') FROM u;
SELECT is(pg_temp.error_of($$UPDATE chatpersist.conversations SET title = 'stale', version = 1
							 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = 'chat'$$),
		  '40001: conversation "chat" was modified concurrently | Expected version 1, found 2. | Reload the conversation and retry.',
		  'own: a direct UPDATE with a stale version fails with 40001');
SELECT is((SELECT title || ' ' || version FROM chatpersist.conversations WHERE id = 'chat'),
		  'u1 chat 2 2', 'own: the stale UPDATE changed nothing');
-- the version check runs in the trigger, which never sees a row the policy
-- hides: a stale UPDATE of U2's row is no error that would reveal it
WITH u AS (
	UPDATE chatpersist.conversations SET title = 'stale', version = 1
	 WHERE user_id = '22222222-2222-4222-8222-222222222222' AND id = 'chat'
	RETURNING 1)
SELECT is(count(*)::int, 0, 'a stale-version UPDATE of U2''s row raises nothing and affects no row') FROM u;

-- a client INSERT cannot choose version, checksum, message_count or last_modified,
-- not even with a checksum that matches its messages (2.0: none, the head
-- makes an empty conversation)
WITH i AS (
	INSERT INTO chatpersist.conversations
		(user_id, id, title, version, checksum, message_count, last_modified)
	VALUES ('11111111-1111-4111-8111-111111111111', 'forged', 'f',
			42, chatpersist.checksum('[]'), 7, '2001-01-01')
	RETURNING version, message_count, last_modified = now() AS stamped)
SELECT is(array_agg(version || ' ' || message_count || ' ' || stamped), ARRAY['1 0 true'],
		  'own: a direct INSERT with a forged version and matching checksum gets version 1') FROM i;
-- nor can a message row choose its hash or stamps, not even with the true
-- hash and an ordering key, as a dumped row carries them
WITH i AS (
	INSERT INTO chatpersist.messages
		(user_id, conversation_id, id, pos, message, hash, added_version, changed_version)
	VALUES ('11111111-1111-4111-8111-111111111111', 'forged', 'a', 65536, '{"id":"a","content":"x"}',
			('x' || chatpersist.checksum('{"id":"a","content":"x"}'::jsonb))::bit(64)::int8, 42, 42)
	RETURNING added_version, changed_version)
SELECT is(array_agg(added_version || ' ' || changed_version), ARRAY['2 2'],
		  'own: a direct INSERT of a message row with forged stamps gets version 2') FROM i;
WITH i AS (
	INSERT INTO chatpersist.messages (user_id, conversation_id, message, hash, added_version, changed_version)
	VALUES ('11111111-1111-4111-8111-111111111111', 'forged', '{"id":"b","content":"y"}', 5, 42, 42)
	RETURNING hash = ('x' || chatpersist.checksum(message))::bit(64)::int8 AS hashed, added_version, changed_version)
SELECT is(array_agg(hashed || ' ' || added_version || ' ' || changed_version), ARRAY['true 3 3'],
		  'own: a direct INSERT of a message row cannot choose its hash') FROM i;
WITH u AS (
	UPDATE chatpersist.messages SET hash = 0, added_version = 99, changed_version = 99
	 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = 'forged' AND id = 'b'
	RETURNING hash = ('x' || chatpersist.checksum(message))::bit(64)::int8 AS hashed, added_version, changed_version)
SELECT is(array_agg(hashed || ' ' || added_version || ' ' || changed_version), ARRAY['true 3 3'],
		  'own: a direct UPDATE cannot set a message row''s hash or stamps') FROM u;
-- g-sql was inserted, written to version 8 and deleted by the GUC block
WITH i AS (
	INSERT INTO chatpersist.conversations
		(user_id, id, title, version, checksum, message_count, last_modified)
	VALUES ('11111111-1111-4111-8111-111111111111', 'g-sql', 'f',
			42, chatpersist.checksum('[]'), 1, '2001-01-01')
	RETURNING version)
SELECT is(array_agg(version), ARRAY[9::bigint],
		  'own: a forged INSERT under a key with history gets the next version, 9') FROM i;
WITH u AS (
	UPDATE chatpersist.conversations SET checksum = '0000000000000000', message_count = 99
	 WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = 'forged'
	RETURNING version, checksum = chatpersist.checksum(pg_temp.array_of(user_id, id)) AS ok, message_count)
SELECT is(array_agg(version || ' ' || ok || ' ' || message_count), ARRAY['3 true 2'],
		  'own: a direct UPDATE cannot set checksum or message_count') FROM u;
SELECT throws_ok(
	$$UPDATE chatpersist.conversations SET user_id = '22222222-2222-4222-8222-222222222222'
	   WHERE user_id = '11111111-1111-4111-8111-111111111111' AND id = 'chat'$$,
	'0A000', 'cannot change the user_id or id of a conversation',
	'own: a row cannot be moved to U2');
SELECT throws_ok(
	$$UPDATE chatpersist.messages SET user_id = '22222222-2222-4222-8222-222222222222'
	   WHERE user_id = '11111111-1111-4111-8111-111111111111' AND conversation_id = 'chat'$$,
	'0A000', 'cannot change the user_id, conversation_id or id of a message',
	'own: a message row cannot be moved to U2');
SELECT throws_ok($$TRUNCATE chatpersist.conversations$$,
	'42501', 'permission denied for table conversations', 'authenticated cannot TRUNCATE');
SELECT throws_ok($$TRUNCATE chatpersist.messages$$,
	'42501', 'permission denied for table messages', 'authenticated cannot TRUNCATE messages');
SELECT throws_ok($$SELECT * FROM chatpersist.stats()$$,
	'42501', 'permission denied for function stats', 'authenticated cannot call stats()');
SELECT throws_ok($$SELECT chatpersist.migrate_user('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111')$$,
	'42501', 'permission denied for function migrate_user', 'authenticated cannot call migrate_user()');
SELECT throws_ok($$SELECT chatpersist.import_app_state('11111111-1111-4111-8111-111111111111', '[]')$$,
	'42501', 'permission denied for function import_app_state', 'authenticated cannot call import_app_state()');
-- a client cannot lift the limits or switch history, debug or notify
SELECT throws_ok(format('SET LOCAL %s = %L', g, v),
	'42501', format('permission denied to set parameter "%s"', g), 'authenticated cannot SET ' || g)
FROM (VALUES ('chatpersist.history_depth', '0'), ('chatpersist.max_messages', '100000000'),
			 ('chatpersist.max_conversation_bytes', '2GB'), ('chatpersist.debug', 'on'),
			 ('chatpersist.notify', 'on')) v(g, v);
RESET chatpersist.user_id;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Wrappers in public (docs/supabase.md, way 2; that block as it stands
-- there, without its BEGIN and COMMIT, as this file is one transaction;
-- test/supabase_move.sh runs it whole): SECURITY INVOKER, so the policies
-- still apply
-- ---------------------------------------------------------------------------
DROP FUNCTION IF EXISTS public.save_conversation(uuid, text, text, jsonb, boolean);
DROP FUNCTION IF EXISTS public.load_conversations(uuid);

CREATE OR REPLACE FUNCTION public.save_conversation(
	p_user_id uuid, p_conversation_id text, p_title text, p_messages jsonb,
	p_force_overwrite boolean DEFAULT false, p_expected_version bigint DEFAULT NULL,
	p_metadata jsonb DEFAULT NULL)
RETURNS chatpersist.save_result
LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = ''
AS $$
	SELECT * FROM chatpersist.save_conversation(p_user_id, p_conversation_id, p_title, p_messages,
												p_force_overwrite, p_expected_version, p_metadata)
$$;

CREATE FUNCTION public.load_conversations(p_user_id uuid)
RETURNS SETOF chatpersist.conversation
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = ''
AS $$
	SELECT * FROM chatpersist.load_conversations(p_user_id)
$$;

REVOKE ALL ON FUNCTION public.save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb),
	public.load_conversations(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.save_conversation(uuid, text, text, jsonb, boolean, bigint, jsonb),
	public.load_conversations(uuid) TO authenticated, service_role;

NOTIFY pgrst, 'reload schema';

SELECT isnt_definer('public', 'save_conversation',
	ARRAY['uuid', 'text', 'text', 'jsonb', 'boolean', 'bigint', 'jsonb'], 'wrapper save_conversation is SECURITY INVOKER');
SELECT isnt_definer('public', 'load_conversations', ARRAY['uuid'], 'wrapper load_conversations is SECURITY INVOKER');
SET LOCAL ROLE anon;
SELECT throws_ok(
	$$SELECT public.save_conversation('11111111-1111-4111-8111-111111111111', 'wrapped', 't', '[]')$$,
	'42501', 'permission denied for function save_conversation', 'wrapper: anon cannot call it');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-4111-8111-111111111111","role":"authenticated"}', true) \g /dev/null
SELECT results_eq(
	$$SELECT status, version FROM public.save_conversation('11111111-1111-4111-8111-111111111111', 'wrapped', 't',
														   '[{"id":"a","content":"via the wrapper"}]')$$,
	$$VALUES ('created'::text, 1::bigint)$$,
	'wrapper: U1 creates an own conversation');
SELECT throws_ok(
	$$SELECT public.save_conversation('22222222-2222-4222-8222-222222222222', 'chat', 'stolen', '[]', true)$$,
	'42501', 'new row violates row-level security policy for table "conversations"',
	'wrapper: a forced save of U2''s conversation fails with 42501');
SELECT results_eq($$SELECT id FROM public.load_conversations('11111111-1111-4111-8111-111111111111')$$,
	ARRAY['chat', 'forged', 'g-sql', 'wrapped'], 'wrapper: U1 loads U1''s live conversations');
SELECT is_empty($$SELECT * FROM public.load_conversations('22222222-2222-4222-8222-222222222222')$$,
	'wrapper: U1 loads nothing of U2');
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
RESET ROLE;

-- the table owner (here the superuser) restoring a dump keeps the version,
-- and the dumped message rows keep their stamps and leave the version alone
WITH i AS (
	INSERT INTO chatpersist.conversations
		(user_id, id, title, version, checksum, message_count, last_modified, last_pos)
	VALUES ('11111111-1111-4111-8111-111111111111', 'restored', 'f',
			42, chatpersist.checksum('[{"id":"a","content":"x"}]'), 1, '2001-01-01', 65536)
	RETURNING version)
SELECT is(array_agg(version), ARRAY[42::bigint],
		  'the table owner''s INSERT of a dumped row keeps its version (the restore path)') FROM i;
WITH i AS (
	INSERT INTO chatpersist.messages
		(user_id, conversation_id, id, pos, message, hash, added_version, changed_version, removed)
	VALUES ('11111111-1111-4111-8111-111111111111', 'restored', 'a', 65536, '{"id":"a","content":"x"}',
			('x' || chatpersist.checksum('{"id":"a","content":"x"}'::jsonb))::bit(64)::int8, 40, 41, false)
	RETURNING pos, added_version, changed_version)
SELECT is(array_agg(pos || ' ' || added_version || ' ' || changed_version), ARRAY['65536 40 41'],
		  'the table owner''s INSERT of a dumped message row keeps its stamps') FROM i;
SELECT results_eq(
	$$SELECT version, messages, checksum, message_count, last_modified
		FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', 'restored')$$,
	$$VALUES (42::bigint, '[{"id":"a","content":"x"}]'::jsonb, chatpersist.checksum('[{"id":"a","content":"x"}]'),
			  1, '2001-01-01'::timestamptz)$$,
	'the restored conversation is as dumped');
SELECT results_eq(
	$$SELECT * FROM pg_temp.snapshot() WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
	$$SELECT * FROM seeded WHERE user_id = '22222222-2222-4222-8222-222222222222' ORDER BY id$$,
	'after every authenticated test: U2''s rows and history are as seeded');

-- ---------------------------------------------------------------------------
-- The functions need no privilege on the message tables: they write and
-- read the message rows as the tables' owner, once the head's row-level
-- security has let the caller in
-- ---------------------------------------------------------------------------
REVOKE ALL ON chatpersist.messages, chatpersist.history_messages FROM authenticated;
SET LOCAL ROLE authenticated;
SET LOCAL chatpersist.user_id = '11111111-1111-4111-8111-111111111111';
SELECT throws_ok($$SELECT * FROM chatpersist.messages$$,
	'42501', 'permission denied for table messages', 'no message privileges: a direct SELECT is refused');
SELECT results_eq(
	$$SELECT status, version, message_count
		FROM chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', 'np', 't', '[{"id":"a","content":"one"}]')$$,
	$$VALUES ('created'::text, 1::bigint, 1)$$,
	'no message privileges: save_conversation creates');
SELECT results_eq(
	$$SELECT status, version, message_count
		FROM chatpersist.save_conversation('11111111-1111-4111-8111-111111111111', 'np', 't',
			 '[{"id":"a","content":"one, edited"},{"id":"b","content":"two"}]', p_expected_version := 1)$$,
	$$VALUES ('updated'::text, 2::bigint, 2)$$,
	'no message privileges: save_conversation edits and adds');
SELECT results_eq(
	$$SELECT status, version, message_count
		FROM chatpersist.append_messages('11111111-1111-4111-8111-111111111111', 'np', '[{"id":"c","content":"three"}]', 2)$$,
	$$VALUES ('updated'::text, 3::bigint, 3)$$,
	'no message privileges: append_messages appends');
SELECT results_eq(
	$$SELECT messages FROM chatpersist.load_conversation('11111111-1111-4111-8111-111111111111', 'np')$$,
	$$VALUES ('[{"id":"a","content":"one, edited"},{"id":"b","content":"two"},{"id":"c","content":"three"}]'::jsonb)$$,
	'no message privileges: load_conversation returns the array');
SELECT results_eq(
	$$SELECT version, messages FROM chatpersist.conversation_history('11111111-1111-4111-8111-111111111111', 'np')$$,
	$$VALUES (2::bigint, '[{"id":"a","content":"one, edited"},{"id":"b","content":"two"}]'::jsonb),
			 (1, '[{"id":"a","content":"one"}]')$$,
	'no message privileges: conversation_history returns the archived arrays');
SELECT results_eq(
	$$SELECT status, version, checksum FROM chatpersist.restore_version('11111111-1111-4111-8111-111111111111', 'np', 1)$$,
	$$VALUES ('updated'::text, 4::bigint, chatpersist.checksum('[{"id":"a","content":"one"}]'))$$,
	'no message privileges: restore_version restores');
SELECT results_eq(
	$$SELECT status, version FROM chatpersist.delete_conversation('11111111-1111-4111-8111-111111111111', 'np', 4)$$,
	$$VALUES ('deleted'::text, 5::bigint)$$,
	'no message privileges: delete_conversation deletes');
RESET chatpersist.user_id;
RESET ROLE;
SELECT results_eq(
	$$SELECT * FROM pg_temp.snapshot() WHERE user_id = '22222222-2222-4222-8222-222222222222'$$,
	$$SELECT * FROM seeded WHERE user_id = '22222222-2222-4222-8222-222222222222' ORDER BY id$$,
	'no message privileges: U2''s rows and history are as seeded');
SELECT is(
	(SELECT count(*)::int FROM chatpersist.messages WHERE user_id = '22222222-2222-4222-8222-222222222222')
	  || ' ' || (SELECT count(*)::int FROM chatpersist.history_messages WHERE user_id = '22222222-2222-4222-8222-222222222222'),
	(SELECT sum(coalesce(jsonb_array_length(message_rows), 0))::int || ' ' || sum(coalesce(jsonb_array_length(history_message_rows), 0))::int
	   FROM seeded WHERE user_id = '22222222-2222-4222-8222-222222222222'),
	'U2 has no message row or copy outside the seeded conversations');

-- ---------------------------------------------------------------------------
-- service_role: BYPASSRLS, sees and writes every user's rows
-- ---------------------------------------------------------------------------
SET LOCAL ROLE service_role;
SELECT is(chatpersist.current_user_id(), NULL, 'service_role: no identity set');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.conversations ORDER BY 1$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid, '22222222-2222-4222-8222-222222222222'],
	'service_role: a direct SELECT sees both users'' rows');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.messages ORDER BY 1$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid, '22222222-2222-4222-8222-222222222222'],
	'service_role: a direct SELECT sees both users'' message rows');
SELECT results_eq($$SELECT DISTINCT user_id FROM chatpersist.history_messages ORDER BY 1$$,
	ARRAY['11111111-1111-4111-8111-111111111111'::uuid, '22222222-2222-4222-8222-222222222222'],
	'service_role: a direct SELECT sees both users'' replaced copies');
SELECT results_eq($$SELECT id FROM chatpersist.load_conversations('22222222-2222-4222-8222-222222222222')$$,
	ARRAY['chat', 'notes'], 'service_role: load_conversations of U2');
SELECT results_eq(
	$$SELECT version FROM chatpersist.conversation_history('22222222-2222-4222-8222-222222222222', 'chat')$$,
	ARRAY[1::bigint], 'service_role: conversation_history of U2''s "chat"');
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-4111-8111-111111111111","role":"service_role"}', true) \g /dev/null
SELECT is((SELECT count(*)::int FROM chatpersist.conversations WHERE user_id = '22222222-2222-4222-8222-222222222222'),
		  2, 'service_role: an identity does not narrow what it sees');
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
SELECT results_eq(
	$$SELECT status, version FROM chatpersist.save_conversation('22222222-2222-4222-8222-222222222222', 'svc', 't', '[]')$$,
	$$VALUES ('created'::text, 1::bigint)$$,
	'service_role: save_conversation for U2');
SELECT results_eq(
	$$SELECT status, version FROM chatpersist.restore_version('22222222-2222-4222-8222-222222222222', 'chat', 1)$$,
	$$VALUES ('updated'::text, 3::bigint)$$,
	'service_role: restore_version of U2''s archived version');
SELECT lives_ok($$SELECT * FROM chatpersist.stats()$$, 'service_role: stats()');
SELECT is(chatpersist.import_app_state('33333333-3333-4333-8333-333333333333',
		  '{"conversations": {"legacy": {"title": "old", "messages": [{"id": "l1", "content": "kept"}]}}}'),
		  1, 'service_role: import_app_state for U3');
SELECT is(chatpersist.migrate_user('33333333-3333-4333-8333-333333333333', '22222222-2222-4222-8222-222222222222'),
		  1, 'service_role: migrate_user moves U3''s conversation to U2');
SELECT results_eq($$SELECT id FROM chatpersist.load_conversations('22222222-2222-4222-8222-222222222222')$$,
	ARRAY['chat', 'legacy', 'notes', 'svc'], 'service_role: U2 has the migrated conversation');
-- BYPASSRLS does not make service_role the table owner: no forged version
WITH i AS (
	INSERT INTO chatpersist.conversations
		(user_id, id, title, version, checksum, message_count, last_modified, last_pos)
	VALUES ('22222222-2222-4222-8222-222222222222', 'svc-forged', 'f',
			42, chatpersist.checksum('[{"id":"a","content":"x"}]'), 1, '2001-01-01', 65536)
	RETURNING version)
SELECT is(array_agg(version), ARRAY[1::bigint], 'service_role: a forged version is not kept') FROM i;
WITH i AS (
	INSERT INTO chatpersist.messages
		(user_id, conversation_id, id, pos, message, hash, added_version, changed_version)
	VALUES ('22222222-2222-4222-8222-222222222222', 'svc-forged', 'a', 65536, '{"id":"a","content":"x"}',
			('x' || chatpersist.checksum('{"id":"a","content":"x"}'::jsonb))::bit(64)::int8, 40, 41)
	RETURNING added_version, changed_version)
SELECT is(array_agg(added_version || ' ' || changed_version), ARRAY['2 2'],
		  'service_role: forged message row stamps are not kept') FROM i;
SELECT results_eq(
	$$SELECT status, version FROM chatpersist.append_messages('22222222-2222-4222-8222-222222222222', 'chat',
			 '[{"id":"svc","content":"by the service"}]', 3)$$,
	$$VALUES ('updated'::text, 4::bigint)$$,
	'service_role: append_messages to U2''s conversation');
WITH u AS (
	UPDATE chatpersist.messages SET removed = true
	 WHERE user_id = '22222222-2222-4222-8222-222222222222' AND conversation_id = 'chat' AND id = 'svc'
	RETURNING changed_version)
SELECT is(array_agg(changed_version), ARRAY[5::bigint], 'service_role: a direct removal of U2''s message row') FROM u;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
