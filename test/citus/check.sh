#!/bin/bash
# test/citus/check.sh: run chatpersist on a throwaway Citus cluster and
# compare it with a plain PostgreSQL server.  Manual (not part of
# test/run.sh): it needs Citus installed in the server's tree, which Debian
# does not package (docs/citus.md says how it was built).
#
#   test/citus/check.sh            (as root or as postgres)
#
# Starts under $CITUS_CHECK_DIR (default /tmp/citus-check): a coordinator
# (port 55601) and two workers (55602, 55603) with
# shared_preload_libraries = 'citus,chatpersist', and a plain server
# (55604) with 'chatpersist' only; all trust loopback connections and are
# stopped on exit, also on failure.  Sets the cluster up by running the
# setup block of docs/citus.md (its addresses replaced by these ports),
# which distributes the five tables and the ten functions that take
# p_user_id, then checks: shard placement on both
# workers, delegation of the calls, the same call sequence
# (test/citus/calls.sql) for several users with output equal to the plain
# server's (statuses, versions, arrays, checksums, history, the deltas of
# messages_since), eight
# concurrent stale saves, and that the rows live in the workers' shards.
# Prints "ok"/"FAIL" per check and exits non-zero when one failed.
# CITUS_CHECK_KEEP=1 leaves the servers running afterwards (to look around;
# the next run stops them).
# Needs chatpersist and Citus installed (make install) in the server's tree.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# PG_CONFIG, with its default (test/lib.sh): the server's bin directory
# shellcheck source=test/lib.sh
. "$HERE/../lib.sh"
PGBIN=${PGBIN:-$("$PG_CONFIG" --bindir)}
BASE=${CITUS_CHECK_DIR:-/tmp/citus-check}
COORD=55601
W1=55602
W2=55603
PLAIN=55604
NODES="coord:$COORD w1:$W1 w2:$W2 plain:$PLAIN"
# users: the check asserts that their shards are on both workers
USERS="0b9c2d1e-0000-4000-8000-000000000001 0b9c2d1e-0000-4000-8000-000000000002
0b9c2d1e-0000-4000-8000-000000000003 0b9c2d1e-0000-4000-8000-000000000004
0b9c2d1e-0000-4000-8000-000000000005 0b9c2d1e-0000-4000-8000-000000000006"
FAILS=0

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	FAILS=$((FAILS + 1))
}
die() {
	echo "FAIL $*"
	exit 1
}
# q PORT SQL: one statement, unaligned, tuples only, stop on error
q() {
	local port=$1
	shift
	psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$*"
}

stop_all() {
	local n
	if [ -n "${CITUS_CHECK_KEEP:-}" ]; then
		echo "CITUS_CHECK_KEEP: the servers under $BASE are left running"
		return
	fi
	for n in $NODES; do
		if [ -f "$BASE/${n%%:*}/postmaster.pid" ]; then
			as_pg "$PGBIN/pg_ctl" -D "$BASE/${n%%:*}" -m immediate -w stop >/dev/null 2>&1
		fi
	done
}
trap stop_all EXIT

start_node() {
	local name=$1 port=$2 preload=$3
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port is in use (another check still running?)"
	fi
	as_pg "$PGBIN/initdb" -D "$BASE/$name" -U postgres --auth=trust --no-sync \
		-E UTF8 --locale=C.UTF-8 >"$BASE/$name.initdb.log" 2>&1 ||
		die "initdb $name: $(cat "$BASE/$name.initdb.log")"
	cat >>"$BASE/$name/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$BASE'
		shared_preload_libraries = '$preload'
		max_connections = 100
		max_prepared_transactions = 50
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		log_min_messages = warning
		log_line_prefix = '%m [%p] '
	EOF
	as_pg "$PGBIN/pg_ctl" -D "$BASE/$name" -l "$BASE/$name.log" -w -t 60 start >/dev/null ||
		die "start $name: $(tail -20 "$BASE/$name.log")"
}

# ---------------------------------------------------------------- clusters

CITUS_CHECK_KEEP= stop_all
rm -rf "$BASE"
mkdir -p "$BASE/out"
chmod 755 "$BASE"
[ "$(id -u)" -eq 0 ] && chown postgres: "$BASE"
start_node coord $COORD citus,chatpersist
start_node w1 $W1 citus,chatpersist
start_node w2 $W2 citus,chatpersist
start_node plain $PLAIN chatpersist
echo "cluster: coordinator $COORD, workers $W1 $W2, plain $PLAIN ($(q $COORD 'SHOW server_version'))"

# ------------------------------------------------------------------ set-up
# Each step as a user would type it; a failure stops the check.

# The set-up is docs/citus.md's own block (marker "<!-- test/citus/check.sh:
# setup -->"), run as it stands but for the three node addresses, so the doc
# and this check cannot drift.  The block assumes CREATE EXTENSION citus on
# every node (its first line says so); that is done here.
DOC=$HERE/../../docs/citus.md
setup=$(awk -v m="<!-- test/citus/check.sh: setup -->" '
	$0 == m { found = 1; next }
	found && /^```/ { if (inside) exit; inside = 1; next }
	found && inside { print }
	found && !inside && !/^```/ { exit }' "$DOC")
[ -n "$setup" ] || die "no block \"setup\" in $DOC"
# the doc's example addresses -> this cluster's nodes; nothing else changes
setup_local=$(sed -e "s/'10\.0\.0\.1', 5432/'127.0.0.1', $COORD/" \
	-e "s/'10\.0\.0\.2', 5432/'127.0.0.1', $W1/" \
	-e "s/'10\.0\.0\.3', 5432/'127.0.0.1', $W2/" <<<"$setup")
[ "$(grep -c "'127\.0\.0\.1', 556" <<<"$setup_local")" -eq 3 ] && ! grep -q '10\.0\.0\.' <<<"$setup_local" ||
	die "docs/citus.md's setup block: expected one coordinator and two workers at 10.0.0.1-3:5432"
diff <(echo "$setup") <(echo "$setup_local") | grep '^>' | sed 's/^> /     substituted: /'
printf '%s\n' "$setup_local" >"$BASE/out/setup.sql"

for p in $COORD $W1 $W2; do
	q $p "CREATE EXTENSION citus" >/dev/null || die "CREATE EXTENSION citus on $p"
done
psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $COORD -U postgres -d postgres \
	-f "$BASE/out/setup.sql" >"$BASE/out/setup.out" 2>&1 ||
	die "docs/citus.md's setup block failed on the coordinator: $(grep -m3 -i 'error' "$BASE/out/setup.out" | tr '\n' ' ')"
citus_version=$(q $COORD "SELECT citus_version()")
echo "citus: $citus_version"
ok "docs/citus.md's setup block ran on the coordinator ($(grep -c . <<<"$setup_local") lines, $BASE/out/setup.sql)"

# run_command_on_workers reports a worker's failure as a row, not an error
r=$(q $COORD "SELECT string_agg(nodeport || ':' || success || ':' || result, ' ' ORDER BY nodeport)
	FROM run_command_on_workers('SHOW citus.enable_unsafe_triggers')")
[ "$r" = "$W1:true:on $W2:true:on" ] || die "citus.enable_unsafe_triggers on the workers: $r"
q $PLAIN "CREATE EXTENSION chatpersist" >/dev/null || die "CREATE EXTENSION chatpersist on the plain server"
for p in $W1 $W2; do
	v=$(q $p "SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'")
	[ "$v" = 2.0 ] || die "chatpersist not propagated to the worker $p (extversion '$v')"
done
ok "CREATE EXTENSION chatpersist on the coordinator propagated 2.0 to both workers"

# the functions that take p_user_id, as the catalog lists them (not
# migrate_user): the doc's list must distribute every one of them
NFUNCS=$(q $COORD "
SELECT count(*) FROM pg_proc p
WHERE p.pronamespace = 'chatpersist'::regnamespace AND p.proargnames[1] = 'p_user_id'")
r=$(q $COORD "
SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.oid::regprocedure::text)
FROM pg_proc p
WHERE p.pronamespace = 'chatpersist'::regnamespace AND p.proargnames[1] = 'p_user_id'
  AND NOT EXISTS (SELECT FROM pg_dist_object o
                  WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid
                    AND o.distribution_argument_index IS NOT NULL)")
[ -z "$r" ] || die "docs/citus.md's setup leaves functions with p_user_id undistributed: $r"
ok "distributed the 5 tables and the $NFUNCS functions (the doc's lists)"

# ------------------------------------------------------------------ checks

# distribution: five hash tables on user_id, one colocation group; the
# functions colocated with them by their first argument
r=$(q $COORD "
SELECT count(*), count(DISTINCT colocationid), bool_and(partmethod = 'h'),
       bool_and(column_to_column_name(logicalrelid, partkey) = 'user_id')
FROM pg_dist_partition WHERE logicalrelid::text LIKE 'chatpersist.%'")
[ "$r" = "5|1|t|t" ] && ok "tables: 5 hash-distributed by user_id, 1 colocation group" ||
	fail "tables: pg_dist_partition says $r, want 5|1|t|t"
r=$(q $COORD "
SELECT count(*), bool_and(distribution_argument_index = 0),
       bool_and(colocationid = (SELECT colocationid FROM pg_dist_partition
                                WHERE logicalrelid = 'chatpersist.conversations'::regclass))
FROM pg_dist_object WHERE classid = 'pg_proc'::regclass AND distribution_argument_index IS NOT NULL")
[ "$r" = "$NFUNCS|t|t" ] && ok "functions: $NFUNCS distributed by p_user_id, colocated" ||
	fail "functions: pg_dist_object says $r, want $NFUNCS|t|t"

# placement: the users' shards on both workers
ulist=$(echo $USERS | sed "s/\([^ ]*\)/'\1'/g; s/ /,/g")
placement=$(q $COORD "
SELECT u, n.nodeport
FROM unnest(ARRAY[$ulist]::uuid[]) u
JOIN pg_dist_placement pl ON pl.shardid = get_shard_id_for_distribution_column('chatpersist.conversations', u)
JOIN pg_dist_node n ON n.groupid = pl.groupid
ORDER BY u")
echo "$placement" | sed 's/^/     /'
nports=$(echo "$placement" | cut -d'|' -f2 | sort -u | tr '\n' ' ')
[ "$nports" = "$W1 $W2 " ] && ok "the users' shards are on both workers ($nports)" ||
	fail "the users' shards are on the nodes '$nports', want both workers $W1 $W2"
U_W1=$(echo "$placement" | grep "|$W1\$" | head -1 | cut -d'|' -f1)
U_W2=$(echo "$placement" | grep "|$W2\$" | head -1 | cut -d'|' -f1)

# delegation: each distributed function, called alone, is pushed down
# (a user of its own, on a worker like every user: the coordinator has no shards)
u=0b9c2d1e-0000-4000-8000-0000000000ff
for call in \
	"SELECT * FROM chatpersist.save_conversation('$u', 'probe', 'Probe', '[{\"id\":\"p1\"}]')" \
	"SELECT * FROM chatpersist.append_messages('$u', 'probe', '[{\"id\":\"p2\"}]')" \
	"SELECT * FROM chatpersist.load_conversation('$u', 'probe')" \
	"SELECT * FROM chatpersist.load_conversations('$u')" \
	"SELECT * FROM chatpersist.changes_since('$u', 0)" \
	"SELECT * FROM chatpersist.conversation_history('$u', 'probe')" \
	"SELECT * FROM chatpersist.messages_since('$u', 'probe', 1)" \
	"SELECT * FROM chatpersist.restore_version('$u', 'probe', 1)" \
	"SELECT chatpersist.import_app_state('$u', '[{\"id\":\"probe2\",\"messages\":[]}]')" \
	"SELECT * FROM chatpersist.delete_conversation('$u', 'probe')"; do
	fn=$(echo "$call" | sed 's/.*chatpersist\.\([a-z_]*\)(.*/\1/')
	log=$(psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $COORD -U postgres -d postgres \
		-c "SET client_min_messages = debug1" -c "$call" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "call failed: $fn: $(echo "$log" | grep -v '^DEBUG' | head -3 | tr '\n' ' ')"
	elif echo "$log" | grep -q "pushing down the function call"; then
		ok "pushed down: $fn"
	else
		fail "not pushed down: $fn: $(echo "$log" | grep -v '^DEBUG:  *$' | head -3 | tr '\n' ' ')"
	fi
done
# the call sequence, per user, on Citus and on the plain server: equal output
for port in $COORD $PLAIN; do
	: >"$BASE/out/calls.$port.out"
	: >"$BASE/out/calls.$port.err"
	for u in $USERS; do
		echo "### user $u" >>"$BASE/out/calls.$port.out"
		psql -X -At -h 127.0.0.1 -p $port -U postgres -d postgres -v u="$u" \
			-f "$HERE/calls.sql" >>"$BASE/out/calls.$port.out" 2>>"$BASE/out/calls.$port.err"
	done
done
lines=$(wc -l <"$BASE/out/calls.$PLAIN.out")
if diff -u "$BASE/out/calls.$PLAIN.out" "$BASE/out/calls.$COORD.out" >"$BASE/out/calls.diff"; then
	ok "call sequence: Citus output equals plain PostgreSQL's ($lines lines, $(echo $USERS | wc -w) users)"
else
	fail "call sequence: Citus differs from plain PostgreSQL ($BASE/out/calls.diff):"
	head -60 "$BASE/out/calls.diff" | sed 's/^/     /'
fi
# errors: only the expected ones (the same SQLSTATEs are in the outputs),
# with the same messages once Citus's remote-command context is removed
sed -e 's/^psql:[^:]*:[0-9]*: //' "$BASE/out/calls.$PLAIN.err" >"$BASE/out/err.plain"
sed -e 's/^psql:[^:]*:[0-9]*: //' "$BASE/out/calls.$COORD.err" >"$BASE/out/err.citus"
if diff -u "$BASE/out/err.plain" "$BASE/out/err.citus" >"$BASE/out/err.diff"; then
	ok "errors: Citus's equal plain PostgreSQL's ($(wc -l <"$BASE/out/err.plain") lines)"
else
	fail "errors: Citus's differ from plain PostgreSQL's ($BASE/out/err.diff):"
	head -30 "$BASE/out/err.diff" | sed 's/^/     /'
fi
# and they are the expected ones
n_expected=$(grep -c '^sqlstate [0-9A-Z]\{5\}$' "$BASE/out/calls.$COORD.out")
n_40001=$(grep -c '^sqlstate 40001$' "$BASE/out/calls.$COORD.out")
n_errors=$(grep -c 'ERROR' "$BASE/out/calls.$COORD.err")
n_users=$(echo $USERS | wc -w)
# (two per user: the stale UPDATE of the head, the stale delete_conversation)
if [ "$n_40001" -eq $((2 * n_users)) ] && [ "$n_errors" -eq "$n_expected" ] && ! grep -q '^sqlstate 00000$' "$BASE/out/calls.$COORD.out"; then
	ok "40001 on the stale hand-written UPDATE (guard trigger) and the stale delete for each of $n_users users; $n_errors errors, all expected"
else
	fail "errors: $n_40001 x 40001 (want $((2 * n_users))), $n_errors errors for $n_expected expected failures"
fi
# checksums recomputed from the arrays equal the stored ones
n_ok=$(grep -c '|checksum ok$' "$BASE/out/calls.$COORD.out")
n_bad=$(grep -c 'checksum BAD' "$BASE/out/calls.$COORD.out")
if [ "$n_bad" -ne 0 ]; then
	fail "checksums: $n_bad loaded conversations on Citus whose messages do not hash to their checksum"
elif [ "$n_ok" -lt $((n_users * 8)) ]; then
	# calls.sql loads and recomputes 8 conversations' checksums per user
	fail "checksums: only $n_ok recomputed checksums on Citus, want $((n_users * 8))"
else
	ok "checksums: $n_ok loaded conversations on Citus hash to their stored checksum"
fi

# the rows are in the workers' shards, on both workers, for every table
for t in conversations messages history history_messages version_floors; do
	r=$(q $COORD "
	SELECT string_agg(DISTINCT n.nodeport::text, ' ' ORDER BY n.nodeport::text), sum(s.result::bigint)
	FROM run_command_on_shards('chatpersist.$t', 'SELECT count(*) FROM %s') s
	JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
	WHERE s.result::bigint > 0")
	total=$(q $COORD "SELECT count(*) FROM chatpersist.$t")
	[ "$r" = "$W1 $W2|$total" ] && ok "chatpersist.$t: $total rows, in shards on both workers" ||
		fail "chatpersist.$t: shards say '$r' (nodes|rows), the table $total rows"
done

# eight concurrent stale saves of one conversation, per worker, and the same
# on the plain server: every message survives, versions strictly increase
race() {
	local port=$1 u=$2 tag=$3 i
	q $port "SELECT status, version FROM chatpersist.save_conversation('$u', 'race', 'Race',
	         '[{\"id\":\"r0\",\"content\":\"start\"}]')" >/dev/null || return 1
	for i in 1 2 3 4 5 6 7 8; do
		q $port "SELECT status, version FROM chatpersist.save_conversation('$u', 'race', 'Race',
		         '[{\"id\":\"r0\",\"content\":\"start\"},{\"id\":\"d$i\",\"content\":\"device $i\"}]',
		         p_expected_version := 1)" >"$BASE/out/race.$tag.$i" 2>&1 &
	done
	wait
	cat "$BASE/out/race.$tag".[1-8] >"$BASE/out/race.$tag"
}
for pair in "$COORD:$U_W1:citus1" "$COORD:$U_W2:citus2" "$PLAIN:$U_W1:plain"; do
	IFS=: read -r port u tag <<<"$pair"
	race "$port" "$u" "$tag" || {
		fail "race $tag: first save failed"
		continue
	}
	versions=$(cut -d'|' -f2 "$BASE/out/race.$tag" | sort -n | tr '\n' ' ')
	statuses=$(cut -d'|' -f1 "$BASE/out/race.$tag" | sort | uniq -c | awk '{print $2"x"$1}' | tr '\n' ' ')
	# (the call in a subquery: Citus 13.2.2 pushes down a call in FROM with a
	# scalar subquery in the select list as "SELECT (SubPlan 1) ...", a syntax error)
	final=$(q $port "SELECT version, message_count,
	                        (SELECT string_agg(e ->> 'id', ',' ORDER BY e ->> 'id')
	                         FROM jsonb_array_elements(messages) e),
	                        chatpersist.checksum(messages) = checksum
	                 FROM (SELECT * FROM chatpersist.load_conversation('$u', 'race') OFFSET 0) c")
	hist=$(q $port "SELECT string_agg(version::text, ' ' ORDER BY version) FROM chatpersist.conversation_history('$u', 'race')")
	echo "$tag: statuses $statuses; versions $versions; final $final; history $hist" >>"$BASE/out/race.summary"
	if [ "$versions" = "2 3 4 5 6 7 8 9 " ] && [ "$final" = "9|9|d1,d2,d3,d4,d5,d6,d7,d8,r0|t" ] &&
		[ "$hist" = "1 2 3 4 5 6 7 8" ] && [ "$statuses" = "mergedx7 updatedx1 " ]; then
		ok "8 concurrent stale saves ($tag): $statuses; versions $versions; all 9 messages kept, checksum ok"
	else
		fail "8 concurrent stale saves ($tag): statuses $statuses; versions $versions; final $final; history $hist; see $BASE/out/race.$tag"
	fi
done

# A write that is not pushed down: Citus runs the function on the
# coordinator and routes its statements to the worker, where the guard
# triggers fire in another backend and never see the function's note.
# chatpersist notices the untaken note and refuses with 55000, and the
# distributed transaction leaves nothing behind (docs/citus.md, "Writes
# must be pushed down").
u=0b9c2d1e-0000-4000-8000-0000000000ee
r=$(psql -X -At -h 127.0.0.1 -p $COORD -U postgres -v VERBOSITY=verbose -c "BEGIN" -c "SELECT s.status
	FROM chatpersist.save_conversation('$u', 'nd', 'ND', '[{\"id\":\"x1\"},{\"id\":\"x2\"}]') s" -c "COMMIT" 2>&1)
h=$(q $COORD "SELECT count(*) FROM chatpersist.conversations WHERE user_id = '$u'")
m=$(q $COORD "SELECT count(*) FROM chatpersist.messages WHERE user_id = '$u'")
if grep -q "ERROR:  55000: chatpersist: the guard trigger of chatpersist.conversations did not run in this session" <<<"$r" &&
	[ "$h" = 0 ] && [ "$m" = 0 ]; then
	ok "a first save in a transaction block (not pushed down) is refused with 55000; nothing stored"
else
	fail "a first save in a transaction block: $(head -3 <<<"$r" | tr '\n' ' '); heads $h, message rows $m"
fi
q $COORD "SELECT status FROM chatpersist.save_conversation('$u', 'nd', 'ND', '[{\"id\":\"x1\"}]')" >/dev/null
r=$(psql -X -At -h 127.0.0.1 -p $COORD -U postgres -v VERBOSITY=verbose -c "BEGIN" -c "SELECT s.status
	FROM chatpersist.append_messages('$u', 'nd', '[{\"id\":\"x2\"}]') s" -c "COMMIT" 2>&1)
h=$(q $COORD "SELECT version || ' ' || message_count || ' ' || (checksum = chatpersist.checksum('[{\"id\":\"x1\"}]'))
	FROM chatpersist.conversations WHERE user_id = '$u' AND id = 'nd'")
if grep -q "ERROR:  55000:" <<<"$r" && [ "$h" = "1 1 true" ]; then
	ok "an append in a transaction block is refused with 55000; the conversation is as it was (v1, 1 message)"
else
	fail "an append in a transaction block: $(head -3 <<<"$r" | tr '\n' ' '); the head: $h"
fi
# force_delegation pushes calls down inside transaction blocks, but Citus
# then refuses the INSERT ... SELECT that archives replaced message copies
q $COORD "SELECT create_distributed_function('chatpersist.append_messages(uuid,text,jsonb,bigint)',
	distribution_arg_name := 'p_user_id', colocate_with := 'chatpersist.conversations',
	force_delegation := true)" >/dev/null
q $COORD "SELECT status FROM chatpersist.append_messages('$u', 'fd', '[{\"id\":\"y1\",\"content\":\"a\"}]')" >/dev/null 2>&1
r=$(q $COORD "SELECT status FROM chatpersist.append_messages('$u', 'fd', '[{\"id\":\"y1\",\"content\":\"b\"}]')" 2>&1 | head -1)
echo "note with force_delegation, an append that replaces a message: $r"
# migrate_user is not distributed (two users): it always runs on the
# coordinator, so it is refused the same way and moves nothing
g=0b9c2d1e-0000-4000-8000-0000000000c1
q $COORD "SELECT status FROM chatpersist.save_conversation('$g', 'guest', 'G', '[{\"id\":\"g1\"}]')" >/dev/null
r=$(psql -X -At -h 127.0.0.1 -p $COORD -U postgres -v VERBOSITY=verbose -c "SELECT chatpersist.migrate_user('$g', '$U_W1')" 2>&1)
h=$(q $COORD "SELECT count(*) FROM chatpersist.conversations WHERE user_id = '$U_W1' AND id = 'guest'")
gh=$(q $COORD "SELECT count(*) FROM chatpersist.conversations WHERE user_id = '$g'")
echo "migrate_user on Citus: $(head -1 <<<"$r")" >>"$BASE/out/not_pushed_down.txt"
if grep -q "ERROR:  55000:" <<<"$r" && [ "$h" = 0 ] && [ "$gh" = 1 ]; then
	ok "migrate_user (always on the coordinator) is refused with 55000; the guest's conversation stays"
else
	fail "migrate_user: $(head -3 <<<"$r" | tr '\n' ' '); moved heads $h, guest heads $gh"
fi
echo
if [ "$FAILS" -eq 0 ]; then
	echo "all checks passed (outputs in $BASE/out)"
	exit 0
fi
echo "$FAILS check(s) FAILED (outputs in $BASE/out)"
exit 1
