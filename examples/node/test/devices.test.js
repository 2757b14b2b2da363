// Tests of the node-postgres example against a real server with
// chatpersist installed. Connection settings come from the usual PG*
// environment variables; PGUSER must be a superuser (the tests create the
// app role chat_app, with the grants docs/supabase.md gives
// "authenticated", and connect as it, so row-level security applies).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

import {
  Device, appendMessages, changesSince, loadConversation, saveConversation, withUser,
} from '../chatpersist.js';

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
    assert.equal(laptop.conversations.get('trip').version, 1);

    // both are at version 1 and send a message each, without syncing between
    const a = await phone.send('trip', { id: 'p1', role: 'user', content: 'Lisbon', created_at: 2000 });
    const b = await laptop.send('trip', { id: 'l1', role: 'user', content: 'Porto', created_at: 1500 });
    assert.equal(a.status, 'updated');
    assert.equal(b.status, 'merged', 'the laptop was stale: its append merges');
    assert.equal(b.version, 3);

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
    }, { isolation: 'REPEATABLE READ', onRetry: (n, err) => retries.push(err.code) });

    assert.deepEqual(retries, ['40001'], 'the first attempt hit a serialization failure');
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
    assert.equal(still.version, 1);
  });
});
