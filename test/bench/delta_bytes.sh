#!/usr/bin/env bash
# delta_bytes.sh: what a device receives after one change, messages_since
# against a reload (issue 14), for conversations of 10, 100, 1000 and
# 10000 messages of about 330 bytes.  Run by `bash test/bench/run.sh
# --delta`, which builds, installs and starts the cluster; needs PGHOST,
# PGPORT, PGUSER and PGDATABASE of a database with chatpersist.
#
# Bytes: the answer's row as text (what psql or a driver receives, less the
# protocol's framing), after one append and after one edit by a whole-array
# save, from the version before; against load_conversation's row.
# Time: pgbench -M prepared, one client, DELTA_SECONDS (default 3) per run,
# DELTA_ROUNDS (default 3) rounds alternating the two reads; the median
# tps of each and their ratio (messages_since / reload: above 1 means
# the delta is faster to serve).
set -euo pipefail

seconds=${DELTA_SECONDS:-3}
rounds=${DELTA_ROUNDS:-3}
sizes=${DELTA_SIZES:-"10 100 1000 10000"}
u=00000000-0000-4000-8000-00000000de17
tmp=$(mktemp -d /tmp/delta_bytes.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

tps_of() {		# file: pgbench script
	pgbench -n -M prepared -c 1 -T "$seconds" -f "$1" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

echo "| messages | delta after an append (bytes) | delta after an edit (bytes) | reload (bytes) | reload / delta | messages_since tps | reload tps | time ratio |"
echo "|---|---|---|---|---|---|---|---|"
for n in $sizes; do
	c="bytes$n"
	q "SELECT chatpersist.save_conversation('$u', '$c', 'bench',
		(SELECT jsonb_agg(jsonb_build_object('id', 'm' || lpad(i::text, 6, '0'), 'role', 'user',
			'content', repeat('a chat message of about three hundred bytes. ', 7),
			'created_at', 1700000000000 + i) ORDER BY i) FROM generate_series(1, $n) i), true)" >/dev/null
	v=$(q "SELECT version FROM chatpersist.conversations WHERE user_id = '$u' AND id = '$c'")
	q "SELECT chatpersist.append_messages('$u', '$c',
		jsonb_build_array(jsonb_build_object('id', 'new', 'role', 'user',
			'content', repeat('a chat message of about three hundred bytes. ', 7),
			'created_at', 1800000000000)), $v)" >/dev/null
	append=$(q "SELECT octet_length(d::text) FROM chatpersist.messages_since('$u', '$c', $v) d")
	v2=$((v + 1))
	q "SELECT chatpersist.save_conversation('$u', '$c', 'bench',
		jsonb_set(messages, ARRAY[($n / 2)::text, 'content'], '\"edited\"'), false, $v2)
		FROM chatpersist.load_conversation('$u', '$c')" >/dev/null
	edit=$(q "SELECT octet_length(d::text) FROM chatpersist.messages_since('$u', '$c', $v2) d")
	reload=$(q "SELECT octet_length(l::text) FROM chatpersist.load_conversation('$u', '$c') l")

	echo "SELECT * FROM chatpersist.messages_since('$u', '$c', $v2);" >"$tmp/delta.sql"
	echo "SELECT * FROM chatpersist.load_conversation('$u', '$c');" >"$tmp/load.sql"
	: >"$tmp/d.tps"
	: >"$tmp/l.tps"
	for _ in $(seq "$rounds"); do
		tps_of "$tmp/delta.sql" >>"$tmp/d.tps"
		tps_of "$tmp/load.sql" >>"$tmp/l.tps"
	done
	d=$(median <"$tmp/d.tps")
	l=$(median <"$tmp/l.tps")
	awk -v n="$n" -v a="$append" -v e="$edit" -v r="$reload" -v d="$d" -v l="$l" 'BEGIN {
		printf "| %d | %d | %d | %d | %.0fx | %.0f | %.0f | %.2f |\n", n, a, e, r, r / a, d, l, d / l }'
done
q "SET chatpersist.history_depth = 0; DELETE FROM chatpersist.conversations WHERE user_id = '$u'" >/dev/null
