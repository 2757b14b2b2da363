// Offline tests of the JSON text scanner (no server needed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { arrayText, splitArray, splitObject } from '../jsontext.js';

describe('splitArray', () => {
  test('keeps each element exactly as written', () => {
    assert.deepEqual(splitArray('[1.50, "a", true, null, -2e3]'), ['1.50', '"a"', 'true', 'null', '-2e3']);
    assert.deepEqual(splitArray('[]'), []);
    assert.deepEqual(splitArray('  [ ]  '), []);
    assert.deepEqual(splitArray('[{"b": 1, "a": 2}]'), ['{"b": 1, "a": 2}'], 'key order is not touched');
  });

  test('brackets, braces, commas and quotes inside strings do not count', () => {
    const texts = ['"a]b"', '"c,d"', '"e\\"]f"', '"\\\\"', '{"k": "}", "x": ["[", "{"]}', '"ünï ✓ 😀"'];
    assert.deepEqual(splitArray(`[${texts.join(', ')}]`), texts);
  });

  test('nested containers are one element each', () => {
    assert.deepEqual(splitArray('[[1, [2, 3]], {"a": {"b": [4]}}, 5]'), ['[1, [2, 3]]', '{"a": {"b": [4]}}', '5']);
  });

  test('any JSON white space between tokens', () => {
    assert.deepEqual(splitArray('[\n\t1 ,\r\n "x"\t]'), ['1', '"x"']);
  });

  test('round trip: arrayText(splitArray(t)) === t for PostgreSQL-style text', () => {
    for (const t of ['[]', '[1]', '[{"id": "m1"}, {"id": "m2", "x": [1, 2]}]', '["a, b", "[c]"]']) {
      assert.equal(arrayText(splitArray(t)), t);
    }
  });

  test('refuses what is not one array', () => {
    for (const bad of ['', '{}', '[1,]', '[,1]', '[1 2]', '[1', '["a]', '[1]]', '[1] x', '[{]', '[[}]', '1']) {
      assert.throws(() => splitArray(bad), SyntaxError, bad);
    }
  });
});

describe('splitObject', () => {
  test('members in order, keys decoded, values raw', () => {
    assert.deepEqual(splitObject('{"id": "m1", "n": 1.50, "o": {"z": 1, "a": [2]}}'),
      [['id', '"m1"'], ['n', '1.50'], ['o', '{"z": 1, "a": [2]}']]);
    assert.deepEqual(splitObject('{}'), []);
    assert.deepEqual(splitObject('{"a\\"b": "x:y,z}"}'), [['a"b', '"x:y,z}"']]);
  });

  test('refuses what is not one object', () => {
    for (const bad of ['[]', '{"a"}', '{"a": }', '{a: 1}', '{"a": 1,}', '{"a": 1', '{"a": 1} {}']) {
      assert.throws(() => splitObject(bad), SyntaxError, bad);
    }
  });
});

describe('arrayText', () => {
  test('"[]" when empty, else elements joined by ", "', () => {
    assert.equal(arrayText([]), '[]');
    assert.equal(arrayText(['1']), '[1]');
    assert.equal(arrayText(['{"id": "a"}', '{"id": "b"}']), '[{"id": "a"}, {"id": "b"}]');
  });
});
