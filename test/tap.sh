#!/usr/bin/env bash
#
# tap.sh
#	  Run the Perl TAP tests (test/t/*.pl, PostgreSQL's own test modules)
#	  against a private install of this tree, as the postgres user.
#
# Usage, as root on Debian 12:
#	bash test/tap.sh								# every test/t/*.pl
#	CP_CRASH_CYCLES=20 bash test/tap.sh test/t/010_crash_recovery.pl
#
# Without CP_INSTALL_DIR it installs what is missing (test/setup.sh),
# builds, and installs the build into a private copy of the server under
# /tmp (test/lib.sh's cp_install; the system's installation is
# not touched).  test/run.sh passes its own private install in
# CP_INSTALL_DIR.  The tests' nodes use that copy's binaries (prove gets
# CP_INSTALL_PATH and PATH).  Environment for the crash test:
# CP_CRASH_CYCLES, CP_CRASH_CLIENTS, CP_CRASH_SEED, CP_CRASH_CONF (see the
# test's banner).
#
# The tests' clusters, logs and the private install live in temporary
# directories that are removed at the end, also on failure (the server
# log's tail is printed first; CP_TAP_LOGS=DIR keeps a copy of the logs).  Ends with the line
#	tap: N passed, M failed
# counting the ok / not ok lines, and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/tap.sh
#

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
. test/lib.sh

testdir=""

# The processes of this run: prove, the tests and their clients carry
# TESTDIR=$testdir in their environment; servers work in a directory under
# it (their environment is overwritten by their process titles)
# shellcheck disable=SC2317  # invoked by the EXIT trap
our_pids()
{
	local p cwd
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		case "$cwd" in
			"$testdir"/*) echo "${p#/proc/}" ;;
			*) { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "TESTDIR=$testdir" && echo "${p#/proc/}" ;;
		esac
	done
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	local pids i
	if [ -n "$testdir" ]; then
		# interrupted: let the tests run their END blocks, then make sure
		pids=$(our_pids)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -TERM $pids 2>/dev/null
			for i in $(seq 50); do
				pids=$(our_pids)
				[ -n "$pids" ] || break
				sleep 0.2
			done
			# shellcheck disable=SC2086
			[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		fi
		if [ -n "${CP_TAP_LOGS:-}" ]; then
			mkdir -p "$CP_TAP_LOGS" && cp -r "$testdir"/tmp_check/log/. "$CP_TAP_LOGS"/ 2>/dev/null
		fi
		rm -rf "$testdir"
	fi
	cp_cleanup	# the private install, if this script made one
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$CP_INSTALL_DIR" ]; then
	cp_setup || exit 1
	cp_build || { echo "build failed"; echo "tap: 0 passed, 1 failed"; exit 1; }
	cp_install || { echo "install failed"; echo "tap: 0 passed, 1 failed"; exit 1; }	# sets CP_INSTALL_DIR
fi

# The private copy keeps the system's layout under CP_INSTALL_DIR
pgroot=$CP_INSTALL_DIR$(dirname "$("$PG_CONFIG" --bindir)")	# .../usr/lib/postgresql/15
pgxs=$pgroot/lib/pgxs

testdir=$(mktemp -d /tmp/chatpersist-tap.XXXXXX) || { echo "tap: 0 passed, 1 failed"; exit 1; }
chmod 755 "$testdir"
chown postgres: "$testdir"

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/t/*.pl)

# In the background, so that a signal interrupts the wait and the traps
# clean up at once
log=$testdir/prove.log
: >"$log"
runuser -u postgres -- env \
	PATH="$pgroot/bin:$PATH" \
	TESTDIR="$testdir" \
	PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
	CP_INSTALL_PATH="$pgroot" \
	${CP_CRASH_CYCLES:+CP_CRASH_CYCLES="$CP_CRASH_CYCLES"} \
	${CP_CRASH_CLIENTS:+CP_CRASH_CLIENTS="$CP_CRASH_CLIENTS"} \
	${CP_CRASH_SEED:+CP_CRASH_SEED="$CP_CRASH_SEED"} \
	${CP_CRASH_CONF:+CP_CRASH_CONF="$CP_CRASH_CONF"} \
	prove -v -I "$pgxs/src/test/perl" -I "$top/test/perl" "${tests[@]}" >"$log" 2>&1 &
prove_pid=$!
tail -n +1 -f --pid="$prove_pid" "$log" &
wait "$prove_pid"
wait

passed=$(grep -cE '^ *ok [0-9]+' "$log")
failed=$(grep -cE '^ *not ok [0-9]+' "$log")
if ! grep -q '^Result: PASS' "$log" && [ "$failed" -eq 0 ]; then
	failed=1 # a test died, or bailed out
fi
if [ "$failed" -gt 0 ]; then
	for f in "$testdir"/tmp_check/log/*.log; do
		[ -f "$f" ] || continue
		echo "---- last lines of $(basename "$f") ----"
		tail -n 40 "$f"
	done
fi
echo "tap: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
