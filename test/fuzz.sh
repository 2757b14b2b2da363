#!/usr/bin/env bash
#
# fuzz.sh
#	  Run the chatpersist fuzzer (test/fuzz/fuzz.py with its in-server
#	  driver test/fuzz/driver.sql): random and malformed inputs to every SQL
#	  entry point, each checked against the contract's outcome and
#	  invariants.  See docs/reliability.md, section "Fuzzing".
#
# Usage:
#	bash test/fuzz.sh [--count N] [--seed S] [--batch B] [fuzz.py options]
#		Standalone: builds the extension, installs it into a private copy of
#		the server (test/lib.sh), starts a throwaway cluster, fuzzes a
#		fresh database, and stops and removes the cluster, also on failure.
#		The long run:  bash test/fuzz.sh --count 1000000 --progress 25
#	PGHOST=... PGPORT=... PGUSER=<superuser> FUZZ_SERVER_LOG=... bash test/fuzz.sh --here [...]
#		Against a running server that has chatpersist installed (test/run.sh
#		does this): creates and drops the database chatpersist_fuzz.
#
# The seed is random unless given, and printed first; --seed S --count N
# repeats a run exactly (--dump DIR also writes each failing input as a
# psql script).  After the run, the oracle's self-test runs 400 inputs for
# each fuzz.py --break mode, each of which must be reported (--break crash:
# the bisection must name the input that ended its backend); skip it with
# FUZZ_SELF_TEST=0.  Ends with the line
#	fuzz: N passed, M failed
# (the inputs, plus one per self-test) and exits non-zero if M > 0.  Needs
# Debian's python3-psycopg2 and libxxhash0 (test/setup.sh installs them).
#
# Copyright (c) 2026, chatpersist developers
#
# test/fuzz.sh
#

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-/usr/bin/python3}
here=
if [ "${1:-}" = "--here" ]; then
	here=1
	shift
fi

if [ -z "$here" ]; then
	# the steps of test/lib.sh's cp_own_cluster, each with its own message
	. test/lib.sh
	cp_setup || exit 1
	cp_pg_env
	cp_build PG_CFLAGS="-DUSE_ASSERT_CHECKING" || {
		echo "fuzz: build failed"
		echo "fuzz: 0 passed, 1 failed"
		exit 1
	}
	trap cp_cleanup EXIT
	cp_install chatpersist-fuzz-install || { echo "fuzz: install failed"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
	cp_cluster_start "shared_preload_libraries = 'chatpersist'" >/dev/null ||
		{ echo "fuzz: could not start a cluster"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
	FUZZ_SERVER_LOG=$CP_CLUSTER_DIR/server.log
fi

# fuzz [fuzz.py arguments]: run fuzz.py on a fresh database chatpersist_fuzz
fuzz()
{
	dropdb --if-exists chatpersist_fuzz >/dev/null 2>&1
	createdb chatpersist_fuzz || return 2
	psql -X -q -d chatpersist_fuzz -c "CREATE EXTENSION chatpersist" || return 2
	PGDATABASE=chatpersist_fuzz "$PYTHON" test/fuzz/fuzz.py "$@"
}

log=$(mktemp /tmp/chatpersist-fuzz.XXXXXX) || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
fuzz ${FUZZ_SERVER_LOG:+--server-log "$FUZZ_SERVER_LOG"} "$@" 2>&1 | tee "$log"
line=$(grep -E "^fuzz: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
passed=$(echo "$line" | sed -nE 's/^fuzz: ([0-9]+) passed.*/\1/p')
failed=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed$/\1/p')
if [ -z "$line" ]; then
	passed=0
	failed=1 # fuzz.py died before its summary
fi

# The oracle's self-test: with each deliberately wrong expectation (and each
# planted defect) a short run must report failures, else a check is dead.
if [ "${FUZZ_SELF_TEST:-1}" = 1 ]; then
	for b in checksum sqlstate merge unchanged row crash; do
		# --break crash: input 123 ends its own backend; the bisection must name it
		want="^FAIL"
		[ "$b" = crash ] && want="^FAIL input 0:123 .*"
		if fuzz --count 400 --seed 1 --break "$b" --max-reports 1 >"$log" 2>&1; then
			echo "fuzz: self-test: --break $b was not reported: a check of the oracle cannot fail"
			failed=$((failed + 1))
		elif grep -q "$want" "$log" && grep -qE "^fuzz: [0-9]+ passed, [1-9][0-9]* failed$" "$log"; then
			echo "fuzz: self-test: --break $b reported: $(grep -A1 '^FAIL' "$log" | sed -n 2p | sed 's/^ *//' | cut -c1-100)"
			passed=$((passed + 1))
		else
			echo "fuzz: self-test: --break $b did not run"
			tail -5 "$log"
			failed=$((failed + 1))
		fi
	done
fi
rm -f "$log"
dropdb --if-exists chatpersist_fuzz >/dev/null 2>&1
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
