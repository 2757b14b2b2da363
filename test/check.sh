# check.sh: the counting checks of the test scripts (dump_restore.sh,
# cursor_moves.sh, realtime.sh, supabase_move.sh, version_props.sh,
# upgrade.sh, ...).  Source it;
# the script keeps the counters passed and failed (start them at 0) and ends with
# "NAME: $passed passed, $failed failed".
#
# check NAME COMMAND...: run the command; count it as passed if it exits 0,
# else as failed; print "ok    NAME" or "FAIL  NAME".
check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok    $name"
		passed=$((passed + 1))
	else
		echo "FAIL  $name"
		failed=$((failed + 1))
	fi
}

# eq NAME GOT WANT: check that two strings are equal, printing both if not
eq() {
	local name=$1 got=$2 want=$3
	if [ "$got" = "$want" ]; then
		check "$name" true
	else
		echo "      got:  $got"
		echo "      want: $want"
		check "$name" false
	fi
}
