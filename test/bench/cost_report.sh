#!/usr/bin/env bash
# cost_report.sh: the tables and targets of a cost run (run.sh --cost).
#
#   bash test/bench/cost_report.sh test/bench/out/latest
#
# Reads cost_tps.tsv, wal.tsv, bytes.tsv and growth.tsv of the run's folder
# (cost.sh writes them, then calls this), prints the medians, the ratios
# measured in that run and issue 13's targets met or missed, and writes
# the same Markdown to cost.md (for docs/performance.md).  Needs only awk.
set -euo pipefail

dir=${1:?usage: cost_report.sh OUTDIR}
cd "$dir"
for f in cost_tps.tsv wal.tsv bytes.tsv growth.tsv; do
	[ -s "$f" ] || { echo "cost_report: $dir/$f is missing or empty" >&2; exit 1; }
done

awk -F'\t' '
	function median(list,    a, m, i, j, x) {
		m = split(list, a, " ")
		for (i = 2; i <= m; i++) {
			x = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
		return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
	}
	function spread(list,    a, m, i, lo, hi) {
		m = split(list, a, " "); lo = 1e18; hi = 0
		for (i = 1; i <= m; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
		return lo > 0 ? hi / lo : 0
	}
	function verdict(ok) { return ok ? "**met**" : "**missed**" }
	function kb(b) { return sprintf("%.1f kB", b / 1024) }
	# a ratio, with three decimals when it is small
	function rx(r) { return sprintf(r < 0.1 ? "%.3fx" : "%.2fx", r) }
	# a large ratio (WAL, bytes): whole numbers from 10 on
	function big(r) { return sprintf(r < 10 ? "%.1fx" : "%.0fx", r) }
	FILENAME == "cost_tps.tsv" && FNR > 1 {
		k = $4 SUBSEP $1
		runs[k] = runs[k] " " $5; nr[k]++
		if (!($1 in seen)) { seen[$1] = 1; sizes_all[++nsa] = $1 }
		next
	}
	FILENAME == "wal.tsv" && FNR > 1 {
		wal[$2, $1] = $4 / $3
		if (!(($1) in wseen)) { wseen[$1] = 1; wsizes[++nws] = $1 }
		next
	}
	FILENAME == "bytes.tsv" { bytes[$1] = $2; next }
	FILENAME == "growth.tsv" && FNR > 1 && $3 != "wal" && $3 != 0 {
		k = $1 SUBSEP $2
		grow[k] = grow[k] " " ($4 / $6); gmost[k] = ($5 > gmost[k]) ? $5 : gmost[k]
		next
	}
	END {
		for (k in runs) { med[k] = median(runs[k]); spr[k] = spread(runs[k]) }
		for (k in grow) gmed[k] = median(grow[k])

		print "### Throughput (pgbench -M prepared, 2 clients; median tps of the rounds; ratio of the medians)"
		print ""
		print "spread: the largest max/min of any workload'"'"'s rounds in that row (run-to-run noise). floor: the hand-written write plus the history the contract keeps (the replaced version archived, versions beyond 10 pruned, in the same statement: rpm-hist, raw-hist); the last ratio is chatpersist against it."
		print ""
		print "| what | messages | hand-written | floor with history | chatpersist | ratio | ratio to the floor | spread |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|"
		# append sizes in numeric order
		n = 0
		for (i = 1; i <= nws; i++) asz[++n] = wsizes[i]
		for (i = 2; i <= n; i++) { x = asz[i]; for (j = i - 1; j >= 1 && asz[j] + 0 > x + 0; j--) asz[j + 1] = asz[j]; asz[j + 1] = x }
		minr = 1e18
		for (i = 1; i <= n; i++) {
			s = asz[i]; b = med["rpm_append", s]; c = med["cp_append_new", s]
			if (b == "" || c == "") continue
			r = c / b; ratio_app[s] = r
			if (r < minr) { minr = r; minr_s = s }
			sp = spr["rpm_append", s] > spr["cp_append_new", s] ? spr["rpm_append", s] : spr["cp_append_new", s]
			if (spr["rpm_hist", s] > sp) sp = spr["rpm_hist", s]
			f = med["rpm_hist", s]; if (f > 0) floor_app[s] = c / f
			printf "| rpm-append vs `append_messages` (1 new message) | %s | %.0f | %s | %.0f | %s | %s | %.1fx |\n", s, b, (f > 0 ? sprintf("%.0f", f) : "-"), c, rx(r), (f > 0 ? rx(c / f) : "-"), sp
		}
		if (("raw", 10) in med) {
			ffr = med["cp_ff", 10] / med["raw", 10]
			sp = spr["raw", 10] > spr["cp_ff", 10] ? spr["raw", 10] : spr["cp_ff", 10]
			if (spr["raw_hist", 10] > sp) sp = spr["raw_hist", 10]
			f = med["raw_hist", 10]; if (f > 0) floor_ff = med["cp_ff", 10] / f
			printf "| raw CAS `UPDATE` vs fast-forward `save_conversation` | 10 | %.0f | %s | %.0f | %.2fx | %s | %.1fx |\n", med["raw", 10], (f > 0 ? sprintf("%.0f", f) : "-"), med["cp_ff", 10], ffr, (f > 0 ? rx(floor_ff) : "-"), sp
		}
		if (("rpm_load", 1000) in med) {
			ldr = med["cp_load", 1000] / med["rpm_load", 1000]
			sp = spr["rpm_load", 1000] > spr["cp_load", 1000] ? spr["rpm_load", 1000] : spr["cp_load", 1000]
			printf "| rpm-load (`jsonb_agg` of the rows) vs `load_conversation` | 1000 | %.0f | - | %.0f | %.2fx | - | %.1fx |\n", med["rpm_load", 1000], med["cp_load", 1000], ldr, sp
		}
		print ""
		print "Messages appended per conversation within one run (median of the rounds; the conversations are brought back to their length after each run):"
		print ""
		print "| messages | rpm-append | append_messages |"
		print "|---:|---:|---:|"
		for (i = 1; i <= n; i++) {
			s = asz[i]
			printf "| %s | %.1f (at most %d) | %.1f (at most %d) |\n", s, gmed["rpm_append", s], gmost["rpm_append", s], gmed["cp_append_new", s], gmost["cp_append_new", s]
		}
		print ""

		print "### WAL per call (pg_current_wal_insert_lsn() difference over the calls, divided by them)"
		print ""
		print "| messages | rpm-append | rpm-hist (floor) | `append_messages` (1 new message) | ratio | ratio to the floor | `save_conversation`, whole array, 1 message changed | ratio to rpm-append |"
		print "|---:|---:|---:|---:|---:|---:|---:|---:|"
		maxwa = 0; maxwf = 0
		for (i = 1; i <= n; i++) {
			s = asz[i]; b = wal["rpm_append", s]
			if (b == "") continue
			ra = wal["cp_append_new", s] / b; rf = wal["cp_ff", s] / b
			wal_app[s] = ra; wal_ff[s] = rf
			if (ra > maxwa) { maxwa = ra; maxwa_s = s }
			if (rf > maxwf) { maxwf = rf; maxwf_s = s }
			fw = wal["rpm_hist", s]
			printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s, kb(b), (fw > 0 ? kb(fw) : "-"), kb(wal["cp_append_new", s]), big(ra), (fw > 0 ? big(wal["cp_append_new", s] / fw) : "-"), kb(wal["cp_ff", s]), big(rf)
		}
		print ""

		tot = bytes["conversation_row"] + bytes["message_rows"] + bytes["history_rows"]
		alone = bytes["messages_alone"]
		rpm = bytes["rpm_conversation_row"] + bytes["rpm_message_rows"]
		print "### Bytes of one conversation: 1000 messages, then 100 one-message appends"
		print ""
		print "Each row counted by `pg_column_size(row.*)`: the tuple header and every value as stored, a TOASTed value at its compressed size (the TOAST chunks'"'"' own tuple headers and the indexes are not counted). The messages alone: `pg_column_size` of each message of the loaded array (jsonb), summed."
		print ""
		print "| | bytes |"
		print "|---|---:|"
		printf "| conversation row | %d |\n", bytes["conversation_row"]
		printf "| message rows | %d |\n", bytes["message_rows"]
		printf "| history rows (%d versions) | %d |\n", bytes["history_versions"], bytes["history_rows"]
		printf "| **total** | **%d** |\n", tot
		printf "| the messages alone (%d messages) | %d |\n", bytes["messages"], alone
		printf "| total / messages alone | **%.2fx** |\n", tot / alone
		printf "| hand-written row per message: conversation row + %d message rows, no history | %d (%.2fx) |\n", bytes["messages"], rpm, rpm / alone
		printf "| a reload: `load_conversation`'"'"'s messages as JSON text | %d |\n", bytes["reload_text"]
		print ""

		lo = asz[1]; hi = asz[n]
		print "### Issue 13'"'"'s targets, on this code"
		print ""
		print "| what | target | measured | |"
		print "|---|---|---|---|"
		txt = ""
		for (i = 1; i <= n; i++) if (asz[i] in ratio_app) txt = txt sprintf("%s%s: %s", txt == "" ? "" : ", ", asz[i], rx(ratio_app[asz[i]]))
		if (minr < 1e18)
			printf "| `append_messages` rate, at every length | >= 0.8x the row-per-message write | %s | %s |\n", txt, verdict(minr >= 0.8)
		txt = ""
		for (i = 1; i <= n; i++) if (asz[i] in floor_app) txt = txt sprintf("%s%s: %s", txt == "" ? "" : ", ", asz[i], rx(floor_app[asz[i]]))
		if (txt != "")
			printf "| (the same against the floor with history, rpm-hist) | (no target) | %s | |\n", txt
		if (lo != hi && med["cp_append_new", lo] > 0) {
			fl = med["cp_append_new", hi] / med["cp_append_new", lo]
			flb = med["rpm_append", hi] / med["rpm_append", lo]
			printf "| `append_messages` rate, %s messages vs %s | >= 0.8x (flat) | %s (%.0f vs %.0f tps; the row-per-message write: %s) | %s |\n", hi, lo, rx(fl), med["cp_append_new", hi], med["cp_append_new", lo], rx(flb), verdict(fl >= 0.8)
		}
		txt = ""
		for (i = 1; i <= n; i++) if (asz[i] in wal_app) txt = txt sprintf("%s%s: %s (%s vs %s)", txt == "" ? "" : ", ", asz[i], big(wal_app[asz[i]]), kb(wal["cp_append_new", asz[i]]), kb(wal["rpm_append", asz[i]]))
		if (maxwa > 0)
			printf "| WAL per appended message | <= 2x the row-per-message write | %s | %s |\n", txt, verdict(maxwa <= 2)
		txt = ""
		for (i = 1; i <= n; i++) if (asz[i] in wal_ff) txt = txt sprintf("%s%s: %s (%s)", txt == "" ? "" : ", ", asz[i], big(wal_ff[asz[i]]), kb(wal["cp_ff", asz[i]]))
		if (maxwf > 0)
			printf "| whole-array save with one message changed | WAL <= 3x that single-row write, at any length | %s | %s |\n", txt, verdict(maxwf <= 3)
		if (alone > 0)
			printf "| conversation + message rows + history, after 100 one-message writes to a 1000-message conversation | <= 1.3x the messages alone | %.2fx (%s vs %s) | %s |\n", tot / alone, kb(tot), kb(alone), verdict(tot / alone <= 1.3)
		if (ffr != "")
			printf "| fast-forward save at 10 messages | >= 0.95x a hand-written CAS UPDATE of a jsonb row | %.2fx | %s |\n", ffr, verdict(ffr >= 0.95)
		if (floor_ff != "")
			printf "| (the same against the floor with history, raw-hist) | (no target) | %s | |\n", rx(floor_ff)
		if (ldr != "")
			printf "| `load_conversation` at 1000 messages | >= 0.7x 1.0'"'"'s load | %.0f tps, %.0f us per call (2 clients), %.2fx the row-per-message load | against 1.0: this ratio over 1.0'"'"'s (docs/performance.md) must be >= 0.7 |\n", med["cp_load", 1000], 2e6 / med["cp_load", 1000], ldr
	}' cost_tps.tsv wal.tsv bytes.tsv growth.tsv >cost.md

cat cost.md
