#!/usr/bin/env bash
#
# version_props.sh
#	  Under real concurrency, a version number never names two contents of
#	  one conversation, and no conversation ends up refusing writes (issue
#	  11, item 1).  Six pgbench clients mix, on three conversation ids of an
#	  account and of a guest: append_messages, whole-array saves, plain
#	  DELETEs, plain INSERTs (ON CONFLICT DO NOTHING, as an upsert without
#	  the functions does: the conversation, then a message as a row of
#	  chatpersist.messages, each row a version of its own),
#	  delete_conversation and migrate_user from the guest to the account.
#	  Then:
#	    - no client aborted (only 40001 and 40P01 are retried, by pgbench);
#	    - no (user, conversation, version) appears twice among the rows and
#	      history, and each row's version is above every archived version
#	      of its key;
#	    - every message row belongs to a conversation and carries no
#	      version above its conversation's;
#	    - an append to every key succeeds afterwards.
#	  Before the fix of issue 11, a run failed the second and third checks
#	  (history_pkey violations).
#
# Usage: PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... test/version_props.sh
#
# The chatpersist extension must exist in the database.  Needs pgbench.
# VERSION_PROPS_SECONDS (default 15) sets the length of the run.  Writes
# only rows of its two users, and removes them at the end.  Ends with
#	version_props: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/version_props.sh
#

set -uo pipefail

account=00000000-0000-4000-8000-0000000000a1
guest=00000000-0000-4000-8000-0000000000a2
seconds=${VERSION_PROPS_SECONDS:-15}
passed=0
failed=0
summary_done=
tmpdir=

# Print the summary line on every exit: a run that stopped before its end
# or exits non-zero with no failure counted gets one failure more, so the
# line and the exit status always agree
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
	echo "version_props: $passed passed, $failed failed"
	exit "$rc"
}
trap finish EXIT

# check NAME COMMAND... (test/check.sh)
. "$(dirname "${BASH_SOURCE[0]}")/check.sh"

q()
{
	psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

# append_final USER ID: one more append to the conversation succeeds
append_final()
{
	q "SELECT chatpersist.append_messages('$1', '$2', '[{\"id\":\"final\"}]')" >/dev/null
}

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/version_props.XXXXXX") || exit 1
chmod 755 "$tmpdir"

clean_users()
{
	q "SET chatpersist.history_depth = 0;
	   DELETE FROM chatpersist.conversations WHERE user_id IN ('$account', '$guest');
	   DELETE FROM chatpersist.history WHERE user_id IN ('$account', '$guest');
	   DELETE FROM chatpersist.history_messages WHERE user_id IN ('$account', '$guest');" >/dev/null
}
clean_users || exit 1

# One transaction per pgbench run of the script: pick a user (mostly the
# guest, whose rows migrate_user keeps removing), an id and an operation
cat >"$tmpdir/mix.sql" <<EOF
\set k random(1, 3)
\set op random(1, 100)
\set g random(0, 3)
\set m random(1, 1000000000)
\if :op <= 30
SELECT 1 FROM chatpersist.append_messages((CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid, 'c' || :k, jsonb_build_array(jsonb_build_object('id', 'a' || :m)));
\elif :op <= 45
DELETE FROM chatpersist.conversations WHERE user_id = (CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid AND id = 'c' || :k;
\elif :op <= 60
INSERT INTO chatpersist.conversations (user_id, id) VALUES ((CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid, 'c' || :k) ON CONFLICT DO NOTHING;
INSERT INTO chatpersist.messages (user_id, conversation_id, message) SELECT user_id, id, jsonb_build_object('id', 'i' || :m) FROM chatpersist.conversations WHERE user_id = (CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid AND id = 'c' || :k AND NOT deleted FOR UPDATE;
\elif :op <= 75
SELECT 1 FROM chatpersist.save_conversation((CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid, 'c' || :k, 'T', jsonb_build_array(jsonb_build_object('id', 's' || :m)));
\elif :op <= 85
SELECT 1 FROM chatpersist.delete_conversation((CASE WHEN :g > 0 THEN '$guest' ELSE '$account' END)::uuid, 'c' || :k);
\else
SELECT chatpersist.migrate_user('$guest', '$account');
\endif
EOF

pgbench -n -c 6 -j 2 -T "$seconds" --max-tries=20 -f "$tmpdir/mix.sql" >"$tmpdir/pgbench.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || tail -20 "$tmpdir/pgbench.log"
grep -E "^(number of (transactions actually processed|failed transactions)|.*aborted)" "$tmpdir/pgbench.log"
check "pgbench ran every client to the end (exit $rc)" test "$rc" -eq 0
check "no client aborted on an error" bash -c "! grep -qiE 'aborted|ERROR' '$tmpdir/pgbench.log'"
processed=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$tmpdir/pgbench.log")
check "the mix ran (${processed:-0} transactions, at least 200)" test "${processed:-0}" -ge 200

dups=$(q "SELECT count(*) FROM (
	SELECT user_id, conversation_id, version FROM chatpersist.history
	 WHERE user_id IN ('$account', '$guest')
	UNION ALL
	SELECT user_id, id, version FROM chatpersist.conversations
	 WHERE user_id IN ('$account', '$guest')) v
	GROUP BY user_id, conversation_id, version HAVING count(*) > 1") || dups=error
check "no version names two contents (duplicates: ${dups:-0})" test -z "$dups"

below=$(q "SELECT count(*) FROM chatpersist.conversations c
	WHERE c.user_id IN ('$account', '$guest')
	  AND c.version <= (SELECT max(h.version) FROM chatpersist.history h
						 WHERE h.user_id = c.user_id AND h.conversation_id = c.id)") || below=error
check "every row's version is above its archived versions (rows below: $below)" test "$below" = 0

orphans=$(q "SELECT count(*) FROM chatpersist.messages m
	WHERE m.user_id IN ('$account', '$guest')
	  AND NOT EXISTS (SELECT FROM chatpersist.conversations c
					  WHERE c.user_id = m.user_id AND c.id = m.conversation_id
						AND c.version >= m.changed_version)") || orphans=error
check "every message row has its conversation, at a version not below the row's (rows not: $orphans)" test "$orphans" = 0

for u in "$account" "$guest"; do
	for k in 1 2 3; do
		check "an append to $u/c$k succeeds afterwards" append_final "$u" "c$k"
	done
done

clean_users
# finish (the EXIT trap) prints the summary line
summary_done=1
[ "$failed" -eq 0 ]
