// chatpersist.js: a small node-postgres client for the chatpersist
// extension. It does what a chat app needs: save a conversation, send one
// message, load, keep a device in sync with changes_since, and retry a
// transaction that PostgreSQL asks to retry (SQLSTATE 40001).
//
// Identity: the app connects with its own role and tells chatpersist which
// user it acts for with SET LOCAL chatpersist.user_id inside each
// transaction, so row-level security confines every call to that user's
// rows (a PostgREST/Supabase client gets the same from its JWT instead).

/** SQLSTATEs worth retrying: serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * Run fn(client) in a transaction acting as userId, retrying the whole
 * transaction on 40001/40P01 with exponential backoff and jitter.
 *
 * @param {import('pg').Pool} pool
 * @param {string} userId  the user's uuid
 * @param {(client: import('pg').PoolClient) => Promise<T>} fn
 * @param {{retries?: number, baseDelayMs?: number, isolation?: string, onRetry?: (attempt: number, err: Error) => void}} [opts]
 * @returns {Promise<T>}
 * @template T
 */
export async function withUser(pool, userId, fn, opts = {}) {
  const retries = opts.retries ?? 5;
  const baseDelayMs = opts.baseDelayMs ?? 10;
  const isolation = opts.isolation ?? 'READ COMMITTED';
  for (let attempt = 0; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      // set_config(..., true) is SET LOCAL: it ends with the transaction
      await client.query("SELECT set_config('chatpersist.user_id', $1, true)", [userId]);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if (!RETRYABLE.has(err.code) || attempt >= retries) throw err;
      opts.onRetry?.(attempt + 1, err);
      const delay = baseDelayMs * 2 ** attempt * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, delay));
    } finally {
      client.release();
    }
  }
}

/** The save_result row as a plain object with a numeric version. */
function saveResult(row) {
  return {
    status: row.status,
    conversationId: row.conversation_id,
    version: row.version === null ? null : Number(row.version),
    checksum: row.checksum,
    messageCount: row.message_count,
    conflicts: row.conflicts,
  };
}

/**
 * Save a whole conversation. Pass the version the device last loaded as
 * expectedVersion: if another device saved since, the arrays are merged
 * (status "merged") instead of one overwriting the other.
 */
export async function saveConversation(client, userId, conversationId, { title = null, messages, expectedVersion = null, metadata = null, force = false }) {
  const { rows } = await client.query(
    `SELECT * FROM chatpersist.save_conversation(
       p_user_id := $1, p_conversation_id := $2, p_title := $3, p_messages := $4::jsonb,
       p_force_overwrite := $5, p_expected_version := $6, p_metadata := $7::jsonb)`,
    [userId, conversationId, title, JSON.stringify(messages), force, expectedVersion,
      metadata === null ? null : JSON.stringify(metadata)],
  );
  return saveResult(rows[0]);
}

/** Send only new or changed messages (the "send one message" call). */
export async function appendMessages(client, userId, conversationId, messages, expectedVersion = null) {
  const { rows } = await client.query(
    'SELECT * FROM chatpersist.append_messages($1, $2, $3::jsonb, $4)',
    [userId, conversationId, JSON.stringify(messages), expectedVersion],
  );
  return saveResult(rows[0]);
}

/** Delete (tombstone) a conversation; other devices learn of it in sync. */
export async function deleteConversation(client, userId, conversationId, expectedVersion = null) {
  const { rows } = await client.query(
    'SELECT * FROM chatpersist.delete_conversation($1, $2, $3)',
    [userId, conversationId, expectedVersion],
  );
  return saveResult(rows[0]);
}

/** One conversation, or null. */
export async function loadConversation(client, userId, conversationId) {
  const { rows } = await client.query(
    `SELECT id, title, messages, metadata, version, checksum, message_count
       FROM chatpersist.load_conversation($1, $2)`,
    [userId, conversationId],
  );
  if (rows.length === 0) return null;
  const r = rows[0];
  return { id: r.id, title: r.title, messages: r.messages, metadata: r.metadata, version: Number(r.version), checksum: r.checksum };
}

/** What changed after a cursor: [{conversationId, version, checksum, deleted, cursor}]. */
export async function changesSince(client, userId, cursor) {
  const { rows } = await client.query(
    'SELECT conversation_id, version, checksum, deleted, cursor FROM chatpersist.changes_since($1, $2)',
    [userId, String(cursor)],
  );
  return rows.map((r) => ({
    conversationId: r.conversation_id,
    version: Number(r.version),
    checksum: r.checksum,
    deleted: r.deleted,
    // a cursor is an xid8: keep it as a BigInt, never as a lossy Number
    cursor: BigInt(r.cursor),
  }));
}

/**
 * A device: its local copy of a user's conversations and its sync cursor.
 * Everything it does goes through withUser, so it retries on 40001.
 */
export class Device {
  constructor(pool, userId, name = 'device') {
    this.pool = pool;
    this.userId = userId;
    this.name = name;
    /** @type {Map<string, {title: string, messages: object[], version: number, checksum: string}>} */
    this.conversations = new Map();
    this.cursor = 0n;
  }

  /** Send one message, from the version this device has. */
  async send(conversationId, message) {
    const local = this.conversations.get(conversationId);
    const result = await withUser(this.pool, this.userId, (c) =>
      appendMessages(c, this.userId, conversationId, [message], local?.version ?? null));
    // reload what the server now holds (the merge may include others' messages)
    await this.#reload(conversationId);
    return result;
  }

  /** Save the local copy of a conversation (edited offline, say). */
  async save(conversationId, { title = null, messages }) {
    const local = this.conversations.get(conversationId);
    const result = await withUser(this.pool, this.userId, (c) =>
      saveConversation(c, this.userId, conversationId, { title, messages, expectedVersion: local?.version ?? null }));
    await this.#reload(conversationId);
    return result;
  }

  /** Delete a conversation this device has seen, at the version it saw. */
  async delete(conversationId) {
    const local = this.conversations.get(conversationId);
    const result = await withUser(this.pool, this.userId, (c) =>
      deleteConversation(c, this.userId, conversationId, local?.version ?? null));
    this.conversations.delete(conversationId);
    return result;
  }

  /**
   * Pull every change since the last sync: reload conversations whose
   * version or checksum differ from the local copy, drop deleted ones, and
   * advance the cursor to the last (largest) one returned. Returns the ids that
   * changed locally.
   */
  async sync() {
    const changes = await withUser(this.pool, this.userId, (c) => changesSince(c, this.userId, this.cursor));
    const changed = [];
    for (const ch of changes) {
      const local = this.conversations.get(ch.conversationId);
      if (ch.deleted) {
        if (local) changed.push(ch.conversationId);
        this.conversations.delete(ch.conversationId);
      } else if (!local || local.version !== ch.version || local.checksum !== ch.checksum) {
        await this.#reload(ch.conversationId);
        changed.push(ch.conversationId);
      }
      // rows come in cursor order: keep the last row's cursor (after a move
      // of the data the new database's cursors may be smaller numbers)
      this.cursor = ch.cursor;
    }
    return changed;
  }

  async #reload(conversationId) {
    const conv = await withUser(this.pool, this.userId, (c) => loadConversation(c, this.userId, conversationId));
    if (conv) this.conversations.set(conversationId, conv);
    else this.conversations.delete(conversationId);
  }
}
