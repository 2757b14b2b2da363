#!/usr/bin/env bash
#
# migration_memory_props.sh
#	  The migrations' memory stays flat whatever the number of
#	  conversations: import_app_state of 2,000 and of 20,000 conversations
#	  and migrate_user of 10,000 each raise the backend's peak memory
#	  (VmHWM in /proc/<backend>/status, read by the backend itself with
#	  pg_read_file) by less than MIGRATION_MEMORY_BOUND_MB (default 50 MB)
#	  above the peak of a fresh session.  Also checks what the calls
#	  return, that a second import changes nothing, and the progress lines
#	  (DEBUG1, one every 1,000 conversations).
#
# Usage: PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... test/migration_memory_props.sh
#
# The chatpersist extension must already exist in the database, and the
# user must be a superuser (pg_read_file of /proc/self/status); the
# backend must run on Linux.  Takes about a minute.  Removes the rows
# and the table it creates.
#
# Ends with
#	migration_memory_props: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/migration_memory_props.sh
#

set -euo pipefail

export LC_ALL=C

bound_mb=${MIGRATION_MEMORY_BOUND_MB:-50}
bound_kb=$((bound_mb * 1024))
import_user=00000000-0000-0000-0000-0000000a1000
small_user=00000000-0000-0000-0000-0000000a1001
guest=00000000-0000-0000-0000-0000000a1002
account=00000000-0000-0000-0000-0000000a1003
users="'$import_user', '$small_user', '$guest', '$account'"

passed=0
failed=0
summary_done=
tmpdir=

# Print the summary line on every exit: a run that stopped before its end
# (no connection, an SQL error) or exits non-zero with no failure counted
# gets one failure more, so the line and the exit status always agree
# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	local rc=$?

	[ -z "$tmpdir" ] || rm -rf "$tmpdir"
	if [ -z "$summary_done" ]; then
		echo "FAIL the test aborted with exit status $rc"
		failed=$((failed + 1))
	elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		echo "FAIL exit status $rc"
		failed=1
	fi
	[ "$failed" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
	echo "migration_memory_props: $passed passed, $failed failed"
	exit "$rc"
}
trap finish EXIT

tmpdir=$(mktemp -d /tmp/chatpersist-memory.XXXXXX) || exit 1

q()
{
	psql -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# check NAME CONDITION-RESULT MESSAGE: count a check (CONDITION-RESULT is
# "t" when it held)
check()
{
	if [ "$2" = t ]; then
		echo "ok   $1"
		passed=$((passed + 1))
	else
		echo "FAIL $1: $3"
		failed=$((failed + 1))
	fi
}

cleanup()
{
	q -c "SET client_min_messages = warning" \
		-c "DELETE FROM chatpersist.conversations WHERE user_id IN ($users)" \
		-c "DELETE FROM chatpersist.history WHERE user_id IN ($users)" \
		-c "DELETE FROM chatpersist.history_messages WHERE user_id IN ($users)" \
		-c "DROP TABLE IF EXISTS memory_test_states"
}

# The peak memory of the session, in kB, as an SQL expression
hwm="(pg_catalog.regexp_match(pg_catalog.pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+) kB'))[1]::bigint"

# measure NAME SQL: run SQL (one statement returning one value) in a fresh
# session; prints "growth_kb baseline_kb value" and keeps the session's
# messages (client_min_messages = debug1) in $tmpdir/NAME.log
measure()
{
	q 2>"$tmpdir/$1.log" <<EOF
SELECT $hwm AS base \gset
SET client_min_messages = debug1;
SELECT ($2) AS value \gset
RESET client_min_messages;
SELECT $hwm - :base, :base, :'value';
EOF
}

cleanup

# The legacy states, built in a session of their own so that building
# them does not count: 20,000 conversations as an array (the layout with
# the duplicate-id check), 2,000 as an object keyed by id, and 10,000 for
# the guest.  Two messages each, like a short chat.
q <<'EOF'
CREATE TABLE memory_test_states (name text PRIMARY KEY, state jsonb NOT NULL);
INSERT INTO memory_test_states
SELECT 'array20000', jsonb_build_object('conversations', jsonb_agg(
	jsonb_build_object('id', 'conv-' || i, 'title', 'Chat ' || i, 'messages', jsonb_build_array(
		jsonb_build_object('id', 'm1', 'role', 'user', 'content', 'hello ' || i, 'created_at', 1700000000000 + i),
		jsonb_build_object('id', 'm2', 'role', 'assistant', 'content', 'hi there', 'created_at', 1700000001000 + i)))))
FROM generate_series(1, 20000) i;
INSERT INTO memory_test_states
SELECT 'object2000', jsonb_build_object('conversations', jsonb_object_agg('conv-' || i,
	jsonb_build_object('title', 'Chat ' || i, 'messages', jsonb_build_array(
		jsonb_build_object('id', 'm1', 'role', 'user', 'content', 'hello ' || i, 'created_at', 1700000000000 + i)))))
FROM generate_series(1, 2000) i;
INSERT INTO memory_test_states
SELECT 'guest10000', jsonb_agg(
	jsonb_build_object('id', 'guest-' || i, 'title', 'Guest ' || i, 'messages', jsonb_build_array(
		jsonb_build_object('id', 'g1', 'role', 'user', 'content', 'guest says ' || i, 'created_at', 1700000000000 + i),
		jsonb_build_object('id', 'g2', 'role', 'assistant', 'content', 'answer', 'created_at', 1700000001000 + i))))
FROM generate_series(1, 10000) i;
EOF

# measure_call NAME SQL EXPECTED: one measured call and its checks
measure_call()
{
	local name=$1 sql=$2 expected=$3 growth base value

	read -r growth base value <<<"$(measure "$name" "$sql" | tr '|' ' ')"
	echo "     $name: peak $((base / 1024)) MB before, $(((base + growth) / 1024)) MB after, +$((growth / 1024)) MB"
	check "$name returns $expected" "$([ "$value" = "$expected" ] && echo t || echo f)" "returned $value"
	check "$name: peak memory grows by less than $bound_mb MB" \
		"$([ "$growth" -lt "$bound_kb" ] && echo t || echo f)" "grew by $growth kB"
}

measure_call import2000 \
	"SELECT chatpersist.import_app_state('$small_user', state) FROM memory_test_states WHERE name = 'object2000'" 2000
measure_call import20000 \
	"SELECT chatpersist.import_app_state('$import_user', state) FROM memory_test_states WHERE name = 'array20000'" 20000
n=$(grep -c '[0-9]* of 20000 conversations imported' "$tmpdir/import20000.log" || true)
check "import of 20,000 reports its progress 20 times at DEBUG1" \
	"$([ "$n" -eq 20 ] && echo t || echo f)" "$n progress lines: $(head -c 300 "$tmpdir/import20000.log")"

rows=$(q -c "SELECT count(*) FILTER (WHERE message_count = 2 AND version = 1) || ' ' || count(*) || ' ' ||
	(SELECT count(*) FROM chatpersist.messages WHERE user_id = '$import_user' AND NOT removed)
	FROM chatpersist.conversations WHERE user_id = '$import_user'")
check "import of 20,000 wrote 20,000 conversations of 2 messages (40,000 message rows)" \
	"$([ "$rows" = "20000 20000 40000" ] && echo t || echo f)" "$rows"
measure_call reimport20000 \
	"SELECT chatpersist.import_app_state('$import_user', state) FROM memory_test_states WHERE name = 'array20000'" 0

q -c "SELECT chatpersist.import_app_state('$guest', state) FROM memory_test_states WHERE name = 'guest10000'" >/dev/null
measure_call migrate10000 "SELECT chatpersist.migrate_user('$guest', '$account')" 10000
n=$(grep -c '[0-9]* of 10000 conversations of the guest migrated' "$tmpdir/migrate10000.log" || true)
check "migrate_user of 10,000 reports its progress 10 times at DEBUG1" \
	"$([ "$n" -eq 10 ] && echo t || echo f)" "$n progress lines: $(head -c 300 "$tmpdir/migrate10000.log")"
rows=$(q -c "SELECT count(*) FILTER (WHERE user_id = '$account' AND message_count = 2) || ' ' || count(*) FILTER (WHERE user_id = '$guest') || ' ' ||
	(SELECT count(*) FROM chatpersist.messages WHERE user_id = '$guest')
	FROM chatpersist.conversations WHERE user_id IN ('$guest', '$account')")
check "migrate_user moved all 10,000 conversations (and their message rows)" \
	"$([ "$rows" = "10000 0 0" ] && echo t || echo f)" "$rows"

cleanup

# finish (the EXIT trap) prints the summary line
summary_done=1
[ "$failed" -eq 0 ]
