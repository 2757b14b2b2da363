#!/usr/bin/env bash
#
# sanitize.sh
#	  Memory-error checking: chatpersist's pg_regress and isolation suites
#	  against a build with AddressSanitizer and UndefinedBehaviorSanitizer,
#	  or against a server running under valgrind's memcheck; both with and
#	  without shared_preload_libraries = 'chatpersist'.
#
# Usage: bash test/sanitize.sh [asan|valgrind|all] [--no-palloc-check] [--no-canary] [--keep]
#
#   asan      (the default) builds the module with -fsanitize=address,undefined
#             and runs the server with gcc's ASan runtime preloaded
#             (LD_PRELOAD); reports of either sanitizer go to files, and the
#             server log, that are scanned at the end; under a minute
#   valgrind  builds the module with assertions, as test/run.sh does, and
#             runs the server under valgrind --tool=memcheck
#             --trace-children=yes, with test/sanitize/valgrind.supp for
#             what PostgreSQL itself triggers; about 5 minutes on 2 cores
#   all       both
#
#   --no-palloc-check  leave chatpersist's pallocs to the server's allocator
#                      (see test/sanitize/palloc_check.c: the checkers then
#                      see 8 kB blocks, not chunks)
#   --no-canary        skip the canaries (below)
#   --keep             keep the work directory (build, server logs, reports)
#
#   CP_SANITIZE_CFLAGS (environment) adds compiler flags to the build, e.g.
#   "-fno-wrapv -fsanitize=float-cast-overflow"; CP_VALGRIND_OPTIONS adds
#   valgrind options (later ones win, e.g. "--track-origins=no").
#
# Runs as root on Debian 12 with PostgreSQL 15, like test/run.sh: installs
# what is missing (test/setup.sh), builds in a copy of the tree under /tmp
# (the tree's own build is left alone), installs that build into a private
# copy of the server (cp_private_install: the system's installation is not
# touched), and starts throwaway clusters (test/cluster.sh), stopped and
# removed at the end, also on failure.  In the private copy, bin/postgres
# becomes a small launcher that runs the real binary with the sanitizer
# runtime preloaded, or under valgrind.  The two configurations (with and
# without shared_preload_libraries) run side by side, each with a build
# copy, a private install and a cluster of its own.
#
# A check passes only when the suites pass AND no report was written.
# Then, unless --no-canary, a last cluster runs test/sanitize/canary.c's
# deliberate errors and each must be reported: that proves the runtime is
# really loaded, the options really reach the server and the scan really
# reads the reports.  Ends with the line
#	sanitize: N passed, M failed
# and exits non-zero if M > 0.  docs/reliability.md ("Memory errors") says
# what each tool can and cannot see.
#
# Copyright (c) 2026, chatpersist developers
#
# test/sanitize.sh
#

set -uo pipefail

cd "$(dirname "$0")/.."
top=$(pwd)

mode=asan
palloc_check=1
canary=1
keep=0
for arg in "$@"; do
	case "$arg" in
		asan | valgrind | all) mode=$arg ;;
		--no-palloc-check) palloc_check=0 ;;
		--no-canary) canary=0 ;;
		--keep) keep=1 ;;
		*)
			sed -n '/^# Usage/,/^#   --keep/p' "$0" >&2
			exit 2
			;;
	esac
done

. test/lib.sh
cp_setup || exit 1
cp_pg_env

work=$(mktemp -d /tmp/chatpersist-sanitize.XXXXXX) || exit 1
chmod 755 "$work"

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	# the configurations running side by side stop their own clusters
	local pids
	pids=$(jobs -p)
	if [ -n "$pids" ]; then
		kill $pids 2>/dev/null
		wait
	fi
	cp_cluster_stop
	if [ "$keep" -eq 1 ]; then
		echo "sanitize: kept $work"
	else
		rm -rf "$work"
	fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# Results are appended to a file, NAME<TAB>PASSED<TAB>FAILED, so that the
# configurations that run side by side in subshells all count
records=$work/records
: >"$records"

# record NAME PASSED FAILED
record()
{
	printf '%s\t%d\t%d\n' "$1" "$2" "$3" >>"$records"
}

# count_regress LOG NAME (test/counts.sh) reports to record
. test/counts.sh

# The options of each tool.  ASan: no leak check (the server frees by memory
# context, and at exit not at all), locals of returned functions checked
# too, keep going after a report (the module is built with
# -fsanitize-recover), one file per process, REPORTS/asan.PID.
# UBSan: with a stack trace, keep going.  gcc's UBSan runtime starts at its
# first report, and then points the ASan runtime's report file at its own
# log_path (hence another name, so that nothing is overwritten) while its
# own reports go to stderr, the server log: both are scanned.
asan_options()
{
	echo "detect_leaks=0:detect_stack_use_after_return=1:halt_on_error=0:abort_on_error=0:log_path=$1/asan"
}
ubsan_options()
{
	echo "print_stacktrace=1:halt_on_error=0:log_path=$1/ubsan"
}
valgrind_exitcode=99
valgrind_options()
{
	echo "--tool=memcheck --trace-children=yes --error-exitcode=$valgrind_exitcode" \
		"--leak-check=no --track-origins=yes --num-callers=40 --gen-suppressions=all" \
		"--suppressions=$top/test/sanitize/valgrind.supp --log-file=$1/vg.%p.log" \
		"${CP_VALGRIND_OPTIONS:-}"
}

# build TOOL DIR: copy the tree to DIR and build it there for TOOL
build()
{
	local tool=$1 dir=$2 cflags objs
	mkdir -p "$dir"
	tar -C "$top" --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		-cf - Makefile chatpersist.control src sql expected test | tar -C "$dir" -xf - || return 1

	cflags="-DUSE_ASSERT_CHECKING"
	if [ "$tool" = asan ]; then
		cflags="$cflags -fsanitize=address,undefined -fno-omit-frame-pointer -fsanitize-recover=all"
	fi
	cflags="$cflags ${CP_SANITIZE_CFLAGS:-}"
	objs=""
	[ "$palloc_check" -eq 1 ] && objs="test/sanitize/palloc_check.o"
	[ "$tool" = valgrind ] && objs="$objs test/sanitize/boundary_check.o"
	[ "$canary" -eq 1 ] && objs="$objs test/sanitize/canary.o"
	# with_llvm=no: no JIT bitcode, which would run our code uninstrumented
	make_vars=(PG_CONFIG="$PG_CONFIG" with_llvm=no "PG_CFLAGS=$cflags" "CP_TEST_OBJS=$objs")
	(cd "$dir" && make -s -j2 "${make_vars[@]}") || return 1

	# palloc_check.c works only if chatpersist's calls bind to its hidden
	# definitions, local symbols of the module
	if [ "$palloc_check" -eq 1 ] && ! nm "$dir/chatpersist.so" | grep ' t palloc$' >/dev/null; then
		echo "$tool: palloc is not bound inside the module" >&2
		return 1
	fi
}

# install_launcher TOOL REPORTS: make bin/postgres of the private copy run
# the real server under TOOL, its reports going to the directory REPORTS
install_launcher()
{
	local tool=$1 reports=$2 real=$CP_PGBIN/postgres.real
	[ -f "$real" ] || mv "$CP_PGBIN/postgres" "$real"
	mkdir -p "$reports"
	chown postgres: "$reports"
	if [ "$tool" = asan ]; then
		# preloaded right after the runtime: see test/sanitize/preload.c
		gcc -shared -fPIC -O2 -o "$reports.preload.so" \
			-DCP_ASAN_OPTIONS="\"$(asan_options "$reports")\"" \
			-DCP_UBSAN_OPTIONS="\"$(ubsan_options "$reports")\"" \
			"$top/test/sanitize/preload.c" || return 1
		# Without address randomisation where the system allows it: gcc
		# 12's runtime can place its shadow memory badly when the kernel
		# randomises with more bits than it expects (vm.mmap_rnd_bits 32)
		norandom=""
		if setarch "$(uname -m)" -R true 2>/dev/null; then
			norandom="setarch $(uname -m) -R"
		fi
		cat >"$CP_PGBIN/postgres" <<-EOF
			#!/bin/sh
			# test/sanitize.sh: the server with the ASan runtime preloaded
			export ASAN_OPTIONS='$(asan_options "$reports")'
			export UBSAN_OPTIONS='$(ubsan_options "$reports")'
			exec $norandom env LD_PRELOAD='$asan_runtime $reports.preload.so' '$real' "\$@"
		EOF
	else
		# initdb's bootstrap and single-user runs, and the version checks
		# of initdb and pg_ctl, run the server plainly (they never load
		# chatpersist, and would only take minutes under valgrind)
		cat >"$CP_PGBIN/postgres" <<-EOF
			#!/bin/sh
			# test/sanitize.sh: the server under valgrind
			case "\$1" in
			--boot | --single | -V | --version | -C | --describe-config)
				exec '$real' "\$@" ;;
			esac
			exec valgrind $(valgrind_options "$reports") '$real' "\$@"
		EOF
	fi
	chmod 755 "$CP_PGBIN/postgres"
	# the runtime must not hang or break the server's start (see
	# preload.c): check with the version query, as initdb does
	if ! timeout 60 runuser -u postgres -- "$CP_PGBIN/postgres" -V >/dev/null ||
		{ [ "$tool" = asan ] && ! timeout 60 runuser -u postgres -- "$CP_PGBIN/postgres" --describe-config >/dev/null; }; then
		echo "$tool: the server does not start under its launcher" >&2
		return 1
	fi
}

# asan_reports DIR SERVERLOG: print the reports and return their number
asan_reports()
{
	local dir=$1 log=$2 n=0 f k
	for f in "$dir"/asan.* "$dir"/ubsan.*; do
		[ -s "$f" ] || continue
		# a file holds at least one report, whatever its wording
		k=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$f")
		n=$((n + (k > 0 ? k : 1)))
		echo "---- $f ----" >&2
		head -n 80 "$f" >&2
	done
	# a runtime that could not open its log file writes to stderr
	if grep -qE 'AddressSanitizer|runtime error:' "$log"; then
		n=$((n + $(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$log")))
		grep -E -A20 'AddressSanitizer|runtime error:' "$log" | head -n 80 >&2
	fi
	echo "$n"
}

# valgrind_reports DIR: print the errors valgrind reported (after the
# suppressions), and return their number; a process whose log has no
# summary (it did not exit) counts as one
valgrind_reports()
{
	local dir=$1 n=0 f e
	for f in "$dir"/vg.*.log; do
		[ -e "$f" ] || continue
		if ! grep -q 'ERROR SUMMARY:' "$f"; then
			echo "---- $f: no ERROR SUMMARY (the process did not exit normally) ----" >&2
			tail -n 20 "$f" >&2
			n=$((n + 1))
			continue
		fi
		e=$(sed -nE 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$f" | tail -n 1)
		if [ "$e" -gt 0 ]; then
			echo "---- $f: $e errors ----" >&2
			head -n 150 "$f" >&2
			n=$((n + e))
		fi
	done
	echo "$n"
}

# How many errors valgrind suppressed in a log directory (PostgreSQL's own)
valgrind_suppressed()
{
	sed -nE 's/.*ERROR SUMMARY: .*\(suppressed: ([0-9]+) from.*/\1/p' "$1"/vg.*.log 2>/dev/null |
		awk '{ n += $1 } END { print n + 0 }'
}

# How many errors in a valgrind log directory involve chatpersist.so
valgrind_chatpersist_errors()
{
	awk '
		/^==[0-9]+== [A-Z]/ && !/ERROR SUMMARY|HEAP SUMMARY|LEAK SUMMARY|Memcheck|Copyright|Using Valgrind|Command:|Parent PID/ { inerr = 1; counted = 0 }
		/^==[0-9]+== *$/ { inerr = 0 }
		inerr && !counted && /chatpersist\.so/ { n++; counted = 1 }
		END { print n + 0 }' "$1"/vg.*.log 2>/dev/null
}

# run_suites TOOL CONFIG: in a copy of the tool's build and a private
# install of its own, start a cluster (CONFIG preload or local), run
# regress and isolation, stop it, scan the reports.  Runs in a subshell,
# side by side with the other configuration.
run_suites()
{
	local tool=$1 config=$2 dir reports name conf=("jit = off") n t0 t1 cp_errs
	name="$tool/$config"
	dir=$work/$tool/build-$config
	reports=$work/$tool/reports-$config
	[ "$config" = preload ] && conf+=("shared_preload_libraries = 'chatpersist'")
	trap cp_cluster_stop EXIT
	trap 'exit 1' INT TERM

	t0=$(date +%s)
	cp -a "$work/$tool/build" "$dir" || { record "$name copy" 0 1; return; }
	if ! (cd "$dir" && cp_private_install "$work/$tool/install-$config" "${make_vars[@]}"); then
		record "$name install" 0 1
		return
	fi
	CP_PGBIN=$work/$tool/install-$config$("$PG_CONFIG" --bindir)
	if ! install_launcher "$tool" "$reports"; then
		record "$name launcher" 0 1
		return
	fi

	echo "== $name: start a cluster"
	if ! cp_cluster_start "${conf[@]}"; then
		record "$name cluster" 0 1
		return
	fi
	echo "== $name: pg_regress"
	(cd "$dir" && make -s "${make_vars[@]}" installcheck ISOLATION=) 2>&1 | tee "$work/$tool/regress-$config.log"
	count_regress "$work/$tool/regress-$config.log" "$name regress"
	[ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"

	echo "== $name: isolation"
	(cd "$dir" && make -s "${make_vars[@]}" installcheck REGRESS=) 2>&1 | tee "$work/$tool/isolation-$config.log"
	count_regress "$work/$tool/isolation-$config.log" "$name isolation"
	[ -f "$dir/output_iso/regression.diffs" ] && cat "$dir/output_iso/regression.diffs"

	if cp_cluster_crashed; then
		echo "$name: a server process crashed"
		cp_cluster_log_tail 40
		record "$name no crash" 0 1
	fi
	cp "$CP_CLUSTER_DIR/server.log" "$work/$tool/server-$config.log"
	cp_cluster_stop
	t1=$(date +%s)

	# Only now: valgrind writes a process's summary when it exits
	if [ "$tool" = asan ]; then
		n=$(asan_reports "$reports" "$work/$tool/server-$config.log")
		echo "$name: $(ls "$reports" | wc -l) report files"
	else
		n=$(valgrind_reports "$reports")
		cp_errs=$(valgrind_chatpersist_errors "$reports")
		echo "$name: $(ls "$reports" | wc -l) processes checked, $cp_errs errors involve chatpersist.so," \
			"$(valgrind_suppressed "$reports") suppressed (test/sanitize/valgrind.supp)"
	fi
	echo "$name: $n reports, $((t1 - t0)) s"
	if [ "$n" -eq 0 ]; then
		record "$name no reports" 1 0
	else
		record "$name no reports ($n reports)" 0 "$n"
	fi
}

# run_canary TOOL: run the deliberate errors on a cluster of their own and
# check that each one was reported, naming the function that made it
run_canary()
{
	local tool=$1 reports kinds kind fn pattern found log i
	reports=$work/$tool/reports-canary
	CP_PGBIN=$work/$tool/install-preload$("$PG_CONFIG" --bindir)
	if ! install_launcher "$tool" "$reports"; then
		record "$tool canary launcher" 0 1
		return
	fi
	echo "== $tool/canary: start a cluster"
	if ! cp_cluster_start "jit = off" "shared_preload_libraries = 'chatpersist'"; then
		record "$tool canary cluster" 0 1
		return
	fi
	if [ "$tool" = asan ]; then
		kinds=(heap-overflow use-after-free stack-overflow use-after-return shift)
	else
		kinds=(heap-overflow use-after-free uninitialised uninitialised-param)
	fi
	createdb cp_canary
	{
		echo "CREATE FUNCTION cp_canary(text) RETURNS int"
		echo "  AS '\$libdir/chatpersist', 'chatpersist_canary' LANGUAGE C STRICT;"
		for kind in "${kinds[@]}"; do
			echo "SELECT '$kind' AS canary, cp_canary('$kind') IS NOT NULL AS returned;"
		done
	} | psql -X -d cp_canary 2>&1
	if [ "$tool" = valgrind ]; then
		# the backend writes its summary and exits after psql has left
		for i in $(seq 60); do
			grep -q "exited with exit code" "$CP_CLUSTER_DIR/server.log" && break
			sleep 1
		done
	fi
	cp "$CP_CLUSTER_DIR/server.log" "$work/$tool/server-canary.log"
	cp_cluster_stop

	for kind in "${kinds[@]}"; do
		fn=canary_${kind//-/_}
		case "$tool:$kind" in
			asan:heap-overflow) pattern='heap-buffer-overflow' ;;
			asan:use-after-free) pattern='heap-use-after-free' ;;
			asan:stack-overflow) pattern='stack-buffer-overflow' ;;
			asan:use-after-return) pattern='stack-use-after-return' ;;
			asan:shift) pattern='shift exponent' ;;
			valgrind:heap-overflow) pattern='Invalid write' ;;
			valgrind:use-after-free) pattern='Invalid read' ;;
			valgrind:uninitialised) pattern='Conditional jump or move depends on uninitialised' ;;
			valgrind:uninitialised-param) pattern='Uninitialised byte\(s\) found during client check request' ;;
		esac
		# the report's first lines name the error and, in the stack, the
		# function that made it
		found=0
		for log in "$reports"/* "$work/$tool/server-canary.log"; do
			[ -f "$log" ] || continue
			if grep -A12 -E "$pattern" "$log" | grep "$fn" >/dev/null; then
				found=1
			fi
		done
		if [ "$found" -eq 1 ]; then
			echo "ok    $tool detects $kind ($pattern in $fn)"
			record "$tool detects $kind" 1 0
		else
			echo "FAIL  $tool did not report $kind ($pattern in $fn)"
			record "$tool detects $kind" 0 1
		fi
	done
	if [ "$tool" = valgrind ]; then
		# --error-exitcode: the backend that made the errors exits with it
		if grep -q "exited with exit code $valgrind_exitcode" "$work/$tool/server-canary.log"; then
			echo "ok    a backend with valgrind errors exits with code $valgrind_exitcode"
			record "valgrind --error-exitcode" 1 0
		else
			echo "FAIL  no backend exited with valgrind's error exit code"
			record "valgrind --error-exitcode" 0 1
		fi
	fi
}

# run_tool TOOL: build, install, run the suites with and without preload,
# then the canaries
run_tool()
{
	local tool=$1 dir t0 t1
	t0=$(date +%s)
	dir=$work/$tool/build
	echo "== $tool: build in $dir"
	if ! build "$tool" "$dir"; then
		record "$tool build" 0 1
		return
	fi
	if [ "$tool" = asan ]; then
		asan_runtime=$(ldd "$dir/chatpersist.so" | awk '/libasan/ { print $3 }')
		if [ -z "$asan_runtime" ]; then
			echo "$tool: the module is not linked with the ASan runtime"
			record "$tool build" 0 1
			return
		fi
	elif ! command -v valgrind >/dev/null; then
		echo "$tool: valgrind is not installed"
		record "$tool installed" 0 1
		return
	fi

	# Both configurations at once, each in a subshell with a cluster of
	# its own: each keeps about one core busy (pg_regress runs one test at
	# a time); their output is shown one after the other
	run_suites "$tool" preload >"$work/$tool/preload.out" 2>&1 &
	run_suites "$tool" local >"$work/$tool/local.out" 2>&1 &
	wait
	cat "$work/$tool/preload.out" "$work/$tool/local.out"
	[ "$canary" -eq 1 ] && run_canary "$tool"
	t1=$(date +%s)
	echo "== $tool: $((t1 - t0)) s"
}

case "$mode" in
	asan) run_tool asan ;;
	valgrind) run_tool valgrind ;;
	all)
		run_tool asan
		run_tool valgrind
		;;
esac

passed=0
failed=0
echo
echo "== sanitize summary ($mode)"
while IFS=$'\t' read -r name p f; do
	printf '%-36s %4d passed, %d failed\n' "$name" "$p" "$f"
	passed=$((passed + p))
	failed=$((failed + f))
done <"$records"
echo "sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
