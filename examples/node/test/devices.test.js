// Tests of the node-postgres example against a real server with
// chatpersist installed. Connection settings come from the usual PG*
// environment variables; PGUSER must be a superuser (the tests create the
// app role chat_app, with the grants docs/supabase.md gives
// "authenticated", and connect as it, so row-level security applies).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

import {
  Device, appendMessages, changesSince, checksum, deleteConversation, errorKind, loadConversation, messagesSince,
  saveConversation, withUser,
} from '../chatpersist.js';
import { arrayText } from '../jsontext.js';

const ALICE = '0b9c2d1e-0000-4000-8000-00000000a11c';
const BOB = '0b9c2d1e-0000-4000-8000-000000000b0b';

let admin;
let pool;

before(async () => {
  admin = new pg.Client();
  await admin.connect();
  await admin.query('CREATE EXTENSION IF NOT EXISTS chatpersist');
  await admin.query(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat_app') THEN
        CREATE ROLE chat_app LOGIN;
      END IF;
    END $$`);
  await admin.query('GRANT USAGE ON SCHEMA chatpersist TO chat_app');
  await admin.query('GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.conversations TO chat_app');
  await admin.query('GRANT SELECT ON chatpersist.history TO chat_app');
  await admin.query('GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.messages TO chat_app');
  await admin.query('GRANT SELECT ON chatpersist.history_messages TO chat_app');
  await admin.query('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chatpersist TO chat_app');
  await admin.query('REVOKE EXECUTE ON FUNCTION chatpersist.migrate_user(uuid, uuid), chatpersist.stats() FROM chat_app');
  await admin.query('TRUNCATE chatpersist.conversations, chatpersist.history, chatpersist.messages, chatpersist.history_messages');
  pool = new pg.Pool({ user: 'chat_app', max: 6 });
});

after(async () => {
  await pool?.end();
  await admin?.end();
});

describe('two devices', () => {
  test('diverge offline, both send, and end with both messages', async () => {
    const phone = new Device(pool, ALICE, 'phone');
    const laptop = new Device(pool, ALICE, 'laptop');

    await phone.save('trip', { title: 'Trip', messages: [{ id: 'm1', role: 'user', content: 'Where?', created_at: 1000 }] });
    await laptop.sync();
    assert.equal(laptop.conversations.get('trip').version, 1n);

    // both are at version 1 and send a message each, without syncing between
    const a = await phone.send('trip', { id: 'p1', role: 'user', content: 'Lisbon', created_at: 2000 });
    const b = await laptop.send('trip', { id: 'l1', role: 'user', content: 'Porto', created_at: 1500 });
    assert.equal(a.status, 'updated');
    assert.equal(b.status, 'merged', 'the laptop was stale: its append merges');
    assert.equal(b.version, 3n);

    await phone.sync();
    await laptop.sync();
    const ids = (d) => d.conversations.get('trip').messages.map((m) => m.id);
    assert.deepEqual(ids(phone), ['m1', 'l1', 'p1']);
    assert.deepEqual(ids(laptop), ids(phone));
    assert.equal(phone.conversations.get('trip').checksum, laptop.conversations.get('trip').checksum);
  });

  test('a retried save is harmless: unchanged, same version', async () => {
    const messages = [{ id: 'r1', content: 'once' }];
    const first = await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'retry', { messages }));
    const again = await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'retry', { messages, expectedVersion: first.version }));
    assert.equal(first.status, 'created');
    assert.equal(again.status, 'unchanged');
    assert.equal(again.version, first.version);
  });

  test('a delete reaches the other device through sync', async () => {
    const phone = new Device(pool, ALICE, 'phone');
    const laptop = new Device(pool, ALICE, 'laptop');
    await phone.save('to-delete', { messages: [{ id: 'x' }] });
    await laptop.sync();
    assert.ok(laptop.conversations.has('to-delete'));

    const del = await phone.delete('to-delete');
    assert.equal(del.status, 'deleted');
    const changed = await laptop.sync();
    assert.ok(changed.includes('to-delete'));
    assert.ok(!laptop.conversations.has('to-delete'));
  });
});

describe('sync cursor', () => {
  test('never misses a change that commits out of order', async () => {
    const reader = new Device(pool, BOB, 'reader');
    await reader.sync();

    // transaction A writes first (the older transaction id) but commits last
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query("SELECT set_config('chatpersist.user_id', $1, true)", [BOB]);
      await saveConversation(a, BOB, 'from-a', { messages: [{ id: 'a1' }] });

      await b.query('BEGIN');
      await b.query("SELECT set_config('chatpersist.user_id', $1, true)", [BOB]);
      await saveConversation(b, BOB, 'from-b', { messages: [{ id: 'b1' }] });
      await b.query('COMMIT');

      // B is committed, but A still runs: B is held back so that the cursor
      // cannot move past A's older change
      const early = await reader.sync();
      assert.deepEqual(early, []);

      await a.query('COMMIT');
      const late = await reader.sync();
      assert.deepEqual(late.sort(), ['from-a', 'from-b']);
      assert.deepEqual(await reader.sync(), [], 'the largest cursor returns nothing new');
    } finally {
      a.release();
      b.release();
    }
  });

  test('cursors are exact BigInts and grow', async () => {
    await withUser(pool, BOB, (c) => appendMessages(c, BOB, 'from-a', [{ id: 'a2' }]));
    const all = await withUser(pool, BOB, (c) => changesSince(c, BOB, 0));
    assert.ok(all.length >= 2);
    for (let i = 1; i < all.length; i++) assert.ok(all[i].cursor > all[i - 1].cursor);
    assert.equal(typeof all[0].cursor, 'bigint');
  });
});

describe('retry on 40001', () => {
  test('a REPEATABLE READ save that races another device is retried and lands', async () => {
    await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'race', { messages: [{ id: 'm1' }] }));
    const retries = [];
    let interfered = false;

    const result = await withUser(pool, ALICE, async (c) => {
      // take the snapshot, then let another device commit a change
      const seen = await loadConversation(c, ALICE, 'race');
      if (!interfered) {
        interfered = true;
        await withUser(pool, ALICE, (o) => appendMessages(o, ALICE, 'race', [{ id: 'other' }]));
      }
      return saveConversation(c, ALICE, 'race', {
        messages: [...seen.messages, { id: 'mine' }], expectedVersion: seen.version,
      });
    }, { isolation: 'REPEATABLE READ', onRetry: (n, err, kind) => retries.push([err.code, kind, err.schema, err.table]) });

    assert.deepEqual(retries, [['40001', 'retry', undefined, undefined]],
      "the first attempt hit PostgreSQL's serialization failure, which names no table");
    assert.equal(result.status, 'updated', 'the retry saw the other change and saved on top of it');
    const final = await withUser(pool, ALICE, (c) => loadConversation(c, ALICE, 'race'));
    assert.deepEqual(final.messages.map((m) => m.id), ['m1', 'other', 'mine']);
  });

  test('a non-retryable error is not retried', async () => {
    let calls = 0;
    await assert.rejects(
      withUser(pool, ALICE, async (c) => {
        calls++;
        return saveConversation(c, ALICE, 'bad', { messages: { not: 'an array' } });
      }),
      (err) => err.code === '22023',
    );
    assert.equal(calls, 1);
  });
});

describe('row-level security', () => {
  test("one user's device cannot read or write another user's conversations", async () => {
    await withUser(pool, BOB, (c) => saveConversation(c, BOB, 'private', { messages: [{ id: 'secret' }] }));

    const seen = await withUser(pool, ALICE, (c) => loadConversation(c, BOB, 'private'));
    assert.equal(seen, null, 'invisible to Alice');

    await assert.rejects(
      withUser(pool, ALICE, (c) => saveConversation(c, BOB, 'private', { messages: [] })),
      (err) => err.code === '42501',
    );
    const still = await withUser(pool, BOB, (c) => loadConversation(c, BOB, 'private'));
    assert.deepEqual(still.messages, [{ id: 'secret' }]);
    assert.equal(still.version, 1n);
  });
});

describe('bigint: versions and cursors', () => {
  test('version 10 is newer than 9 as BigInt, not as the strings node-postgres gives by default', async () => {
    const phone = new Device(pool, ALICE, 'phone');
    const laptop = new Device(pool, ALICE, 'laptop');
    await phone.send('ten', { id: 'v1' });
    for (let i = 2; i <= 9; i++) await withUser(pool, ALICE, (c) => appendMessages(c, ALICE, 'ten', [{ id: `v${i}` }]));
    await laptop.sync();
    assert.equal(laptop.conversations.get('ten').version, 9n);

    await phone.sync();
    await phone.send('ten', { id: 'v10' });
    const sql = "SELECT version FROM chatpersist.conversations WHERE user_id = $1 AND id = 'ten'";
    const raw = (await admin.query(sql, [ALICE])).rows[0].version;
    assert.equal(raw, '10', 'the default parser returns int8 as a string');
    assert.ok(raw < '9', 'and as strings, version 10 sorts before version 9: the pitfall');

    const local = laptop.conversations.get('ten').version;
    const [change] = (await withUser(pool, ALICE, (c) => changesSince(c, ALICE, 0))).filter((r) => r.conversationId === 'ten');
    assert.equal(typeof change.version, 'bigint');
    assert.ok(change.version > local, 'as BigInt, 10n > 9n');

    // the laptop is behind (9) and learns of 10
    const changed = await laptop.sync();
    assert.deepEqual(changed, ['ten']);
    assert.equal(laptop.conversations.get('ten').version, 10n);
    assert.equal(laptop.conversations.get('ten').messages.length, 10);
  });

  test('cursors are exact BigInts, grow, and come back as they went', async () => {
    await withUser(pool, BOB, (c) => appendMessages(c, BOB, 'cursor-1', [{ id: 'a' }]));
    await withUser(pool, BOB, (c) => appendMessages(c, BOB, 'cursor-2', [{ id: 'b' }]));
    const all = await withUser(pool, BOB, (c) => changesSince(c, BOB, 0n));
    assert.ok(all.length >= 2);
    for (const r of all) assert.equal(typeof r.cursor, 'bigint');
    for (let i = 1; i < all.length; i++) assert.ok(all[i].cursor > all[i - 1].cursor);
    const last = all[all.length - 1].cursor;
    assert.deepEqual(await withUser(pool, BOB, (c) => changesSince(c, BOB, last)), [], 'the last cursor, passed back, returns nothing new');
    const previous = all[all.length - 2].cursor;
    const since = await withUser(pool, BOB, (c) => changesSince(c, BOB, previous));
    assert.deepEqual(since.map((r) => r.cursor), [last]);
  });
});

describe('the first send: p_expected_version 0', () => {
  test('creates a conversation that does not exist yet', async () => {
    const r = await withUser(pool, ALICE, (c) => appendMessages(c, ALICE, 'fresh-0', [{ id: 'f1' }], 0n));
    assert.equal(r.status, 'created');
    assert.equal(r.version, 1n);
  });

  test("a new device's first message merges into an existing conversation, nothing lost", async () => {
    const phone = new Device(pool, ALICE, 'phone');
    await phone.save('shared-0', { messages: [{ id: 'p1', content: 'from the phone', created_at: 1000 }] });
    const tablet = new Device(pool, ALICE, 'tablet');
    assert.equal(tablet.versionOf('shared-0'), 0n, 'the tablet has seen nothing');
    const r = await tablet.send('shared-0', { id: 't1', content: 'from the tablet', created_at: 2000 });
    assert.equal(r.status, 'merged', 'version 0 is stale for an existing conversation: a merge');
    assert.deepEqual(tablet.conversations.get('shared-0').ids, ['p1', 't1']);
  });

  test('0 does not let a stale copy overwrite a newer edit; NULL does (last writer wins)', async () => {
    const newer = { id: 'e1', content: 'edited', updated_at: 2000 };
    const older = { id: 'e1', content: 'original', updated_at: 1000 };
    for (const [id, expected, wins] of [['zero', 0n, 'edited'], ['null', null, 'original']]) {
      await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, `edit-${id}`, { messages: [newer] }));
      await withUser(pool, ALICE, (c) => appendMessages(c, ALICE, `edit-${id}`, [older], expected));
      const conv = await withUser(pool, ALICE, (c) => loadConversation(c, ALICE, `edit-${id}`));
      assert.equal(conv.messages[0].content, wins, `expected version ${expected}`);
    }
  });

  test('a device that has seen nothing cannot delete: 40001 (stale), nothing deleted', async () => {
    await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'keep-0', { messages: [{ id: 'k1' }] }));
    const tablet = new Device(pool, ALICE, 'tablet');
    await assert.rejects(tablet.delete('keep-0'), (err) => errorKind(err) === 'stale' && /Expected version 0, found 1\./.test(err.detail));
    assert.deepEqual(tablet.conversations.get('keep-0').ids, ['k1'], 'the device reloaded, so the user sees what it held');
    const conv = await withUser(pool, ALICE, (c) => loadConversation(c, ALICE, 'keep-0'));
    assert.equal(conv.version, 1n);
  });
});

describe('two kinds of 40001', () => {
  test("chatpersist's stale version names its table and keeps DETAIL and HINT", async () => {
    await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'stale-fields', { messages: [{ id: 's1' }] }));
    await withUser(pool, ALICE, (c) => appendMessages(c, ALICE, 'stale-fields', [{ id: 's2' }]));
    const err = await withUser(pool, ALICE, (c) => deleteConversation(c, ALICE, 'stale-fields', 1n)).catch((e) => e);
    assert.equal(err.code, '40001');
    assert.equal(err.schema, 'chatpersist');
    assert.equal(err.table, 'conversations');
    assert.equal(err.detail, 'Expected version 1, found 2.');
    assert.match(err.hint, /^Reload the conversation/);
    assert.equal(errorKind(err), 'stale');
  });

  test('a stale direct UPDATE is not retried blindly: the device reloads, then renames from the new version', async () => {
    const phone = new Device(pool, ALICE, 'phone');
    const laptop = new Device(pool, ALICE, 'laptop');
    await phone.save('rename', { title: 'Old', messages: [{ id: 'r1' }] });
    await laptop.sync();
    await phone.send('rename', { id: 'r2' });

    const attempts = [];
    await laptop.rename('rename', 'New', { onRetry: (n, err, kind) => attempts.push([kind, err.detail]) });
    assert.deepEqual(attempts, [['stale', 'Expected version 1, found 2.']]);
    const conv = laptop.conversations.get('rename');
    assert.equal(conv.title, 'New');
    assert.equal(conv.version, 3n);
    assert.deepEqual(conv.ids, ['r1', 'r2'], "the other device's message is kept");
  });

  test('without onStale, a stale 40001 is thrown at once and never retried', async () => {
    await withUser(pool, ALICE, (c) => saveConversation(c, ALICE, 'no-retry', { messages: [{ id: 'n1' }] }));
    await withUser(pool, ALICE, (c) => appendMessages(c, ALICE, 'no-retry', [{ id: 'n2' }]));
    let calls = 0;
    await assert.rejects(
      withUser(pool, ALICE, (c) => { calls++; return deleteConversation(c, ALICE, 'no-retry', 1n); }),
      (err) => errorKind(err) === 'stale',
    );
    assert.equal(calls, 1);
  });
});

describe('sync with messages_since', () => {
  const CAROL = '0b9c2d1e-0000-4000-8000-0000000ca201';

  /** The device's copy of a conversation equals what load_conversation gives, text for text. */
  async function assertSameAsLoad(device, id) {
    const loaded = await withUser(pool, device.userId, (c) => loadConversation(c, device.userId, id));
    const local = device.conversations.get(id);
    assert.equal(local.version, loaded.version);
    assert.equal(local.checksum, loaded.checksum);
    assert.equal(local.title, loaded.title);
    assert.deepEqual(local.metadata, loaded.metadata);
    assert.equal(arrayText(local.texts), loaded.messagesText, "the rebuilt array text is the server's");
    assert.equal(checksum(arrayText(local.texts)), loaded.checksum);
    assert.deepEqual(local.messages, loaded.messages);
  }

  test('an offline device catches up on several writes with one delta, no reload', async () => {
    const phone = new Device(pool, CAROL, 'phone');
    const laptop = new Device(pool, CAROL, 'laptop');
    await phone.save('offline', {
      title: 'Offline',
      messages: [
        { id: 'm1', role: 'user', content: 'one', created_at: 1000 },
        { id: 'm2', role: 'assistant', content: 'two', created_at: 2000 },
        { id: 'm3', role: 'user', content: 'three', created_at: 3000 },
      ],
    });
    await laptop.sync();
    const from = laptop.conversations.get('offline').version;

    // the laptop is offline while the phone and a third device write
    await phone.send('offline', { id: 'm4', content: 'price 1.50', price: 1.50, created_at: 4000 });
    await phone.send('offline', { zeta: 1, id: 'm5', content: 'Grüße 😀 "quoted" [x] {y}', a: { z: [1, 2.0] }, created_at: 5000 });
    const edited = phone.conversations.get('offline').messages
      .filter((m) => m.id !== 'm2')
      .map((m) => (m.id === 'm1' ? { ...m, content: 'one, edited', updated_at: 6000 } : m));
    await phone.save('offline', { title: 'Renamed', messages: edited });
    // the phone inserts a message between two it has (m3 stays unchanged after it)
    const now = phone.conversations.get('offline').messages;
    await phone.save('offline', { messages: [now[0], { id: 'mid', content: 'inserted' }, ...now.slice(1)] });
    // a stale device's message lands by the merge rules
    await withUser(pool, CAROL, (c) => appendMessages(c, CAROL, 'offline', [{ id: 'm0', content: 'between', created_at: 1500 }], from));
    // and one message row written with plain SQL
    await withUser(pool, CAROL, (c) => c.query(
      "INSERT INTO chatpersist.messages (user_id, conversation_id, message) VALUES ($1, 'offline', $2::jsonb)",
      [CAROL, '{"id": "m6", "content": "direct", "n": 10.00}']));

    const delta = await withUser(pool, CAROL, (c) => messagesSince(c, CAROL, 'offline', from));
    assert.equal(delta.fullReload, false);
    assert.ok(delta.changes.some((ch) => ch.id === 'm2' && ch.removed === true), 'm2 is listed as removed');
    assert.ok(delta.changes.length < 9, 'only what changed comes back');
    assert.ok(!delta.changes.some((ch) => ch.id === 'm3'), 'm3 did not change: not sent');

    const reloadsBefore = laptop.stats.reloads;
    assert.deepEqual(await laptop.sync(), ['offline']);
    assert.equal(laptop.stats.deltas, 1);
    assert.equal(laptop.stats.mismatches, 0);
    assert.equal(laptop.stats.reloads, reloadsBefore, 'no reload');
    await assertSameAsLoad(laptop, 'offline');
    assert.ok(laptop.conversations.get('offline').texts.some((t) => t.includes('"n": 10.00')), 'numeric scale kept');
    assert.equal(laptop.conversations.get('offline').title, 'Renamed');
  });

  test('a device away longer than history covers gets full_reload and reloads', async () => {
    const phone = new Device(pool, CAROL, 'phone');
    const laptop = new Device(pool, CAROL, 'laptop');
    await phone.save('away', { messages: [{ id: 'a0', content: 'start' }] });
    await laptop.sync();
    const from = laptop.conversations.get('away').version;

    // history_depth is a superuser setting: these writes run as the admin
    await admin.query('SET chatpersist.history_depth = 2');
    try {
      for (let i = 1; i <= 5; i++) {
        await admin.query("SELECT chatpersist.append_messages($1, 'away', $2::jsonb)", [CAROL, JSON.stringify([{ id: `a${i}` }])]);
      }
    } finally {
      await admin.query('RESET chatpersist.history_depth');
    }
    const delta = await withUser(pool, CAROL, (c) => messagesSince(c, CAROL, 'away', from));
    assert.equal(delta.fullReload, true, 'history no longer holds the laptop version');

    const before = { ...laptop.stats };
    await laptop.sync();
    assert.equal(laptop.stats.reloads, before.reloads + 1);
    assert.equal(laptop.stats.deltas, before.deltas);
    await assertSameAsLoad(laptop, 'away');
    assert.deepEqual(laptop.conversations.get('away').ids, ['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
  });

  test('a corrupted local copy fails the checksum, and sync falls back to a reload', async () => {
    const phone = new Device(pool, CAROL, 'phone');
    const laptop = new Device(pool, CAROL, 'laptop');
    await phone.save('corrupt', { messages: [{ id: 'c1', content: 'true' }, { id: 'c2', content: 'also true' }] });
    await laptop.sync();
    const local = laptop.conversations.get('corrupt');
    local.texts[0] = '{"id": "c1", "content": "tampered"}';
    local.messages[0] = JSON.parse(local.texts[0]);

    await phone.send('corrupt', { id: 'c3', content: 'new' });
    const before = { ...laptop.stats };
    await laptop.sync();
    assert.equal(laptop.stats.mismatches, before.mismatches + 1, 'the delta applied to a wrong copy did not match');
    assert.equal(laptop.stats.reloads, before.reloads + 1);
    await assertSameAsLoad(laptop, 'corrupt');
    assert.equal(laptop.conversations.get('corrupt').messages[0].content, 'true');
  });

  test('a conversation deleted elsewhere is dropped; one new to the device is loaded', async () => {
    const phone = new Device(pool, CAROL, 'phone');
    const laptop = new Device(pool, CAROL, 'laptop');
    await phone.save('gone', { messages: [{ id: 'g1' }] });
    await laptop.sync();
    await phone.delete('gone');
    await phone.save('new-one', { messages: [{ id: 'n1' }] });
    const changed = await laptop.sync();
    assert.deepEqual(changed.sort(), ['gone', 'new-one']);
    assert.ok(!laptop.conversations.has('gone'));
    await assertSameAsLoad(laptop, 'new-one');
  });
});
