#!/usr/bin/env bash
# report.sh: the tables, targets and plot of a benchmark run.
#
#   bash test/bench/report.sh test/bench/out/latest [mode]
#
# Reads tps.tsv, micro.tsv and memory.tsv of the run's folder (run.sh
# writes them, then calls this), prints the medians, their ratios to the
# raw UPDATE and every target met or missed, and writes results.md (the
# same in Markdown, for docs/performance.md), medians.tsv and
# throughput.png (gnuplot).  Needs only awk (any) and gnuplot.
set -euo pipefail

dir=${1:?usage: report.sh OUTDIR [mode]}
mode=${2:-}
cd "$dir"

# The medians of tps.tsv: size clients workload median rounds min max
awk -F'\t' '
	NR > 1 { k = $1 SUBSEP $2 SUBSEP $4; n[k]++; v[k, n[k]] = $5 }
	END {
		for (k in n) {
			m = n[k]
			for (i = 1; i <= m; i++) a[i] = v[k, i] + 0
			for (i = 2; i <= m; i++) {
				x = a[i]
				for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
				a[j + 1] = x
			}
			med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			split(k, p, SUBSEP)
			printf "%s\t%s\t%s\t%.2f\t%d\t%.2f\t%.2f\n", p[1], p[2], p[3], med, m, a[1], a[m]
		}
	}' tps.tsv | sort -t$'\t' -k1,1n -k2,2n -k3,3 >medians.tsv

# The medians of micro.tsv: name size median_us
awk -F'\t' '
	NR > 1 { k = $1 SUBSEP $2; n[k]++; v[k, n[k]] = $4 }
	END {
		for (k in n) {
			m = n[k]
			for (i = 1; i <= m; i++) a[i] = v[k, i] + 0
			for (i = 2; i <= m; i++) {
				x = a[i]
				for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
				a[j + 1] = x
			}
			med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			split(k, p, SUBSEP)
			printf "%s\t%s\t%.2f\n", p[1], p[2], med
		}
	}' micro.tsv | sort >micro_medians.tsv

# raw_lz4 last: the plot's columns follow this order
workloads="raw raw_hist pl_ff pl_stale cp_ff cp_stale cp_append raw_lz4"

# All tables and targets, in Markdown; the terminal gets the same text
awk -F'\t' -v workloads="$workloads" -v mode="$mode" '
	FILENAME == "medians.tsv" {
		tps[$1, $2, $3] = $4
		if ($6 > 0 && $7 / $6 > spread[$1, $2]) spread[$1, $2] = $7 / $6
		if (!($1 in seen_s)) { seen_s[$1] = 1; sizes[++ns] = $1 }
		if (!($2 in seen_c)) { seen_c[$2] = 1; clients[++nc] = $2 }
		next
	}
	FILENAME == "micro_medians.tsv" { micro[$1, $2] = $3; next }
	FILENAME == "memory.tsv" && FNR > 1 {
		nm++; msaves[nm] = $1; mrss[nm] = $2; manon[nm] = $3; mshmem[nm] = $5; mctx[nm] = $6
		next
	}
	function name(w) { gsub("_", "-", w); return w }
	function verdict(ok) { return ok ? "**met**" : "**missed**" }
	END {
		nw = split(workloads, ws, " ")
		# sizes and clients in numeric order (they come sorted from medians.tsv)
		print "### Throughput (median tps; ratio to raw at the same size and clients)"
		print ""
		print "spread: the largest max/min of one workload'"'"'s rounds in that row (run-to-run noise)."
		print ""
		hdr = "| messages | clients |"
		sep = "|---:|---:|"
		for (i = 1; i <= nw; i++) { hdr = hdr " " name(ws[i]) " |"; sep = sep "---:|" }
		hdr = hdr " spread |"; sep = sep "---:|"
		print hdr; print sep
		for (a = 1; a <= ns; a++) for (b = 1; b <= nc; b++) {
			s = sizes[a]; c = clients[b]
			if (!((s, c, "raw") in tps)) continue
			line = "| " s " | " c " |"
			raw = tps[s, c, "raw"]
			for (i = 1; i <= nw; i++) {
				w = ws[i]
				if (!((s, c, w) in tps)) { line = line " |"; continue }
				if (w == "raw") line = line sprintf(" %.0f |", raw)
				else line = line sprintf(" %.0f (%.2fx) |", tps[s, c, w], tps[s, c, w] / raw)
			}
			print line sprintf(" %.1fx |", spread[s, c])
		}
		print ""
		if ((sizes[1], clients[1], "raw_hist") in tps) {
			print "Against the floor for a save that keeps history (raw-hist: the raw UPDATE plus archiving and pruning):"
			print ""
			print "| messages | clients | raw-hist / raw | cp-ff / raw-hist | cp-stale / raw-hist | cp-append / raw-hist |"
			print "|---:|---:|---:|---:|---:|---:|"
			for (a = 1; a <= ns; a++) for (b = 1; b <= nc; b++) {
				s = sizes[a]; c = clients[b]
				if (!((s, c, "raw_hist") in tps) || !((s, c, "raw") in tps)) continue
				f = tps[s, c, "raw_hist"]
				printf "| %s | %s | %.2fx | %.2fx | %.2fx | %.2fx |\n", s, c, f / tps[s, c, "raw"], tps[s, c, "cp_ff"] / f, tps[s, c, "cp_stale"] / f, tps[s, c, "cp_append"] / f
			}
			print ""
		}

		if ((sizes[1], clients[1], "raw_lz4") in tps) {
			print "Against the raw UPDATE on an lz4 table (raw-lz4: chatpersist'"'"'s compression, so the compressor is no longer a difference):"
			print ""
			print "| messages | clients | raw-lz4 / raw | cp-ff / raw-lz4 | cp-stale / raw-lz4 | cp-append / raw-lz4 |"
			print "|---:|---:|---:|---:|---:|---:|"
			for (a = 1; a <= ns; a++) for (b = 1; b <= nc; b++) {
				s = sizes[a]; c = clients[b]
				if (!((s, c, "raw_lz4") in tps) || !((s, c, "raw") in tps)) continue
				f = tps[s, c, "raw_lz4"]
				line = sprintf("| %s | %s | %.2fx |", s, c, f / tps[s, c, "raw"])
				split("cp_ff cp_stale cp_append", cw, " ")
				for (i = 1; i <= 3; i++)
					line = line (((s, c, cw[i]) in tps) ? sprintf(" %.2fx |", tps[s, c, cw[i]] / f) : " |")
				print line
			}
			print ""
		}

		print "### Microbenchmarks (median microseconds per call)"
		print ""
		print "| what | messages | chatpersist | SQL | ratio |"
		print "|---|---:|---:|---:|---:|"
		min_ck = 1e18
		for (a = 1; a <= 4; a++) {
			s = (a == 1) ? 10 : (a == 2) ? 100 : (a == 3) ? 1000 : 10000
			if (!(("checksum", s) in micro)) continue
			r = micro["md5", s] / micro["checksum", s]
			if (r < min_ck) { min_ck = r; min_ck_s = s }
			printf "| checksum(m) vs md5(m::text) | %d | %.1f | %.1f | %.1fx |\n", s, micro["checksum", s], micro["md5", s], r
		}
		mr3 = micro["merge_sql3", 1000] / micro["merge_cp3", 1000]
		mr2 = micro["merge_sql2", 1000] / micro["merge_cp2", 1000]
		printf "| merge_messages(base, a, b) vs bench.sql_merge | 1000 + 1000 | %.0f | %.0f | %.1fx |\n", micro["merge_cp3", 1000], micro["merge_sql3", 1000], mr3
		printf "| merge_messages(a, b) vs bench.sql_merge(NULL, a, b) | 1000 + 1000 | %.0f | %.0f | %.1fx |\n", micro["merge_cp2", 1000], micro["merge_sql2", 1000], mr2
		print ""

		print "### Memory (one backend, kB)"
		print ""
		print "| saves | VmRSS | RssShmem | VmRSS - RssShmem | RssAnon | memory contexts |"
		print "|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nm; i++)
			printf "| %d | %d | %d | %d | %d | %d |\n", msaves[i], mrss[i], mshmem[i], mrss[i] - mshmem[i], manon[i], mctx[i]
		print ""

		print "### Targets"
		print ""
		print "| target | measured | |"
		print "|---|---|---|"
		# fast-forward and stale saves against raw, at every size and client count
		split("cp_ff 0.95 cp_stale 0.85", tg, " ")
		for (t = 1; t <= 3; t += 2) {
			w = tg[t]; lim = tg[t + 1]; min = 1e18
			for (a = 1; a <= ns; a++) for (b = 1; b <= nc; b++) {
				s = sizes[a]; c = clients[b]
				if (!((s, c, w) in tps) || !((s, c, "raw") in tps)) continue
				r = tps[s, c, w] / tps[s, c, "raw"]
				if (r < min) { min = r; at = s " messages, " c " client(s)" }
			}
			if (min < 1e18)
				printf "| %s save >= %.2fx raw at every size | lowest %.2fx (%s) | %s |\n", (w == "cp_ff") ? "fast-forward" : "stale-version merge", lim, min, at, verdict(min >= lim)
		}
		min = 1e18
		for (b = 1; b <= nc; b++) {
			c = clients[b]
			if (!((1000, c, "cp_ff") in tps)) continue
			r = tps[1000, c, "cp_ff"] / tps[1000, c, "raw"]
			if (r < min) { min = r; at = c " client(s)" }
		}
		if (min < 1e18)
			printf "| at 1000 messages, fast-forward save >= 1.2x raw | lowest %.2fx (%s) | %s |\n", min, at, verdict(min >= 1.2)
		if (min_ck < 1e18)
			printf "| checksum >= 10x md5(m::text) | lowest %.1fx (%d messages) | %s |\n", min_ck, min_ck_s, verdict(min_ck >= 10)
		if (mr3 > 0)
			printf "| merge_messages >= 20x the SQL merge at 1000 + 1000 | %.1fx three-way, %.1fx two-way | %s |\n", mr3, mr2, verdict(mr3 >= 20 && mr2 >= 20)
		# falloff from the smallest to the largest size, against raw
		lo = sizes[1]; hi = sizes[ns]
		for (i = 1; i <= nw; i++) {
			w = ws[i]
			if (w !~ /^cp_/) continue
			worst = 1e18; txt = ""
			for (b = 1; b <= nc; b++) {
				c = clients[b]
				if (!((lo, c, w) in tps) || !((hi, c, w) in tps) || lo == hi) continue
				fw = tps[lo, c, w] / tps[hi, c, w]
				fr = tps[lo, c, "raw"] / tps[hi, c, "raw"]
				txt = txt sprintf("%s%s: %.0fx vs raw %.0fx", txt == "" ? "" : "; ", c " cl.", fw, fr)
				if (fr / fw < worst) worst = fr / fw
			}
			if (txt != "")
				printf "| %s throughput falls no faster than raw from %d to %d messages | tps(%d)/tps(%d) %s | %s |\n", name(w), lo, hi, lo, hi, txt, verdict(worst >= 1)
		}
		if (nm >= 2) {
			p1 = mrss[2] - mshmem[2]; pn = mrss[nm] - mshmem[nm]
			printf "| backend RSS after %d saves within 5%% of after %d | VmRSS - RssShmem %+.1f%% (%d -> %d kB); VmRSS %+.1f%% (%d -> %d kB, shared buffers touched); contexts %d -> %d kB | %s |\n", msaves[nm], msaves[2], 100 * (pn - p1) / p1, p1, pn, 100 * (mrss[nm] - mrss[2]) / mrss[2], mrss[2], mrss[nm], mctx[2], mctx[nm], verdict(pn <= 1.05 * p1)
		}
	}' medians.tsv micro_medians.tsv memory.tsv >results.md

cat results.md

# The plot: median tps against conversation size, one line per workload,
# one panel per client count
clients=$(cut -f2 medians.tsv | sort -n -u | tr '\n' ' ')
for c in $clients; do
	awk -F'\t' -v c="$c" -v workloads="$workloads" '
		$2 == c { t[$1, $3] = $4; if (!($1 in s)) { s[$1] = 1; order[++n] = $1 } }
		END {
			nw = split(workloads, ws, " ")
			for (i = 1; i <= n; i++) {
				line = order[i]
				for (j = 1; j <= nw; j++) line = line "\t" (((order[i], ws[j]) in t) ? t[order[i], ws[j]] : "NaN")
				print line
			}
		}' medians.tsv | sort -n >"plot_c$c.dat"
done
ncl=$(echo "$clients" | wc -w)
{
	echo "set terminal pngcairo size $((460 * ncl)),520 font 'sans,10'"
	echo "set output 'throughput.png'"
	echo "set multiplot layout 1,$ncl title 'chatpersist saves: median throughput against conversation size${mode:+ ($mode run)}'"
	echo "set logscale xy"
	echo "set xlabel 'messages in the conversation (about 300 bytes each)'"
	echo "set ylabel 'transactions per second'"
	echo "set xtics (10, 100, 1000, 10000)"
	echo "set grid"
	echo "set key bottom left font 'sans,9'"
	echo "set xrange [7:14000]"
	echo "set datafile missing 'NaN'"
	for c in $clients; do
		echo "set title '$c client$([ "$c" = 1 ] || echo s)'"
		echo "plot 'plot_c$c.dat' using 1:2 with linespoints lw 2 dt 2 lc rgb 'black' title 'raw UPDATE', \\"
		echo "     '' using 1:3 with linespoints lw 1 dt 2 lc rgb '#ff7f0e' title 'raw UPDATE + history', \\"
		echo "     '' using 1:4 with linespoints lw 1 lc rgb '#999999' title 'PL/pgSQL fast-forward', \\"
		echo "     '' using 1:5 with linespoints lw 1 dt 3 lc rgb '#999999' title 'PL/pgSQL stale', \\"
		echo "     '' using 1:6 with linespoints lw 2 lc rgb '#1f77b4' title 'chatpersist fast-forward', \\"
		echo "     '' using 1:7 with linespoints lw 2 lc rgb '#d62728' title 'chatpersist stale (merge)', \\"
		echo "     '' using 1:8 with linespoints lw 2 lc rgb '#2ca02c' title 'chatpersist append', \\"
		echo "     '' using 1:9 with linespoints lw 1 dt 4 lc rgb 'black' title 'raw UPDATE, lz4 table'"
	done
	echo "unset multiplot"
} >plot.gp
gnuplot plot.gp
echo
echo "plot: $dir/throughput.png"
