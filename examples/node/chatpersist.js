// chatpersist.js: a small node-postgres client for the chatpersist
// extension. It does what a chat app needs: save a conversation, send one
// message, load, keep a device in sync with changes_since, retry a
// transaction that PostgreSQL asks to retry (SQLSTATE 40001), reload first
// when chatpersist says the device's version is stale (also 40001, told
// apart by its table field), and recompute the checksum of what it holds.
//
// Identity: the app connects with its own role and tells chatpersist which
// user it acts for with SET LOCAL chatpersist.user_id inside each
// transaction, so row-level security confines every call to that user's
// rows (a PostgREST/Supabase client gets the same from its JWT instead).
//
// Types: node-postgres returns bigint (int8) as a string, and strings
// compare wrongly as numbers ("10" < "9"). Every query here runs with
// `types` below: int8 becomes a BigInt (exact, and 10n > 9n), and jsonb
// arrives as the text the server printed, which is what the checksum is
// computed over; the code parses it where it needs objects.

import pg from 'pg';
import { xxh3 } from '@node-rs/xxhash';

import { arrayText, splitArray, splitObject } from './jsontext.js';

const INT8_OID = 20;
const JSON_OID = 114;
const JSONB_OID = 3802;

/**
 * Type parsers for chatpersist's results: int8 as BigInt, json and jsonb
 * as the raw text. Pass as `types` in a query config, a Client or a Pool
 * (or set them process-wide with pg.types.setTypeParser(20, BigInt)).
 */
export const types = {
  getTypeParser(oid, format = 'text') {
    if (format === 'text') {
      if (oid === INT8_OID) return BigInt;
      if (oid === JSONB_OID || oid === JSON_OID) return (text) => text;
    }
    return pg.types.getTypeParser(oid, format);
  },
};

/** client.query with chatpersist's type parsers. */
function query(client, text, values) {
  return client.query({ text, values, types });
}

/**
 * The checksum chatpersist.checksum() gives for the jsonb value that
 * PostgreSQL prints as `text`: XXH3-64, seed 0, over the UTF-8 bytes of
 * that text, as 16 lowercase hex digits. Hash the text the server
 * returned (or one rebuilt from its pieces with arrayText), never
 * JSON.stringify of a parsed value: that loses numeric scale (1.50 → 1.5)
 * and changes key order and spacing.
 */
export function checksum(text) {
  return xxh3.xxh64(Buffer.from(text, 'utf8')).toString(16).padStart(16, '0');
}

/**
 * What a 40001 means, from the error's fields (node-postgres puts the
 * SQLSTATE in err.code, the schema and table fields in err.schema and
 * err.table):
 *  - 'stale': chatpersist refused a write that claimed a stale version (a
 *    direct UPDATE, delete_conversation with an old p_expected_version).
 *    Retrying the same call fails the same way: reload, then decide again.
 *    Only chatpersist's error names chatpersist.conversations.
 *  - 'retry': PostgreSQL's serialization failure (REPEATABLE READ,
 *    SERIALIZABLE) or a deadlock (40P01): run the transaction again.
 *  - null: anything else; not retried.
 */
export function errorKind(err) {
  if (err?.code === '40001' && err.schema === 'chatpersist' && err.table === 'conversations') return 'stale';
  if (err?.code === '40001' || err?.code === '40P01') return 'retry';
  return null;
}

/**
 * Run fn(client) in a transaction acting as userId. On PostgreSQL's 40001
 * or 40P01 ('retry') the whole transaction runs again, with exponential
 * backoff and jitter. On chatpersist's stale-version 40001 ('stale') it
 * runs again only if opts.onStale(err) resolves true, once the failed
 * transaction has rolled back: onStale reloads what the device holds, so
 * that fn, run again, claims the version it now has.
 *
 * @param {import('pg').Pool} pool
 * @param {string} userId  the user's uuid
 * @param {(client: import('pg').PoolClient) => Promise<T>} fn
 * @param {{retries?: number, baseDelayMs?: number, isolation?: string,
 *   onRetry?: (attempt: number, err: Error, kind: string) => void,
 *   onStale?: (err: Error) => Promise<boolean>}} [opts]
 * @returns {Promise<T>}
 * @template T
 */
export async function withUser(pool, userId, fn, opts = {}) {
  const retries = opts.retries ?? 5;
  const baseDelayMs = opts.baseDelayMs ?? 10;
  const isolation = opts.isolation ?? 'READ COMMITTED';
  for (let attempt = 0; ; attempt++) {
    const client = await pool.connect();
    let failure;
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      // set_config(..., true) is SET LOCAL: it ends with the transaction
      await client.query("SELECT set_config('chatpersist.user_id', $1, true)", [userId]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      failure = err;
    } finally {
      client.release();
    }
    const kind = errorKind(failure);
    if (kind === null || attempt >= retries) throw failure;
    if (kind === 'stale') {
      if (!opts.onStale || !(await opts.onStale(failure))) throw failure;
      opts.onRetry?.(attempt + 1, failure, kind);
    } else {
      opts.onRetry?.(attempt + 1, failure, kind);
      const delay = baseDelayMs * 2 ** attempt * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** The save_result row as a plain object (version a BigInt or null). */
function saveResult(row) {
  return {
    status: row.status,
    conversationId: row.conversation_id,
    version: row.version,
    checksum: row.checksum,
    messageCount: row.message_count,
    conflicts: row.conflicts,
  };
}

/**
 * Save a whole conversation. Pass the version the device last loaded as
 * expectedVersion: if another device saved since, the arrays are merged
 * (status "merged") instead of one overwriting the other. A device that
 * has never loaded the conversation passes 0n ("I have seen nothing").
 */
export async function saveConversation(client, userId, conversationId, { title = null, messages, expectedVersion = null, metadata = null, force = false }) {
  const { rows } = await query(client,
    `SELECT * FROM chatpersist.save_conversation(
       p_user_id := $1, p_conversation_id := $2, p_title := $3, p_messages := $4::jsonb,
       p_force_overwrite := $5, p_expected_version := $6, p_metadata := $7::jsonb)`,
    [userId, conversationId, title, JSON.stringify(messages), force, expectedVersion,
      metadata === null ? null : JSON.stringify(metadata)],
  );
  return saveResult(rows[0]);
}

/**
 * Send only new or changed messages (the "send one message" call). Pass
 * the version the device has; 0n when it has none. NULL (null here) means
 * "apply to whatever is stored": the given copies replace the stored ones
 * by id, the last writer wins.
 */
export async function appendMessages(client, userId, conversationId, messages, expectedVersion = null) {
  const { rows } = await query(client,
    'SELECT * FROM chatpersist.append_messages($1, $2, $3::jsonb, $4)',
    [userId, conversationId, JSON.stringify(messages), expectedVersion],
  );
  return saveResult(rows[0]);
}

/** Delete (tombstone) a conversation; other devices learn of it in sync. */
export async function deleteConversation(client, userId, conversationId, expectedVersion = null) {
  const { rows } = await query(client,
    'SELECT * FROM chatpersist.delete_conversation($1, $2, $3)',
    [userId, conversationId, expectedVersion],
  );
  return saveResult(rows[0]);
}

/**
 * A device's copy of a conversation built from the server's texts: each
 * message's raw text (what the checksum is computed over), the parsed
 * messages and their ids, in the array's order.
 */
function localCopy({ id, title, metadata, version, checksum: sum }, texts) {
  const messages = texts.map((t) => JSON.parse(t));
  return { id, title, metadata, version, checksum: sum, texts, messages, ids: messages.map((m) => m.id) };
}

/** One conversation, or null; messagesText is the array as the server printed it. */
export async function loadConversation(client, userId, conversationId) {
  const { rows } = await query(client,
    `SELECT id, title, messages, metadata, version, checksum
       FROM chatpersist.load_conversation($1, $2)`,
    [userId, conversationId],
  );
  if (rows.length === 0) return null;
  const r = rows[0];
  const conv = localCopy({ ...r, metadata: JSON.parse(r.metadata) }, splitArray(r.messages));
  conv.messagesText = r.messages;
  return conv;
}

/** What changed after a cursor: [{conversationId, version, checksum, deleted, cursor}]. */
export async function changesSince(client, userId, cursor) {
  const { rows } = await query(client,
    'SELECT conversation_id, version, checksum, deleted, cursor FROM chatpersist.changes_since($1, $2)',
    [userId, cursor],
  );
  return rows.map((r) => ({
    conversationId: r.conversation_id,
    version: r.version,
    checksum: r.checksum,
    deleted: r.deleted,
    cursor: r.cursor,
  }));
}

/**
 * What a device at `version` needs to reach the current version of one
 * conversation (chatpersist.messages_since), or null when the
 * conversation does not exist or is not visible. Each entry of changes is
 * {id, removed: true} or {id, after, messageText}: the message's raw text,
 * cut out of the jsonb text the server sent, never re-serialised.
 */
export async function messagesSince(client, userId, conversationId, version) {
  const { rows } = await query(client,
    `SELECT version, checksum, title, metadata, deleted, full_reload, changes
       FROM chatpersist.messages_since($1, $2, $3)`,
    [userId, conversationId, version],
  );
  if (rows.length === 0) return null;
  const r = rows[0];
  const changes = splitArray(r.changes).map((entryText) => {
    const entry = {};
    for (const [key, raw] of splitObject(entryText)) {
      if (key === 'message') entry.messageText = raw;
      else entry[key] = JSON.parse(raw);
    }
    return entry;
  });
  return {
    version: r.version,
    checksum: r.checksum,
    title: r.title,
    metadata: JSON.parse(r.metadata),
    deleted: r.deleted,
    fullReload: r.full_reload,
    changes,
  };
}

/**
 * Apply messages_since's changes to a device's array (given as parallel
 * arrays of ids and raw texts); returns the new {ids, texts}. Every element
 * whose id appears in changes goes; then each entry with a message is
 * inserted right after the element whose id is its "after" (null: at the
 * front), in order. Throws if an "after" id is not in the array (the
 * device's copy is not the version it claims).
 */
export function applyChanges(ids, texts, changes) {
  const touched = new Set(changes.map((c) => c.id));
  const outIds = [];
  const outTexts = [];
  ids.forEach((id, i) => {
    if (!touched.has(id)) {
      outIds.push(id);
      outTexts.push(texts[i]);
    }
  });
  for (const c of changes) {
    if (c.messageText === undefined) continue;
    let at = 0;
    if (c.after !== null) {
      at = outIds.indexOf(c.after) + 1;
      if (at === 0) throw new Error(`message "${c.after}" is not in the local array`);
    }
    outIds.splice(at, 0, c.id);
    outTexts.splice(at, 0, c.messageText);
  }
  return { ids: outIds, texts: outTexts };
}

/** The version a device passes when it has no copy: 0, "I have seen nothing". */
const NOTHING_SEEN = 0n;

/**
 * A device: its local copy of a user's conversations and its sync cursor.
 * Everything it does goes through withUser, so it retries on PostgreSQL's
 * 40001 and reloads first on chatpersist's.
 */
export class Device {
  constructor(pool, userId, name = 'device') {
    this.pool = pool;
    this.userId = userId;
    this.name = name;
    /** @type {Map<string, {title: string, metadata: object, version: bigint, checksum: string, texts: string[], messages: object[], ids: string[]}>} */
    this.conversations = new Map();
    this.cursor = 0n;
    /** how sync brought conversations up to date: applied deltas, reloads, checksum mismatches */
    this.stats = { deltas: 0, reloads: 0, mismatches: 0 };
  }

  /** The version this device has of a conversation, 0n when it has none. */
  versionOf(conversationId) {
    return this.conversations.get(conversationId)?.version ?? NOTHING_SEEN;
  }

  /** Send one message, from the version this device has (0n: none yet). */
  async send(conversationId, message) {
    const result = await withUser(this.pool, this.userId, (c) =>
      appendMessages(c, this.userId, conversationId, [message], this.versionOf(conversationId)));
    // reload what the server now holds (the merge may include others' messages)
    await this.reload(conversationId);
    return result;
  }

  /** Save the local copy of a conversation (edited offline, say). */
  async save(conversationId, { title = null, messages }) {
    const result = await withUser(this.pool, this.userId, (c) =>
      saveConversation(c, this.userId, conversationId, { title, messages, expectedVersion: this.versionOf(conversationId) }));
    await this.reload(conversationId);
    return result;
  }

  /**
   * Rename a conversation with a plain UPDATE that claims the version this
   * device has (what an ORM or a PostgREST table call does). If another
   * device wrote since, chatpersist refuses it (40001, 'stale'): reload,
   * then rename again from the version just loaded.
   */
  async rename(conversationId, title, opts = {}) {
    await withUser(this.pool, this.userId, async (c) => {
      const { rowCount } = await query(c,
        `UPDATE chatpersist.conversations SET title = $1, version = $2
          WHERE user_id = $3 AND id = $4`,
        [title, this.versionOf(conversationId), this.userId, conversationId]);
      if (rowCount !== 1) throw new Error(`conversation "${conversationId}" not found`);
    }, {
      ...opts,
      onStale: async () => {
        await this.reload(conversationId);
        return true;
      },
    });
    await this.reload(conversationId);
  }

  /**
   * Delete a conversation this device has seen, at the version it saw. If
   * another device wrote since, chatpersist refuses (40001, 'stale'): the
   * device reloads, so that the user sees what arrived, and the error is
   * thrown; deleting again is the user's decision, not a blind retry.
   */
  async delete(conversationId) {
    const result = await withUser(this.pool, this.userId, (c) =>
      deleteConversation(c, this.userId, conversationId, this.versionOf(conversationId)), {
      onStale: async () => {
        await this.reload(conversationId);
        return false;
      },
    });
    this.conversations.delete(conversationId);
    return result;
  }

  /**
   * Pull every change since the last sync and advance the cursor to the
   * last one returned. A conversation whose version is newer than the
   * local copy's (or whose checksum differs) is brought up to date with
   * messages_since from the local version, and the result is checked
   * against the server's checksum; a full_reload answer, a mismatch or a
   * conversation the device does not have is loaded whole. Deleted ones
   * are dropped. Returns the ids that changed locally.
   */
  async sync() {
    const changes = await withUser(this.pool, this.userId, (c) => changesSince(c, this.userId, this.cursor));
    const changed = [];
    for (const ch of changes) {
      const local = this.conversations.get(ch.conversationId);
      if (ch.deleted) {
        if (local) changed.push(ch.conversationId);
        this.conversations.delete(ch.conversationId);
      } else if (!local) {
        await this.reload(ch.conversationId);
        changed.push(ch.conversationId);
      } else if (ch.version > local.version || local.checksum !== ch.checksum) {
        // BigInt comparison: with node-postgres' default strings, "10" > "9" is false
        await this.catchUp(ch.conversationId);
        changed.push(ch.conversationId);
      }
      // rows come in cursor order: keep the last row's cursor (after a move
      // of the data the new database's cursors may be smaller numbers)
      this.cursor = ch.cursor;
    }
    return changed;
  }

  /**
   * Bring one conversation from the local version to the current one with
   * messages_since; reload it whole on a full_reload answer or when the
   * rebuilt array's checksum is not the server's.
   */
  async catchUp(conversationId) {
    const local = this.conversations.get(conversationId);
    const delta = await withUser(this.pool, this.userId, (c) =>
      messagesSince(c, this.userId, conversationId, local.version));
    if (delta === null || delta.deleted) {
      this.conversations.delete(conversationId);
      return;
    }
    if (delta.fullReload) {
      await this.reload(conversationId);
      return;
    }
    let next = null;
    try {
      next = applyChanges(local.ids, local.texts, delta.changes);
    } catch {
      next = null;
    }
    if (next === null || checksum(arrayText(next.texts)) !== delta.checksum) {
      this.stats.mismatches++;
      await this.reload(conversationId);
      return;
    }
    this.stats.deltas++;
    this.conversations.set(conversationId, localCopy(
      { id: conversationId, title: delta.title, metadata: delta.metadata, version: delta.version, checksum: delta.checksum },
      next.texts));
  }

  /** Load one conversation whole (or drop it if it is gone). */
  async reload(conversationId) {
    const conv = await withUser(this.pool, this.userId, (c) => loadConversation(c, this.userId, conversationId));
    this.stats.reloads++;
    if (conv) this.conversations.set(conversationId, conv);
    else this.conversations.delete(conversationId);
  }
}
