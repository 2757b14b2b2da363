# counts.sh: counting pg_regress-style results, shared by test/run.sh and
# test/sanitize.sh.  Source it; the caller defines record NAME PASSED
# FAILED, which count_regress reports to.
#
# Copyright (c) 2026, chatpersist developers
#
# test/counts.sh

# count_regress LOG NAME: count the "test x ... ok" and "... FAILED" lines
# pg_regress and pg_isolation_regress print, and record them as NAME; a log
# with neither (the runner died before running anything) is one failure
count_regress() {
	local log=$1 name=$2 ok bad
	ok=$(grep -cE '^ *test .* \.\.\. ok' "$log")
	bad=$(grep -cE '^ *test .* \.\.\. (FAILED|failed)' "$log")
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	record "$name" "$ok" "$bad"
}
