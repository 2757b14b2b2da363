--
-- migrate_user (guest to signed-in account) and import_app_state (the
-- legacy app_state layout).  Both are atomic, idempotent, and write
-- through the save path.
--
\set guest '''00000000-0000-0000-0000-00000000e001'''
\set acct '''00000000-0000-0000-0000-00000000e002'''
\set legacy '''00000000-0000-0000-0000-00000000e003'''
SET timezone = 'UTC';

\getenv abs_srcdir PG_ABS_SRCDIR
\set try_sql :abs_srcdir '/sql/include/try.sql'
\i :try_sql
-- pg_temp.stored_array rebuilds a conversation's array from its message rows
\set stored_array_sql :abs_srcdir '/sql/include/stored_array.sql'
\i :stored_array_sql

-- the guest has three conversations; the account already has one of them
SELECT chatpersist.save_conversation(:guest, 'only-guest', 'Guest notes', '[{"id":"g1","created_at":1}]', p_metadata := '{"from":"guest"}');
SELECT chatpersist.save_conversation(:guest, 'shared', 'Guest title', '[{"id":"m1","created_at":1},{"id":"g2","created_at":3}]');
SELECT chatpersist.save_conversation(:guest, 'gone', 'Deleted by guest', '[{"id":"x"}]');
SELECT chatpersist.delete_conversation(:guest, 'gone');
SELECT chatpersist.save_conversation(:acct, 'shared', 'Account title', '[{"id":"m1","created_at":1},{"id":"a1","created_at":2}]');
SELECT chatpersist.save_conversation(:acct, 'gone', 'Kept by account', '[{"id":"y"}]');
-- a conversation the guest deleted, which the account never had
SELECT chatpersist.save_conversation(:guest, 'deleted-by-guest', NULL, '[{"id":"z"}]');
SELECT chatpersist.delete_conversation(:guest, 'deleted-by-guest');

-- moves the two live ones: one created (keeping its created_at), one
-- merged (union, account's title kept); the guest's tombstones are
-- dropped, never revived: 'gone' stays the account's own, and
-- 'deleted-by-guest' does not come back as an empty conversation
CREATE TEMP TABLE guest_before AS SELECT id, created_at FROM chatpersist.conversations WHERE user_id = :guest;
SELECT chatpersist.migrate_user(:guest, :acct) AS moved;
SELECT c.id, title, version, metadata, deleted, jsonb_path_query_array(messages, '$[*].id') AS ids,
	   checksum = chatpersist.checksum(messages) AS checksum_ok,
	   c.created_at = g.created_at AS guest_created_at
FROM chatpersist.conversations c JOIN guest_before g USING (id), pg_temp.stored_array(c.user_id, c.id) messages
WHERE user_id = :acct ORDER BY id;
-- nothing is left under the guest; its rows are archived in its history
SELECT count(*) AS guest_rows FROM chatpersist.conversations WHERE user_id = :guest;
SELECT count(*) AS revived FROM chatpersist.conversations WHERE user_id = :acct AND id = 'deleted-by-guest';
SELECT conversation_id, replaced_by FROM chatpersist.history
WHERE user_id = :guest AND replaced_by = 'delete' ORDER BY 1;

-- idempotent: a second call moves nothing and changes nothing
CREATE TEMP TABLE after_first AS SELECT id, version, checksum FROM chatpersist.conversations WHERE user_id = :acct;
SELECT chatpersist.migrate_user(:guest, :acct) AS moved_again;
SELECT count(*) AS changed FROM chatpersist.conversations c JOIN after_first a USING (id)
WHERE c.user_id = :acct AND (c.version, c.checksum) IS DISTINCT FROM (a.version, a.checksum);

-- atomic: an error part-way leaves both users as they were
SELECT chatpersist.save_conversation(:guest, 'a-ok', NULL, '[{"id":"fine"}]');
SELECT chatpersist.save_conversation(:guest, 'b-too-big', NULL, '[{"id":"p1"},{"id":"p2"},{"id":"p3"}]');
SELECT chatpersist.save_conversation(:acct, 'b-too-big', NULL, '[{"id":"q1"},{"id":"q2"}]');
SET chatpersist.max_messages = 4;
SELECT pg_temp.try($$SELECT chatpersist.migrate_user('00000000-0000-0000-0000-00000000e001', '00000000-0000-0000-0000-00000000e002')$$);
RESET chatpersist.max_messages;
SELECT user_id = :guest AS is_guest, id FROM chatpersist.conversations
WHERE id IN ('a-ok', 'b-too-big') ORDER BY 1, 2;

-- bad arguments
SELECT pg_temp.try($$SELECT chatpersist.migrate_user(NULL, '00000000-0000-0000-0000-00000000e002')$$);
SELECT pg_temp.try($$SELECT chatpersist.migrate_user('00000000-0000-0000-0000-00000000e002', NULL)$$);
SELECT pg_temp.try($$SELECT chatpersist.migrate_user('00000000-0000-0000-0000-00000000e002', '00000000-0000-0000-0000-00000000e002')$$);

--
-- import_app_state
--

-- an object keyed by conversation id
SELECT chatpersist.import_app_state(:legacy, '{
  "theme": "dark",
  "conversations": {
    "c1": {"title": "First", "messages": [{"id":"m1","role":"user","content":"hi","created_at":1700000000000}],
           "metadata": {"pinned": true}, "created_at": "2023-11-14T22:13:20Z"},
    "c2": {"title": "Second", "messages": []}
  }}') AS imported;
SELECT id, title, metadata, version, message_count,
	   CASE WHEN id = 'c1' THEN created_at::text ELSE (created_at > now() - interval '1 hour')::text END AS created_at
FROM chatpersist.conversations WHERE user_id = :legacy ORDER BY id;

-- idempotent: the same state again imports nothing
SELECT chatpersist.import_app_state(:legacy, '{"conversations": {
    "c1": {"title": "First", "messages": [{"id":"m1","role":"user","content":"hi","created_at":1700000000000}],
           "metadata": {"pinned": true}, "created_at": "2023-11-14T22:13:20Z"},
    "c2": {"title": "Second", "messages": []}}}') AS imported_again;

-- an array of conversation objects, merged into what exists: new messages
-- are added, nothing is lost, the stored title is kept
SELECT chatpersist.import_app_state(:legacy, '[
    {"id": "c1", "title": "Renamed in legacy", "messages": [{"id":"m2","content":"more","created_at":1700000001000}]},
    {"id": "c3", "messages": [{"id":"n1"}]}]') AS imported;
SELECT id, title, version, jsonb_path_query_array(messages, '$[*].id') AS ids
FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages
WHERE user_id = :legacy ORDER BY id;

-- bad shapes: 22023 naming the path, and nothing is written
CREATE TEMP TABLE before_bad AS SELECT id, version FROM chatpersist.conversations WHERE user_id = :legacy;
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"theme":"dark"}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '"text"')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"c9": []}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": [{"id":"ok","messages":[]}, {"title":"no id"}]}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": [{"id":"c4","messages":{"id":"m"}}]}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"c5": {"messages":[{"id":"m"},{"role":"user"}]}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"c6": {"title": 7}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"c7": {"metadata": []}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"c8": {"created_at": "yesterday"}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '{"conversations": {"": {"messages": []}}}')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state(NULL, '[]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', NULL)$$);
-- a conversation listed twice: the first repeat in array order is named,
-- with the first element it repeats, and an earlier element's own error
-- still comes first
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '[{"id":"r-a"}, {"id":"r-b"}, {"id":"r-b"}, {"id":"r-a"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '[{"id":"r-a"}, {"id":"r-b"}, {"id":"r-a"}, {"id":"r-b"}, {"id":"r-a"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '[{"id":"r-a"}, {"id":"r-b","messages":"no"}, {"id":"r-a"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e003', '[{"id":"r-a"}, 7, {"id":"r-a"}]')$$);
SELECT count(*) AS changed_or_new FROM chatpersist.conversations c LEFT JOIN before_bad b USING (id)
WHERE c.user_id = :legacy AND (b.id IS NULL OR b.version <> c.version);

-- conversation-level fields of the legacy layouts are kept: createdAt
-- (epoch ms or ISO-8601) dates the row like created_at, every other member
-- goes into metadata under its own name, and the explicit metadata
-- object's members win over them; a keyed layout's inner "id" is not copied
\set kept '''00000000-0000-0000-0000-00000000e004'''
SELECT chatpersist.import_app_state(:kept, '{"conversations": {
    "k1": {"id": "k1", "title": "Pinned", "isPinned": true, "insights": {"topics": ["travel"]},
           "createdAt": 1700000000000, "lastModified": 1700000005000,
           "metadata": {"insights": "explicit wins", "color": "blue"}, "messages": [{"id":"m1"}]},
    "k2": {"createdAt": "2024-01-02T03:04:05Z", "messages": []},
    "k3": {"created_at": "2024-05-06T00:00:00Z", "createdAt": "2020-01-01", "messages": []},
    "k4": {"createdAt": null, "isArchived": false}}}') AS imported;
SELECT id, title, metadata,
	   CASE WHEN id = 'k4' THEN (created_at > now() - interval '1 hour')::text ELSE created_at::text END AS created_at
FROM chatpersist.conversations WHERE user_id = :kept ORDER BY id;
-- the array layout too; and a second import changes nothing
SELECT chatpersist.import_app_state(:kept, '[{"id": "k5", "isPinned": false, "folder": "work", "createdAt": "2023-03-03", "messages": []}]') AS imported;
SELECT id, metadata, created_at FROM chatpersist.conversations WHERE user_id = :kept AND id = 'k5';
SELECT chatpersist.import_app_state(:kept, '{"conversations": {
    "k1": {"id": "k1", "title": "Pinned", "isPinned": true, "insights": {"topics": ["travel"]},
           "createdAt": 1700000000000, "lastModified": 1700000005000,
           "metadata": {"insights": "explicit wins", "color": "blue"}, "messages": [{"id":"m1"}]},
    "k2": {"createdAt": "2024-01-02T03:04:05Z", "messages": []},
    "k3": {"created_at": "2024-05-06T00:00:00Z", "createdAt": "2020-01-01", "messages": []},
    "k4": {"createdAt": null, "isArchived": false}}}') AS imported_again;
-- an existing conversation keeps its metadata, as before
SELECT chatpersist.import_app_state(:kept, '[{"id": "k5", "isPinned": true, "messages": [{"id":"n1"}]}]') AS merged;
SELECT id, metadata, message_count FROM chatpersist.conversations WHERE user_id = :kept AND id = 'k5';
-- a bad createdAt is named
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e004', '[{"id": "k6", "createdAt": "last week"}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e004', '[{"id": "k6", "createdAt": 1e300}]')$$);

-- a message timestamp that is null is taken as missing by the import (the
-- legacy apps wrote null for an unknown time), and the import stays
-- idempotent; save_conversation and append_messages still refuse null
SELECT chatpersist.import_app_state(:kept, '[{"id": "n1", "messages": [
    {"id": "a", "content": "no time", "created_at": null},
    {"id": "b", "created_at": 1700000000000, "updated_at": null},
    {"id": "c", "created_at": 1700000001000}]}]') AS imported;
SELECT messages, message_count FROM chatpersist.conversations c, pg_temp.stored_array(c.user_id, c.id) messages
WHERE user_id = :kept AND id = 'n1';
SELECT chatpersist.import_app_state(:kept, '[{"id": "n1", "messages": [
    {"id": "a", "content": "no time", "created_at": null},
    {"id": "b", "created_at": 1700000000000, "updated_at": null},
    {"id": "c", "created_at": 1700000001000}]}]') AS imported_again;
SELECT pg_temp.try($$SELECT chatpersist.import_app_state('00000000-0000-0000-0000-00000000e004', '[{"id": "n2", "messages": [{"id": "a", "created_at": null}, {"id": "b", "updated_at": false}]}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.save_conversation('00000000-0000-0000-0000-00000000e004', 'n3', 'T', '[{"id": "a", "created_at": null}]')$$);
SELECT pg_temp.try($$SELECT chatpersist.append_messages('00000000-0000-0000-0000-00000000e004', 'n1', '[{"id": "d", "updated_at": null}]')$$);
SELECT count(*) AS not_written FROM chatpersist.conversations WHERE user_id = :kept AND id IN ('n2', 'n3');

-- the docs' recipe: move a whole legacy users.app_state column, whatever
-- the layout of each row (the two "conversations" layouts and a top-level
-- array); rows without conversations are skipped
CREATE TEMP TABLE legacy_users (id uuid PRIMARY KEY, app_state jsonb);
INSERT INTO legacy_users VALUES
  ('00000000-0000-0000-0000-00000000e101', '{"conversations": {"a": {"messages": [{"id":"1"}]}}}'),
  ('00000000-0000-0000-0000-00000000e102', '{"conversations": [{"id": "b", "messages": [{"id":"1"},{"id":"2"}]}]}'),
  ('00000000-0000-0000-0000-00000000e103', '{"conversations": {}}'),
  ('00000000-0000-0000-0000-00000000e104', '[{"id": "c", "messages": [{"id":"1"},{"id":"2"},{"id":"3"}]}, {"id": "d"}]'),
  ('00000000-0000-0000-0000-00000000e105', '{"theme": "light"}'),
  ('00000000-0000-0000-0000-00000000e106', '{"conversations": null}'),
  ('00000000-0000-0000-0000-00000000e107', NULL);
SELECT sum(chatpersist.import_app_state(id, app_state)) AS imported
FROM legacy_users
WHERE jsonb_typeof(app_state) = 'array'
   OR jsonb_typeof(app_state -> 'conversations') IN ('object', 'array');
SELECT user_id, id, message_count FROM chatpersist.conversations
WHERE user_id IN (SELECT id FROM legacy_users) ORDER BY 1, 2;
SELECT sum(chatpersist.import_app_state(id, app_state)) AS imported_again
FROM legacy_users
WHERE jsonb_typeof(app_state) = 'array'
   OR jsonb_typeof(app_state -> 'conversations') IN ('object', 'array');

DELETE FROM chatpersist.history WHERE user_id::text LIKE '00000000-0000-0000-0000-00000000e%';
DELETE FROM chatpersist.conversations WHERE user_id::text LIKE '00000000-0000-0000-0000-00000000e%';
