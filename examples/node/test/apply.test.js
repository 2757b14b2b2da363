// Offline tests of applyChanges, the step that turns a device's array and
// messages_since's changes into the current array (no server needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { applyChanges } from '../chatpersist.js';

const msg = (id) => ({ id, after: undefined, messageText: `{"id": "${id}"}` });
const at = (id, after) => ({ ...msg(id), after });
const texts = (ids) => ids.map((id) => `{"id": "${id}"}`);

test('removed ids go, changed ids move to their place, new ones are inserted after their predecessor', () => {
  const r = applyChanges(['a', 'b', 'c', 'd'], texts(['a', 'b', 'c', 'd']), [
    { id: 'b', removed: true },
    { id: 'zz', removed: true }, // an id the device never had: ignored
    at('x', null), // at the front
    at('d', 'x'), // d changed and moved right after x
    at('y', 'd'), // after an entry inserted just before
    at('z', 'c'),
  ]);
  assert.deepEqual(r.ids, ['x', 'd', 'y', 'a', 'c', 'z']);
  assert.deepEqual(r.texts, texts(r.ids));
});

test('a changed message keeps the text the server sent', () => {
  const r = applyChanges(['a'], ['{"id": "a", "v": 1}'], [{ id: 'a', after: null, messageText: '{"id": "a", "v": 1.50}' }]);
  assert.deepEqual(r.texts, ['{"id": "a", "v": 1.50}']);
});

test('no changes: the array as it was; from nothing: the entries in order', () => {
  assert.deepEqual(applyChanges(['a', 'b'], texts(['a', 'b']), []).ids, ['a', 'b']);
  assert.deepEqual(applyChanges([], [], [at('a', null), at('b', 'a')]).ids, ['a', 'b']);
});

test('an "after" the device does not have throws (its copy is not the version it claims)', () => {
  assert.throws(() => applyChanges(['a'], texts(['a']), [at('b', 'missing')]), /"missing" is not in the local array/);
});
