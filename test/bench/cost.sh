# cost.sh: the --cost mode of the benchmark, issue 13's 2.0 cost targets.
#
#   bash test/bench/run.sh --cost     # about 6 minutes on 2 cores
#
# Sourced by run.sh once it has built and installed the extension, started
# the throwaway cluster and loaded the data (setup.sql, load.sql, then
# cost.sql); not a script of its own.  It measures, side by side in one
# run, chatpersist against what an engineer would hand-write with one row
# per message (cost.sql: bench.rpm_conv and bench.rpm_msg, written by
# workloads/rpm_append.sql, one statement):
#
#   1. throughput, pgbench -M prepared, 2 clients: rpm-append against
#      chatpersist.append_messages of one new message (cp-append-new) at
#      each size (BENCH_SIZES, default 10, 1000 and 10000 messages); the
#      raw CAS UPDATE (raw) against the fast-forward save (cp-ff) at 10
#      messages; with each, its floor with history (rpm-hist,
#      workloads/rpm_hist.sql, and raw-hist: the same write plus archiving
#      the replaced version and pruning beyond 10, what the contract's
#      history asks of any implementation); the hand-written load (rpm-load) against
#      chatpersist.load_conversation (cp-load) at 1000.  Each round runs
#      every pair for BENCH_SECONDS (3), the pair's order alternating from
#      round to round; the result is the median of BENCH_ROUNDS (7) rounds
#      and the ratio of the medians.  After every append run the
#      conversations are checked (one new message per call) and brought
#      back to their length, outside the timing; growth.tsv says how much
#      they grew within a run;
#   2. WAL per call: pg_current_wal_insert_lsn() before and after
#      BENCH_WAL_CALLS (200) calls of rpm-append, rpm-hist, cp-append-new and cp-ff
#      (the whole array with one message changed), at each size.  The
#      insert position, not pg_current_wal_lsn(): with synchronous_commit
#      off the write position lags behind what was inserted;
#   3. bytes per conversation after 100 one-message appends to a
#      1000-message conversation (bench.cost_bytes): conversation row,
#      message rows and history rows, each by pg_column_size of the row
#      (TOASTed values counted at their compressed size), against the
#      messages alone;
#   4. the targets of issue 13, met or missed (cost_report.sh).
#
# Output in the run's folder: cost_tps.tsv, wal.tsv, bytes.tsv,
# growth.tsv, cost.md (the tables) and bench.log.

# run.sh sets bench, mode, out, log, sizes, rounds, seconds, warmup, started
# shellcheck shell=bash disable=SC2154

if [ -z "${bench:-}" ] || [ "${mode:-}" != cost ]; then
	echo "cost.sh is part of run.sh: bash test/bench/run.sh --cost" >&2
	exit 2
fi

wal_calls=${BENCH_WAL_CALLS:-200}
if [ $((wal_calls % 2)) -ne 0 ] || [ "$wal_calls" -lt 2 ]; then
	echo "bench: BENCH_WAL_CALLS must be even (2 clients)" >&2
	exit 1
fi

# After a run of workload w at size s (round r): the append workloads'
# conversations are checked and reset (the check raises an error if a
# call did not add exactly one message), then settle as run.sh does
cost_settle() {
	local w=$1 s=$2 r=$3 res
	case $w in
		rpm_append | rpm_hist) res=$(psql -X -At -F $'\t' -v ON_ERROR_STOP=1 -c "SELECT * FROM bench.cost_reset_rpm()") ;;
		cp_append_new) res=$(psql -X -At -F $'\t' -v ON_ERROR_STOP=1 -c "SELECT * FROM bench.cost_reset_cp()") ;;
		*) res="" ;;
	esac || {
		echo "bench: the check after $w at size $s failed (see above)" >&2
		return 1
	}
	if [ -n "$res" ]; then
		printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$s" "$r" "$res" "$(users_of "$w" "$s")" >>"$out/growth.tsv"
	fi
	settle "$w"
}

# The groups measured side by side: "size baseline chatpersist [floor]",
# the floor being the baseline plus the history the contract keeps
pairs=()
for s in $sizes; do
	pairs+=("$s rpm_append cp_append_new rpm_hist")
done
pairs+=("10 raw cp_ff raw_hist" "1000 rpm_load cp_load")

echo "== cost: throughput (pgbench, 2 clients: $rounds rounds x ${seconds}s per workload, medians)"
printf 'size\tclients\tround\tworkload\ttps\n' >"$out/cost_tps.tsv"
printf 'workload\tsize\tround\tappended\tmost\tconversations\n' >"$out/growth.tsv"
if [ "$warmup" -eq 1 ]; then
	for p in "${pairs[@]}"; do
		read -r s ws <<<"$p"
		for w in $ws; do
			run_pgbench "$w" "$s" 2 -T 1 >/dev/null
			cost_settle "$w" "$s" 0
		done
	done
fi
for ((r = 1; r <= rounds; r++)); do
	for p in "${pairs[@]}"; do
		read -r s ws <<<"$p"
		# the order turns from round to round
		if [ $((r % 2)) -eq 1 ]; then order=$ws; else order=$(tr ' ' '\n' <<<"$ws" | tac | tr '\n' ' '); fi
		for w in $order; do
			tps=$(run_pgbench "$w" "$s" 2 -T "$seconds")
			printf '%s\t2\t%s\t%s\t%s\n' "$s" "$r" "$w" "$tps" >>"$out/cost_tps.tsv"
			cost_settle "$w" "$s" "$r"
		done
	done
	echo "round $r"
done

echo "== cost: WAL ($wal_calls calls per workload and size)"
printf 'size\tworkload\tcalls\twal_bytes\n' >"$out/wal.tsv"
for s in $sizes; do
	for w in rpm_append rpm_hist cp_append_new cp_ff; do
		before=$(psql -X -At -c "SELECT pg_current_wal_insert_lsn()")
		run_pgbench "$w" "$s" 2 -t $((wal_calls / 2)) >/dev/null
		after=$(psql -X -At -c "SELECT pg_current_wal_insert_lsn()")
		bytes=$(psql -X -At -c "SELECT pg_wal_lsn_diff('$after', '$before')::bigint")
		[ "$bytes" -gt 0 ] || { echo "bench: no WAL measured for $w at size $s" >&2; exit 1; }
		printf '%s\t%s\t%s\t%s\n' "$s" "$w" "$wal_calls" "$bytes" >>"$out/wal.tsv"
		cost_settle "$w" "$s" wal
	done
	echo "size $s"
done

echo "== cost: bytes of a 1000-message conversation after 100 one-message writes"
hu="bench.uid(999999)"
psql_q >>"$log" <<SQL
SELECT r.status FROM bench.payload p,
	LATERAL chatpersist.save_conversation($hu, 'h1000', 'bench', p.arr) r
 WHERE p.size = 1000 AND p.k = 0;
INSERT INTO bench.rpm_conv (user_id, id, version) VALUES ($hu, 'h1000', 0);
INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
SELECT $hu, 'h1000', e->>'id', (e->>'created_at')::bigint, e
  FROM bench.payload p, jsonb_array_elements(p.arr) e
 WHERE p.size = 1000 AND p.k = 0;
SQL
# 100 appends, each its own transaction, in both schemas
statuses=$(for ((i = 0; i < 100; i++)); do
	echo "SELECT r.status FROM bench.new_message t, LATERAL chatpersist.append_messages($hu, 'h1000',
		jsonb_build_array(jsonb_set(t.msg, '{id}', to_jsonb(gen_random_uuid()::text)))) r;"
	echo "WITH ins AS (INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
		SELECT $hu, 'h1000', n.id, (t.msg->>'created_at')::bigint, jsonb_set(t.msg, '{id}', to_jsonb(n.id))
		  FROM bench.new_message t, (SELECT gen_random_uuid()::text AS id) n RETURNING 1)
		UPDATE bench.rpm_conv c SET version = c.version + 1 WHERE c.user_id = $hu AND c.id = 'h1000';"
done | psql -X -At -v ON_ERROR_STOP=1)
if [ "$(grep -c '^updated$' <<<"$statuses")" -ne 100 ]; then
	echo "bench: the 100 appends to h1000 were not all updated:" >&2
	sort <<<"$statuses" | uniq -c >&2
	exit 1
fi
psql_q -c "VACUUM chatpersist.conversations" -c "VACUUM chatpersist.history" -c "VACUUM bench.rpm_msg" >>"$log"
psql_q -At -F $'\t' -c "SELECT * FROM bench.cost_bytes($hu, 'h1000')" >"$out/bytes.tsv"
if [ "$(awk -F'\t' '$1 == "messages" { print $2 }' "$out/bytes.tsv")" != 1100 ]; then
	echo "bench: h1000 does not hold 1100 messages after the appends (see $out/bytes.tsv)" >&2
	exit 1
fi
psql -X -At -c "SELECT 'history_depth: ' || current_setting('chatpersist.history_depth')" >>"$out/env.txt"

# Every timed fast-forward save did what it claims: the 'c' conversations
# (chatpersist's and raw's) hold the array their version calls for, and no
# save was unchanged or had a conflict
check=$(psql -X -At -F ' ' <<'SQL'
SELECT (SELECT count(*) FILTER (WHERE c.checksum <> chatpersist.checksum(p.arr))
		FROM chatpersist.conversations c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4
		WHERE c.id LIKE 'c%')
	 + (SELECT count(*) FILTER (WHERE c.messages <> p.arr)
		FROM bench.raw_conv c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4),
	(SELECT string_agg(name || '=' || value, ' ' ORDER BY name) FROM chatpersist.stats()
	 WHERE name IN ('saves_updated', 'saves_merged', 'saves_unchanged', 'conflicts', 'appends'))
SQL
)
echo "check: conversations off their cycle: ${check%% *}; stats: ${check#* }" | tee -a "$out/env.txt"
if [ "${check%% *}" != 0 ] || ! grep -q "conflicts=0 .*saves_unchanged=0" <<<"$check"; then
	echo "bench: the workloads did not do what they should (see above)" >&2
	exit 1
fi

echo "== report"
bash "$bench/cost_report.sh" "$out"

elapsed=$(($(date +%s) - started))
echo "elapsed: $((elapsed / 60)) min $((elapsed % 60)) s" | tee -a "$out/env.txt"
echo "output: $out"
