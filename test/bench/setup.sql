-- test/bench/setup.sql
--
-- Schema and data of the chatpersist benchmark (run by test/bench/run.sh
-- with psql -v users_10=... users_100=... users_1000=... users_10000=...).
--
-- The payloads are generated here, ahead of the timed runs, so that a
-- pgbench transaction only picks one: every workload sends the same bytes
-- and pays the same for them, and the ratios compare the save paths.
--
-- The conversation of a user at size s is s messages of about 300 bytes
-- (text of the jsonb value); two of them, P (second to last) and Q (last),
-- are "hot": each exists in two copies, the second edited (new content,
-- updated_at one second later).  The four variants S(0..3) of the array
-- toggle them in a cycle, one message at a time:
--
--	   S(0) = P0 Q0,  S(1) = P1 Q0,  S(2) = P1 Q1,  S(3) = P0 Q1
--
-- and every conversation holds S(v mod 4) at version v.  So, with v the
-- stored version:
--	 - a fast-forward save (raw UPDATE, PL/pgSQL or chatpersist) sends
--	   S((v+1) mod 4): the full array, one message edited;
--	 - a stale save sends the device's array as it was at v-1 (the base,
--	   still in history) with the next message edited: that is S((v+2) mod 4)
--	   (worked through in docs/performance.md), and the three-way merge with
--	   the stored S(v) gives S((v+1) mod 4) with no conflict;
--	 - append_messages sends only the message that changes, as in
--	   S((v+1) mod 4): bench.append_payload.
-- Sizes stay fixed however many saves a run makes.
--
-- Copyright (c) 2026, chatpersist developers

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS chatpersist;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- A user's uuid from its number
CREATE FUNCTION bench.uid(u integer) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('00000000-0000-4000-8000-' || lpad(u::text, 12, '0'))::uuid;

-- Message i of a conversation; edited = 1 gives the edited copy
CREATE FUNCTION bench.message(i integer, edited integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE
RETURN jsonb_build_object(
	'id', 'm' || lpad(i::text, 6, '0'),
	'role', CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
	'content', CASE WHEN edited = 1 THEN 'edited: ' ELSE '' END ||
		(SELECT string_agg((ARRAY['the', 'a', 'trip', 'weekend', 'lisbon', 'porto',
				'train', 'ticket', 'hotel', 'room', 'breakfast', 'museum', 'beach',
				'dinner', 'friday', 'saturday', 'sunday', 'morning', 'evening',
				'price', 'booking', 'window', 'seat', 'coffee', 'tram', 'river',
				'bridge', 'castle', 'market', 'walk', 'tour', 'guide', 'could',
				'would', 'should', 'maybe', 'great', 'idea', 'sounds', 'good',
				'let', 'us', 'check', 'again', 'later', 'tomorrow', 'today', 'and',
				'or', 'but', 'with', 'near', 'from', 'to', 'of', 'in', 'on', 'at',
				'is', 'it', 'we', 'you', 'they', 'what'])
				[1 + (hashint4(i * 64 + j) & 2147483647) % 64], ' ')
		 FROM generate_series(1, 33) AS j),
	'created_at', 1732400000000 + i::bigint * 60000,
	'updated_at', 1732400000000 + i::bigint * 60000 + edited * 1000);

-- Bits (P, Q) of variant k
CREATE FUNCTION bench.p_bit(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE RETURN CASE WHEN k IN (1, 2) THEN 1 ELSE 0 END;
CREATE FUNCTION bench.q_bit(k integer) RETURNS integer
LANGUAGE sql IMMUTABLE RETURN CASE WHEN k IN (2, 3) THEN 1 ELSE 0 END;

-- The payloads.  STORAGE EXTERNAL: kept uncompressed, so a value read from
-- here reaches the save as an uncompressed value, like one parsed from the
-- wire (a compressed one would let a plain UPDATE store it without
-- compressing, which no client write gets).
CREATE TABLE bench.payload (
	size	integer NOT NULL,
	k		integer NOT NULL,
	arr		jsonb NOT NULL,
	PRIMARY KEY (size, k)
);
ALTER TABLE bench.payload ALTER COLUMN arr SET STORAGE EXTERNAL;

CREATE TABLE bench.append_payload (
	size	integer NOT NULL,
	k		integer NOT NULL,
	arr		jsonb NOT NULL,
	PRIMARY KEY (size, k)
);

CREATE TABLE bench.sizes (
	size	integer PRIMARY KEY,
	users	integer NOT NULL
);
INSERT INTO bench.sizes VALUES
	(10, :users_10), (100, :users_100), (1000, :users_1000), (10000, :users_10000);

INSERT INTO bench.payload (size, k, arr)
SELECT s.size, k.k,
	(SELECT jsonb_agg(bench.message(i, CASE i WHEN s.size - 2 THEN bench.p_bit(k.k)
											  WHEN s.size - 1 THEN bench.q_bit(k.k)
											  ELSE 0 END) ORDER BY i)
	 FROM generate_series(0, s.size - 1) AS i)
FROM bench.sizes s, generate_series(0, 3) AS k(k);

-- k = (v + 1) mod 4: the message that S(k - 1) -> S(k) toggles, as in S(k)
INSERT INTO bench.append_payload (size, k, arr)
SELECT s.size, k.k,
	jsonb_build_array(CASE WHEN k.k % 2 = 1
						   THEN bench.message(s.size - 2, bench.p_bit(k.k))
						   ELSE bench.message(s.size - 1, bench.q_bit(k.k)) END)
FROM bench.sizes s, generate_series(0, 3) AS k(k);

-- The floor: a plain table with PostgreSQL's default storage (jsonb is
-- EXTENDED, compressed with default_toast_compression, pglz), no trigger
CREATE TABLE bench.raw_conv (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	messages	jsonb NOT NULL,
	version		bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);

-- The same floor with lz4 TOAST compression, the compression chatpersist's
-- own columns use (workloads/raw_lz4.sql): the raw UPDATE against
-- chatpersist with the compressor taken out of the comparison
CREATE TABLE bench.raw_lz4_conv (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	messages	jsonb NOT NULL,
	version		bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);
ALTER TABLE bench.raw_lz4_conv ALTER COLUMN messages SET COMPRESSION lz4;

ANALYZE bench.payload, bench.append_payload, bench.sizes;

-- The floor for a save that keeps history: the raw UPDATE plus what the
-- contract's history asks of any implementation, archiving the replaced
-- row and pruning versions beyond 10 (workloads/raw_hist.sql)
CREATE TABLE bench.rawh_conv (
	user_id		uuid NOT NULL,
	id			text NOT NULL,
	messages	jsonb NOT NULL,
	version		bigint NOT NULL,
	PRIMARY KEY (user_id, id)
);
CREATE TABLE bench.rawh_history (
	user_id			uuid NOT NULL,
	conversation_id	text NOT NULL,
	version			bigint NOT NULL,
	messages		jsonb NOT NULL,
	PRIMARY KEY (user_id, conversation_id, version)
);
