// client.mjs: the benchmark's client-side mode, run by
// `bash test/bench/run.sh --client` on the bench's cluster and data
// (setup.sql, load.sql, cost.sql); not meant to be run by hand (it needs
// PGHOST, PGPORT, PGUSER and PGDATABASE of that cluster, and BENCH_OUT).
//
// pgbench measures the server with the payloads already on it.  This
// measures what an application sees: node-postgres (examples/node's `pg`),
// a Pool of BENCH_CONNECTIONS (4) connections and as many concurrent
// callers, each array serialised with JSON.stringify and sent over the
// wire on every call, named (prepared) statements on both sides.  Caller i
// of n only touches the conversations whose number is i modulo n, so no
// call waits for another's row lock and no compare-and-swap fails.
//
// The workloads, at each size of BENCH_SIZES (10 1000 10000):
//   cp-ff       chatpersist.save_conversation of the whole array with one
//               message changed, expected version the current one (the
//               client holds it, as a device does): status updated
//   raw-lz4     the hand-written compare-and-swap UPDATE of the same array
//               (SET messages = $3, version = version + 1 WHERE ... AND
//               version = $4) on bench.raw_lz4_conv (lz4, as chatpersist)
//   raw         the same UPDATE on bench.raw_conv (PostgreSQL's default,
//               pglz)
//   cp-append   chatpersist.append_messages of one new message (a fresh
//               id) to the conversations 'a<size>'
//   rpm-append  the hand-written row-per-message write of the same message,
//               one statement (workloads/rpm_append.sql's form): INSERT the
//               message row, UPDATE the conversation's version
// The arrays are setup.sql's S(0..3) cycle: the save at version v sends
// S((v+1) mod 4), so sizes never drift; the appended conversations grow
// during a run and are checked and reset after it (bench.cost_reset_cp
// and bench.cost_reset_rpm of cost.sql, outside the timing).
//
// Each round runs every workload of a group (the saves; the appends) for
// BENCH_SECONDS (2) at each size, the starting workload moving by one
// from round to round, after an untimed warm-up of BENCH_WARMUP (1)
// seconds each; the written tables are vacuumed and a checkpoint taken
// after every run, outside the timing.  The result is the median calls
// per second of BENCH_ROUNDS (5) rounds, and the ratios of those medians,
// all measured in this run.  Output: client_tps.tsv (every run) and
// client.md (the tables) in BENCH_OUT, the tables also on stdout.

import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { writeFileSync, appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

// examples/node's dependencies (run.sh installs them with npm ci)
const require = createRequire(new URL('../../examples/node/package.json', import.meta.url));
const pg = require('pg');

const env = process.env;
const rounds = Number(env.BENCH_ROUNDS ?? 5);
const seconds = Number(env.BENCH_SECONDS ?? 2);
const warmup = Number(env.BENCH_WARMUP ?? 1);
const nconn = Number(env.BENCH_CONNECTIONS ?? 4);
const sizes = (env.BENCH_SIZES ?? '10 1000 10000').trim().split(/\s+/).map(Number);
const out = env.BENCH_OUT;
if (!out) {
	console.error('client.mjs is part of run.sh: bash test/bench/run.sh --client');
	process.exit(2);
}

// bench.uid(u)
const uid = (u) => '00000000-0000-4000-8000-' + String(u).padStart(12, '0');

const pool = new pg.Pool({ max: nconn });
const admin = new pg.Client();
await admin.connect();

const q1 = async (text, values) => (await admin.query(text, values)).rows;

// The conversations per size: load.sql's (saves) and cost.sql's (appends)
const users = {};
const appendUsers = {};
for (const r of await q1('SELECT size, users FROM bench.sizes')) users[r.size] = r.users;
for (const r of await q1('SELECT size, users FROM bench.cost_sizes')) appendUsers[r.size] = r.users;
for (const s of sizes) {
	if (!users[s] || !appendUsers[s]) throw new Error(`no conversations of ${s} messages (sizes: 10 1000 10000)`);
}

// The arrays S(0..3) of each size, parsed as a client holds them
const payload = {};
for (const r of await q1('SELECT size, k, arr::text AS arr FROM bench.payload WHERE size = ANY($1) ORDER BY size, k', [sizes])) {
	(payload[r.size] ??= [])[r.k] = JSON.parse(r.arr);
}
// The message every append sends, with a fresh id (cost.sql)
const template = JSON.parse((await q1('SELECT msg::text AS msg FROM bench.new_message'))[0].msg);

// The version of each conversation, as the client holds it (read before a
// run, kept up to date by the client's own saves)
async function versions(table, id, n) {
	const v = new Array(n);
	for (const r of await q1(`SELECT user_id::text AS u, version FROM ${table} WHERE id = $1`, [id])) {
		v[Number(r.u.slice(24))] = Number(r.version);	// bigint arrives as a string
	}
	return v;
}

// Caller w's next conversation: w + n * random(0, users / n - 1), as the
// pgbench scripts pick theirs
const pick = (w, n) => w + nconn * Math.floor(Math.random() * Math.floor(n / nconn));

const rawUpdate = (table) => ({
	vacuum: [table],
	async before(s) { this.v = await versions(table, 'c' + s, users[s]); },
	async call(s, w) {
		const u = pick(w, users[s]);
		const v = this.v[u];
		const r = await pool.query({
			name: table,
			text: `UPDATE ${table} SET messages = $3::jsonb, version = version + 1
					WHERE user_id = $1 AND id = $2 AND version = $4`,
			values: [uid(u), 'c' + s, JSON.stringify(payload[s][(v + 1) % 4]), v],
		});
		if (r.rowCount !== 1) throw new Error(`${table}: the CAS UPDATE at version ${v} of ${u} touched ${r.rowCount} rows`);
		this.v[u] = v + 1;
	},
});

const cpTables = ['chatpersist.conversations', 'chatpersist.history', 'chatpersist.messages', 'chatpersist.history_messages'];

const workloads = {
	cp_ff: {
		vacuum: cpTables,
		async before(s) { this.v = await versions('chatpersist.conversations', 'c' + s, users[s]); },
		async call(s, w) {
			const u = pick(w, users[s]);
			const v = this.v[u];
			const r = await pool.query({
				name: 'cp_ff',
				text: 'SELECT status, version FROM chatpersist.save_conversation($1, $2, NULL, $3::jsonb, false, $4)',
				values: [uid(u), 'c' + s, JSON.stringify(payload[s][(v + 1) % 4]), v],
			});
			const row = r.rows[0];
			if (row.status !== 'updated' || Number(row.version) !== v + 1) {
				throw new Error(`cp_ff: save at version ${v} of ${u}: ${row.status} ${row.version}`);
			}
			this.v[u] = v + 1;
		},
	},
	raw_lz4: rawUpdate('bench.raw_lz4_conv'),
	raw: rawUpdate('bench.raw_conv'),
	cp_append: {
		vacuum: cpTables,
		reset: 'SELECT * FROM bench.cost_reset_cp()',
		async call(s, w) {
			const u = pick(w, appendUsers[s]);
			const r = await pool.query({
				name: 'cp_append',
				text: 'SELECT status FROM chatpersist.append_messages($1, $2, $3::jsonb)',
				values: [uid(u), 'a' + s, JSON.stringify([{ ...template, id: randomUUID() }])],
			});
			if (r.rows[0].status !== 'updated') throw new Error(`cp_append: ${r.rows[0].status}`);
		},
	},
	rpm_append: {
		vacuum: ['bench.rpm_conv', 'bench.rpm_msg'],
		reset: 'SELECT * FROM bench.cost_reset_rpm()',
		async call(s, w) {
			const u = pick(w, appendUsers[s]);
			const m = { ...template, id: randomUUID() };
			const r = await pool.query({
				name: 'rpm_append',
				text: `WITH ins AS (
						INSERT INTO bench.rpm_msg (user_id, conversation_id, id, created_at, message)
						VALUES ($1, $2, $3, $4, $5::jsonb)
						RETURNING 1)
					UPDATE bench.rpm_conv c SET version = c.version + 1
					 WHERE c.user_id = $1 AND c.id = $2`,
				values: [uid(u), 'c' + s, m.id, m.created_at, JSON.stringify(m)],
			});
			if (r.rowCount !== 1) throw new Error(`rpm_append: ${r.rowCount} rows`);
		},
	},
};
const groups = [['cp_ff', 'raw_lz4', 'raw'], ['cp_append', 'rpm_append']];

// One run of a workload for secs seconds: calls per second and the median
// latency of a call (ms)
async function run(name, s, secs) {
	const wl = workloads[name];
	if (wl.before) await wl.before(s);
	const lat = [];
	const t0 = performance.now();
	const end = t0 + secs * 1000;
	await Promise.all(Array.from({ length: nconn }, async (_, w) => {
		for (let t = performance.now(); t < end; ) {
			await wl.call(s, w);
			const t1 = performance.now();
			lat.push(t1 - t);
			t = t1;
		}
	}));
	const elapsed = (performance.now() - t0) / 1000;
	// outside the timing: check and reset the appended conversations,
	// vacuum what the run wrote, checkpoint
	if (wl.reset) await admin.query(wl.reset);
	for (const t of wl.vacuum) await admin.query(`VACUUM ${t}`);
	await admin.query('CHECKPOINT');
	return { tps: lat.length / elapsed, p50: median(lat) };
}

function median(a) {
	const b = [...a].sort((x, y) => x - y);
	const m = b.length;
	return m === 0 ? NaN : m % 2 ? b[(m - 1) / 2] : (b[m / 2 - 1] + b[m / 2]) / 2;
}

console.log(`== client: node-postgres ${require('pg/package.json').version}, node ${process.version}, ` +
	`a Pool of ${nconn} connections and ${nconn} callers; ${rounds} rounds x ${seconds}s per workload, medians`);
const tsv = `${out}/client_tps.tsv`;
writeFileSync(tsv, 'size\tround\tworkload\tcalls_per_s\tp50_ms\n');

if (warmup > 0) {
	for (const s of sizes) for (const g of groups) for (const name of g) await run(name, s, warmup);
}
const res = {};	// res[size][workload] = [{tps, p50}, ...]
for (let r = 0; r < rounds; r++) {
	for (const s of sizes) {
		for (const g of groups) {
			for (let i = 0; i < g.length; i++) {
				const name = g[(i + r) % g.length];
				const x = await run(name, s, seconds);
				((res[s] ??= {})[name] ??= []).push(x);
				appendFileSync(tsv, `${s}\t${r + 1}\t${name}\t${x.tps.toFixed(2)}\t${x.p50.toFixed(3)}\n`);
			}
		}
	}
	console.log(`round ${r + 1}`);
}
await pool.end();
await admin.end();

// The tables
const med = (s, w, k) => median(res[s][w].map((x) => x[k]));
const spread = (s, w) => {
	const t = res[s][w].map((x) => x.tps);
	return Math.max(...t) / Math.min(...t);
};
const f0 = (x) => x.toFixed(x < 100 ? 1 : 0);
const fx = (x) => x.toFixed(2) + 'x';
const lines = [];
lines.push('### Whole-array save, one message changed (calls per second, median; p50 latency)');
lines.push('');
lines.push('| messages | cp-ff | raw-lz4 | raw (pglz) | cp-ff / raw-lz4 | cp-ff / raw | raw-lz4 / raw | spread |');
lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const s of sizes) {
	const t = Object.fromEntries(['cp_ff', 'raw_lz4', 'raw'].map((w) => [w, med(s, w, 'tps')]));
	const l = Object.fromEntries(['cp_ff', 'raw_lz4', 'raw'].map((w) => [w, med(s, w, 'p50')]));
	const sp = Math.max(spread(s, 'cp_ff'), spread(s, 'raw_lz4'), spread(s, 'raw'));
	lines.push(`| ${s} | ${f0(t.cp_ff)} (${l.cp_ff.toFixed(2)} ms) | ${f0(t.raw_lz4)} (${l.raw_lz4.toFixed(2)} ms) | ` +
		`${f0(t.raw)} (${l.raw.toFixed(2)} ms) | ${fx(t.cp_ff / t.raw_lz4)} | ${fx(t.cp_ff / t.raw)} | ` +
		`${fx(t.raw_lz4 / t.raw)} | ${sp.toFixed(1)}x |`);
}
lines.push('');
lines.push('### Append of one message (calls per second, median; p50 latency)');
lines.push('');
lines.push('| messages | cp-append | rpm-append | cp-append / rpm-append | spread |');
lines.push('|---:|---:|---:|---:|---:|');
for (const s of sizes) {
	const a = med(s, 'cp_append', 'tps');
	const b = med(s, 'rpm_append', 'tps');
	const sp = Math.max(spread(s, 'cp_append'), spread(s, 'rpm_append'));
	lines.push(`| ${s} | ${f0(a)} (${med(s, 'cp_append', 'p50').toFixed(2)} ms) | ` +
		`${f0(b)} (${med(s, 'rpm_append', 'p50').toFixed(2)} ms) | ${fx(a / b)} | ${sp.toFixed(1)}x |`);
}
lines.push('');
lines.push('spread: the largest max/min of one workload\'s rounds in that row (run-to-run noise).');
const md = lines.join('\n') + '\n';
writeFileSync(`${out}/client.md`, md);
console.log(md);
