#!/usr/bin/env bash
#
# run_canon_fuzz.sh
#	  Build test/fuzz/canon_fuzz.c (the libFuzzer harness of src/canon.h)
#	  with AddressSanitizer and UndefinedBehaviorSanitizer, twice: with the
#	  SSE2 escape scan and with the portable one (-DCP_NO_SIMD), and run
#	  each for a while.
#
# Usage: bash test/fuzz/run_canon_fuzz.sh
#	CANON_FUZZ_SECONDS	seconds per build (default 15; the test suite's
#						fast run); e.g. 3600 for a long run
#	CANON_FUZZ_SEED		libFuzzer's -seed (default: a random one, printed)
#	CANON_FUZZ_KEEP		a directory to keep the corpora and any crashing
#						input in (default: a temporary one, removed)
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev;
# test/setup.sh installs them).  A mismatch with the reference or a
# sanitizer report stops the run; the crashing input is written to the
# work directory and printed.  Ends with
#	canon_fuzz: N passed, M failed
# (one per build) and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/fuzz/run_canon_fuzz.sh
#

set -uo pipefail

cd "$(dirname "$0")/../.."
seconds=${CANON_FUZZ_SECONDS:-15}
seed=${CANON_FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
passed=0
failed=0

if [ -n "${CANON_FUZZ_KEEP:-}" ]; then
	work=$CANON_FUZZ_KEEP
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/canon_fuzz.XXXXXX") || { echo "canon_fuzz: 0 passed, 1 failed"; exit 1; }
	trap 'rm -rf "$work"' EXIT
fi

cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ]; then
	echo "canon_fuzz: clang not found (run test/setup.sh)"
	echo "canon_fuzz: 0 passed, 1 failed"
	exit 1
fi

echo "canon_fuzz: seed $seed, $seconds s per build, in $work"
for variant in sse2 portable; do
	flags=()
	[ "$variant" = portable ] && flags=(-DCP_NO_SIMD)
	bin=$work/canon_fuzz_$variant
	if ! "$cc" -g -O1 "${flags[@]}" -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -Wall -Werror -I src \
		test/fuzz/canon_fuzz.c -o "$bin"; then
		echo "FAIL  $variant: build failed"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$work/corpus_$variant"
	log=$work/$variant.log
	if (cd "$work" && "$bin" -max_total_time="$seconds" -seed="$seed" \
		-print_final_stats=1 -artifact_prefix="$work/${variant}_" \
		"$work/corpus_$variant") >"$log" 2>&1; then
		runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
		echo "ok    $variant: ${runs:-?} inputs, no mismatch, no sanitizer report"
		passed=$((passed + 1))
	else
		echo "FAIL  $variant:"
		grep -E 'canon_fuzz:|ERROR|SUMMARY|Test unit written' "$log" | head -20
		for a in "$work/${variant}_"*; do
			[ -e "$a" ] && echo "      input (hex): $(od -An -v -tx1 "$a" | tr -d ' \n' | head -c 400)"
		done
		failed=$((failed + 1))
	fi
done

echo "canon_fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
