#!/usr/bin/env bash
# run.sh: the whole chatpersist test suite, from a fresh machine.
#
#   bash test/run.sh
#
# Installs what is missing (test/setup.sh), builds with warnings as errors,
# installs the extension into a private copy of the server (the system's
# installation is not touched), starts a throwaway cluster (test/cluster.sh) and
# runs every suite against it: pg_regress (sql/), isolation (test/specs/),
# pgTAP (test/pgtap/), the property scripts (test/*_props.sh), the
# dump and restore round trip (test/dump_restore.sh), moving an existing
# Supabase app and restores on Supabase (test/supabase_move.sh), the change cursor
# across restores and replication (test/cursor_moves.sh), what Supabase
# Realtime's Postgres Changes would deliver from the message rows and to
# whom (test/realtime.sh, a cluster of its own), the fuzzer
# (test/fuzz.sh), the node-postgres client example's tests
# (examples/node), the differential test against the last 1.x build
# rebuilt from git history (test/differential.sh) and the upgrade from
# it (test/upgrade.sh, from 1.1 and from 1.0), the lost-update soak (test/soak/soak.pl,
# CP_SOAK_SECONDS, default 40), the Perl TAP tests (test/tap.sh: the crash
# recovery test with CP_CRASH_CYCLES, default 8, on clusters of their
# own), a short libFuzzer run of src/canon.h (test/fuzz/run_canon_fuzz.sh),
# the memory-error checks (test/sanitize.sh: ASan and UBSan, then
# valgrind, about 5 minutes on 2 cores, on clusters of their own) and
# cppcheck. Every
# suite runs even when an earlier one fails; the cluster is stopped at the
# end, also on failure. The last line is "N passed, M failed".
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
# the setup steps every test script shares (cp_setup, cp_build, ...)
. test/lib.sh

cp_setup -v || exit 1
cp_pg_env

echo "== build (warnings are errors)"
if ! cp_build --clean PG_CFLAGS="-Werror -DUSE_ASSERT_CHECKING"; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

# Install into a private copy of the server, not the system's (see
# cp_private_install): the tests never replace an installed chatpersist,
# and two checkouts can run them side by side.  The scripts below get it
# in CP_PGBIN (and test/tap.sh in CP_INSTALL_DIR)
cp_own_cluster "shared_preload_libraries = 'chatpersist'" || { echo "0 passed, 1 failed"; exit 1; }

total_pass=0
total_fail=0
summary=()

# Record a suite's counts: name passed failed
record() {
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary+=("$(printf '%-12s %4d passed, %d failed' "$1" "$2" "$3")")
}

# count_regress LOG NAME (test/counts.sh) reports to record
. test/counts.sh

# record_from_log NAME LOG [SCRIPT]: record a suite from the last
# "SCRIPT: N passed, M failed" line of its log (SCRIPT defaults to NAME);
# no such line (the suite died first) counts as one failure
record_from_log() {
	local name=$1 log=$2 script=${3:-$1} line
	line=$(grep -E "^$script: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
	if [ -n "$line" ]; then
		record "$name" "$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')" \
			"$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')"
	else
		echo "$name: no \"$script: N passed, M failed\" line in its log (the suite is missing or died)"
		record "$name" 0 1
	fi
}

echo "== pg_regress"
rm -rf results regression.diffs regression.out
make -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION= 2>&1 | tee .regress.log
count_regress .regress.log regress
[ -f regression.diffs ] && { echo "---- regression.diffs ----"; cat regression.diffs; }

echo "== isolation"
rm -rf output_iso
make -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS= 2>&1 | tee .isolation.log
count_regress .isolation.log isolation
[ -f output_iso/regression.diffs ] && { echo "---- output_iso/regression.diffs ----"; cat output_iso/regression.diffs; }

echo "== stats without shared_preload_libraries (per-session counters)"
rm -rf results regression.diffs regression.out
(
	# a second cluster of its own, in a subshell so the main one is untouched
	# shellcheck disable=SC2030  # on purpose: the subshell's own cluster
	CP_CLUSTER_DIR=""
	trap cp_cluster_stop EXIT
	cp_cluster_start >/dev/null || exit 1
	make -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS=stats ISOLATION= 2>&1
) | tee .regress_local.log
count_regress .regress_local.log stats-local
[ -f regression.diffs ] && { echo "---- regression.diffs ----"; cat regression.diffs; }

echo "== pgTAP"
createdb chatpersist_pgtap
psql -X -q -d chatpersist_pgtap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION chatpersist"
pg_prove -d chatpersist_pgtap test/pgtap/*.sql 2>&1 | tee .pgtap.log
tests=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' .pgtap.log)
failed=$(sed -nE 's/.*Failed ([0-9]+)\/[0-9]+ subtests.*/\1/p' .pgtap.log | awk '{s += $1} END {print s + 0}')
tests=${tests:-0}
if ! grep -q '^Result: PASS' .pgtap.log && [ "$failed" -eq 0 ]; then
	failed=1 # a file died, or planned a different number of tests
fi
record pgtap $((tests - failed > 0 ? tests - failed : 0)) "$failed"

echo "== property scripts"
createdb chatpersist_props
psql -X -q -d chatpersist_props -c "CREATE EXTENSION chatpersist"
# The scripts run.sh expects: a missing one is a failure, not a suite
# skipped, and so is a test/*_props.sh not listed here (add it), or one
# whose exit status is a failure its summary line does not count
props_scripts="checksum_props version_props migration_memory_props delta_props"
for script in test/*_props.sh; do
	[ -e "$script" ] || continue # no file matched
	case " $props_scripts " in
		*" $(basename "$script" .sh) "*) ;;
		*) echo "$script is not in run.sh's list of property scripts"; record "$(basename "$script" .sh)" 0 1 ;;
	esac
done
for name in $props_scripts; do
	if [ ! -f "test/$name.sh" ]; then
		echo "test/$name.sh is missing"
		record "$name" 0 1
		continue
	fi
	PGDATABASE=chatpersist_props bash "test/$name.sh" 2>&1 | tee ".$name.log"
	rc=${PIPESTATUS[0]}
	record_from_log "$name" ".$name.log"
	if [ "$rc" -ne 0 ] && grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" ".$name.log" | tail -n 1 | grep -q ' 0 failed$'; then
		echo "test/$name.sh exited with status $rc after reporting no failure"
		record "$name-exit" 0 1
	fi
done

echo "== fuzzer (test/fuzz.sh: 10000 random and malformed inputs, then the oracle's self-test)"
# FUZZ_COUNT and FUZZ_SEED change the run; the seed it used is printed first
FUZZ_SERVER_LOG=$CP_CLUSTER_DIR/server.log bash test/fuzz.sh --here --count "${FUZZ_COUNT:-10000}" \
	${FUZZ_SEED:+--seed "$FUZZ_SEED"} 2>&1 | tee .fuzz.log
record_from_log fuzz .fuzz.log

echo "== node client example (examples/node)"
createdb chatpersist_node
(
	cd examples/node &&
		npm ci --no-audit --no-fund --loglevel=error &&
		PGDATABASE=chatpersist_node node --test --test-reporter=tap
) 2>&1 | tee .node.log
node_pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' .node.log | tail -n 1)
node_fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' .node.log | tail -n 1)
if [ -n "$node_pass" ] && [ -n "$node_fail" ] && [ "$node_pass" -gt 0 ]; then
	record node "$node_pass" "$node_fail"
else
	record node 0 1 # npm or node failed before running the tests
fi

echo "== docs examples (every sql block of README.md and docs/)"
python3 test/docs_examples.py 2>&1 | tee .docs_examples.log
record_from_log docs_examples .docs_examples.log

echo "== dump and restore"
bash test/dump_restore.sh 2>&1 | tee .dump_restore.log
record_from_log dump_restore .dump_restore.log

echo "== Supabase: moving an existing app, restores (test/supabase_move.sh, a cluster of its own)"
bash test/supabase_move.sh 2>&1 | tee .supabase_move.log
record_from_log supabase_move .supabase_move.log

echo "== change cursors across moves of the data (test/cursor_moves.sh, clusters of its own)"
bash test/cursor_moves.sh 2>&1 | tee .cursor_moves.log
record_from_log cursor_moves .cursor_moves.log

echo "== Realtime Postgres Changes on the message rows (test/realtime.sh, a cluster of its own)"
bash test/realtime.sh 2>&1 | tee .realtime.log
record_from_log realtime .realtime.log

echo "== the 1.x oracle against this build (test/differential.sh, ${DIFF_COUNT:-3000} calls, clusters of its own)"
bash test/differential.sh 2>&1 | tee .differential.log
record_from_log differential .differential.log

echo "== upgrade from the last 1.x release (test/upgrade.sh, a cluster of its own)"
bash test/upgrade.sh 2>&1 | tee .upgrade.log
record_from_log upgrade .upgrade.log

echo "== upgrade from 1.0 (test/upgrade.sh with UPGRADE_FROM=1.0: the one-step script, a cluster of its own)"
UPGRADE_FROM=1.0 bash test/upgrade.sh 2>&1 | tee .upgrade_1.0.log
record_from_log upgrade-1.0 .upgrade_1.0.log upgrade

echo "== lost-update soak (test/soak/soak.pl, ${CP_SOAK_SECONDS:-40} s)"
createdb chatpersist_soak
psql -X -q -d chatpersist_soak -c "CREATE EXTENSION chatpersist"
PGDATABASE=chatpersist_soak perl test/soak/soak.pl --duration "${CP_SOAK_SECONDS:-40}" --self-test 2>&1 | tee .soak.log
record_from_log soak .soak.log

echo "== crash recovery (TAP: test/t/, ${CP_CRASH_CYCLES:-8} crash cycles, clusters of its own)"
CP_INSTALL_DIR=$CP_INSTALL_DIR bash test/tap.sh 2>&1 | tee .tap.log
record_from_log tap .tap.log

echo "== libFuzzer: src/canon.h against naive references (test/fuzz/run_canon_fuzz.sh)"
bash test/fuzz/run_canon_fuzz.sh 2>&1 | tee .canon_fuzz.log
record_from_log canon_fuzz .canon_fuzz.log

echo "== memory errors: ASan and UBSan (test/sanitize.sh asan, clusters of its own)"
bash test/sanitize.sh asan 2>&1 | tee .sanitize_asan.log
record_from_log sanitize-asan .sanitize_asan.log sanitize

echo "== memory errors: valgrind memcheck (test/sanitize.sh valgrind, clusters of its own)"
bash test/sanitize.sh valgrind 2>&1 | tee .sanitize_valgrind.log
record_from_log sanitize-vg .sanitize_valgrind.log sanitize

echo "== static analysis (cppcheck)"
if cppcheck --enable=warning,portability --error-exitcode=1 --inline-suppr --quiet --std=c99 \
	-I src -I "$("$PG_CONFIG" --includedir-server)" -D__GNUC__ \
	--suppress=missingIncludeSystem src/*.c; then
	echo "cppcheck: no findings"
	record cppcheck 1 0
else
	record cppcheck 0 1
fi

echo "== the README's demo (test/demo.sh, on a cluster of its own)"
if bash test/demo.sh >.demo.log 2>&1 && grep -q "they match" .demo.log &&
	grep -q "merged" .demo.log && grep -q "Expected version 1, found 3" .demo.log; then
	echo "demo: ok"
	record demo 1 0
else
	cat .demo.log
	record demo 0 1
fi

if cp_cluster_crashed; then
	echo "a backend crashed during the tests"
	record crashes 0 1
fi
if [ "$total_fail" -gt 0 ]; then
	cp_cluster_log_tail 60
fi

rm -f .regress.log .regress_local.log .isolation.log .pgtap.log .dump_restore.log .cursor_moves.log .realtime.log .supabase_move.log .differential.log .upgrade.log .upgrade_1.0.log .node.log .docs_examples.log .demo.log .canon_fuzz.log .*_props.log .soak.log .tap.log .sanitize_*.log .fuzz.log
echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
