#!/usr/bin/env bash
#
# upgrade.sh
#	  A database written by the last 1.x release keeps everything a client
#	  reads when this build is installed over it and the extension is
#	  updated (ALTER EXTENSION chatpersist UPDATE): conversations, messages,
#	  versions, checksums, timestamps, history, tombstones, and the change
#	  cursors devices hold.
#
#	  1. Builds the oracle from git history (test/oracle.sh) into a private
#	     install, starts a cluster of it, creates the extension and writes
#	     test/upgrade/write.sql; reads test/upgrade/snapshot.sql (through
#	     the functions: the storage behind them may change) and the cursor
#	     of every user.
#	  2. Stops it, installs this build into the same install (make install,
#	     as a package upgrade does), starts it again: before the update,
#	     the 2.0 library refuses to read or write the 1.x tables (55000,
#	     hinting at ALTER EXTENSION ... UPDATE) and writes nothing ...
#	  3. ... and after ALTER EXTENSION chatpersist UPDATE, which reaches
#	     this build's default_version.
#	     2.0: the message rows (chatpersist.messages) hold exactly the
#	     arrays 1.x stored in conversations.messages, and the replaced
#	     copies (chatpersist.history_messages) the arrays of each archived
#	     version, read in plain SQL; hashes, ids and positions are sound.
#	  4. Each user's old cursor returns nothing, then exactly a change made
#	     after the update; every conversation accepts a new write, at its
#	     version plus one.  Then test/upgrade/after.sql (appends, saves, a
#	     merge whose base was archived before the update, restores of
#	     versions archived before it, a revival, an overwrite, a delete)
#	     gives exactly what the oracle gives for the same writes in a copy
#	     of its database taken in step 1.
#
# Usage: test/upgrade.sh  (from anywhere; PG_CONFIG as for test/run.sh)
#	UPGRADE_FROM=1.0 creates the oracle's extension at that version instead
#	of its default (1.1): the oracle's library runs a 1.0 schema as 1.0
#	did, and the update takes the one-step script chatpersist--1.0--2.0.sql.
#
# Clusters and installs of its own, removed on exit, also on failure.  Ends
# with
#	upgrade: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/upgrade.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)

. test/lib.sh
. test/oracle.sh

passed=0
failed=0
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/upgrade.XXXXXX") || { echo "upgrade: 0 passed, 1 failed"; exit 1; }
chmod 755 "$tmpdir"
users=(00000000-0000-4000-8000-0000000000c1 00000000-0000-4000-8000-0000000000c2 00000000-0000-4000-8000-0000000000c3)

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	cp_cluster_stop
	rm -rf "$tmpdir"
}
trap finish EXIT

# check NAME COMMAND... (test/check.sh)
. test/check.sh

bail()
{
	echo "upgrade: $1"
	echo "upgrade: $passed passed, $((failed + 1)) failed"
	exit 1
}

q()
{
	"$CP_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d postgres -c "$1"
}

snapshot()
{
	"$CP_PGBIN/psql" -X -q -d postgres -f test/upgrade/snapshot.sql >"$tmpdir/$1.snap" 2>&1
}

restart()
{
	"$CP_PGBIN/pg_ctl" --version >/dev/null || return 1
	cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$CP_CLUSTER_DIR/data" -l "$CP_CLUSTER_DIR/server.log" \
		-w -t 60 restart >/dev/null
}

# 1. The old release writes
cp_oracle_build "$tmpdir/install-root" >/dev/null || bail "could not build the oracle"
install_root=$tmpdir/install-root/install
old_version=${UPGRADE_FROM:-$(sed -nE "s/^default_version = '(.*)'/\1/p" "$tmpdir/install-root/src/chatpersist.control")}
cp_cluster_start "shared_preload_libraries = 'chatpersist'" >/dev/null || bail "could not start a cluster"
q "CREATE EXTENSION chatpersist VERSION '$old_version'" >/dev/null || bail "CREATE EXTENSION failed on the oracle"
"$CP_PGBIN/psql" -X -q -d postgres -f test/upgrade/write.sql >"$tmpdir/write.log" 2>&1 ||
	{ cat "$tmpdir/write.log"; bail "the oracle could not write test/upgrade/write.sql"; }
snapshot before || { cat "$tmpdir/before.snap"; bail "the snapshot failed on the oracle"; }
declare -A cursor
for u in "${users[@]}"; do
	cursor[$u]=$(q "SELECT coalesce(max(cursor), 0) FROM chatpersist.changes_since('$u', 0)")
done
echo "upgrade: the oracle (chatpersist $old_version, $(cp_oracle_commit)) wrote $(grep -c . "$tmpdir/before.snap") facts"
# the arrays as 1.x stores them, for the message rows after the update
q "SELECT user_id || ' ' || id || ' ' || messages::text
	 FROM chatpersist.conversations ORDER BY user_id, id" >"$tmpdir/old.arrays" ||
	bail "could not read the oracle's arrays"
q "SELECT user_id || ' ' || conversation_id || ' ' || version || ' ' || messages::text
	 FROM chatpersist.history ORDER BY user_id, conversation_id, version" >"$tmpdir/old.history_arrays" ||
	bail "could not read the oracle's archived arrays"
# the oracle's answers to the writes of step 4, in a copy of its database
# (the same appends as step 4's loop first)
q "CREATE DATABASE cp_upgrade_oracle TEMPLATE postgres" >/dev/null || bail "could not copy the oracle's database"
"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d cp_upgrade_oracle -c "
	SELECT count(*) FROM (SELECT chatpersist.append_messages(user_id, id, '[{\"id\":\"after-upgrade\"}]')
							FROM chatpersist.conversations WHERE NOT deleted ORDER BY user_id, id) s" >/dev/null &&
	"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d cp_upgrade_oracle -f test/upgrade/after.sql >"$tmpdir/oracle.after" 2>&1 ||
	{ cat "$tmpdir/oracle.after"; bail "the oracle could not run test/upgrade/after.sql"; }
q "DROP DATABASE cp_upgrade_oracle" >/dev/null || bail "could not drop the copy of the oracle's database"

# 2. This build installed over it, as a package upgrade does
if ! make -s PG_CONFIG="$PG_CONFIG" DESTDIR="$install_root" install >"$tmpdir/install.log" 2>&1; then
	cat "$tmpdir/install.log"
	bail "could not install this build over the oracle"
fi
restart || bail "the cluster did not restart with this build's library"
# The 2.0 library reads and writes only 2.0's tables: until the update its
# functions refuse with 55000 (a hint names ALTER EXTENSION ... UPDATE), and
# nothing is written; changes_since, which reads only the heads, answers
refused()
{
	local out
	out=$("$CP_PGBIN/psql" -X -A -t -v VERBOSITY=verbose -d postgres -c "$1" 2>&1)
	grep 'ERROR:  55000: the objects of extension chatpersist are older than its library' >/dev/null <<<"$out"
}
raw_state()
{
	q "SELECT md5(string_agg(c::text, ',' ORDER BY user_id, id)) FROM chatpersist.conversations c"
	q "SELECT md5(string_agg(h::text, ',' ORDER BY user_id, conversation_id, version)) FROM chatpersist.history h"
}
raw_state >"$tmpdir/raw.before"
u0=${users[0]}
check "with this build's library, before the update: load_conversations refuses (55000)" \
	refused "SELECT * FROM chatpersist.load_conversations('$u0')"
check "... save_conversation refuses (55000)" \
	refused "SELECT * FROM chatpersist.save_conversation('$u0', 'pre-update', 't', '[{\"id\":\"a\"}]')"
check "... append_messages refuses (55000)" \
	refused "SELECT * FROM chatpersist.append_messages('$u0', 'trip', '[{\"id\":\"pre-update\"}]')"
check "... a direct UPDATE of a conversation refuses (55000)" \
	refused "UPDATE chatpersist.conversations SET title = 'x' WHERE user_id = '$u0'"
check "... conversation_history refuses (55000)" \
	refused "SELECT * FROM chatpersist.conversation_history('$u0', 'trip')"
raw_state >"$tmpdir/raw.after"
check "... and nothing was written" cmp -s "$tmpdir/raw.before" "$tmpdir/raw.after"
check "... changes_since still answers as the oracle did" \
	test "$(q "SELECT count(*) FROM chatpersist.changes_since('$u0', 0)")" = "$(grep -c "^changes $u0 " "$tmpdir/before.snap")"

# 3. ALTER EXTENSION UPDATE
new_version=$(sed -nE "s/^default_version = '(.*)'/\1/p" "$top/chatpersist.control")
check "the update from $old_version to $new_version is one script" \
	test "$(q "SELECT path FROM pg_extension_update_paths('chatpersist')
				WHERE source = '$old_version' AND target = '$new_version'")" = "$old_version--$new_version"
check "ALTER EXTENSION chatpersist UPDATE runs" q "ALTER EXTENSION chatpersist UPDATE"
check "the extension is at $new_version (was $old_version)" \
	test "$(q "SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'")" = "$new_version"
snapshot after
check "after the update, every fact reads as the oracle wrote it" \
	diff "$tmpdir/before.snap" "$tmpdir/after.snap"

# the storage behind the functions, read in plain SQL: the message rows hold
# the arrays 1.x stored, the replaced copies the arrays 1.x archived
q "SELECT c.user_id || ' ' || c.id || ' ' ||
		  (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
			WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed)::text
	 FROM chatpersist.conversations c ORDER BY c.user_id, c.id" >"$tmpdir/new.arrays"
check "after the update, each conversation's message rows hold the array 1.x stored" \
	diff "$tmpdir/old.arrays" "$tmpdir/new.arrays"
q "SELECT h.user_id || ' ' || h.conversation_id || ' ' || h.version || ' ' ||
		  (SELECT coalesce(jsonb_agg(hm.message ORDER BY hm.pos), '[]') FROM chatpersist.history_messages hm
			WHERE hm.user_id = h.user_id AND hm.conversation_id = h.conversation_id
			  AND hm.valid_from <= h.version AND h.version < hm.valid_to)::text
	 FROM chatpersist.history h ORDER BY h.user_id, h.conversation_id, h.version" >"$tmpdir/new.history_arrays"
check "after the update, each archived version's message copies hold the array 1.x archived" \
	diff "$tmpdir/old.history_arrays" "$tmpdir/new.history_arrays"
check "after the update, every message row has its message's id and hash, and none is removed" \
	test "$(q "SELECT count(*) FROM chatpersist.messages
				WHERE id IS DISTINCT FROM message->>'id' OR removed
				   OR hash <> ('x' || chatpersist.checksum(message))::bit(64)::int8")" = 0
check "after the update, no two message rows of a conversation share a position, and last_pos is above none" \
	test "$(q "SELECT (SELECT count(*) FROM (SELECT FROM chatpersist.messages
											GROUP BY user_id, conversation_id, pos HAVING count(*) > 1) d)
				   + (SELECT count(*) FROM chatpersist.messages m JOIN chatpersist.conversations c
										ON c.user_id = m.user_id AND c.id = m.conversation_id
					   WHERE m.pos > c.last_pos)
				   + (SELECT count(*) FROM chatpersist.messages m WHERE NOT EXISTS
						(SELECT FROM chatpersist.conversations c
						  WHERE c.user_id = m.user_id AND c.id = m.conversation_id))")" = 0

# 4. Old cursors and new writes
for u in "${users[@]}"; do
	check "user ${u: -2}: the cursor held before the update sees nothing new" \
		test "$(q "SELECT count(*) FROM chatpersist.changes_since('$u', ${cursor[$u]})")" = 0
done
while IFS='|' read -r u id version; do
	[ -n "$u" ] || continue
	got=$(q "SELECT version FROM chatpersist.append_messages('$u', '$id', '[{\"id\":\"after-upgrade\"}]')")
	check "$u/$id accepts a write after the update (version $version -> $got)" test "$got" = $((version + 1))
	seen=$(q "SELECT string_agg(conversation_id || ' v' || version, ',') FROM chatpersist.changes_since('$u', ${cursor[$u]})")
	check "$u/$id: the old cursor sees exactly that write" test "$seen" = "$id v$((version + 1))"
	cursor[$u]=$(q "SELECT max(cursor) FROM chatpersist.changes_since('$u', ${cursor[$u]})")
done < <(q "SELECT user_id, id, version FROM chatpersist.conversations WHERE NOT deleted ORDER BY user_id, id")

# the same writes as the oracle made in its copy, the same answers
"$CP_PGBIN/psql" -X -q -d postgres -f test/upgrade/after.sql >"$tmpdir/upgraded.after" 2>&1
check "after the update, the writes of test/upgrade/after.sql give exactly the oracle's answers" \
	diff "$tmpdir/oracle.after" "$tmpdir/upgraded.after"
check "... the stale save whose base was archived before the update merged" \
	grep -q '^merge trip {"status":"merged"' "$tmpdir/upgraded.after"
check "... the version archived before the update was restored" \
	grep -q '^restore trip {"status":"updated"' "$tmpdir/upgraded.after"
check "... the conversation deleted before the update was revived" \
	grep -q '^restore notes {"status":"updated"' "$tmpdir/upgraded.after"
check "after those writes, the message rows hold the arrays load_conversation returns" \
	test "$(q "SELECT count(*) FROM chatpersist.conversations c
				 LEFT JOIN LATERAL chatpersist.load_conversation(c.user_id, c.id) l ON true
				WHERE NOT c.deleted
				  AND l.messages IS DISTINCT FROM
					  (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
						WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed)")" = 0

if cp_cluster_crashed; then
	check "no backend crashed" false
fi
echo "upgrade: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
