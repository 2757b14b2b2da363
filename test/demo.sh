#!/usr/bin/env bash
# demo.sh: from a fresh machine to two devices saving one conversation.
#
#   bash test/demo.sh
#
# Installs what is missing (test/setup.sh), builds and installs the
# extension, starts a throwaway cluster (test/cluster.sh, stopped and
# removed at the end, also on failure) and plays a short scenario in psql:
# two devices load the same conversation at the same version, each adds a
# message offline, both save. The second save is stale: instead of
# overwriting the first, it merges, and both messages are kept. Then a
# stale hand-written UPDATE is refused, a forced overwrite is undone from
# history, and the checksum is recomputed outside the database.
set -euo pipefail

cd "$(dirname "$0")/.." || exit 1
. test/lib.sh

cp_setup || { echo "demo: setup failed (run test/setup.sh to see why)" >&2; exit 1; }
cp_pg_env

# test/run.sh runs the demo against its private installation (CP_PGBIN,
# see cp_private_install in test/cluster.sh); otherwise build and install
# into the system's server
if [ -z "${CP_PGBIN:-}" ]; then
	echo "== building and installing chatpersist"
	cp_build
	cp_build install
fi

trap cp_cluster_stop EXIT
cp_cluster_start

# -X: ignore ~/.psqlrc; ON_ERROR_STOP: a failing step fails the demo, except
# where the scenario expects an error (the \set ON_ERROR_STOP off below)
psql -X -q -v ON_ERROR_STOP=1 --pset=footer=off <<'SQL'
\pset linestyle unicode
\pset border 1
CREATE EXTENSION chatpersist;
\set user '''0b9c2d1e-0000-4000-8000-000000000001'''

\echo
\echo '-- The conversation as both devices last loaded it: version 1'
SELECT status, version, message_count, checksum
FROM chatpersist.save_conversation(:user, 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where should we go?","created_at":1000}]');

\echo
\echo '-- Device A (phone) adds a message and saves, expecting version 1'
SELECT status, version, message_count, checksum
FROM chatpersist.save_conversation(:user, 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where should we go?","created_at":1000},
	  {"id":"a1","role":"user","content":"Lisbon? (from the phone)","created_at":2000}]',
	p_expected_version := 1);

\echo
\echo '-- Device B (laptop) was offline, also at version 1, adds its own message'
\echo '-- and saves. The version is stale: chatpersist merges instead of losing A''s message'
SELECT status, version, message_count, checksum, conflicts
FROM chatpersist.save_conversation(:user, 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where should we go?","created_at":1000},
	  {"id":"b1","role":"user","content":"Porto? (from the laptop)","created_at":1500}]',
	p_expected_version := 1);

\echo
\echo '-- What both devices load now: both messages, in created_at order'
SELECT m ->> 'id' AS id, m ->> 'content' AS content
FROM chatpersist.load_conversation(:user, 'trip') AS c,
	 jsonb_array_elements(c.messages) AS m;

\echo
\echo '-- The stored checksum is XXH3-64 of messages::text, recomputed here'
SELECT version, checksum, chatpersist.checksum(messages) = checksum AS checksum_matches
FROM chatpersist.load_conversation(:user, 'trip');

\echo
\echo '-- A retry of the same save is harmless: unchanged, same version'
SELECT status, version
FROM chatpersist.save_conversation(:user, 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where should we go?","created_at":1000},
	  {"id":"b1","role":"user","content":"Porto? (from the laptop)","created_at":1500}]',
	p_expected_version := 1);

\echo
\echo '-- Hand-written SQL is guarded too: an UPDATE from version 1 is refused'
\set ON_ERROR_STOP off
\set VERBOSITY default
UPDATE chatpersist.conversations SET title = 'Renamed on an old device', version = 1
WHERE user_id = :user AND id = 'trip';
\set ON_ERROR_STOP on

\echo
\echo '-- A third device forces its own copy over everything (p_force_overwrite)'
SELECT status, version, message_count
FROM chatpersist.save_conversation(:user, 'trip', 'Weekend trip',
	'[{"id":"m1","role":"user","content":"Where should we go?","created_at":1000}]',
	p_force_overwrite := true);

\echo
\echo '-- Nothing is lost: every replaced version is kept in history'
SELECT version, replaced_by, message_count
FROM chatpersist.conversation_history(:user, 'trip');

\echo
\echo '-- Undo the overwrite: version 3 comes back as a new version'
SELECT status, version, message_count
FROM chatpersist.restore_version(:user, 'trip', 3);
SELECT m ->> 'id' AS id, m ->> 'content' AS content
FROM chatpersist.load_conversation(:user, 'trip') AS c,
	 jsonb_array_elements(c.messages) AS m;
SQL

echo
echo "-- Any client can recompute the checksum from the canonical text: here xxhsum does"
stored=$(psql -X -A -t -c "SELECT checksum FROM chatpersist.conversations WHERE id = 'trip'")
outside=$(psql -X -A -t -c "SELECT messages::text FROM chatpersist.load_conversation('0b9c2d1e-0000-4000-8000-000000000001', 'trip')" |
	tr -d '\n' | xxhsum -H3 | sed -E 's/.*= //')
echo "   stored checksum:               $stored"
echo "   xxhsum -H3 of messages::text:  $outside"
[ "$stored" = "$outside" ] && echo "   they match" || { echo "   MISMATCH"; exit 1; }

echo
echo "demo: done (the throwaway cluster is removed on exit)"
