#!/usr/bin/env bash
#
# cursor_moves.sh
#	  The change cursor keeps its promise when the data moves to another
#	  cluster: a plain restore, a data-only restore with --disable-triggers
#	  (then chatpersist.restamp()), a data-only load in replica mode, and a
#	  publication/subscription copy, each from a cluster whose transaction
#	  ids are far higher to one whose ids are far lower and back.  After
#	  every move a device's old cursor, its old cursor as 1.0 gave it (the
#	  bare stamp), a cursor of 0 and a cursor taken after the move all see
#	  every change made after the move, and the three "from before" cursors
#	  see every row.  2.0: the message rows (chatpersist.messages) and the
#	  replaced copies (chatpersist.history_messages) move with the heads:
#	  each conversation arrives with its array.  Then the upgrade from 1.0
#	  (through 1.1 to this build's default version): rows, arrays,
#	  versions, version floors of keys 1.0 removed with a plain DELETE,
#	  checksums and untagged cursors survive ALTER EXTENSION UPDATE, and an
#	  upgraded database has the same objects and trigger states as a fresh
#	  one.
#
# Usage: CP_PGBIN=<bin of a server with this build installed> test/cursor_moves.sh
#	Without CP_PGBIN (test/run.sh passes its private install) it builds
#	this tree and installs it into a private copy of the server
#	(test/lib.sh's cp_this_build), removed on exit.
#
# Starts two throwaway clusters of its own (test/cluster.sh, wal_level =
# logical), "hi" moved to transaction ids near 2e9 with pg_resetwal -x,
# "lo" left near 1000, and stops both on exit, also on failure.  Ends with
#	cursor_moves: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/cursor_moves.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/lib.sh

passed=0
failed=0
U=00000000-0000-0000-0000-0000000000e1
# a multiple of a pg_xact segment (2^20 xids), so the server creates its
# segment itself, and less than 2^31 ids ahead, so the catalog rows initdb
# wrote stay in the past even where they are not frozen
HI_XID=1999634432
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/cursor_moves.XXXXXX") || { echo "cursor_moves: 0 passed, 1 failed"; exit 1; }
chmod 755 "$tmpdir"
lo_dir="" hi_dir="" lo_port="" hi_port=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	CP_CLUSTER_DIR=$lo_dir cp_cluster_stop
	CP_CLUSTER_DIR=$hi_dir cp_cluster_stop
	cp_cleanup	# the private install, if this script made one
	rm -rf "$tmpdir"
}
trap finish EXIT

# check NAME COMMAND... and eq NAME GOT WANT (test/check.sh)
. test/check.sh


# q PORT DB SQL: one value (or rows) from a query
q()
{
	"$CP_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3"
}

bail()
{
	echo "cursor_moves: $1"
	echo "cursor_moves: $passed passed, $((failed + 1)) failed"
	exit 1
}

# start a cluster with wal_level = logical; prints "DIR PORT"
start_cluster()
{
	CP_CLUSTER_DIR=""
	cp_cluster_start "wal_level = logical" "max_wal_senders = 10" "max_replication_slots = 10" >/dev/null || return 1
	echo "$CP_CLUSTER_DIR $PGPORT"
}

cp_this_build || bail "could not build and install this tree"
read -r lo_dir lo_port < <(start_cluster) || true
[ -n "$lo_port" ] || bail "could not start the first cluster"
read -r hi_dir hi_port < <(start_cluster) || true
[ -n "$hi_port" ] || bail "could not start the second cluster"

# move "hi" to transaction ids near 2e9: pg_resetwal needs it stopped
"$CP_PGBIN/vacuumdb" -q --all --freeze -h 127.0.0.1 -p "$hi_port" -U postgres || bail "vacuumdb failed"
cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$hi_dir/data" -m fast -w stop >/dev/null || bail "could not stop hi"
cp_as_postgres "$CP_PGBIN/pg_resetwal" -x "$HI_XID" -D "$hi_dir/data" >/dev/null || bail "pg_resetwal failed"
cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$hi_dir/data" -l "$hi_dir/server.log" -w start >/dev/null || bail "could not restart hi"

echo "lo: port $lo_port, next xid $(q "$lo_port" postgres "SELECT pg_current_xact_id()")"
echo "hi: port $hi_port, next xid $(q "$hi_port" postgres "SELECT pg_current_xact_id()")"

port_of()
{
	if [ "$1" = lo ]; then echo "$lo_port"; else echo "$hi_port"; fi
}

# the rows of user U as "id version checksum deleted array", one a line
# (2.0: the array rebuilt from the message rows in plain SQL)
rows()
{
	q "$1" "$2" "SELECT c.id, c.version, c.checksum, c.deleted,
					   (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
						 WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed)
				  FROM chatpersist.conversations c
				  WHERE c.user_id = '$U' ORDER BY c.id"
}

# how many of the rows that changes_since(U, CURSOR) returns on PORT DB
# match a row of U as stored in IDS (a quoted, comma separated id list),
# and how many it returns in all, as "matching/all"
seen()
{
	q "$1" "$2" "SELECT (SELECT count(*) FROM chatpersist.changes_since('$U', $3) ch
						  JOIN chatpersist.conversations c ON c.user_id = '$U'
						   AND c.id = ch.conversation_id AND c.version = ch.version
						   AND c.deleted = ch.deleted
						 WHERE c.id IN ($4)) || '/' ||
					(SELECT count(*) FROM chatpersist.changes_since('$U', $3))"
}

# scenario NAME SRC DST MODE: move a database of SRC to DST by MODE
# (plain, disable, replica, pubsub) and check what the cursors see
scenario()
{
	local name=$1 src=$2 dst=$3 mode=$4
	local sp dp db="cm_$1" old legacy new n dump="$tmpdir/$1.dump"

	sp=$(port_of "$src")
	dp=$(port_of "$dst")
	echo "== $name: $src -> $dst, $mode"
	q "$sp" postgres "CREATE DATABASE $db" >/dev/null || bail "createdb failed"
	q "$dp" postgres "CREATE DATABASE $db" >/dev/null || bail "createdb failed"
	"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$sp" -U postgres -d "$db" >/dev/null <<SQL || bail "setup failed"
CREATE EXTENSION chatpersist;
SELECT chatpersist.save_conversation('$U', 'c1', 'one', '[{"id":"m1"}]');
SELECT chatpersist.save_conversation('$U', 'c2', 'two', '[{"id":"m1"}]');
SELECT chatpersist.save_conversation('$U', 'c3', 'three', '[{"id":"m1"}]');
SELECT chatpersist.append_messages('$U', 'c3', '[{"id":"m2"}]');
SELECT chatpersist.save_conversation('$U', 'c4', 'four', '[{"id":"m1"}]');
SELECT chatpersist.delete_conversation('$U', 'c4');
SQL
	# the device on SRC: its cursor, and the same as 1.0 handed it out
	old=$(q "$sp" "$db" "SELECT max(cursor) FROM chatpersist.changes_since('$U', 0)")
	legacy=$((old & ((1 << 40) - 1)))
	echo "   device on $src: cursor $old (untagged: $legacy)"
	rows "$sp" "$db" >"$tmpdir/$name.src"

	case $mode in
		plain)
			"$CP_PGBIN/pg_dump" -Fc -h 127.0.0.1 -p "$sp" -U postgres -d "$db" -f "$dump" || bail "pg_dump failed"
			"$CP_PGBIN/pg_restore" --exit-on-error -h 127.0.0.1 -p "$dp" -U postgres -d "$db" "$dump" || bail "pg_restore failed"
			;;
		disable | replica)
			q "$dp" "$db" "CREATE EXTENSION chatpersist" >/dev/null || bail "CREATE EXTENSION failed"
			"$CP_PGBIN/pg_dump" -Fc --data-only -h 127.0.0.1 -p "$sp" -U postgres -d "$db" -f "$dump" || bail "pg_dump failed"
			if [ "$mode" = disable ]; then
				"$CP_PGBIN/pg_restore" --exit-on-error --data-only --disable-triggers \
					-h 127.0.0.1 -p "$dp" -U postgres -d "$db" "$dump" || bail "pg_restore failed"
				# before restamp(): the foreign stamps are not invisible
				eq "$name: before restamp(), changes_since(U, 0) returns every row" \
					"$(q "$dp" "$db" "SELECT count(*) FROM chatpersist.changes_since('$U', 0)")" 4
				eq "$name: restamp() re-stamps every row" \
					"$(q "$dp" "$db" "SELECT chatpersist.restamp()")" 4
				eq "$name: restamp() enables the restamp trigger ALWAYS again" \
					"$(q "$dp" "$db" "SELECT tgenabled FROM pg_trigger WHERE tgname = 'conversations_restamp'")" A
			else
				PGOPTIONS="-c session_replication_role=replica" "$CP_PGBIN/pg_restore" --exit-on-error --data-only \
					-h 127.0.0.1 -p "$dp" -U postgres -d "$db" "$dump" || bail "pg_restore failed"
			fi
			;;
		pubsub)
			q "$dp" "$db" "CREATE EXTENSION chatpersist" >/dev/null || bail "CREATE EXTENSION failed"
			# (2.0: the message rows and replaced copies are tables of their own)
			q "$sp" "$db" "CREATE PUBLICATION cm_pub FOR TABLE chatpersist.conversations, chatpersist.history,
							chatpersist.messages, chatpersist.history_messages" >/dev/null ||
				bail "CREATE PUBLICATION failed"
			q "$dp" "$db" "CREATE SUBSCRIPTION cm_sub CONNECTION 'host=127.0.0.1 port=$sp user=postgres dbname=$db' PUBLICATION cm_pub" >/dev/null ||
				bail "CREATE SUBSCRIPTION failed"
			# the initial copy, then one change through the apply worker
			for _ in $(seq 1 120); do
				n=$(q "$dp" "$db" "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")
				[ "$n" = 0 ] && break
				sleep 0.5
			done
			q "$sp" "$db" "SELECT chatpersist.append_messages('$U', 'c3', '[{\"id\":\"m3\"}]')" >/dev/null
			for _ in $(seq 1 120); do
				n=$(q "$dp" "$db" "SELECT count(*) FROM chatpersist.conversations WHERE user_id = '$U' AND id = 'c3' AND version = 3")
				[ "$n" = 1 ] && break
				sleep 0.5
			done
			eq "$name: the subscription copied and applied every row" "$n" 1
			rows "$sp" "$db" >"$tmpdir/$name.src"
			# the switchover
			q "$dp" "$db" "DROP SUBSCRIPTION cm_sub" >/dev/null || bail "DROP SUBSCRIPTION failed"
			;;
	esac

	rows "$dp" "$db" >"$tmpdir/$name.dst"
	check "$name: versions, checksums, tombstones and arrays arrive unchanged" cmp -s "$tmpdir/$name.src" "$tmpdir/$name.dst"
	eq "$name: the message rows and replaced copies arrive" \
		"$(q "$dp" "$db" "SELECT (SELECT count(*) FROM chatpersist.messages) || ' ' || (SELECT count(*) FROM chatpersist.history_messages)")" \
		"$(q "$sp" "$db" "SELECT (SELECT count(*) FROM chatpersist.messages) || ' ' || (SELECT count(*) FROM chatpersist.history_messages)")"
	eq "$name: changes_since(U, 0) returns every row after the move" \
		"$(q "$dp" "$db" "SELECT string_agg(conversation_id, ',' ORDER BY conversation_id) FROM chatpersist.changes_since('$U', 0)")" \
		"c1,c2,c3,c4"
	for c in "$old" "$legacy"; do
		eq "$name: the device's cursor $c from $src resyncs every row" \
			"$(seen "$dp" "$db" "$c" "'c1','c2','c3','c4'")" "4/4"
	done
	new=$(q "$dp" "$db" "SELECT max(cursor) FROM chatpersist.changes_since('$U', 0)")
	echo "   cursor taken on $dst after the move: $new"

	# changes after the move: an append, a new conversation, a delete
	"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$dp" -U postgres -d "$db" >/dev/null <<SQL || bail "writes after the move failed"
SELECT chatpersist.append_messages('$U', 'c1', '[{"id":"after"}]');
SELECT chatpersist.save_conversation('$U', 'c5', 'five', '[{"id":"m1"}]');
SELECT chatpersist.delete_conversation('$U', 'c2');
SQL
	for c in "$old" "$legacy" 0; do
		eq "$name: cursor $c sees every change made after the move" \
			"$(seen "$dp" "$db" "$c" "'c1','c2','c5'" | cut -d/ -f1)" 3
	done
	eq "$name: the append after the move continues the moved array" \
		"$(q "$dp" "$db" "SELECT messages::text FROM chatpersist.load_conversation('$U', 'c1')")" \
		'[{"id": "m1"}, {"id": "after"}]'
	eq "$name: the cursor taken after the move sees exactly the changes made since" \
		"$(seen "$dp" "$db" "$new" "'c1','c2','c5'")" "3/3"
	echo "   stamps on $dst: $(q "$dp" "$db" "SELECT string_agg(id || '=' || change_xid, ' ' ORDER BY id) FROM chatpersist.conversations")"
}

scenario plain_down hi lo plain
scenario plain_up lo hi plain
scenario disable_down hi lo disable
scenario disable_up lo hi disable
scenario replica_down hi lo replica
scenario pubsub_down hi lo pubsub
scenario pubsub_up lo hi pubsub

# The upgrade from 1.0: rows and untagged cursors survive, and the
# upgraded database equals a fresh one of this build's default version,
# trigger states included
echo "== upgrade from 1.0"
p=$lo_port
q "$p" postgres "CREATE DATABASE cm_up" >/dev/null
q "$p" postgres "CREATE DATABASE cm_fresh" >/dev/null
# This library refuses to write on a 1.x schema (55000, until ALTER
# EXTENSION UPDATE), so the rows are written as 1.0 stored them: the whole
# array in conversations.messages, each in its own transaction (its
# change_xid the writer's), with the guard trigger off as in a load.  u3 is
# a key that 1.0 removed with a plain DELETE: its version 2 is archived.
"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p" -U postgres -d cm_up >/dev/null <<SQL || bail "1.0 setup failed"
CREATE EXTENSION chatpersist VERSION '1.0';
SET session_replication_role = replica;
INSERT INTO chatpersist.conversations (user_id, id, title, messages, version, checksum, message_count, change_xid)
VALUES ('$U', 'u1', 'one', '[{"id":"m1"}]', 1, chatpersist.checksum('[{"id":"m1"}]'), 1, pg_current_xact_id());
INSERT INTO chatpersist.conversations (user_id, id, title, messages, version, checksum, message_count, change_xid)
VALUES ('$U', 'u2', 'two', '[{"id":"m1"}, {"id":"m2"}]', 2, chatpersist.checksum('[{"id":"m1"}, {"id":"m2"}]'), 2, pg_current_xact_id());
INSERT INTO chatpersist.history (user_id, conversation_id, version, title, messages, metadata, checksum,
	message_count, deleted, last_modified, replaced_at, replaced_by)
VALUES ('$U', 'u2', 1, 'two', '[{"id":"m1"}]', '{}', chatpersist.checksum('[{"id":"m1"}]'), 1, false, now(), now(), 'updated'),
	   ('$U', 'u3', 1, 'three', '[{"id":"m1"}]', '{}', chatpersist.checksum('[{"id":"m1"}]'), 1, false, now(), now(), 'updated'),
	   ('$U', 'u3', 2, 'three', '[{"id":"m1"}, {"id":"m2"}]', '{}', chatpersist.checksum('[{"id":"m1"}, {"id":"m2"}]'), 2, false, now(), now(), 'delete');
SQL
eq "upgrade: before the update, this library refuses to write on the 1.0 schema (55000)" \
	"$("$CP_PGBIN/psql" -X -A -t -v VERBOSITY=verbose -h 127.0.0.1 -p "$p" -U postgres -d cm_up \
		-c "SELECT chatpersist.save_conversation('$U', 'u1', 'one', '[{\"id\":\"x\"}]')" 2>&1 |
		grep -o 'ERROR:  55000' | head -1)" "ERROR:  55000"
# (1.0 kept the arrays in conversations.messages)
q "$p" cm_up "SELECT id, version, checksum, deleted, messages FROM chatpersist.conversations
			   WHERE user_id = '$U' ORDER BY id" >"$tmpdir/up.before"
# the cursor a 1.0 device holds: the bare stamp of the newest change
legacy=$(q "$p" cm_up "SELECT max(change_xid::text::int8) FROM chatpersist.conversations")
q "$p" cm_up "ALTER EXTENSION chatpersist UPDATE" >/dev/null
default_version=$(sed -nE "s/^default_version = '(.*)'/\1/p" chatpersist.control)
eq "upgrade: ALTER EXTENSION UPDATE reaches $default_version" "$(q "$p" cm_up "SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'")" "$default_version"
rows "$p" cm_up >"$tmpdir/up.after"
check "upgrade: versions, checksums and arrays unchanged" cmp -s "$tmpdir/up.before" "$tmpdir/up.after"
eq "upgrade: checksums still equal the checksum of the rows' arrays" \
	"$(q "$p" cm_up "SELECT count(*) FROM chatpersist.conversations c
					 WHERE checksum <> chatpersist.checksum(
						(SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]') FROM chatpersist.messages m
						  WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed))")" 0
eq "upgrade: a 1.0 cursor of this database is still a cursor, not a resync" \
	"$(q "$p" cm_up "SELECT count(*) FROM chatpersist.changes_since('$U', $legacy)")" 0
q "$p" cm_up "SELECT chatpersist.append_messages('$U', 'u1', '[{\"id\":\"m2\"}]')" >/dev/null
eq "upgrade: the 1.0 cursor sees the change made after the upgrade, and only it" \
	"$(q "$p" cm_up "SELECT string_agg(conversation_id || ' v' || version, ',') FROM chatpersist.changes_since('$U', $legacy)")" "u1 v2"
eq "upgrade: cursors now carry this database's origin" \
	"$(q "$p" cm_up "SELECT bool_and(cursor >> 40 = chatpersist.cursor_origin()) FROM chatpersist.changes_since('$U', 0)")" t
eq "upgrade: a key 1.0 removed with a plain DELETE gets its version floor" \
	"$(q "$p" cm_up "SELECT version FROM chatpersist.version_floors WHERE user_id = '$U' AND conversation_id = 'u3'")" 2
eq "upgrade: keys with a row get no floor from the upgrade" \
	"$(q "$p" cm_up "SELECT count(*) FROM chatpersist.version_floors WHERE conversation_id <> 'u3'")" 0
eq "upgrade: the removed key, inserted again, continues above its floor" \
	"$(q "$p" cm_up "INSERT INTO chatpersist.conversations (user_id, id) VALUES ('$U', 'u3') RETURNING version")" 3
q "$p" cm_fresh "CREATE EXTENSION chatpersist" >/dev/null
members()
{
	q "$p" "$1" "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
				  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e' ORDER BY 1;
				SELECT tgname, tgenabled, tgtype, pg_get_triggerdef(oid) FROM pg_trigger
				  WHERE tgrelid IN ('chatpersist.conversations'::regclass, 'chatpersist.messages'::regclass,
									'chatpersist.history_messages'::regclass)
				  ORDER BY tgname;
				SELECT extversion, extconfig::regclass[]::text FROM pg_extension WHERE extname = 'chatpersist'"
}
members cm_up >"$tmpdir/up.members"
members cm_fresh >"$tmpdir/fresh.members"
check "upgrade: the upgraded database has the fresh one's objects and trigger states" \
	cmp -s "$tmpdir/up.members" "$tmpdir/fresh.members"
eq "upgrade: the restamp trigger is enabled ALWAYS" \
	"$(q "$p" cm_up "SELECT tgenabled FROM pg_trigger WHERE tgname = 'conversations_restamp'")" A
# (pg_dump's \restrict lines carry a random key)
"$CP_PGBIN/pg_dump" -s -h 127.0.0.1 -p "$p" -U postgres -d cm_up | grep -v -e '^--' -e '^\\\(un\)\?restrict ' >"$tmpdir/up.sql"
"$CP_PGBIN/pg_dump" -s -h 127.0.0.1 -p "$p" -U postgres -d cm_fresh | grep -v -e '^--' -e '^\\\(un\)\?restrict ' >"$tmpdir/fresh.sql"
check "upgrade: pg_dump -s of the upgraded and of a fresh database are identical" diff "$tmpdir/up.sql" "$tmpdir/fresh.sql"
# both restore to the same objects and trigger states
for d in up fresh; do
	"$CP_PGBIN/pg_dump" -Fc -h 127.0.0.1 -p "$p" -U postgres -d "cm_$d" -f "$tmpdir/$d.dump"
	q "$p" postgres "CREATE DATABASE cm_${d}_restored" >/dev/null
	"$CP_PGBIN/pg_restore" --exit-on-error -h 127.0.0.1 -p "$p" -U postgres -d "cm_${d}_restored" "$tmpdir/$d.dump" ||
		check "upgrade: cm_$d restores" false
	members "cm_${d}_restored" >"$tmpdir/${d}_restored.members"
done
check "upgrade: the two dumps restore to the same objects and trigger states" \
	cmp -s "$tmpdir/up_restored.members" "$tmpdir/fresh_restored.members"
check "upgrade: ... which are those of a fresh database" \
	cmp -s "$tmpdir/fresh_restored.members" "$tmpdir/fresh.members"

if grep -q "terminated by signal\|was terminated by exception" "$lo_dir/server.log" "$hi_dir/server.log"; then
	check "no backend crashed" false
fi
echo "cursor_moves: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
