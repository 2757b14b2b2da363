#!/usr/bin/env bash
# run.sh: the chatpersist benchmark suite.
#
#   bash test/bench/run.sh            # the full run (about 18 minutes)
#   bash test/bench/run.sh --quick    # 2 clients only, shorter (about 3 minutes)
#   bash test/bench/run.sh --cost     # issue 13's 2.0 cost targets against a
#                                     # hand-written row-per-message baseline
#                                     # (about 6 minutes; see test/bench/cost.sh)
#   bash test/bench/run.sh --delta    # issue 14: bytes and time of
#                                     # messages_since after one change
#                                     # against a reload (about 1 minute;
#                                     # see test/bench/delta_bytes.sh)
#   bash test/bench/run.sh --client   # from node-postgres (a Pool of 4):
#                                     # whole-array saves against the CAS
#                                     # UPDATE on the lz4 and the pglz raw
#                                     # tables, appends against the
#                                     # row-per-message write (about 5
#                                     # minutes; see test/bench/client.mjs)
#
# Runs as root on Debian 12 with PostgreSQL 15, like test/run.sh: installs
# what is missing (test/setup.sh, then test/bench/packages), builds and
# installs the extension (PG_CONFIG, default PostgreSQL 15's: test/lib.sh),
# starts a throwaway cluster (test/cluster.sh, removed at the end, also on
# failure) and measures:
#
#   - save throughput with pgbench (-M prepared), for conversations of 10,
#     100, 1000 and 10000 messages of about 300 bytes and 1, 2 and 8
#     clients, of six workloads run side by side: in every round each
#     workload runs for a fixed time, one after the other (the order turns
#     from round to round); the result is the median tps of the rounds and
#     its ratio to the raw UPDATE's median of the same size and clients;
#   - checksum(m) against md5(m::text), and merge_messages against the same
#     merge in SQL at 1000 + 1000 messages;
#   - the backend's memory after 10,000 and after 200,000 saves in one
#     session.
#
# The workloads (test/bench/workloads/*.sql, payloads and data in
# setup.sql and load.sql, method in docs/performance.md):
#   raw        a hand-written UPDATE ... SET messages = ..., version =
#              version + 1 WHERE ... AND version = ... on a plain table
#   raw-lz4    the same UPDATE on a copy of that table whose messages
#              column is SET COMPRESSION lz4, as chatpersist's columns are
#              (not in the default list: BENCH_WORKLOADS="raw raw_lz4 ...")
#   raw-hist   the same, plus archiving the replaced row to a history
#              table and pruning it (the floor for any save with history)
#   pl-ff      the save contract in PL/pgSQL (plpgsql_save.sql), current version
#   pl-stale   the same, one version behind: the SQL merge (sql_merge.sql)
#   cp-ff      chatpersist.save_conversation, current version (fast-forward)
#   cp-stale   chatpersist.save_conversation, one version behind (merge)
#   cp-append  chatpersist.append_messages of one message
# (--cost adds rpm-append, rpm-hist, cp-append-new, rpm-load and cp-load:
# see test/bench/cost.sh; --client runs cp-ff, raw-lz4, raw, cp-append-new
# and rpm-append from node instead of pgbench: see test/bench/client.mjs)
#
# Output: a table of medians and ratios and the targets on the terminal;
# in test/bench/out/<date>-<mode>/ (test/bench/out/latest links to the
# newest) the raw numbers (tps.tsv, micro.tsv, memory.tsv), the tables
# (results.md), the plot (throughput.png) and the log.
#
# Settings from the environment, for experiments: BENCH_ROUNDS,
# BENCH_SECONDS, BENCH_CLIENTS ("1 2 8"), BENCH_SIZES ("10 100 1000 10000"),
# BENCH_WORKLOADS, BENCH_MEMORY ("10000 200000"; none skips it); for --cost, BENCH_ROUNDS
# (7), BENCH_SECONDS (3), BENCH_SIZES ("10 1000 10000"), BENCH_WAL_CALLS
# (200) and BENCH_APPEND_USERS_10 (8000), see cost.sh; for --client,
# BENCH_ROUNDS (5), BENCH_SECONDS (2), BENCH_SIZES ("10 1000 10000"),
# BENCH_WARMUP (1), BENCH_CONNECTIONS (4) and BENCH_APPEND_USERS_10.
set -euo pipefail

cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
bench=$top/test/bench
. test/lib.sh

mode=full
for arg in "$@"; do
	case $arg in
		--quick) mode=quick ;;
		--cost) mode=cost ;;
		--delta) mode=delta ;;
		--client) mode=client ;;
		-h | --help)
			sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
			exit 0
			;;
		*)
			echo "usage: bash test/bench/run.sh [--quick | --cost | --delta | --client]" >&2
			exit 2
			;;
	esac
done

if [ "$mode" = cost ]; then
	rounds=${BENCH_ROUNDS:-7}
	seconds=${BENCH_SECONDS:-3}
	clients_list=2
	warmup=1
elif [ "$mode" = client ]; then
	rounds=${BENCH_ROUNDS:-5}
	seconds=${BENCH_SECONDS:-2}
	clients_list=${BENCH_CONNECTIONS:-4}
elif [ "$mode" = quick ]; then
	rounds=${BENCH_ROUNDS:-3}
	seconds=${BENCH_SECONDS:-1}
	clients_list=${BENCH_CLIENTS:-"2"}
	micro_rounds=3
	micro_scale=4			# iterations divided by this
	memory_steps=${BENCH_MEMORY:-"10000 50000"}
	warmup=0
else
	rounds=${BENCH_ROUNDS:-5}
	seconds=${BENCH_SECONDS:-2}
	clients_list=${BENCH_CLIENTS:-"1 2 8"}
	micro_rounds=5
	micro_scale=1
	memory_steps=${BENCH_MEMORY:-"10000 200000"}
	warmup=1
fi
if [ "$mode" = cost ] || [ "$mode" = client ]; then
	sizes=${BENCH_SIZES:-"10 1000 10000"}
	# cost.sql's append conversations come in these sizes only
	for s in $sizes; do
		case $s in
			10 | 1000 | 10000) ;;
			*) echo "bench: --$mode measures sizes 10, 1000 and 10000, not $s" >&2; exit 2 ;;
		esac
	done
else
	sizes=${BENCH_SIZES:-"10 100 1000 10000"}
fi
workloads=${BENCH_WORKLOADS:-"raw raw_hist pl_ff pl_stale cp_ff cp_stale cp_append"}
read -r -a workload_arr <<<"$workloads"

# Conversations per size: many, so that each client has its own (clients
# never wait for each other's row locks), and a multiple of 8.  The cost
# and client modes do not run size 100: few conversations there, to load
# quickly.
users_for() {
	case $1 in
		10) echo 1000 ;;
		100) case $mode in cost | client) echo 8 ;; *) echo 1000 ;; esac ;;
		1000) echo 200 ;;
		*) echo 40 ;;
	esac
}

# The cost mode's append conversations (cost.sql): these grow by one
# message per call during a run, so at 10 messages there are many, to keep
# the growth within a run small next to the length
append_users_for() {
	case $1 in
		10) echo "${BENCH_APPEND_USERS_10:-8000}" ;;
		1000) echo 200 ;;
		*) echo 40 ;;
	esac
}

# The conversations a workload picks from
users_of() {
	case $1 in
		rpm_* | cp_append_new) append_users_for "$2" ;;
		*) users_for "$2" ;;
	esac
}

started=$(date +%s)

# What the benchmark needs beyond the build and test dependencies
cp_setup || { echo "bench: setup failed (run test/setup.sh to see why)" >&2; exit 1; }
mapfile -t packages < <(awk '{ sub(/#.*/, "") } NF { print $1 }' "$bench/packages")
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: missing packages: ${missing[*]}; run as root (it uses apt-get)" >&2
		exit 1
	fi
	echo "bench: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The client mode runs examples/node's node-postgres (test/setup.sh
# installs node and npm; npm ci, as test/run.sh does, the packages)
if [ "$mode" = client ] && [ ! -d examples/node/node_modules/pg ]; then
	echo "bench: npm ci in examples/node"
	(cd examples/node && npm ci --no-audit --no-fund --loglevel=error) ||
		{ echo "bench: npm ci in examples/node failed" >&2; exit 1; }
fi

cp_pg_env

echo "== build and install ($PG_CONFIG)"
cp_build --clean

stamp=$(date +%Y%m%d-%H%M%S)
out=$bench/out/$stamp-$mode
mkdir -p "$out"
ln -sfn "$stamp-$mode" "$bench/out/latest"
log=$out/bench.log
: >"$log"

# a private copy of the server with this build (the system's installation
# is left alone, see cp_private_install) and a cluster of it;
# fsync off and no autovacuum come from cluster.sh; tables are vacuumed
# between runs instead, so no run pays for another's garbage
cp_own_cluster "shared_preload_libraries = 'chatpersist'" \
	"shared_buffers = 1GB" \
	"max_wal_size = 8GB" \
	"checkpoint_timeout = 1h" >>"$log"

psql_q() {
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}

{
	echo "mode: $mode (rounds $rounds x ${seconds}s, clients $clients_list, sizes $sizes)"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "commit: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "server: $(psql -X -At -c 'SELECT version()')"
	echo "cpu: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "memory: $(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GB"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"
cat "$out/env.txt"

if [ "$mode" = delta ]; then
	echo "== messages_since after one change, against a reload"
	createdb chatpersist_delta_bench
	psql_q -d chatpersist_delta_bench -c "CREATE EXTENSION chatpersist"
	PGDATABASE=chatpersist_delta_bench bash "$bench/delta_bytes.sh" | tee "$out/results.md"
	echo "results in $out/results.md"
	exit 0
fi

echo "== data"
users_args=()
for s in 10 100 1000 10000; do
	users_args+=(-v "users_$s=$(users_for "$s")")
done
if [ "$mode" = cost ] || [ "$mode" = client ]; then
	{
		psql_q "${users_args[@]}" -f "$bench/setup.sql" -f "$bench/sql_merge.sql" \
			-f "$bench/plpgsql_save.sql"
		psql_q -f "$bench/load.sql"
		psql_q -v append_10="$(append_users_for 10)" -v append_1000="$(append_users_for 1000)" \
			-v append_10000="$(append_users_for 10000)" -f "$bench/cost.sql"
	} >>"$log"
else
	psql_q "${users_args[@]}" -f "$bench/setup.sql" -f "$bench/sql_merge.sql" \
		-f "$bench/plpgsql_save.sql" -f "$bench/micro.sql" -f "$bench/memory.sql" >>"$log"
	psql_q -f "$bench/load.sql" >>"$log"
fi

# Tables a workload writes, vacuumed after each of its runs
tables_of() {
	case $1 in
		raw) echo "bench.raw_conv" ;;
		raw_lz4) echo "bench.raw_lz4_conv" ;;
		raw_hist) echo "bench.rawh_conv bench.rawh_history" ;;
		pl_*) echo "bench.pl_conv bench.pl_history" ;;
		rpm_hist) echo "bench.rpm_conv bench.rpm_msg bench.rpm_hist" ;;
		rpm_*) echo "bench.rpm_conv bench.rpm_msg" ;;
		# 2.0's message rows and copies too (a 1.x schema has neither)
		cp_*) echo "chatpersist.conversations chatpersist.history chatpersist.messages chatpersist.history_messages" ;;
	esac
}

# Vacuum what a workload wrote (the tables that exist) and checkpoint,
# outside the timed runs
settle() {
	local args=() t
	for t in $(tables_of "$1"); do
		if [ "$(psql -X -At -c "SELECT to_regclass('$t') IS NOT NULL")" = t ]; then
			args+=(-c "VACUUM $t")
		fi
	done
	psql_q "${args[@]}" -c "CHECKPOINT" >>"$log"
}

# One pgbench run: workload size clients, then how long (-T seconds or -t
# transactions per client); prints the tps
run_pgbench() {
	local w=$1 s=$2 c=$3 j res tps
	shift 3
	j=$((c < 2 ? c : 2))
	if ! res=$(pgbench -n -M prepared -c "$c" -j "$j" "$@" \
		-D s="$s" -D users="$(users_of "$w" "$s")" -D nc="$c" \
		-f "$bench/workloads/$w.sql" 2>&1); then
		echo "$res" >>"$log"
		echo "bench: pgbench failed for $w at size $s with $c clients (see $log)" >&2
		cp_cluster_log_tail 40 >&2
		return 1
	fi
	echo "$res" >>"$log"
	if ! grep -q "number of failed transactions: 0 " <<<"$res"; then
		echo "bench: $w at size $s with $c clients had failed transactions (see $log)" >&2
		return 1
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$res")
	[ -n "$tps" ] || { echo "bench: no tps in pgbench's output (see $log)" >&2; return 1; }
	echo "$tps"
}

# Every timed transaction did what it claims: all conversations hold the
# array their version calls for, no save was unchanged or had a conflict
# (the conversations 'c<size>': cost.sql's 'a<size>' grow by appends)
cycle_check() {
	local check
	check=$(psql -X -At -F ' ' <<'SQL'
SELECT (SELECT count(*) FILTER (WHERE c.checksum <> chatpersist.checksum(p.arr))
		FROM chatpersist.conversations c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4
		WHERE c.id LIKE 'c%')
	 + (SELECT count(*) FILTER (WHERE c.messages <> p.arr)
		FROM bench.raw_conv c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4)
	 + (SELECT count(*) FILTER (WHERE c.messages <> p.arr)
		FROM bench.raw_lz4_conv c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4)
	 + (SELECT count(*) FILTER (WHERE c.messages <> p.arr)
		FROM bench.rawh_conv c
		JOIN bench.payload p ON p.size = substr(c.id, 2)::int AND p.k = c.version % 4)
	 + (SELECT count(*) FILTER (WHERE c.messages <> p.arr)
		FROM bench.pl_conv c
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
}

if [ "$mode" = cost ]; then
	# shellcheck source=test/bench/cost.sh
	. "$bench/cost.sh"
	exit 0
fi

if [ "$mode" = client ]; then
	if ! BENCH_OUT=$out BENCH_ROUNDS=$rounds BENCH_SECONDS=$seconds BENCH_SIZES=$sizes \
		BENCH_CONNECTIONS=$clients_list node "$bench/client.mjs" | tee -a "$log"; then
		echo "bench: client.mjs failed (see above)" >&2
		exit 1
	fi
	cycle_check
	elapsed=$(($(date +%s) - started))
	echo "elapsed: $((elapsed / 60)) min $((elapsed % 60)) s" | tee -a "$out/env.txt"
	echo "output: $out"
	exit 0
fi

echo "== throughput (pgbench: $rounds rounds x ${seconds}s per workload, medians)"
printf 'size\tclients\tround\tworkload\ttps\n' >"$out/tps.tsv"
nw=${#workload_arr[@]}
for s in $sizes; do
	if [ "$warmup" -eq 1 ]; then
		for w in "${workload_arr[@]}"; do
			run_pgbench "$w" "$s" 1 -T 1 >/dev/null
			settle "$w"
		done
	fi
	for c in $clients_list; do
		line="size $s, $c client(s):"
		for ((r = 0; r < rounds; r++)); do
			for ((i = 0; i < nw; i++)); do
				w=${workload_arr[$(((i + r) % nw))]}
				tps=$(run_pgbench "$w" "$s" "$c" -T "$seconds")
				printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$c" "$((r + 1))" "$w" "$tps" >>"$out/tps.tsv"
				settle "$w"
			done
			line="$line round $((r + 1))"
		done
		echo "$line"
	done
done

cycle_check

echo "== microbenchmarks ($micro_rounds rounds, medians)"
printf 'name\tsize\tround\tus_per_call\n' >"$out/micro.tsv"
for ((r = 1; r <= micro_rounds; r++)); do
	for s in 10 100 1000 10000; do
		n=$((200000 / s / micro_scale))
		[ "$n" -ge 10 ] || n=10
		for which in checksum md5; do
			us=$(psql -X -At -c "SELECT bench.micro_checksum($s, '$which', $n)")
			printf '%s\t%s\t%s\t%s\n' "$which" "$s" "$r" "$us" >>"$out/micro.tsv"
		done
	done
	for which in cp3 sql3 cp2 sql2; do
		case $which in cp*) n=$((400 / micro_scale)) ;; *) n=$((40 / micro_scale)) ;; esac
		us=$(psql -X -At -c "SELECT bench.micro_merge('$which', $n)")
		printf '%s\t%s\t%s\t%s\n' "merge_$which" 1000 "$r" "$us" >>"$out/micro.tsv"
	done
	echo "round $r"
done

if [ "$memory_steps" = none ]; then
	echo "== memory: skipped (BENCH_MEMORY=none)"
	printf 'saves\tvm_rss_kb\trss_anon_kb\trss_file_kb\trss_shmem_kb\tcontexts_kb\n' >"$out/memory.tsv"
else
	echo "== memory (one session: ${memory_steps// / then } saves)"
	psql_q -c "VACUUM" -c "CHECKPOINT" >>"$log"
	mem_script="SELECT 0 AS saves, * FROM bench.backend_memory();"
	prev=0
	for n in $memory_steps; do
		mem_script="$mem_script
	CALL bench.save_loop($((prev + 1)), $n);
	SELECT $n AS saves, * FROM bench.backend_memory();"
		prev=$n
	done
	{
		printf 'saves\tvm_rss_kb\trss_anon_kb\trss_file_kb\trss_shmem_kb\tcontexts_kb\n'
		psql_q -At -F $'\t' <<<"$mem_script"
	} >"$out/memory.tsv"
	awk -F'\t' '{ printf "%-8s %10s %12s %12s %13s %12s\n", $1, $2, $3, $4, $5, $6 }' "$out/memory.tsv"
fi

echo "== report"
bash "$bench/report.sh" "$out" "$mode"

elapsed=$(($(date +%s) - started))
echo "elapsed: $((elapsed / 60)) min $((elapsed % 60)) s" | tee -a "$out/env.txt"
echo "output: $out"
