--
-- stats(): counters of what chatpersist did.  pg_regress's server may or
-- may not preload the library, so this file compares counter deltas taken
-- in this session, which hold either way.
--
\set u '''00000000-0000-0000-0000-0000000000f1'''

-- without preloading, stats() says (NOTICE) that it covers this session
SET client_min_messages = warning;
SELECT array_agg(name ORDER BY name) AS counters FROM chatpersist.stats();
-- cluster_wide tells which scope the counters cover
SELECT value = (current_setting('shared_preload_libraries') ~ 'chatpersist')::int AS scope_ok
FROM chatpersist.stats() WHERE name = 'cluster_wide';
CREATE TEMP TABLE s0 AS SELECT * FROM chatpersist.stats();

SELECT chatpersist.save_conversation(:u, 's', NULL, '[{"id":"m1"}]');                         -- created
SELECT chatpersist.save_conversation(:u, 's', NULL, '[{"id":"m1"}]', p_expected_version := 1);  -- unchanged
SELECT chatpersist.save_conversation(:u, 's', NULL, '[{"id":"m1"},{"id":"m2"}]', p_expected_version := 1);  -- updated
SELECT chatpersist.save_conversation(:u, 's', NULL, '[{"id":"m1","updated_at":5},{"id":"m3"}]');  -- merged, 1 conflict
SELECT chatpersist.save_conversation(:u, 's', NULL, '[{"id":"m9"}]', p_force_overwrite := true); -- overwritten
SELECT chatpersist.append_messages(:u, 's', '[{"id":"m10"}]');                                  -- updated (append)
SELECT chatpersist.restore_version(:u, 's', 3);                                                 -- updated (restore)
SELECT chatpersist.delete_conversation(:u, 's');                                                -- deleted
UPDATE chatpersist.conversations SET version = 1 WHERE user_id = :u AND id = 's';                -- stale: 40001
SELECT chatpersist.save_conversation(:u, 's', NULL, '{}');                                       -- rejected: 22023
SELECT chatpersist.save_conversation(NULL, 's', NULL, '[]');                                     -- rejected: 22004

SELECT s.name, s.value - s0.value AS delta
FROM chatpersist.stats() s JOIN s0 USING (name)
WHERE s.name <> 'cluster_wide'
ORDER BY s.name;

-- Another session's work shows here exactly when the counters are
-- cluster-wide (dblink opens a second session on this server)
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE TEMP TABLE s1 AS SELECT * FROM chatpersist.stats();
SELECT * FROM dblink(
	'host=' || split_part(current_setting('unix_socket_directories'), ',', 1) ||
	' port=' || current_setting('port') || ' dbname=' || current_database(),
	$$SELECT status FROM chatpersist.save_conversation('00000000-0000-0000-0000-0000000000f2', 'elsewhere', NULL, '[]')$$)
	AS t(status text);
SELECT (s.value - s1.value) = c.value AS other_session_counted_iff_cluster_wide
FROM chatpersist.stats() s JOIN s1 USING (name), chatpersist.stats() c
WHERE s.name = 'saves_created' AND c.name = 'cluster_wide';
DROP EXTENSION dblink;
RESET client_min_messages;
