#!/usr/bin/env bash
#
# dump_restore.sh
#	  Conversations and their history survive pg_dump and restore into a
#	  fresh database, with identical versions, timestamps and checksums;
#	  a schema-only dump carries no chat rows.
#
# Usage: PGHOST=... PGPORT=... PGUSER=<superuser> test/dump_restore.sh
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
	rm -rf "$tmpdir"
}
trap finish EXIT

# check NAME COMMAND... (test/check.sh)
. "$(dirname "${BASH_SOURCE[0]}")/check.sh"

q()
{
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# Every column of both tables, in a stable order, as text (change_xid is
# left out: it is stamped anew by a restore, see docs/supabase.md)
snapshot()
{
	q "$1" "SELECT user_id, id, title, messages::text, metadata::text, version, checksum,
				   message_count, created_at, last_modified, deleted
			FROM chatpersist.conversations ORDER BY user_id, id" >"$tmpdir/$1.conversations"
	q "$1" "SELECT user_id, conversation_id, version, title, messages::text, metadata::text,
				   checksum, message_count, deleted, last_modified, replaced_at,
				   replaced_by, discarded::text
			FROM chatpersist.history ORDER BY user_id, conversation_id, version" >"$tmpdir/$1.history"
}

same_rows()
{
	cmp -s "$tmpdir/$1.$3" "$tmpdir/$2.$3" || {
		diff "$tmpdir/$1.$3" "$tmpdir/$2.$3" | head -20
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
SQL

snapshot cp_dump_src

# a plain dump replayed with psql, as most people restore
pg_dump -d cp_dump_src -f "$tmpdir/plain.sql" || exit 1
createdb cp_dump_plain || exit 1
check "plain dump restores with psql without an error" \
	psql -X -q -v ON_ERROR_STOP=1 -d cp_dump_plain -f "$tmpdir/plain.sql" -o /dev/null
snapshot cp_dump_plain
check "plain: conversations identical (versions, timestamps, checksums)" same_rows cp_dump_src cp_dump_plain conversations
check "plain: history identical" same_rows cp_dump_src cp_dump_plain history

# a custom-format dump through pg_restore
pg_dump -Fc -d cp_dump_src -f "$tmpdir/custom.dump" || exit 1
createdb cp_dump_custom || exit 1
check "custom dump restores with pg_restore without an error" \
	pg_restore --exit-on-error -d cp_dump_custom "$tmpdir/custom.dump"
snapshot cp_dump_custom
check "custom: conversations identical" same_rows cp_dump_src cp_dump_custom conversations
check "custom: history identical" same_rows cp_dump_src cp_dump_custom history

# the restored data is whole, and the extension works on it
check "restored checksums equal checksum(messages)" test \
	"$(q cp_dump_plain "SELECT count(*) FROM chatpersist.conversations WHERE checksum <> chatpersist.checksum(messages)")" = 0
check "restored rows are in the change feed" test \
	"$(q cp_dump_plain "SELECT count(*) FROM chatpersist.changes_since('00000000-0000-0000-0000-0000000000d1', 0)")" = 3
check "a save after the restore continues the versions" test \
	"$(q cp_dump_plain "SELECT status || ' ' || version FROM chatpersist.append_messages('00000000-0000-0000-0000-0000000000d1', 'trip', '[{\"id\":\"after\"}]')")" = "updated 5"
check "a removed conversation restores from the restored history" test \
	"$(q cp_dump_plain "SELECT status || ' ' || version FROM chatpersist.restore_version('00000000-0000-0000-0000-0000000000d2', 'removed', 1)")" = "created 2"

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
check "full dump does have the chat rows" test \
	"$(grep -c '^COPY chatpersist\.' "$tmpdir/plain.sql")" = 2

echo "dump_restore: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
