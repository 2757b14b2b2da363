// checksum() against chatpersist.checksum() on a real server, and the text
// rules the client relies on to rebuild an array's text from its
// messages. Connection settings come from the PG* environment variables.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

import { checksum, types } from '../chatpersist.js';
import { arrayText, splitArray } from '../jsontext.js';

let db;

before(async () => {
  db = new pg.Client({ types });
  await db.connect();
  await db.query('CREATE EXTENSION IF NOT EXISTS chatpersist');
});

after(async () => {
  await db?.end();
});

/** The server's text of a jsonb value and its chatpersist.checksum(). */
async function server(jsonText) {
  const { rows } = await db.query('SELECT $1::jsonb AS v, chatpersist.checksum($1::jsonb) AS c', [jsonText]);
  return rows[0];
}

const CASES = {
  'numeric scale': '[{"id": "a", "price": 1.50, "n": 1.0, "big": 12345678901234567890.000}]',
  unicode: '[{"id": "ü", "content": "Grüße, 日本語, emoji 😀, escapes \\" \\\\ \\n \\u0001"}]',
  'keys in odd order': '[{"role":"user","id":"k","content":"x","a":1,"bb":2,"ab":3}]',
  'nested objects': '[{"id": "n", "meta": {"z": [1, {"y": null, "x": [true, false]}], "a": {}}, "list": []}]',
  'white space': '[ {\n"id" :\t"w" } ,{"id":"v"} ]',
  empty: '[]',
};

describe('checksum() equals chatpersist.checksum() over the text the server returned', () => {
  for (const [name, input] of Object.entries(CASES)) {
    test(name, async () => {
      const { v, c } = await server(input);
      assert.match(c, /^[0-9a-f]{16}$/);
      assert.equal(checksum(v), c);
    });
  }

  test('16 hex digits with leading zeros, as the server writes them', async () => {
    const { rows } = await db.query(
      'SELECT v AS v, chatpersist.checksum(v) AS c FROM generate_series(1, 300) i, jsonb_build_array(i) v');
    assert.ok(rows.some((r) => r.c.startsWith('0')), 'some of 300 checksums start with 0');
    for (const r of rows) assert.equal(checksum(r.v), r.c, r.v);
  });

  test("hashing the client's own text instead of the server's gives another checksum", async () => {
    const input = CASES['keys in odd order'];
    const { v, c } = await server(input);
    assert.notEqual(v, input, 'the server prints keys sorted and its own spacing');
    assert.notEqual(checksum(input), c);
  });
});

describe('the pitfall: JSON.stringify of the parsed value', () => {
  test('does not give the server text back for 1.50, so its checksum does not match', async () => {
    const { v, c } = await server('[{"id": "p", "price": 1.50}]');
    const reserialised = JSON.stringify(JSON.parse(v));
    assert.equal(v, '[{"id": "p", "price": 1.50}]');
    assert.equal(reserialised, '[{"id":"p","price":1.5}]');
    assert.notEqual(checksum(reserialised), c);
    assert.equal(checksum(v), c);
  });
});

describe("an array's text is its elements' texts, each printed alone, joined", () => {
  for (const [name, input] of Object.entries(CASES)) {
    test(name, async () => {
      const { rows } = await db.query(
        `SELECT $1::jsonb AS whole,
                coalesce((SELECT json_agg(e::text ORDER BY o)
                            FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, o)), '[]') AS alone`,
        [input]);
      const alone = JSON.parse(rows[0].alone);
      assert.equal(arrayText(alone), rows[0].whole, 'PostgreSQL prints "[" + elements joined by ", " + "]"');
      assert.deepEqual(splitArray(rows[0].whole), alone, 'and the scanner cuts out exactly those texts');
    });
  }
});
