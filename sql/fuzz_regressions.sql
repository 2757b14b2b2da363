--
-- Bugs the fuzzer (test/fuzz.sh) found, one block each, pinned so that they
-- stay fixed.  See docs/reliability.md, section "Fuzzing".
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql

--
-- 1. current_user_id() raised PostgreSQL's jsonb input errors (22P05,
-- 22P02, 22003) instead of 22023 for request.jwt.claims that are valid JSON
-- text but not valid jsonb: a \u0000 or a lone surrogate escape anywhere in
-- the claims, or a number numeric cannot hold.  Such claims are malformed
-- (22023); a number only in another claim does not matter, since sub is read
-- without converting numbers.
--
SET request.jwt.claims = '{"sub": "0b9c2d1e-0000-4000-8000-000000000002", "x": "\u0000"}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": "\u0000"}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": "0b9c2d1e-0000-4000-8000-000000000002", "x": "\ud800"}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": "\udc00\ud800"}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": "0b9c2d1e-0000-4000-8000-000000000002", "exp": 1e200000}';
SELECT chatpersist.current_user_id();
-- what jsonb does with the rest is unchanged: the last of repeated keys,
-- escaped keys, null and "" as no identity, other types as errors
SET request.jwt.claims = '{"sub": "bad", "sub": "0b9c2d1e-0000-4000-8000-000000000002"}';
SELECT chatpersist.current_user_id();
SET request.jwt.claims = '{"\u0073ub": "{0B9C2D1E-0000-4000-8000-000000000002}"}';
SELECT chatpersist.current_user_id();
SET request.jwt.claims = '{"sub": "0b9c2d1e-0000-4000-8000-000000000002", "sub": null}';
SELECT chatpersist.current_user_id() IS NULL;
SET request.jwt.claims = '{"sub": ""}';
SELECT chatpersist.current_user_id() IS NULL;
SET request.jwt.claims = '{"sub": 42}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": ["0b9c2d1e-0000-4000-8000-000000000002"]}';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '[{"sub": "0b9c2d1e-0000-4000-8000-000000000002"}]';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
SET request.jwt.claims = '{"sub": "0b9c2d1e-0000-4000-8000-000000000002"';
SELECT pg_temp.try($$SELECT chatpersist.current_user_id()$$);
RESET request.jwt.claims;

--
-- 2. A version at the top of bigint wrapped around to a negative one on the
-- next write.  Only a restore can put such a version in (the owner
-- inserting a row with its own version and matching checksum; since 2.0
-- the head, with its message_count, as a dump has it, and no messages:
-- they are rows of chatpersist.messages); the next change now fails with
-- 22003 instead, and so does creating the key again once that version is
-- in history.
--
INSERT INTO chatpersist.conversations (user_id, id, version, checksum, message_count)
VALUES ('00000000-0000-4000-8000-00000000fa71', 'top', 9223372036854775807,
		chatpersist.checksum('[]'), 0)
RETURNING version;
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = 'x'
	WHERE user_id = '00000000-0000-4000-8000-00000000fa71' AND id = 'top'$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-4000-8000-00000000fa71',
	'top', 'T', '[{"id":"m1"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.delete_conversation('00000000-0000-4000-8000-00000000fa71', 'top')$$);
-- an UPDATE that changes nothing writes no version, and a DELETE none either
SELECT pg_temp.try($$UPDATE chatpersist.conversations SET title = title
	WHERE user_id = '00000000-0000-4000-8000-00000000fa71' AND id = 'top'$$);
DELETE FROM chatpersist.conversations
WHERE user_id = '00000000-0000-4000-8000-00000000fa71' AND id = 'top';
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-4000-8000-00000000fa71',
	'top', 'T', '[]')$$);
SELECT version, replaced_by FROM chatpersist.history
WHERE user_id = '00000000-0000-4000-8000-00000000fa71';

--
-- 3. An owner's INSERT that looked like a restore (its own version, a
-- last_modified, the right checksum) kept a version that history already
-- held for the key, after a plain DELETE.  The version then named two
-- contents, and every later write of the conversation failed with 23505
-- on history_pkey.  Such a row is no restore: it gets the next version.
--
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000fa72', 'again', 'T', '[{"id":"a"}]');
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000fa72', 'again', 'T', '[{"id":"b"}]');
DELETE FROM chatpersist.conversations
WHERE user_id = '00000000-0000-4000-8000-00000000fa72' AND id = 'again';
INSERT INTO chatpersist.conversations (user_id, id, version, checksum, message_count)
VALUES ('00000000-0000-4000-8000-00000000fa72', 'again', 1, chatpersist.checksum('[]'), 0)
RETURNING version;
SELECT status, version FROM chatpersist.save_conversation('00000000-0000-4000-8000-00000000fa72', 'again', 'T', '[{"id":"c"}]');
SELECT version, replaced_by FROM chatpersist.history
WHERE user_id = '00000000-0000-4000-8000-00000000fa72' ORDER BY version;
-- a version above history is still a restore, and keeps its version
DELETE FROM chatpersist.conversations
WHERE user_id = '00000000-0000-4000-8000-00000000fa72' AND id = 'again';
INSERT INTO chatpersist.conversations (user_id, id, version, checksum, message_count)
VALUES ('00000000-0000-4000-8000-00000000fa72', 'again', 7, chatpersist.checksum('[]'), 0)
RETURNING version;

--
-- 4. import_app_state was not idempotent for an array that lists one
-- conversation id twice with conflicting copies of a message: each import
-- kept the other entry's losing copy in history once more, so importing
-- the same state again wrote a new version and returned 1.  Such a state
-- holds two versions of one conversation; like a repeated message id, a
-- repeated conversation id is now refused (22023), and nothing is written.
--
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-4000-8000-00000000fa73', '[
	{"id": "twice", "messages": [{"id": "m1", "content": "old", "updated_at": 1}]},
	{"id": "other", "messages": []},
	{"id": "twice", "messages": [{"id": "m1", "content": "new", "updated_at": 2}]}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-4000-8000-00000000fa73', '{"conversations": [
	{"id": "twice", "messages": [{"id": "m1", "content": "old", "updated_at": 1}]},
	{"id": "twice", "messages": [{"id": "m1", "content": "new", "updated_at": 2}]}]}')$$);
SELECT count(*) FROM chatpersist.conversations WHERE user_id = '00000000-0000-4000-8000-00000000fa73';
-- distinct ids import as before, and again import nothing
SELECT chatpersist.import_app_state('00000000-0000-4000-8000-00000000fa73', '[
	{"id": "twice", "messages": [{"id": "m1", "content": "old", "updated_at": 1}]},
	{"id": "other", "messages": []}]');
SELECT chatpersist.import_app_state('00000000-0000-4000-8000-00000000fa73', '[
	{"id": "twice", "messages": [{"id": "m1", "content": "old", "updated_at": 1}]},
	{"id": "other", "messages": []}]');

DELETE FROM chatpersist.conversations WHERE user_id IN
	('00000000-0000-4000-8000-00000000fa71', '00000000-0000-4000-8000-00000000fa72',
	 '00000000-0000-4000-8000-00000000fa73');
DELETE FROM chatpersist.history WHERE user_id IN
	('00000000-0000-4000-8000-00000000fa71', '00000000-0000-4000-8000-00000000fa72',
	 '00000000-0000-4000-8000-00000000fa73');
