#!/usr/bin/env bash
#
# dump_restore.sh
#	  Conversations and their history survive pg_dump and restore into a
#	  fresh database, with identical versions, timestamps and checksums;
#	  a schema-only dump carries no chat rows.  2.0: the message rows
#	  (chatpersist.messages, removed ones and stamps included) and the
#	  replaced copies (chatpersist.history_messages) survive too, the arrays
#	  the functions return are the same, and the same writes after the
#	  restore give the same results as on the source.
#
# Usage: PGHOST=... PGPORT=... PGUSER=<superuser> test/dump_restore.sh
#	bash test/dump_restore.sh
#		Without PGHOST: builds this tree, installs it into a private copy
#		of the server (test/lib.sh's cp_this_build, unless CP_PGBIN names
#		one) and starts a throwaway cluster of it, removed on exit.
#
# Needs a running server with chatpersist installed, and pg_dump, pg_restore
# and psql of the same major version.  Creates and drops its own databases
# (cp_dump_src, cp_dump_plain, cp_dump_custom).  Ends with the line
#	dump_restore: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/dump_restore.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/lib.sh

passed=0
failed=0
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/dump_restore.XXXXXX") || { echo "dump_restore: 0 passed, 1 failed"; exit 1; }
dbs=(cp_dump_src cp_dump_plain cp_dump_custom)

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	for db in "${dbs[@]}"; do
		dropdb --if-exists "$db" >/dev/null 2>&1
	done
	cp_cleanup	# the cluster and private install, if this script made them
	rm -rf "$tmpdir"
}
trap finish EXIT

if [ -z "${PGHOST:-}" ]; then
	cp_setup || exit 1
	cp_this_build || { echo "dump_restore: 0 passed, 1 failed"; exit 1; }
	PATH="$CP_PGBIN:$PATH"
	cp_cluster_start "shared_preload_libraries = 'chatpersist'" >/dev/null ||
		{ echo "dump_restore: could not start a cluster"; echo "dump_restore: 0 passed, 1 failed"; exit 1; }
fi

# check NAME COMMAND... (test/check.sh)
. test/check.sh

q()
{
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# Every column of the four tables, in a stable order, as text (change_xid is
# left out: it is stamped anew by a restore, see docs/supabase.md).  The
# arrays: each conversation's rebuilt from its message rows in plain SQL
# and as load_conversations returns it, and each archived version's as
# conversation_history returns it.  Fails if a query fails.
snapshot()
{
	q "$1" "SELECT c.user_id, c.id, c.title,
				   (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]')
					  FROM chatpersist.messages m
					 WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed)::text,
				   c.metadata::text, c.version, c.checksum, c.message_count, c.created_at,
				   c.last_modified, c.deleted, c.hash_state, c.array_length, c.array_bytes, c.last_pos
			FROM chatpersist.conversations c ORDER BY c.user_id, c.id" >"$tmpdir/$1.conversations" || return 1
	q "$1" "SELECT l.user_id, l.id, l.messages::text, l.version, l.checksum, l.message_count
			FROM (SELECT DISTINCT user_id FROM chatpersist.conversations) u,
				 chatpersist.load_conversations(u.user_id) l
			ORDER BY l.user_id, l.id" >"$tmpdir/$1.loaded" || return 1
	q "$1" "SELECT user_id, conversation_id, id, pos, message::text, hash, added_version,
				   changed_version, removed
			FROM chatpersist.messages ORDER BY user_id, conversation_id, id" >"$tmpdir/$1.messages" || return 1
	q "$1" "SELECT h.user_id, h.conversation_id, h.version, h.title, a.messages::text, h.metadata::text,
				   h.checksum, h.message_count, h.deleted, h.last_modified, h.replaced_at,
				   h.replaced_by, h.discarded::text
			FROM chatpersist.history h
			LEFT JOIN LATERAL (SELECT a.messages FROM chatpersist.conversation_history(h.user_id, h.conversation_id) a
								WHERE a.version = h.version) a ON true
			ORDER BY h.user_id, h.conversation_id, h.version" >"$tmpdir/$1.history" || return 1
	q "$1" "SELECT user_id, conversation_id, id, valid_from, valid_to, pos, message::text
			FROM chatpersist.history_messages
			ORDER BY user_id, conversation_id, id, valid_from" >"$tmpdir/$1.history_messages" || return 1
}

# same_rows DB1 DB2 WHAT: the snapshot files are equal (and not empty)
same_rows()
{
	[ -s "$tmpdir/$1.$3" ] || { echo "no $3 rows in $1"; return 1; }
	cmp -s "$tmpdir/$1.$3" "$tmpdir/$2.$3" || {
		diff "$tmpdir/$1.$3" "$tmpdir/$2.$3" | head -20
		return 1
	}
}

# same_writes DB1 DB2: the same writes after the restore give the same
# results in both (statuses, versions, checksums, counts, arrays and every
# message row and replaced copy; not the timestamps, which are now's)
same_writes()
{
	local db
	for db in "$1" "$2"; do
		psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" >"$tmpdir/$db.writes" 2>&1 <<'SQL' || { cat "$tmpdir/$db.writes"; return 1; }
\set u1 '''00000000-0000-0000-0000-0000000000d1'''
\set u2 '''00000000-0000-0000-0000-0000000000d2'''
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.append_messages(:u1, 'trip', '[{"id":"w1","content":"after"}]', 4);
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.save_conversation(:u1, 'trip', NULL,
	'[{"id":"m1","content":"Où allons-nous ?","created_at":1},{"id":"b1","content":"日本, edited","updated_at":99},{"id":"w2"}]', p_expected_version := 3);
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.restore_version(:u1, 'trip', 1);
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.save_conversation(:u1, 'gone', 'G again', '[{"id":"x"},{"id":"z"}]');
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.append_messages(:u2, 'big', '[{"id":"m5","content":"stale copy"}]');
INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES (:u1, 'forced', '{"id":"d1","content":"direct"}');
UPDATE chatpersist.messages SET message = '{"id":"y","content":"direct edit"}' WHERE user_id = :u1 AND conversation_id = 'forced' AND id = 'y';
UPDATE chatpersist.messages SET removed = true WHERE user_id = :u2 AND conversation_id = 'big' AND id = 'm7';
DELETE FROM chatpersist.messages WHERE user_id = :u2 AND conversation_id = 'big' AND id = 'm8';
SELECT status, version, checksum, message_count, conflicts FROM chatpersist.restore_version(:u2, 'removed', 1);
SELECT c.user_id, c.id, c.title, l.messages::text, c.version, c.checksum, c.message_count, c.deleted, c.last_pos
  FROM chatpersist.conversations c
  LEFT JOIN LATERAL chatpersist.load_conversation(c.user_id, c.id) l ON true
 ORDER BY c.user_id, c.id;
SELECT user_id, conversation_id, id, pos, message::text, hash, added_version, changed_version, removed
  FROM chatpersist.messages ORDER BY user_id, conversation_id, id;
SELECT user_id, conversation_id, id, valid_from, valid_to, pos, message::text
  FROM chatpersist.history_messages ORDER BY user_id, conversation_id, id, valid_from;
SELECT h.user_id, h.conversation_id, h.version, h.messages::text, h.checksum, h.replaced_by
  FROM (SELECT DISTINCT user_id, conversation_id FROM chatpersist.history) k,
	   chatpersist.conversation_history(k.user_id, k.conversation_id) h
 ORDER BY 1, 2, 3;
SQL
	done
	cmp -s "$tmpdir/$1.writes" "$tmpdir/$2.writes" || {
		diff "$tmpdir/$1.writes" "$tmpdir/$2.writes" | head -20
		return 1
	}
}

for db in "${dbs[@]}"; do
	dropdb --if-exists "$db" >/dev/null 2>&1
done
createdb cp_dump_src || exit 1

# Data with every kind of history: updates, merges with a discarded loser,
# an overwrite, a tombstone, a conversation removed with a plain DELETE,
# non-ASCII text, a TOASTed (compressed) conversation, and versions that
# differ from what a fresh insert would give
psql -X -q -v ON_ERROR_STOP=1 -d cp_dump_src >/dev/null <<'SQL' || { echo "dump_restore: setup failed"; echo "dump_restore: 0 passed, 1 failed"; exit 1; }
CREATE EXTENSION chatpersist;
\set u1 '''00000000-0000-0000-0000-0000000000d1'''
\set u2 '''00000000-0000-0000-0000-0000000000d2'''
SELECT chatpersist.save_conversation(:u1, 'trip', 'Trip ✈', '[{"id":"m1","content":"Où allons-nous ?","created_at":1}]', p_metadata := '{"pinned":true}');
SELECT chatpersist.save_conversation(:u1, 'trip', NULL, '[{"id":"m1","content":"Où allons-nous ?","created_at":1},{"id":"a1","created_at":2,"updated_at":50}]', p_expected_version := 1);
SELECT chatpersist.save_conversation(:u1, 'trip', NULL, '[{"id":"m1","content":"Où allons-nous ?","created_at":1},{"id":"a1","created_at":2,"content":"older edit","updated_at":10}]', p_expected_version := 1);
SELECT chatpersist.append_messages(:u1, 'trip', '[{"id":"b1","content":"日本"}]');
SELECT chatpersist.save_conversation(:u1, 'forced', 'F', '[{"id":"x"}]');
SELECT chatpersist.save_conversation(:u1, 'forced', 'F', '[{"id":"y"}]', p_force_overwrite := true);
SELECT chatpersist.save_conversation(:u1, 'gone', 'G', '[{"id":"x"}]');
SELECT chatpersist.delete_conversation(:u1, 'gone');
SELECT chatpersist.save_conversation(:u2, 'removed', 'R', '[{"id":"x"}]');
DELETE FROM chatpersist.conversations WHERE user_id = :u2 AND id = 'removed';
SELECT chatpersist.save_conversation(:u2, 'big', 'Big',
	(SELECT jsonb_agg(jsonb_build_object('id', 'm' || i, 'role', 'user', 'content', repeat('lorem ipsum ', 25), 'created_at', i))
	   FROM generate_series(1, 1000) AS i));
SELECT chatpersist.append_messages(:u2, 'big', '[{"id":"last"}]');
-- 2.0: direct SQL on message rows (an edit, a removal, a forgotten row,
-- an append), so that message rows carry every kind of stamp
UPDATE chatpersist.messages SET message = '{"id":"m2","role":"user","content":"edited directly","created_at":2}'
 WHERE user_id = :u2 AND conversation_id = 'big' AND id = 'm2';
UPDATE chatpersist.messages SET removed = true WHERE user_id = :u2 AND conversation_id = 'big' AND id = 'm3';
DELETE FROM chatpersist.messages WHERE user_id = :u2 AND conversation_id = 'big' AND id = 'm4';
INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES (:u2, 'big', '{"id":"direct","content":"ünïcode"}');
SQL

check "source: snapshot of every table" snapshot cp_dump_src
check "source: removed message rows and replaced copies to carry over" test \
	"$(q cp_dump_src "SELECT (SELECT count(*) FROM chatpersist.messages WHERE removed) > 0
						 AND (SELECT count(*) FROM chatpersist.history_messages) > 0")" = t

# a plain dump replayed with psql, as most people restore
pg_dump -d cp_dump_src -f "$tmpdir/plain.sql" || exit 1
createdb cp_dump_plain || exit 1
check "plain dump restores with psql without an error" \
	psql -X -q -v ON_ERROR_STOP=1 -d cp_dump_plain -f "$tmpdir/plain.sql" -o /dev/null
check "plain: snapshot of every table" snapshot cp_dump_plain
check "plain: conversations identical (versions, timestamps, checksums, arrays)" same_rows cp_dump_src cp_dump_plain conversations
check "plain: load_conversations returns the same arrays" same_rows cp_dump_src cp_dump_plain loaded
check "plain: message rows identical (positions, hashes, versions, removed)" same_rows cp_dump_src cp_dump_plain messages
check "plain: history identical (archived arrays too)" same_rows cp_dump_src cp_dump_plain history
check "plain: history_messages identical" same_rows cp_dump_src cp_dump_plain history_messages

# a custom-format dump through pg_restore
pg_dump -Fc -d cp_dump_src -f "$tmpdir/custom.dump" || exit 1
createdb cp_dump_custom || exit 1
check "custom dump restores with pg_restore without an error" \
	pg_restore --exit-on-error -d cp_dump_custom "$tmpdir/custom.dump"
check "custom: snapshot of every table" snapshot cp_dump_custom
check "custom: conversations identical" same_rows cp_dump_src cp_dump_custom conversations
check "custom: load_conversations returns the same arrays" same_rows cp_dump_src cp_dump_custom loaded
check "custom: message rows identical" same_rows cp_dump_src cp_dump_custom messages
check "custom: history identical" same_rows cp_dump_src cp_dump_custom history
check "custom: history_messages identical" same_rows cp_dump_src cp_dump_custom history_messages

# the restored data is whole, and the extension works on it
check "restored checksums equal the checksum of the rows' arrays" test \
	"$(q cp_dump_plain "SELECT count(*) FROM chatpersist.conversations c
						 WHERE checksum <> chatpersist.checksum(
							(SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
							  WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed))")" = 0
check "restored rows are in the change feed" test \
	"$(q cp_dump_plain "SELECT count(*) FROM chatpersist.changes_since('00000000-0000-0000-0000-0000000000d1', 0)")" = 3
check "a save after the restore continues the versions" test \
	"$(q cp_dump_plain "SELECT status || ' ' || version FROM chatpersist.append_messages('00000000-0000-0000-0000-0000000000d1', 'trip', '[{\"id\":\"after\"}]')")" = "updated 5"
check "a removed conversation restores from the restored history" test \
	"$(q cp_dump_plain "SELECT status || ' ' || version FROM chatpersist.restore_version('00000000-0000-0000-0000-0000000000d2', 'removed', 1)")" = "created 2"
check "... with its archived array" test \
	"$(q cp_dump_plain "SELECT messages::text FROM chatpersist.load_conversation('00000000-0000-0000-0000-0000000000d2', 'removed')")" = '[{"id": "x"}]'

# the same writes (functions and direct SQL on message rows) on the source
# and on a restored copy give the same results
check "custom: the same writes after the restore as on the source, the same results" \
	same_writes cp_dump_src cp_dump_custom

# a schema-only dump carries the schema, but no chat rows
pg_dump -s -d cp_dump_src -f "$tmpdir/schema.sql" || exit 1
check "schema-only dump has no chat content" test \
	"$(grep -c -e 'Où allons' -e 'lorem ipsum' -e '日本' "$tmpdir/schema.sql")" = 0
check "schema-only dump has no COPY of the chat tables" test \
	"$(grep -c '^COPY chatpersist\.' "$tmpdir/schema.sql")" = 0
# the same from a full custom-format dump restored schema-only, and from
# pg_dumpall's schema-only mode (the chat tables are extension
# configuration tables, whose rows pg_dump treats as data)
check "pg_restore --schema-only of a full dump has no chat content" test \
	"$(pg_restore -s -f - "$tmpdir/custom.dump" | grep -c -e 'Où allons' -e 'lorem ipsum' -e '日本' -e '^COPY chatpersist\.')" = 0
check "pg_dumpall --schema-only has no chat content" test \
	"$(pg_dumpall -s | grep -c -e 'Où allons' -e 'lorem ipsum' -e '日本' -e '^COPY chatpersist\.')" = 0
check "full dump does have the chat rows (conversations, history, history_messages, messages)" test \
	"$(grep '^COPY chatpersist\.' "$tmpdir/plain.sql" | sed -E 's/^COPY chatpersist\.([a-z_]+) .*/\1/' | sort | tr '\n' ' ')" = \
	"conversations history history_messages messages "

echo "dump_restore: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
