/*
 * test/fuzz/driver.sql
 *	  The in-server half of the chatpersist fuzzer: a PL/pgSQL driver that
 *	  runs a batch of generated cases, one exception block (subtransaction)
 *	  per case, records what each call returned or raised, and checks the
 *	  invariants that need the database (stored rows, history, merges).
 *
 * Not run by hand: test/fuzz/fuzz.py loads this file into the fuzz
 * database (schema fuzz), fills fuzz.cases batch by batch and calls
 *	  SELECT fuzz.run_batch(batch [, upto [, skip]]);
 * then reads fuzz.results.  See test/fuzz.sh and docs/reliability.md
 * (## Fuzzing) for how to run the fuzzer.
 *
 * A case is one SQL statement (fuzz.cases.stmt) executed with
 *	  USING $1 uuid[], $2 text[], $3 jsonb[], $4 int8[], $5 bool[]
 * whose elements the driver parses first, one by one, from the raw bytes
 * in fuzz.cases.args (types in fuzz.cases.types).  A value that
 * PostgreSQL's own input functions refuse (invalid UTF-8, jsonb text that
 * is not valid, a malformed uuid) ends the case with outcome
 * 'parse:SQLSTATE' before any chatpersist code runs.  An int8 may be
 * symbolic: 'cur+K' (the conversation's current version plus K, read
 * before the call), 'hmin+K' / 'hmax+K' (its oldest / newest archived
 * version).
 *
 * Symbolic 'pmin+K' / 'pmax+K' are the smallest / largest ordering key
 * (pos) of the conversation's message rows.
 *
 * Storage (2.0): a conversation is its head in chatpersist.conversations
 * and one row per message in chatpersist.messages; the checks read both
 * through fuzz.conversations, the 1.x row with its messages array (the
 * rows that are not removed, in pos order), and archived versions through
 * chatpersist.conversation_history.
 *
 * Outcomes: 'ok', or the SQLSTATE the call raised, or 'parse:SQLSTATE'.
 * fuzz.results.info holds the state before the call (so that fuzz.py can
 * predict state-dependent errors such as a stale version) and what the
 * checks measured; fuzz.results.failures lists every invariant that did
 * not hold.  Checks run as the superuser, outside the case's
 * subtransaction, with the limits lifted.
 *
 * Copyright (c) 2026, chatpersist developers
 */

SET client_min_messages = warning;

DROP SCHEMA IF EXISTS fuzz CASCADE;
CREATE SCHEMA fuzz;

CREATE UNLOGGED TABLE fuzz.cases (
	batch		int NOT NULL,
	n			int NOT NULL,
	fn			text NOT NULL,		/* what the case exercises, see run_batch */
	stmt		text NOT NULL,
	args		bytea[] NOT NULL,	/* raw UTF-8 (or deliberately not) */
	types		text[] NOT NULL,	/* uuid, text, jsonb, int8, bool */
	settings	text[] NOT NULL,	/* name, value, name, value ... */
	as_client	bool NOT NULL,		/* run as chatpersist_fuzz_client (RLS) */
	meta		jsonb NOT NULL,		/* what the checks need to know */
	PRIMARY KEY (batch, n)
);

CREATE UNLOGGED TABLE fuzz.results (
	batch		int NOT NULL,
	n			int NOT NULL,
	outcome		text NOT NULL,
	message		text,
	res			text,
	info		jsonb NOT NULL,
	failures	text[] NOT NULL,
	PRIMARY KEY (batch, n)
);

/*
 * The heads a restore INSERT wrote (see run_batch): a restore keeps the
 * checksum and message_count it is given, since its message rows come
 * after it.  Until a write recomputes them (an append, a save), such a head
 * (and its archived copies) holds exactly these values with no message:
 * the invariant checks allow that, and only that.
 */
CREATE UNLOGGED TABLE fuzz.restored_heads (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	checksum	text NOT NULL,
	message_count int NOT NULL
);

-- A role that is subject to row-level security
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chatpersist_fuzz_client') THEN
		CREATE ROLE chatpersist_fuzz_client NOLOGIN;
	END IF;
END
$$;
GRANT USAGE ON SCHEMA chatpersist TO chatpersist_fuzz_client;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chatpersist TO chatpersist_fuzz_client;
GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.conversations TO chatpersist_fuzz_client;
GRANT SELECT, INSERT, UPDATE, DELETE ON chatpersist.messages TO chatpersist_fuzz_client;
GRANT SELECT ON chatpersist.history TO chatpersist_fuzz_client;

/*
 * Fingerprint of every row of the tables (the heads, their message rows,
 * history and its message copies): the number of rows, the newest xmin
 * and a sum over the rows' places (ctid) of each.  Any write (insert,
 * update, or delete) that stays visible changes it: a new row version gets
 * a place of its own (and, in a later transaction, a transaction id larger
 * than every one before it; within the batch's transaction a write by the
 * transaction itself may not raise the newest xmin, which its subtransactions'
 * ids exceed, but it moves the row), and a delete alone lowers the count.
 * So two equal fingerprints mean no row was written in between.
 */
CREATE FUNCTION fuzz.fp_of(p_count int8, p_xmin int8, p_places int8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT p_count || ':' || coalesce(p_xmin, 0) || ':' || coalesce(p_places, 0)
$$;

CREATE FUNCTION fuzz.fp() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT fuzz.fp_of(count(*), max(xmin::text::int8), sum(hashtext(ctid::text)))
			FROM chatpersist.conversations)
		   || '|' ||
		   (SELECT fuzz.fp_of(count(*), max(xmin::text::int8), sum(hashtext(ctid::text)))
			FROM chatpersist.history)
		   || '|' ||
		   (SELECT fuzz.fp_of(count(*), max(xmin::text::int8), sum(hashtext(ctid::text)))
			FROM chatpersist.messages)
		   || '|' ||
		   (SELECT fuzz.fp_of(count(*), max(xmin::text::int8), sum(hashtext(ctid::text)))
			FROM chatpersist.history_messages)
$$;

/*
 * The conversations as 1.x stored them, one row each with its messages
 * array: the message rows that are not removed, in pos order (two live
 * rows never share a pos, see fuzz.sweep; the id only makes a tie that
 * breaks this deterministic, so that the sweep can name it) (the columns
 * of chatpersist.conversation, what load_conversation returns, but for
 * deleted conversations too)
 */
CREATE VIEW fuzz.conversations AS
	SELECT c.user_id, c.id, c.title,
		   (SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos, m.id), '[]') FROM chatpersist.messages m
			WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed) AS messages,
		   c.metadata, c.version, c.checksum, c.message_count, c.created_at, c.last_modified,
		   c.deleted, c.change_xid
	FROM chatpersist.conversations c;

/* A conversation's message rows (removed ones too), for the direct writes to them */
CREATE FUNCTION fuzz.rows_of(p_user uuid, p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'pos', m.pos, 'removed', m.removed,
												 'message', m.message, 'added', m.added_version)
							  ORDER BY m.pos, m.id), '[]')
	FROM chatpersist.messages m WHERE m.user_id = p_user AND m.conversation_id = p_id
$$;

/* What a merge reads of the message rows (stamps, hashes, retry memory) */
CREATE FUNCTION fuzz.memory_of(p_user uuid, p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'pos', m.pos, 'removed', m.removed,
												 'message', m.message, 'hash', m.hash,
												 'added', m.added_version, 'changed', m.changed_version,
												 'accepted', coalesce(m.accepted, '{}'))
							  ORDER BY m.pos, m.id), '[]')
	FROM chatpersist.messages m WHERE m.user_id = p_user AND m.conversation_id = p_id
$$;

/* The 64-bit hash a message row keeps of its message */
CREATE FUNCTION fuzz.hash(m jsonb) RETURNS int8 LANGUAGE sql IMMUTABLE AS $$
	SELECT ('x' || chatpersist.checksum(m))::bit(64)::int8
$$;

/*
 * The given copies that 2.0 takes for replays (docs/merge.md, "Retries"),
 * written independently of the C code: the id's row accepted the copy
 * before and moved on (its removed last copy, or a remembered one that is
 * not the current copy).
 */
CREATE FUNCTION fuzz.replays(p_mem jsonb, p_given jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_agg(g.e ORDER BY g.ord), '[]')
	FROM jsonb_array_elements(p_given) WITH ORDINALITY g(e, ord)
	JOIN jsonb_array_elements(p_mem) r ON r ->> 'id' = g.e ->> 'id'
	WHERE CASE WHEN (r ->> 'removed')::bool
			   THEN fuzz.hash(g.e) = (r ->> 'hash')::int8
					OR fuzz.hash(g.e) IN (SELECT jsonb_array_elements_text(r -> 'accepted')::int8)
			   ELSE fuzz.hash(g.e) <> (r ->> 'hash')::int8
					AND fuzz.hash(g.e) IN (SELECT jsonb_array_elements_text(r -> 'accepted')::int8) END
$$;

/* p_given without the copies of p_drop (by canonical text) */
CREATE FUNCTION fuzz.without(p_given jsonb, p_drop jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_agg(g.e ORDER BY g.ord), '[]')
	FROM jsonb_array_elements(p_given) WITH ORDINALITY g(e, ord)
	WHERE g.e::text NOT IN (SELECT d::text FROM jsonb_array_elements(p_drop) d)
$$;

/*
 * 2.0's merge base for a save or append at expected version p_e (NULL:
 * none) to a live conversation at p_version, written independently of the
 * C code (docs/merge.md, "Stamps" and "Retries"): the version's array from
 * history (p_hist), else, for a stale version history lost, the rows whose
 * stamps say the device saw their copy; then every replay is its own base
 * copy.  NULL: no base (a union).
 */
CREATE FUNCTION fuzz.merge_base(p_mem jsonb, p_hist jsonb, p_e int8, p_version int8, p_given jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	base	jsonb := NULL;
	rep		jsonb := fuzz.replays(p_mem, p_given);
BEGIN
	IF p_e IS NOT NULL AND p_e >= 1 AND p_e < p_version THEN
		base := coalesce(p_hist, (
			SELECT coalesce(jsonb_agg(r -> 'message' ORDER BY (r ->> 'pos')::int8), '[]')
			FROM jsonb_array_elements(p_mem) r
			WHERE (r ->> 'added')::int8 <= p_e
			  AND CASE WHEN (r ->> 'removed')::bool THEN (r ->> 'changed')::int8 > p_e
					   ELSE (r ->> 'changed')::int8 <= p_e END));
	END IF;
	IF jsonb_array_length(rep) > 0 THEN
		base := fuzz.upsert(coalesce(base, '[]'), rep);
	END IF;
	RETURN base;
END
$$;

/* A size setting's text (1500B, 2kB, 64MB) in bytes */
CREATE FUNCTION fuzz.bytes(s text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT (m[1]::int8 * CASE m[2] WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576
								   WHEN 'GB' THEN 1073741824 ELSE 1 END)::int
	FROM regexp_match(s, '^([0-9]+)(B|kB|MB|GB)$') m
$$;

/* Message ids of an array, in order */
CREATE FUNCTION fuzz.ids(m jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(array_agg(e ->> 'id' ORDER BY o), '{}')
	FROM jsonb_array_elements(m) WITH ORDINALITY x(e, o)
$$;

/* Messages that are not tombstones */
CREATE FUNCTION fuzz.live(m jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT count(*)::int FROM jsonb_array_elements(m) e
	WHERE (e -> 'deleted') IS DISTINCT FROM 'true'::jsonb
$$;

/* The messages of an array keyed by id (the last of a repeated id) */
CREATE FUNCTION fuzz.by_id(m jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_object_agg(e ->> 'id', e), '{}') FROM jsonb_array_elements(m) e
$$;

/* The copy of a message with that id, or NULL */
CREATE FUNCTION fuzz.copy_of(m jsonb, id text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT e FROM jsonb_array_elements(m) e WHERE e ->> 'id' = id LIMIT 1
$$;

/*
 * What append_messages means, written independently of the C code: onto's
 * messages, each replaced by given's copy of the same id, then given's new
 * messages in given's order.
 */
CREATE FUNCTION fuzz.upsert(onto jsonb, given jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_agg(x ORDER BY k1, k2), '[]') FROM (
		SELECT coalesce(fuzz.copy_of(given, o.e ->> 'id'), o.e) AS x, 0 AS k1, o.ord AS k2
		FROM jsonb_array_elements(onto) WITH ORDINALITY o(e, ord)
		UNION ALL
		SELECT g.e, 1, g.ord
		FROM jsonb_array_elements(given) WITH ORDINALITY g(e, ord)
		WHERE fuzz.copy_of(onto, g.e ->> 'id') IS NULL
	) s
$$;

/*
 * messages_since's answer res (the case's json_agg of version, checksum,
 * deleted, full and changes) for the conversation (ku, kt) and the
 * version v: no row when the caller cannot see it; else the head as it
 * is, a delta exactly when v is the current version or one history holds,
 * and the changes applied (the client's algorithm of docs/sync.md,
 * pg_temp.apply_delta of sql/include/apply_delta.sql, which fuzz.py runs
 * first) to the array of version v, or to [] for a full reload, give the
 * rows' array.
 */
CREATE FUNCTION fuzz.delta_failures(res jsonb, visible boolean, ku uuid, kt text, v bigint)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	head record;
	d jsonb;
	cur jsonb;
	base jsonb;
	covered boolean;
BEGIN
	SELECT version, checksum, deleted INTO head
	  FROM chatpersist.conversations WHERE visible AND user_id = ku AND id = kt;
	IF NOT FOUND THEN
		IF res <> '[]' THEN
			RETURN ARRAY[format('messages_since answered for a conversation it must not show: %s', left(res::text, 300))];
		END IF;
		RETURN '{}';
	END IF;
	IF jsonb_array_length(res) <> 1 THEN
		RETURN ARRAY[format('messages_since returned %s rows', jsonb_array_length(res))];
	END IF;
	d := res -> 0;
	SELECT coalesce(jsonb_agg(message ORDER BY pos), '[]') INTO cur
	  FROM chatpersist.messages WHERE user_id = ku AND conversation_id = kt AND NOT removed;
	IF (d ->> 'version')::int8 <> head.version OR d ->> 'checksum' <> head.checksum
		OR (d ->> 'deleted')::boolean <> head.deleted THEN
		RETURN ARRAY[format('messages_since: head %s, the row has version %s, checksum %s',
							left(d::text, 200), head.version, head.checksum)];
	END IF;
	IF v = head.version THEN
		covered := true;
		base := cur;
	ELSIF v > 0 AND v < head.version THEN
		SELECT h.messages INTO base FROM chatpersist.conversation_history(ku, kt) h WHERE h.version = v;
		covered := FOUND;
	ELSE
		covered := false;
	END IF;
	IF NOT covered THEN
		base := '[]';
	END IF;
	IF (d ->> 'full')::boolean = covered THEN
		RETURN ARRAY[format('messages_since from v%s (current %s, history holds it: %s): full_reload %s',
							v, head.version, covered, d ->> 'full')];
	END IF;
	IF pg_temp.apply_delta(base, d -> 'changes') IS DISTINCT FROM cur THEN
		RETURN ARRAY[format('messages_since from v%s: the changes %s applied to %s do not give %s',
							v, left((d -> 'changes')::text, 200), left(base::text, 200), left(cur::text, 200))];
	END IF;
	RETURN '{}';
END
$$;

/*
 * The merge properties that do not depend on which copy wins: r has unique
 * ids; each message of r is a's or b's copy of it; every id of a or b is in
 * r, except one the base has that one side dropped while the other kept it
 * unchanged (three-way); and when a and b list their common ids in the same
 * order, r keeps each side's order.
 */
CREATE FUNCTION fuzz.merge_failures(base jsonb, a jsonb, b jsonb, r jsonb)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	f		text[];
	rid		text[] := fuzz.ids(r);
	aid		text[] := fuzz.ids(a);
	bid		text[] := fuzz.ids(b);
	amap	jsonb := fuzz.by_id(a);
	bmap	jsonb := fuzz.by_id(b);
	basemap	jsonb := coalesce(fuzz.by_id(base), '{}');
	rmap	jsonb := fuzz.by_id(r);
	common_a text[];
	common_b text[];
BEGIN
	SELECT ARRAY(
		SELECT 'merge result repeats an id' WHERE (SELECT count(*) FROM jsonb_object_keys(rmap)) <> cardinality(rid)
		UNION ALL
		SELECT format('merge result has message %s that is neither side''s copy', e ->> 'id')
		FROM jsonb_array_elements(r) e
		WHERE (amap -> (e ->> 'id'))::text IS DISTINCT FROM e::text
		  AND (bmap -> (e ->> 'id'))::text IS DISTINCT FROM e::text
		UNION ALL
		/* dropped only if the base has it, one side lacks it, the other kept it as in the base */
		SELECT format('merge lost message %s', k.id)
		FROM (SELECT jsonb_object_keys(amap) UNION SELECT jsonb_object_keys(bmap)) k(id)
		WHERE NOT rmap ? k.id
		  AND NOT (basemap ? k.id AND (amap ? k.id) <> (bmap ? k.id)
				   AND coalesce(amap -> k.id, bmap -> k.id)::text = (basemap -> k.id)::text))
	INTO f;
	SELECT array_agg(x ORDER BY o) INTO common_a FROM unnest(aid) WITH ORDINALITY u(x, o) WHERE bmap ? x;
	SELECT array_agg(x ORDER BY o) INTO common_b FROM unnest(bid) WITH ORDINALITY u(x, o) WHERE amap ? x;
	IF common_a IS NOT DISTINCT FROM common_b THEN
		IF (SELECT array_agg(x ORDER BY o) FROM unnest(rid) WITH ORDINALITY u(x, o) WHERE amap ? x)
			IS DISTINCT FROM
		   (SELECT array_agg(x ORDER BY o) FROM unnest(aid) WITH ORDINALITY u(x, o) WHERE rmap ? x) THEN
			f := f || 'merge result does not keep the first side''s order'::text;
		END IF;
		IF (SELECT array_agg(x ORDER BY o) FROM unnest(rid) WITH ORDINALITY u(x, o) WHERE bmap ? x)
			IS DISTINCT FROM
		   (SELECT array_agg(x ORDER BY o) FROM unnest(bid) WITH ORDINALITY u(x, o) WHERE rmap ? x) THEN
			f := f || 'merge result does not keep the second side''s order'::text;
		END IF;
	END IF;
	RETURN f;
END
$$;

/*
 * What a direct write to message rows (sql_minsert, sql_mupdate,
 * sql_mdelete) must leave, written independently of the C code: each row
 * the statement writes is a version of its own (a statement that changes n
 * rows makes n versions), an INSERT appends after the last message unless
 * it gives a pos, an UPDATE edits, moves, removes (removed = true, the row
 * kept) or brings back (removed = false) one row, and leaves a row whose
 * message, pos and presence it does not change as it was (so does setting
 * anything on a row that stays removed), and a DELETE forgets rows (a
 * removed one was no part of the array).  p_rows is fuzz.rows_of before
 * the call, the arguments are the case's (see fuzz.py, row_args and the
 * sql_m* cases).  Returns {"messages": the array, "k": versions written,
 * "new": the inserted ids in statement order}.
 */
CREATE FUNCTION fuzz.expect_rows(p_rows jsonb, p_meta jsonb, j jsonb[], t text[], i8 int8[], bo bool[])
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	mop		text := p_meta ->> 'mop';
	sets	jsonb := coalesce(p_meta -> 'set', '[]');
	res		jsonb;
	k		int;
	newids	jsonb := '[]';
BEGIN
	IF mop = 'insert' THEN
		/* the given rows, in statement order; an id a row has is an upsert's */
		WITH given AS (
			SELECT e AS message, o AS ord FROM jsonb_array_elements(j[1]) WITH ORDINALITY x(e, o)
			WHERE (p_meta ->> 'multi')::bool
			UNION ALL
			SELECT j[1], 1 WHERE NOT (p_meta ->> 'multi')::bool AND j[1] IS NOT NULL
		), stored AS (
			SELECT * FROM jsonb_to_recordset(p_rows) AS r(id text, pos int8, removed bool, message jsonb)
		), fresh AS (
			SELECT g.* FROM given g WHERE NOT EXISTS (SELECT FROM stored s WHERE s.id = g.message ->> 'id')
		), upd AS (	/* ON CONFLICT DO UPDATE SET message = EXCLUDED.message, of a live row */
			SELECT s.id, g.message FROM given g JOIN stored s ON s.id = g.message ->> 'id'
			WHERE p_meta ->> 'conflict' = 'update' AND NOT s.removed
			  AND s.message::text IS DISTINCT FROM g.message::text
		), arr AS (
			SELECT coalesce(u.message, s.message) AS message, s.pos::numeric AS k1, s.id AS k2
			FROM stored s LEFT JOIN upd u ON u.id = s.id WHERE NOT s.removed
			UNION ALL
			SELECT f.message,
				   CASE WHEN p_meta -> 'cols' ? 'pos' AND i8[1] IS NOT NULL THEN i8[1]::numeric
						ELSE 1e30 + f.ord END, f.message ->> 'id'

			FROM fresh f
		)
		SELECT jsonb_build_object(
			'messages', (SELECT coalesce(jsonb_agg(message ORDER BY k1, k2), '[]') FROM arr),
			'k', (SELECT count(*) FROM fresh) + (SELECT count(*) FROM upd),
			'new', (SELECT coalesce(jsonb_agg(message ->> 'id' ORDER BY ord), '[]') FROM fresh),
			'upd', (SELECT coalesce(jsonb_agg(id), '[]') FROM upd))
		INTO res;
		RETURN res;
	END IF;

	/* UPDATE or DELETE of the rows the WHERE clause names */
	WITH stored AS (
		SELECT r.*, (NOT (p_meta ->> 'where_id')::bool OR r.id = t[2]) AS hit
		FROM jsonb_to_recordset(p_rows) AS r(id text, pos int8, removed bool, message jsonb)
	), after AS (
		SELECT s.id, s.removed AS was_removed, s.hit,
			   CASE WHEN NOT s.hit THEN s.removed
					WHEN mop = 'delete' THEN true
					WHEN sets ? 'removed' THEN coalesce(bo[1], false)
					ELSE s.removed END AS now_removed,
			   CASE WHEN s.hit AND mop = 'update' AND sets ? 'message' THEN j[1] ELSE s.message END AS new_message,
			   CASE WHEN s.hit AND mop = 'update' AND sets ? 'pos' AND i8[1] IS NOT NULL THEN i8[1]
					ELSE s.pos END AS new_pos,
			   s.message, s.pos
		FROM stored s
	), judged AS (
		SELECT a.*,
			   a.hit AND NOT (a.was_removed AND a.now_removed)
			   AND NOT (NOT a.was_removed AND NOT a.now_removed AND a.new_pos = a.pos
						AND a.new_message::text IS NOT DISTINCT FROM a.message::text) AS changed
		FROM after a
	)
	SELECT jsonb_build_object(
		'messages', coalesce(jsonb_agg(CASE WHEN changed THEN new_message ELSE message END
									   ORDER BY CASE WHEN changed THEN new_pos ELSE pos END, id)
							 FILTER (WHERE NOT now_removed), '[]'),
		'k', count(*) FILTER (WHERE changed),
		'new', '[]'::jsonb,
		'upd', coalesce(jsonb_agg(id) FILTER (WHERE changed), '[]'))
	INTO res FROM judged;
	RETURN res;
END
$$;

/* Invariants of one stored row: checksum, count, id length */
CREATE FUNCTION fuzz.row_failures(c fuzz.conversations) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	f text[] := '{}';
BEGIN
	/* a restored head, as given, before any message (see fuzz.restored_heads) */
	IF c.messages = '[]' AND EXISTS (SELECT FROM fuzz.restored_heads r
									 WHERE r.user_id = c.user_id AND r.id = c.id
									   AND r.checksum = c.checksum AND r.message_count = c.message_count) THEN
		c.checksum := chatpersist.checksum('[]');
		c.message_count := 0;
	END IF;
	IF c.checksum IS DISTINCT FROM chatpersist.checksum(c.messages) THEN
		f := f || format('row %s: checksum %s is not checksum(messages) %s',
						 c.id, c.checksum, chatpersist.checksum(c.messages));
	END IF;
	IF c.message_count IS DISTINCT FROM fuzz.live(c.messages) THEN
		f := f || format('row %s: message_count %s but %s live messages',
						 c.id, c.message_count, fuzz.live(c.messages));
	END IF;
	IF octet_length(c.id) NOT BETWEEN 1 AND 255 THEN
		f := f || format('row with an id of %s bytes', octet_length(c.id));
	END IF;
	IF c.version < 1 THEN
		f := f || format('row %s: version %s', c.id, c.version);
	END IF;
	IF jsonb_typeof(c.metadata) <> 'object' THEN
		f := f || format('row %s: metadata is not an object', c.id);
	END IF;
	RETURN f;
END
$$;

/*
 * Rows that break an invariant: those written since transaction id p_since
 * (the batch just run: every row it wrote carries its xid or a subxact's),
 * or every row when p_since is 0 (the end of a run)
 */
CREATE FUNCTION fuzz.sweep(p_since int8 DEFAULT 0) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
	f text[] := '{}';
	c fuzz.conversations;
BEGIN
	PERFORM set_config('chatpersist.max_messages', '268435455', true);
	PERFORM set_config('chatpersist.max_conversation_bytes', '2147483647', true);
	FOR c IN SELECT x.* FROM fuzz.conversations x JOIN chatpersist.conversations y
		ON y.user_id = x.user_id AND y.id = x.id
		WHERE y.change_xid::text::int8 >= p_since OR y.xmin::text::int8 >= p_since
		   OR EXISTS (SELECT FROM chatpersist.messages m WHERE m.user_id = x.user_id
					  AND m.conversation_id = x.id AND m.xmin::text::int8 >= p_since)
	LOOP
		f := f || fuzz.row_failures(c);
		/* the read path returns what the rows hold */
		IF NOT c.deleted AND (SELECT l.messages::text FROM chatpersist.load_conversation(c.user_id, c.id) l)
			IS DISTINCT FROM c.messages::text THEN
			f := f || format('row %s: load_conversation returns other messages than the rows', c.id);
		END IF;
	END LOOP;
	/* every archived version rebuilt (chatpersist.history_messages) matches its head's checksum */
	f := f || ARRAY(SELECT format('history %s v%s: checksum is not checksum(messages)', a.conversation_id, a.version)
				   FROM (SELECT DISTINCT user_id, conversation_id FROM chatpersist.history
						 WHERE xmin::text::int8 >= p_since) k
				   CROSS JOIN LATERAL chatpersist.conversation_history(k.user_id, k.conversation_id) a
				   WHERE a.checksum IS DISTINCT FROM chatpersist.checksum(a.messages)
					 /* an archived restored head, as given, before any message */
					 AND NOT (a.messages = '[]' AND EXISTS (
						SELECT FROM fuzz.restored_heads r
						WHERE r.user_id = k.user_id AND r.id = k.conversation_id
						  AND r.checksum = a.checksum AND r.message_count = a.message_count)));
	f := f || ARRAY(SELECT format('history %s: conversation_history returns versions %s, the heads are %s',
								  k.conversation_id, a.v, h.v)
				   FROM (SELECT DISTINCT user_id, conversation_id FROM chatpersist.history
						 WHERE xmin::text::int8 >= p_since) k
				   CROSS JOIN LATERAL (SELECT array_agg(version ORDER BY version) AS v
									   FROM chatpersist.conversation_history(k.user_id, k.conversation_id)) a
				   CROSS JOIN LATERAL (SELECT array_agg(version ORDER BY version) AS v FROM chatpersist.history x
									   WHERE x.user_id = k.user_id AND x.conversation_id = k.conversation_id) h
				   WHERE a.v IS DISTINCT FROM h.v);
	f := f || ARRAY(SELECT format('history %s v%s: not older than the row''s version %s', h.conversation_id, h.version, x.version)
				   FROM chatpersist.history h JOIN chatpersist.conversations x
				   ON x.user_id = h.user_id AND x.id = h.conversation_id
				   WHERE h.version >= x.version);
	/* message rows: each of a conversation, keyed by its message's id, hashed and stamped by the server */
	f := f || ARRAY(SELECT format('message row %s/%s: %s', m.conversation_id, m.id,
								  CASE WHEN x.id IS NULL THEN 'its conversation does not exist'
									   WHEN m.id IS DISTINCT FROM m.message ->> 'id' THEN 'its id is not its message''s'
									   WHEN m.hash <> ('x' || chatpersist.checksum(m.message))::bit(64)::int8
										   THEN 'its hash is not XXH3 of its message'
									   ELSE format('stamps added %s, changed %s, conversation version %s',
												   m.added_version, m.changed_version, x.version) END)
				   FROM chatpersist.messages m LEFT JOIN chatpersist.conversations x
				   ON x.user_id = m.user_id AND x.id = m.conversation_id
				   WHERE m.xmin::text::int8 >= p_since
					 AND (x.id IS NULL OR m.id IS DISTINCT FROM m.message ->> 'id'
						  OR m.hash <> ('x' || chatpersist.checksum(m.message))::bit(64)::int8
						  OR NOT (m.added_version <= m.changed_version AND m.changed_version <= x.version)));
	/* the array's order is the rows' pos order: no two live rows of a conversation share a pos */
	f := f || ARRAY(SELECT format('conversation %s: live message rows %s share pos %s', m.conversation_id,
								  string_agg(m.id, ', ' ORDER BY m.id), m.pos)
				   FROM chatpersist.messages m
				   WHERE NOT m.removed AND (m.user_id, m.conversation_id) IN (
						SELECT user_id, conversation_id FROM chatpersist.messages WHERE xmin::text::int8 >= p_since)
				   GROUP BY m.user_id, m.conversation_id, m.pos HAVING count(*) > 1);
	RETURN f;
END
$$;

/* Set a case's settings (name, value pairs) for the transaction; without
   max_messages and max_conversation_bytes when p_limits is false (the
   rerun that tells whether a result is over the limits) */
CREATE FUNCTION fuzz.apply_settings(s text[], p_limits boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR k IN 1 .. coalesce(array_length(s, 1), 0) BY 2 LOOP
		IF p_limits OR s[k] NOT IN ('chatpersist.max_messages', 'chatpersist.max_conversation_bytes') THEN
			PERFORM set_config(s[k], s[k + 1], true);
		END IF;
	END LOOP;
END
$$;

/* Resolve a symbolic int8 argument (see the file header) */
CREATE FUNCTION fuzz.resolve_int8(s text, cur int8, hmin int8, hmax int8, pmin int8, pmax int8) RETURNS int8
LANGUAGE plpgsql AS $$
DECLARE
	m text[];
	v numeric;
BEGIN
	m := regexp_match(s, '^(cur|hmin|hmax|pmin|pmax)([+-][0-9]+)?$');
	IF m IS NULL THEN
		RETURN s::int8;			/* may raise: a parse error of the case */
	END IF;
	v := CASE m[1] WHEN 'cur' THEN coalesce(cur, hmax, 0)
				   WHEN 'hmin' THEN coalesce(hmin, 0)
				   WHEN 'pmin' THEN coalesce(pmin, 0)
				   WHEN 'pmax' THEN coalesce(pmax, 0)
				   ELSE coalesce(hmax, 0) END + coalesce(m[2]::numeric, 0);
	RETURN least(greatest(v, -9223372036854775808), 9223372036854775807)::int8;
END
$$;

/*
 * Run the cases of a batch in order (only those with n < upto, and not
 * those in skip, when given: the bisection of a crash uses both) and
 * record the results.  Returns the batch's transaction id (for fuzz.sweep).
 *
 * Three hooks exist only for the oracle's self-test (fuzz.py --break): a
 * case whose meta has break_write rewrites a row after a failed call; one
 * with break_merge checks a merge result with its first message removed;
 * one with break_row miscounts the row it wrote, behind the trigger's back.
 * Each must be reported.
 */
CREATE FUNCTION fuzz.run_batch(p_batch int, p_upto int DEFAULT NULL, p_skip int[] DEFAULT NULL)
RETURNS int8 LANGUAGE plpgsql AS $$
DECLARE
	c			fuzz.cases;
	k			int;
	s			text;
	u			uuid[];
	t			text[];
	j			jsonb[];
	i8			int8[];
	raw_i8		text[];
	bo			bool[];
	ku			uuid;
	kt			text;
	keyed		bool;
	pre			fuzz.conversations;
	pre_found	bool;
	pre_rows	jsonb;
	pmin		int8;
	pmax		int8;
	post		fuzz.conversations;
	post_found	bool;
	hv			int8[];
	hmin		int8;
	hmax		int8;
	fmax		int8;
	vmax		int8;
	hcount		int;
	hrow		chatpersist.archived_version;
	hrow_found	bool;
	fp0			text;
	fp1			text;
	outcome		text;
	msg			text;
	res			text;
	res2		text;
	info		jsonb;
	f			text[];
	st			text;
	sr			jsonb;
	depth		int;
	maxm		int;
	maxb		int;
	oldvals		text[];
	base		jsonb;
	expect		jsonb;
	visible		bool;
	rr			jsonb;
	ex			jsonb;
	nk			int;
	mcase		bool;
	ran			int := 0;
	sess_maxm	text := current_setting('chatpersist.max_messages');
	sess_maxb	text := current_setting('chatpersist.max_conversation_bytes');
	restore_ins	bool;
	t0			timestamptz;
	t1			timestamptz;
	call_ms		float8;
	writes		text[] := ARRAY['save', 'append', 'delete', 'restore', 'sql_insert',
								'sql_update', 'sql_delete', 'sql_upsert',
								'sql_minsert', 'sql_mupdate', 'sql_mdelete'];
BEGIN
	FOR c IN SELECT * FROM fuzz.cases
		WHERE batch = p_batch AND (p_upto IS NULL OR n < p_upto)
		  AND NOT (n = ANY (coalesce(p_skip, '{}')))
		ORDER BY n
	LOOP
		ran := ran + 1;
		restore_ins := false;
		t0 := clock_timestamp();
		call_ms := NULL;
		outcome := NULL;
		msg := NULL;
		res := NULL;
		f := '{}';
		info := '{}';
		u := '{}';
		t := '{}';
		j := '{}';
		raw_i8 := '{}';
		i8 := '{}';
		bo := '{}';

		/* 1. Parse the arguments with PostgreSQL's input functions */
		FOR k IN 1 .. coalesce(array_length(c.types, 1), 0) LOOP
			BEGIN
				s := CASE WHEN c.args[k] IS NULL THEN NULL ELSE convert_from(c.args[k], 'UTF8') END;
				CASE c.types[k]
					WHEN 'uuid' THEN u := array_append(u, s::uuid);
					WHEN 'text' THEN t := array_append(t, s);
					WHEN 'jsonb' THEN j := array_append(j, s::jsonb);
					WHEN 'int8' THEN raw_i8 := array_append(raw_i8, s);
					WHEN 'bool' THEN bo := array_append(bo, s::bool);
				END CASE;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				outcome := 'parse:' || st;
				info := jsonb_build_object('parse_arg', k);
				EXIT;
			END;
		END LOOP;

		IF outcome IS NULL THEN
			/* 2. The state before the call */
			keyed := c.fn = ANY (writes) OR c.fn IN ('load_one', 'history');
			ku := CASE WHEN cardinality(u) >= 1 THEN u[1] END;
			kt := CASE WHEN cardinality(t) >= 1 THEN t[1] END;
			pre_found := false;
			hv := '{}';
			fmax := NULL;
			pmin := NULL;
			pmax := NULL;
			pre_rows := '[]';
			mcase := c.fn IN ('sql_minsert', 'sql_mupdate', 'sql_mdelete');
			IF keyed AND ku IS NOT NULL AND kt IS NOT NULL THEN
				SELECT * INTO pre FROM fuzz.conversations WHERE user_id = ku AND id = kt;
				pre_found := FOUND;
				SELECT min(pos), max(pos) INTO pmin, pmax
				FROM chatpersist.messages WHERE user_id = ku AND conversation_id = kt;
				IF mcase THEN
					pre_rows := fuzz.rows_of(ku, kt);
				ELSIF c.fn IN ('save', 'append') THEN
					pre_rows := fuzz.memory_of(ku, kt);
				END IF;
				SELECT coalesce(array_agg(version ORDER BY version), '{}') INTO hv
				FROM chatpersist.history WHERE user_id = ku AND conversation_id = kt;
				SELECT version INTO fmax
				FROM chatpersist.version_floors WHERE user_id = ku AND conversation_id = kt;
			END IF;
			IF NOT pre_found THEN
				pre := NULL;
			END IF;
			hmin := hv[1];
			hmax := hv[cardinality(hv)];
			/* the newest version the key has had without a row: history, or the floor a DELETE left */
			vmax := GREATEST(hmax, fmax);
			FOR k IN 1 .. coalesce(array_length(raw_i8, 1), 0) LOOP
				BEGIN
					i8 := array_append(i8, CASE WHEN raw_i8[k] IS NULL THEN NULL
										   ELSE fuzz.resolve_int8(raw_i8[k], pre.version, hmin, hmax, pmin, pmax) END);
				EXCEPTION WHEN OTHERS THEN
					GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
					outcome := 'parse:' || st;
					EXIT;
				END;
			END LOOP;
		END IF;

		IF outcome IS NULL THEN
			info := jsonb_build_object(
				'pre', CASE WHEN pre_found THEN jsonb_build_object(
					'version', pre.version, 'deleted', pre.deleted, 'checksum', pre.checksum,
					'count', jsonb_array_length(pre.messages)) END,
				'hist', to_jsonb(hv),
				'i8', to_jsonb(i8),
				'argbytes', (SELECT coalesce(jsonb_agg(pg_column_size(x)), '[]') FROM unnest(j) x));
			IF mcase THEN
				/* the message rows by id (removed, md5 of the stored text, pos), for fuzz.py's predictions */
				info := info || jsonb_build_object('rows', (
					SELECT coalesce(jsonb_object_agg(r ->> 'id', jsonb_build_array((r ->> 'removed')::bool,
																					md5((r -> 'message')::text),
																					(r ->> 'pos')::int8)), '{}')
					FROM jsonb_array_elements(pre_rows) r));
				IF pre_found THEN
					info := jsonb_set(info, '{pre,bytes}', to_jsonb(pg_column_size(pre.messages::text::jsonb)));
				END IF;
			END IF;
			IF c.fn IN ('migrate', 'import') THEN
				/* a key whose history reached the largest version cannot be created again */
				info := info || jsonb_build_object('top', EXISTS (
					SELECT FROM chatpersist.history WHERE version = 9223372036854775807) OR EXISTS (
					SELECT FROM chatpersist.conversations WHERE version = 9223372036854775807));
			END IF;
			IF c.fn = 'import' AND cardinality(u) >= 1 AND u[1] IS NOT NULL THEN
				/* given copies the user's live conversation accepted once: replays, not imported */
				info := info || jsonb_build_object('replayed', (
					SELECT coalesce(jsonb_object_agg(e.key, (
							   SELECT coalesce(jsonb_agg(r ->> 'id'), '[]')
							   FROM jsonb_array_elements(fuzz.replays(fuzz.memory_of(u[1], e.key),
																	  (e.value #>> '{}')::jsonb)) r)), '{}')
					FROM jsonb_each(coalesce(c.meta -> 'copies', '{}')) e
					WHERE EXISTS (SELECT FROM fuzz.conversations a
								  WHERE a.user_id = u[1] AND a.id = e.key AND NOT a.deleted)));
			END IF;
			IF c.fn = 'migrate' AND cardinality(u) = 2 AND u[1] IS NOT NULL AND u[2] IS NOT NULL THEN
				info := info || jsonb_build_object('pre_from', fuzz.user_ids(u[1]),
												   'pre_to', fuzz.user_ids(u[2]));
				/* guest copies the account's live conversation accepted once: replays, not moved */
				info := info || jsonb_build_object('replayed', (
					SELECT coalesce(jsonb_object_agg(g.id, (
							   SELECT coalesce(jsonb_agg(r ->> 'id'), '[]')
							   FROM jsonb_array_elements(fuzz.replays(fuzz.memory_of(u[2], g.id), g.messages)) r)), '{}')
					FROM fuzz.conversations g
					WHERE g.user_id = u[1] AND NOT g.deleted
					  AND EXISTS (SELECT FROM fuzz.conversations a
								  WHERE a.user_id = u[2] AND a.id = g.id AND NOT a.deleted)));
			END IF;
			hrow_found := false;
			IF keyed AND cardinality(i8) >= 1 AND i8[1] = ANY (hv) THEN
				SELECT * INTO hrow FROM chatpersist.conversation_history(ku, kt) h WHERE h.version = i8[1];
				hrow_found := FOUND;
			END IF;

			/* the fingerprint after the previous case (nothing writes in between) */
			IF fp1 IS NULL THEN
				fp1 := fuzz.fp();
			END IF;
			fp0 := fp1;

			/* 3. The call, in its own subtransaction */
			oldvals := '{}';
			FOR k IN 1 .. coalesce(array_length(c.settings, 1), 0) BY 2 LOOP
				oldvals := oldvals || current_setting(c.settings[k], true);
			END LOOP;
			BEGIN
				PERFORM fuzz.apply_settings(c.settings, true);
				depth := current_setting('chatpersist.history_depth')::int;
				maxm := current_setting('chatpersist.max_messages')::int;
				maxb := fuzz.bytes(current_setting('chatpersist.max_conversation_bytes'));
				IF c.as_client THEN
					SET LOCAL ROLE chatpersist_fuzz_client;
				END IF;
				t1 := clock_timestamp();
				EXECUTE c.stmt INTO res USING u, t, j, i8, bo;
				call_ms := extract(epoch FROM clock_timestamp() - t1) * 1000;
				IF c.as_client THEN
					RESET ROLE;
				END IF;
				FOR k IN 1 .. coalesce(array_length(c.settings, 1), 0) BY 2 LOOP
					PERFORM set_config(c.settings[k], coalesce(oldvals[(k + 1) / 2], ''), true);
				END LOOP;
				outcome := 'ok';
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				outcome := st;
			END;
			IF c.meta ? 'break_write' AND outcome <> 'ok' THEN
				UPDATE chatpersist.conversations SET title = title
				WHERE ctid = (SELECT min(ctid) FROM chatpersist.conversations);
				fp1 := NULL;
			END IF;
			info := info || jsonb_build_object('depth', depth, 'max_messages', maxm, 'max_bytes', maxb);
			fp1 := fuzz.fp();

			/* 4. Checks, as the superuser, with the limits lifted */
			BEGIN
				PERFORM set_config('chatpersist.max_messages', '268435455', true);
				PERFORM set_config('chatpersist.max_conversation_bytes', '2147483647', true);

				IF outcome <> 'ok' AND fp1 <> fp0 THEN
					f := f || 'a failed call changed the tables'::text;
				END IF;

				/* Over a limit: rerun without limits to see whether the result is over */
				IF outcome = '54000' THEN
					BEGIN
						PERFORM fuzz.apply_settings(c.settings, false);
						EXECUTE c.stmt INTO res2 USING u, t, j, i8, bo;
						IF c.fn IN ('merge2', 'merge3') THEN
							info := info || jsonb_build_object('rerun', jsonb_build_object(
								'count', jsonb_array_length(res2::jsonb),
								'bytes', pg_column_size(res2::jsonb)));
						ELSE
							/* the largest array of the rows written (the jsonb size before compression) */
							info := info || jsonb_build_object('rerun', (
								SELECT jsonb_build_object('res', res2,
									'count', max(jsonb_array_length(x.messages)),
									'bytes', max(pg_column_size(x.messages::text::jsonb)))
								FROM fuzz.conversations x
								WHERE CASE WHEN c.fn IN ('import', 'migrate') THEN x.user_id = u[cardinality(u)]
										   ELSE x.user_id = ku AND x.id = kt END));
							IF c.fn = 'append' AND hrow_found AND i8[1] < pre.version THEN
								/* append from an older version checks that version plus its messages */
								rr := fuzz.upsert(hrow.messages, j[1]);
								info := jsonb_set(info, '{rerun,seen_count}', to_jsonb(jsonb_array_length(rr)));
								info := jsonb_set(info, '{rerun,seen_bytes}', to_jsonb(pg_column_size(rr::text::jsonb)));
							END IF;
						END IF;
						RAISE EXCEPTION USING ERRCODE = 'FZ001';
					EXCEPTION
						WHEN SQLSTATE 'FZ001' THEN NULL;
						WHEN OTHERS THEN
							info := info || jsonb_build_object('rerun', jsonb_build_object('error', SQLSTATE));
					END;
				END IF;

				IF outcome = 'ok' AND c.fn = ANY (writes) AND c.meta ? 'break_row' THEN
					SET LOCAL session_replication_role = replica;
					UPDATE chatpersist.conversations SET message_count = message_count + 1
					WHERE user_id = ku AND id = kt;
					SET LOCAL session_replication_role = origin;
				END IF;
				IF outcome = 'ok' AND c.fn = ANY (writes) THEN
					SELECT * INTO post FROM fuzz.conversations WHERE user_id = ku AND id = kt;
					post_found := FOUND;
					SELECT count(*) INTO hcount FROM chatpersist.history
					WHERE user_id = ku AND conversation_id = kt;
					/*
					 * A restore (pg_dump's rows): the owner inserts a row with
					 * its own version >= 1 (above every archived version of
					 * the key and its floor: a version never names two
					 * contents), a last_modified, a message_count and a
					 * checksum (16 lowercase hex digits).  The head's messages
					 * are rows of their own, restored after it: its checksum
					 * and count are kept as given, unchecked, until a write
					 * recomputes them (fuzz.restored_heads)
					 */
					restore_ins := outcome = 'ok' AND c.fn IN ('sql_insert', 'sql_upsert') AND NOT pre_found
						AND post_found AND NOT c.as_client AND c.meta -> 'cols' ? 'version'
						AND i8[1] >= 1 AND i8[1] > coalesce(vmax, 0)
						AND c.meta -> 'cols' ? 'checksum' AND t[3] ~ '^[0-9a-f]{16}$'
						AND c.meta -> 'cols' ? 'message_count' AND i8[2] IS NOT NULL
						AND NOT (c.meta -> 'cols' ? 'last_modified' AND t[5] IS NULL);
					IF restore_ins THEN
						INSERT INTO fuzz.restored_heads VALUES (ku, kt, t[3], i8[2]);
					END IF;
					IF post_found THEN
						f := f || fuzz.row_failures(post);
						info := info || jsonb_build_object('post', jsonb_build_object(
							'version', post.version, 'checksum', post.checksum,
							'deleted', post.deleted,
							'text', CASE WHEN octet_length(post.messages::text) <= 65536
									THEN post.messages::text END));
					END IF;
				END IF;

				IF outcome = 'ok' AND c.fn IN ('save', 'append', 'delete', 'restore') THEN
					sr := res::jsonb;
					st := sr ->> 'status';
					info := info || jsonb_build_object('status', st);
					IF sr ->> 'conversation_id' IS DISTINCT FROM kt THEN
						f := f || 'save_result names another conversation'::text;
					END IF;
					IF st = 'unchanged' THEN
						IF fp1 <> fp0 THEN
							f := f || 'status unchanged, but the tables changed'::text;
						END IF;
						visible := NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid;
						IF NOT visible THEN
							pre := NULL;		/* row-level security hides it from the caller */
						END IF;
						IF (sr ->> 'version')::int8 IS DISTINCT FROM pre.version
							OR sr ->> 'checksum' IS DISTINCT FROM pre.checksum THEN
							f := f || format('status unchanged, but version/checksum %s/%s differ from the stored %s/%s',
											 sr ->> 'version', sr ->> 'checksum', pre.version, pre.checksum);
						END IF;
					ELSIF NOT post_found THEN
						f := f || format('status %s, but no row', st);
					ELSE
						IF (sr ->> 'version')::int8 IS DISTINCT FROM post.version
							OR sr ->> 'checksum' IS DISTINCT FROM post.checksum
							OR (sr ->> 'message_count')::int IS DISTINCT FROM post.message_count THEN
							f := f || format('save_result %s does not describe the stored row (%s, %s, %s)',
											 res, post.version, post.checksum, post.message_count);
						END IF;
						IF post.version::numeric IS DISTINCT FROM
							(CASE WHEN pre_found THEN pre.version::numeric + 1 ELSE coalesce(vmax, 0) + 1 END) THEN
							f := f || format('version went from %s (history max or floor %s) to %s',
											 pre.version, vmax, post.version);
						END IF;
						IF post.last_modified <> now() OR post.change_xid <> pg_current_xact_id() THEN
							f := f || 'last_modified or change_xid not stamped by this write'::text;
						END IF;
						IF pre_found AND depth > 0 AND NOT EXISTS (
							SELECT FROM chatpersist.conversation_history(ku, kt) h
							WHERE h.version = pre.version
							  AND h.checksum = pre.checksum AND h.messages = pre.messages
							  AND h.title = pre.title AND h.deleted = pre.deleted) THEN
							f := f || format('the replaced version %s is not in history', pre.version);
						END IF;
						IF pre_found AND hcount > depth THEN
							/* a write that archived a version prunes the older ones */
							f := f || format('history keeps %s versions, history_depth is %s', hcount, depth);
						END IF;
						IF post.deleted <> (st = 'deleted') THEN
							f := f || format('status %s, but deleted = %s', st, post.deleted);
						END IF;

						/* What the content must be, by function and status */
						base := NULL;
						IF c.fn IN ('save', 'append') AND pre_found AND NOT pre.deleted THEN
							base := fuzz.merge_base(pre_rows, CASE WHEN hrow_found THEN hrow.messages END,
													i8[1], pre.version, j[1]);
						ELSIF hrow_found AND i8[1] >= 1 AND i8[1] < pre.version THEN
							base := hrow.messages;
						END IF;
						expect := NULL;
						IF c.fn = 'save' THEN
							IF st IN ('created', 'updated', 'overwritten') THEN
								expect := j[1];
							ELSIF st = 'merged' THEN
								expect := chatpersist.merge_messages(base, pre.messages, j[1]);
								f := f || fuzz.merge_failures(base, pre.messages, j[1], post.messages);
							END IF;
							IF post.title IS DISTINCT FROM coalesce(t[2], pre.title, '') THEN
								f := f || 'title is not the given (or kept) one'::text;
							END IF;
							IF post.metadata IS DISTINCT FROM
								(CASE WHEN st = 'merged' AND j[2] IS NOT NULL THEN pre.metadata || j[2]
									 ELSE coalesce(j[2], pre.metadata, '{}') END) THEN
								f := f || 'metadata is not the given (or kept) one'::text;
							END IF;
						ELSIF c.fn = 'append' THEN
							IF st = 'created' THEN
								expect := j[1];
							ELSIF st = 'updated' THEN
								expect := fuzz.upsert(pre.messages, fuzz.without(j[1], fuzz.replays(pre_rows, j[1])));
							ELSIF st = 'merged' AND base IS NOT NULL THEN
								expect := chatpersist.merge_messages(base, pre.messages, fuzz.upsert(base, j[1]));
							ELSIF st = 'merged' THEN
								expect := chatpersist.merge_messages(pre.messages, j[1]);
							END IF;
							IF post.title IS DISTINCT FROM coalesce(pre.title, '')
								OR post.metadata IS DISTINCT FROM coalesce(pre.metadata, '{}') THEN
								f := f || 'append changed title or metadata'::text;
							END IF;
						ELSIF c.fn = 'delete' THEN
							expect := '[]';
							IF post.title IS DISTINCT FROM pre.title OR post.metadata IS DISTINCT FROM pre.metadata THEN
								f := f || 'delete changed title or metadata'::text;
							END IF;
						ELSIF c.fn = 'restore' THEN
							IF pre_found AND i8[1] = pre.version THEN
								expect := pre.messages;
							ELSIF hrow_found THEN
								expect := hrow.messages;
								IF post.title IS DISTINCT FROM hrow.title OR post.metadata IS DISTINCT FROM hrow.metadata THEN
									f := f || 'restore did not restore title and metadata'::text;
								END IF;
							ELSE
								f := f || format('restore of version %s succeeded, but it was not in history', i8[1]);
							END IF;
						END IF;
						IF expect IS NOT NULL AND expect::text IS DISTINCT FROM post.messages::text THEN
							f := f || format('%s (%s): stored messages %s are not the expected %s', c.fn, st,
											 left(post.messages::text, 300), left(expect::text, 300));
						END IF;
					END IF;
				END IF;

				IF outcome = 'ok' AND c.fn IN ('sql_insert', 'sql_upsert') AND NOT pre_found THEN
					IF NOT post_found THEN
						f := f || 'INSERT succeeded, but there is no row'::text;
					ELSE
						/* a direct INSERT of a conversation is its head: no messages (they are rows) */
						IF post.messages::text IS DISTINCT FROM '[]'
							OR post.title IS DISTINCT FROM (CASE WHEN c.meta -> 'cols' ? 'title' THEN t[2] ELSE '' END)
							OR post.metadata IS DISTINCT FROM (CASE WHEN c.meta -> 'cols' ? 'metadata' THEN j[2] ELSE '{}' END)
							OR post.deleted IS DISTINCT FROM (CASE WHEN c.meta -> 'cols' ? 'deleted' THEN bo[1] ELSE false END) THEN
							f := f || 'INSERT stored other content than given'::text;
						END IF;
						/* a restore (restore_ins, above) keeps what it is given */
						info := info || jsonb_build_object('restore', restore_ins);
						IF restore_ins THEN
							IF post.version IS DISTINCT FROM i8[1] THEN
								f := f || format('a restore INSERT of version %s stored version %s', i8[1], post.version);
							END IF;
							IF (post.checksum, post.message_count) IS DISTINCT FROM (t[3], i8[2]::int4) THEN
								f := f || format('a restore INSERT of checksum %s, message_count %s stored %s, %s',
												 t[3], i8[2], post.checksum, post.message_count);
							END IF;
							IF c.meta -> 'cols' ? 'last_modified' AND post.last_modified IS DISTINCT FROM t[5]::timestamptz THEN
								f := f || format('a restore INSERT of last_modified %s stored %s', t[5], post.last_modified);
							END IF;
						ELSIF post.version::numeric IS DISTINCT FROM coalesce(vmax, 0) + 1
							OR post.last_modified <> now() THEN
							f := f || format('INSERT got version %s (history max or floor %s) or a client last_modified',
											 post.version, vmax);
						END IF;
						IF post.change_xid <> pg_current_xact_id() THEN
							f := f || 'INSERT: change_xid is not this transaction'::text;
						END IF;
					END IF;
				END IF;

				IF outcome = 'ok' AND (c.fn = 'sql_update' OR (c.fn = 'sql_upsert' AND pre_found)) THEN
					IF NOT pre_found THEN
						IF fp1 <> fp0 THEN
							f := f || 'an UPDATE of no row changed the tables'::text;
						END IF;
					ELSIF NOT post_found THEN
						f := f || 'the updated row is gone'::text;
					ELSIF post.messages::text IS DISTINCT FROM pre.messages::text THEN
						/* the head has no messages column: its UPDATE leaves the message rows alone */
						f := f || 'a direct UPDATE of the conversation changed its messages'::text;
					ELSIF c.meta ->> 'upsert' = 'nothing' THEN
						IF fp1 <> fp0 THEN
							f := f || 'INSERT ... ON CONFLICT DO NOTHING changed the tables'::text;
						END IF;
					ELSIF post.title IS DISTINCT FROM pre.title
						OR post.messages::text IS DISTINCT FROM pre.messages::text
						OR post.metadata::text IS DISTINCT FROM pre.metadata::text
						OR post.deleted IS DISTINCT FROM pre.deleted
						/*
						 * an ORM's version = stored + 1 writes a version even
						 * unchanged, when row-level security lets the row be seen
						 */
						OR (c.meta -> 'set' ? 'version' AND i8[1]::numeric = pre.version::numeric + 1
							AND (NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid)) THEN
						IF post.version::numeric IS DISTINCT FROM pre.version::numeric + 1 THEN
							f := f || format('content changed, but version went from %s to %s', pre.version, post.version);
						END IF;
						IF post.created_at IS DISTINCT FROM pre.created_at OR post.last_modified <> now() THEN
							f := f || 'UPDATE: created_at not kept or last_modified not stamped'::text;
						END IF;
						IF depth > 0 AND NOT EXISTS (
							SELECT FROM chatpersist.conversation_history(ku, kt) h
							WHERE h.version = pre.version
							  AND h.messages::text = pre.messages::text AND h.replaced_by = 'direct') THEN
							f := f || format('UPDATE: the replaced version %s is not in history', pre.version);
						END IF;
						IF hcount > depth THEN
							f := f || format('history keeps %s versions, history_depth is %s', hcount, depth);
						END IF;
					ELSE
						IF (post.version, post.checksum, post.message_count, post.created_at,
							post.last_modified, post.change_xid) IS DISTINCT FROM
						   (pre.version, pre.checksum, pre.message_count, pre.created_at,
							pre.last_modified, pre.change_xid)
							OR hcount <> cardinality(hv) THEN
							f := f || 'an UPDATE that changed no content changed computed columns or history'::text;
						END IF;
					END IF;
				END IF;

				IF outcome = 'ok' AND c.fn = 'sql_delete' THEN
					IF post_found THEN
						f := f || 'DELETE succeeded, but the row is still there'::text;
					ELSIF pre_found AND depth > 0 AND NOT EXISTS (
						SELECT FROM chatpersist.conversation_history(ku, kt) h
						WHERE h.version = pre.version
						  AND h.replaced_by = 'delete' AND h.messages::text = pre.messages::text) THEN
						f := f || 'DELETE did not archive the row'::text;
					ELSIF EXISTS (SELECT FROM chatpersist.messages m WHERE m.user_id = ku AND m.conversation_id = kt) THEN
						f := f || 'DELETE of a conversation left message rows'::text;
					ELSIF NOT pre_found AND fp1 <> fp0 THEN
						f := f || 'a DELETE of no row changed the tables'::text;
					END IF;
				END IF;

				/*
				 * Direct writes to message rows: one version per row changed,
				 * each row stamped with its own, the array as fuzz.expect_rows
				 * says, the replaced version archived
				 */
				IF outcome = 'ok' AND mcase THEN
					visible := NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid;
					/* row-level security hides another user's rows: nothing to write */
					ex := fuzz.expect_rows(CASE WHEN visible THEN pre_rows ELSE '[]' END, c.meta, j, t, i8, bo);
					IF NOT visible THEN
						ex := jsonb_set(ex, '{messages}', to_jsonb(pre.messages));
					END IF;
					nk := (ex ->> 'k')::int;
					info := info || jsonb_build_object('k', nk);
					IF NOT pre_found THEN
						IF fp1 <> fp0 THEN
							f := f || format('%s on a conversation that does not exist changed the tables', c.fn);
						END IF;
					ELSIF NOT post_found THEN
						f := f || format('%s: the conversation is gone', c.fn);
					ELSE
						IF post.messages::text IS DISTINCT FROM (ex -> 'messages')::text THEN
							f := f || format('%s: stored messages %s are not the expected %s', c.fn,
											 left(post.messages::text, 300), left((ex -> 'messages')::text, 300));
						END IF;
						IF post.version::numeric IS DISTINCT FROM pre.version::numeric + nk THEN
							f := f || format('%s changed %s rows, but version went from %s to %s',
											 c.fn, nk, pre.version, post.version);
						END IF;
						IF post.title IS DISTINCT FROM pre.title OR post.metadata IS DISTINCT FROM pre.metadata
							OR post.deleted IS DISTINCT FROM pre.deleted OR post.created_at IS DISTINCT FROM pre.created_at THEN
							f := f || format('%s changed the conversation''s title, metadata, deleted or created_at', c.fn);
						END IF;
						IF nk = 0 THEN
							IF (post.version, post.checksum, post.message_count, post.last_modified, post.change_xid)
								IS DISTINCT FROM
							   (pre.version, pre.checksum, pre.message_count, pre.last_modified, pre.change_xid)
								OR hcount <> cardinality(hv) THEN
								f := f || format('%s changed no message, but changed the head or history', c.fn);
							END IF;
						ELSE
							IF post.last_modified <> now() OR post.change_xid <> pg_current_xact_id() THEN
								f := f || format('%s: last_modified or change_xid not stamped by this write', c.fn);
							END IF;
							/* (each row archives a version: history keeps the last depth of them) */
							IF depth >= nk AND NOT EXISTS (
								SELECT FROM chatpersist.conversation_history(ku, kt) h
								WHERE h.version = pre.version AND h.checksum = pre.checksum
								  AND h.messages::text = pre.messages::text AND h.replaced_by = 'direct') THEN
								f := f || format('%s: the replaced version %s is not in history', c.fn, pre.version);
							END IF;
							IF hcount > depth THEN
								f := f || format('history keeps %s versions, history_depth is %s', hcount, depth);
							END IF;
							/* each version between holds the array after that many of the rows */
							IF c.fn = 'sql_minsert' AND depth > 0 THEN
								f := f || ARRAY(
									SELECT format('%s: version %s in history does not hold the first %s rows', c.fn, h.version,
												  h.version - pre.version)
									FROM chatpersist.conversation_history(ku, kt) h
									WHERE h.version > pre.version AND h.version < post.version
									  AND h.messages::text IS DISTINCT FROM
										  (fuzz.expect_rows(pre_rows, c.meta || jsonb_build_object('multi', true), ARRAY[
											  (SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements(
												  CASE WHEN (c.meta ->> 'multi')::bool THEN j[1] ELSE jsonb_build_array(j[1]) END)
											   WITH ORDINALITY x(e, o) WHERE o <= h.version - pre.version)],
											  t, i8, bo) -> 'messages')::text);
							END IF;
						END IF;
						/* the rows written carry the versions pre + 1 .. post, one each */
						IF (SELECT coalesce(array_agg(m.changed_version::numeric ORDER BY m.changed_version), '{}')
							FROM chatpersist.messages m
							WHERE m.user_id = ku AND m.conversation_id = kt AND m.changed_version > pre.version)
							IS DISTINCT FROM
						   (CASE WHEN c.fn = 'sql_mdelete' THEN '{}'::numeric[]
								 ELSE ARRAY(SELECT generate_series(pre.version::numeric + 1, post.version::numeric)) END) THEN
							f := f || format('%s: the rows changed are not stamped one version each (%s..%s)',
											 c.fn, pre.version::numeric + 1, post.version);
						END IF;
						f := f || ARRAY(
							SELECT format('%s: inserted row %s has stamps %s/%s, expected %s', c.fn, m.id,
										  m.added_version, m.changed_version, pre.version::numeric + n.o)
							FROM jsonb_array_elements_text(ex -> 'new') WITH ORDINALITY n(id, o)
							JOIN chatpersist.messages m ON m.user_id = ku AND m.conversation_id = kt AND m.id = n.id
							WHERE (m.added_version::numeric, m.changed_version::numeric)
								  IS DISTINCT FROM (pre.version::numeric + n.o, pre.version::numeric + n.o));
						f := f || ARRAY(
							SELECT format('%s: updated row %s has added_version %s, was %s', c.fn, m.id,
										  m.added_version, r ->> 'added')
							FROM jsonb_array_elements(pre_rows) r
							JOIN chatpersist.messages m ON m.user_id = ku AND m.conversation_id = kt AND m.id = r ->> 'id'
							WHERE m.added_version IS DISTINCT FROM (r ->> 'added')::int8);
						/* a write is held to the limits on the array it leaves */
						IF nk > 0 AND (jsonb_array_length(post.messages) > maxm
									  OR pg_column_size(post.messages::text::jsonb) > maxb) THEN
							f := f || format('%s: accepted an array over the limits (%s messages, %s bytes)', c.fn,
											 jsonb_array_length(post.messages), pg_column_size(post.messages::text::jsonb));
						END IF;
					END IF;
				END IF;

				/* The reads and pure functions write nothing */
				IF outcome = 'ok' AND c.fn IN ('load_one', 'load_all', 'changes', 'history', 'checksum',
											   'merge2', 'merge3', 'stats', 'whoami', 'delta') AND fp1 <> fp0 THEN
					f := f || format('%s changed the tables', c.fn);
				END IF;

				visible := NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid;
				IF outcome = 'ok' AND c.fn = 'load_one' THEN
					IF res::jsonb IS DISTINCT FROM
						(SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.id, 'version', x.version, 'checksum', x.checksum)), '[]')
						 FROM chatpersist.conversations x
						 WHERE visible AND x.user_id = ku AND x.id = kt AND NOT x.deleted) THEN
						f := f || format('load_conversation returned %s', left(res, 300));
					END IF;
				ELSIF outcome = 'ok' AND c.fn = 'load_all' THEN
					ku := u[1];
					visible := NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid;
					IF res::jsonb IS DISTINCT FROM
						(SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.id, 'version', x.version)
												   ORDER BY x.last_modified DESC, x.id), '[]')
						 FROM chatpersist.conversations x
						 WHERE visible AND x.user_id = ku AND NOT x.deleted) THEN
						f := f || format('load_conversations returned %s', left(res, 300));
					END IF;
				ELSIF outcome = 'ok' AND c.fn = 'history' THEN
					IF res::jsonb IS DISTINCT FROM
						(SELECT coalesce(jsonb_agg(jsonb_build_object('version', h.version, 'checksum', h.checksum)
												   ORDER BY h.version DESC), '[]')
						 FROM chatpersist.history h
						 WHERE visible AND h.user_id = ku AND h.conversation_id = kt) THEN
						f := f || format('conversation_history returned %s', left(res, 300));
					END IF;
				ELSIF outcome = 'ok' AND c.fn = 'delta' THEN
					f := f || fuzz.delta_failures(res::jsonb, visible, ku, kt, coalesce(i8[1], 0));
				ELSIF outcome = 'ok' AND c.fn = 'changes' THEN
					ku := u[1];
					visible := NOT c.as_client OR ku IS NOT DISTINCT FROM (c.meta ->> 'client_user')::uuid;
					-- a cursor is (origin << 40) | stamp; one of another
					-- origin, an untagged one not below cursor_legacy's
					-- bound, or one in the future reads from stamp 0; a
					-- stamp in the future is served as xmin - 1 (src/cursor.c)
					IF res::jsonb IS DISTINCT FROM
						(SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.id, 'version', x.version,
																	 'cursor', (o.origin::int8 << 40) + x.stamp)
												   ORDER BY x.stamp, x.id), '[]')
						 FROM (SELECT chatpersist.cursor_origin() AS origin,
									  pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS xmin,
									  pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS xmax,
									  coalesce(i8[1], 0) AS cur,
									  (SELECT min(untagged_below)::text::int8 FROM chatpersist.cursor_legacy) AS bound) o
						 CROSS JOIN LATERAL
							(SELECT CASE WHEN o.cur <= 0 THEN 0
										 WHEN o.cur < (1::int8 << 40) THEN
											CASE WHEN o.cur >= o.bound OR o.cur >= o.xmax THEN 0 ELSE o.cur END
										 WHEN (o.cur >> 40) <> o.origin OR (o.cur & ((1::int8 << 40) - 1)) >= o.xmax THEN 0
										 ELSE o.cur & ((1::int8 << 40) - 1) END AS from_stamp) f
						 CROSS JOIN LATERAL
							(SELECT cv.id, cv.version,
									CASE WHEN cv.change_xid::text::int8 >= o.xmax
											AND cv.change_xid IS DISTINCT FROM pg_current_xact_id_if_assigned() THEN o.xmin - 1
										 ELSE cv.change_xid::text::int8 END AS stamp
							 FROM chatpersist.conversations cv
							 WHERE visible AND cv.user_id = ku) x
						 WHERE x.stamp > f.from_stamp AND x.stamp < o.xmin) THEN
						f := f || format('changes_since returned %s', left(res, 300));
					END IF;
				ELSIF outcome = 'ok' AND c.fn = 'checksum' THEN
					info := info || jsonb_build_object('md5', md5(j[1]::text), 'len', octet_length(j[1]::text));
				ELSIF outcome = 'ok' AND c.fn IN ('merge2', 'merge3') THEN
					rr := res::jsonb;
					IF c.fn = 'merge2' THEN
						base := NULL;
						IF chatpersist.merge_messages(j[2], j[1])::text <> rr::text THEN
							f := f || 'merge_messages(a, b) <> merge_messages(b, a)'::text;
						END IF;
						IF chatpersist.merge_messages(rr, j[1])::text <> rr::text
							OR chatpersist.merge_messages(rr, j[2])::text <> rr::text THEN
							f := f || 'merging the result with an input again changed it'::text;
						END IF;
						IF chatpersist.merge_messages(j[1], j[1])::text <> j[1]::text THEN
							f := f || 'merge_messages(a, a) <> a'::text;
						END IF;
						f := f || fuzz.merge_failures(NULL, j[1], j[2],
													  CASE WHEN c.meta ? 'break_merge' THEN rr - 0 ELSE rr END);
					ELSE
						base := j[1];
						IF chatpersist.merge_messages(j[1], j[3], j[2])::text <> rr::text THEN
							f := f || 'merge_messages(base, a, b) <> merge_messages(base, b, a)'::text;
						END IF;
						IF chatpersist.merge_messages(j[1], rr, j[2])::text <> rr::text
							OR chatpersist.merge_messages(j[1], rr, j[3])::text <> rr::text THEN
							f := f || 'merging the three-way result with an input again changed it'::text;
						END IF;
						f := f || fuzz.merge_failures(j[1], j[2], j[3],
													  CASE WHEN c.meta ? 'break_merge' THEN rr - 0 ELSE rr END);
					END IF;
					info := info || jsonb_build_object('merged_text', CASE WHEN octet_length(res) <= 65536 THEN rr::text END,
													   'merged_checksum', chatpersist.checksum(rr));
				ELSIF outcome = 'ok' AND c.fn = 'import' THEN
					/* every conversation given is there, live, with at least its messages */
					f := f || ARRAY(
						SELECT format('import: conversation %s missing or lacks messages', e.key)
						FROM jsonb_each(c.meta -> 'convs') e
						WHERE NOT EXISTS (
							SELECT FROM fuzz.conversations x
							WHERE x.user_id = u[1] AND x.id = e.key AND NOT x.deleted
							  AND fuzz.ids(x.messages) @> ARRAY(SELECT jsonb_array_elements_text(e.value)
																 EXCEPT
																 SELECT jsonb_array_elements_text(
																	coalesce(info -> 'replayed' -> e.key, '[]')))));
					f := f || ARRAY(SELECT unnest(fuzz.row_failures(x)) FROM fuzz.conversations x
									WHERE x.user_id = u[1]);
					/* importing the same state again changes nothing (then rolled back) */
					BEGIN
						fp0 := fp1;
						PERFORM fuzz.apply_settings(c.settings, false);
						EXECUTE c.stmt INTO res2 USING u, t, j, i8, bo;
						IF res2 <> '0' OR fuzz.fp() <> fp0 THEN
							f := f || format('import_app_state is not idempotent: the second import returned %s', res2);
						END IF;
						RAISE EXCEPTION USING ERRCODE = 'FZ001';
					EXCEPTION WHEN SQLSTATE 'FZ001' THEN NULL;
					END;
				ELSIF outcome = 'ok' AND c.fn = 'migrate' THEN
					IF EXISTS (SELECT FROM chatpersist.conversations x WHERE x.user_id = u[1]) THEN
						f := f || 'migrate_user left conversations with the guest'::text;
					END IF;
					IF res::int <> (SELECT count(*) FROM jsonb_object_keys(info -> 'pre_from')) THEN
						f := f || format('migrate_user returned %s for %s live guest conversations',
										 res, (SELECT count(*) FROM jsonb_object_keys(info -> 'pre_from')));
					END IF;
					f := f || ARRAY(
						SELECT format('migrate: conversation %s missing or lacks messages', e.key)
						FROM jsonb_each(info -> 'pre_from') e
						WHERE NOT EXISTS (
							SELECT FROM fuzz.conversations x
							WHERE x.user_id = u[2] AND x.id = e.key AND NOT x.deleted
							  AND fuzz.ids(x.messages) @> ARRAY(SELECT jsonb_array_elements_text(e.value)
																 EXCEPT
																 SELECT jsonb_array_elements_text(
																	coalesce(info -> 'replayed' -> e.key, '[]')))
							  AND fuzz.ids(x.messages) @> ARRAY(SELECT jsonb_array_elements_text(
									coalesce(info -> 'pre_to' -> e.key, '[]')))));
					f := f || ARRAY(SELECT unnest(fuzz.row_failures(x)) FROM fuzz.conversations x
									WHERE x.user_id = u[2]);
				END IF;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
				f := f || format('a check raised %s: %s', st, s);
			END;
			PERFORM set_config('chatpersist.max_messages', sess_maxm, true);
			PERFORM set_config('chatpersist.max_conversation_bytes', sess_maxb, true);
		END IF;

		info := info || jsonb_build_object('ms', round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 2),
										   'call_ms', round(call_ms::numeric, 2));
		INSERT INTO fuzz.results VALUES (c.batch, c.n, outcome, left(msg, 500),
										 CASE WHEN octet_length(res) <= 65536 THEN res END, info, f);
	END LOOP;
	RETURN pg_current_xact_id()::text::int8;
END
$$;

/*
 * For migrate_user cases: the guest's live conversations and their message
 * ids, read before the call (the case's meta is filled by run_batch's
 * caller through this function, see fuzz.py)
 */
CREATE FUNCTION fuzz.user_ids(p_user uuid) RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_object_agg(id, to_jsonb(fuzz.ids(messages))), '{}')
	FROM fuzz.conversations WHERE user_id = p_user AND NOT deleted
$$;
