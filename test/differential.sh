#!/usr/bin/env bash
#
# differential.sh
#	  The build under test against the oracle: the last 1.x release,
#	  rebuilt from git history (test/oracle.sh, test/oracle.commit).  Starts
#	  one throwaway cluster for each build, replays one random sequence of
#	  calls on both (test/differential.py) and compares every result,
#	  every conversation and its history after every write.
#
# Usage: CP_PGBIN=<bin of the private install of this build> test/differential.sh
#	Without CP_PGBIN (test/run.sh passes its private install) it builds
#	this tree and installs it into a private copy of the server
#	(test/lib.sh's cp_this_build), removed on exit.
#	DIFF_COUNT (default 3000) calls; DIFF_SEED to repeat a run (its seed is
#	printed first).  The long variant: DIFF_COUNT=100000.
#
# Builds the oracle into a temporary directory (about 5 s) and stops both
# clusters and removes everything on exit, also on failure.  Ends with
#	differential: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/differential.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

. test/lib.sh
. test/oracle.sh

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/differential.XXXXXX") || { echo "differential: 0 passed, 1 failed"; exit 1; }
chmod 755 "$tmpdir"
subject_bin=""
oracle_dir="" subject_dir="" oracle_port="" subject_port=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	CP_CLUSTER_DIR=$oracle_dir CP_PGBIN=$tmpdir/oracle-bin cp_cluster_stop
	CP_CLUSTER_DIR=$subject_dir CP_PGBIN=$subject_bin cp_cluster_stop
	cp_cleanup	# the private install of this build, if this script made one
	rm -rf "$tmpdir"
}
trap finish EXIT

bail()
{
	echo "differential: $1"
	echo "differential: 0 passed, 1 failed"
	exit 1
}

# start a cluster of the binaries in CP_PGBIN; prints "DIR PORT"
start_cluster()
{
	CP_CLUSTER_DIR=""
	cp_cluster_start >/dev/null || return 1
	"$CP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
		-c "CREATE EXTENSION chatpersist" >/dev/null || return 1
	echo "$CP_CLUSTER_DIR $PGPORT"
}

cp_this_build || bail "could not build and install this tree"
subject_bin=$CP_PGBIN
cp_oracle_build "$tmpdir/oracle" || bail "could not build the oracle"
ln -s "$CP_PGBIN" "$tmpdir/oracle-bin"	# cp_oracle_build pointed CP_PGBIN at it
read -r oracle_dir oracle_port < <(start_cluster) || true
[ -n "$oracle_port" ] || bail "could not start the oracle's cluster"

CP_PGBIN=$subject_bin
read -r subject_dir subject_port < <(start_cluster) || true
[ -n "$subject_port" ] || bail "could not start the cluster of the build under test"

echo "differential: oracle $(cp_oracle_commit) on port $oracle_port, this build on port $subject_port"
oracle_dsn="host=127.0.0.1 port=$oracle_port user=postgres dbname=postgres"
subject_dsn="host=127.0.0.1 port=$subject_port user=postgres dbname=postgres"
/usr/bin/python3 test/differential.py --oracle "$oracle_dsn" --subject "$subject_dsn" \
	--count "${DIFF_COUNT:-3000}" ${DIFF_SEED:+--seed "$DIFF_SEED"} | tee "$tmpdir/run.log"
line=$(grep -E '^differential: [0-9]+ passed, [0-9]+ failed$' "$tmpdir/run.log" | tail -n 1)
[ -n "$line" ] || bail "the comparison stopped before its summary"
passed=$(echo "$line" | sed -E 's/^differential: ([0-9]+) passed.*/\1/')
failed=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')

# The self-test: a subject that keeps less history than the oracle must be
# reported (on fresh databases, so the first run's rows do not count)
for port in "$oracle_port" "$subject_port"; do
	"$subject_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "TRUNCATE chatpersist.conversations, chatpersist.history" >/dev/null 2>&1 ||
		bail "could not empty the tables for the self-test"
done
for port in "$oracle_port" "$subject_port"; do	# (1.1 and later have floors)
	"$subject_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "TRUNCATE chatpersist.version_floors" >/dev/null 2>&1
done
for port in "$oracle_port" "$subject_port"; do	# (2.0 and later: one row per message)
	if [ "$("$subject_bin/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "SELECT to_regclass('chatpersist.messages') IS NOT NULL")" = t ]; then
		"$subject_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
			-c "TRUNCATE chatpersist.messages, chatpersist.history_messages" >/dev/null 2>&1 ||
			bail "could not empty the message rows for the self-test"
	fi
done
if /usr/bin/python3 test/differential.py --oracle "$oracle_dsn" --subject "$subject_dsn" \
	--count 300 --seed 1 --break-subject >"$tmpdir/self.log" 2>&1; then
	echo "FAIL  self-test: a subject that keeps 2 versions of history was not reported"
	failed=$((failed + 1))
else
	echo "ok    self-test: $(grep -E '^differential: [0-9]+ passed' "$tmpdir/self.log" | tail -n 1 | sed 's/^differential: //') with a subject that keeps 2 versions of history"
	passed=$((passed + 1))
fi
echo "differential: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
