#!/usr/bin/env bash
#
# delta_props.sh
#	  messages_since (issue 14): applying the answer for version v to the
#	  array a device held at v gives the current array, for every v that
#	  history still holds, over random call histories; and the answer's
#	  size follows what changed, not the conversation's length.
#
#	  A random history on three conversations of two users mixes
#	  whole-array saves (fast-forward edits, removals, reorders,
#	  tombstones, stale saves that merge, unions without a base, forced
#	  overwrites), appends (new messages and replays of stored ones),
#	  restore_version, delete_conversation, and direct SQL on
#	  chatpersist.messages (INSERT, UPDATE of the message, of pos, of
#	  removed, DELETE), with history_depth switching between 10 and 3 so
#	  that versions fall out of history.  After every call, for the
#	  conversation it touched:
#	    - the rows' array has the head's checksum;
#	    - for the current version and every version conversation_history
#	      returns: the answer is a delta (full_reload false), and applying
#	      it to that version's array (the client's algorithm of
#	      docs/sync.md, written here in PL/pgSQL) gives the current array,
#	      equal as jsonb and by chatpersist.checksum to the answer's
#	      checksum;
#	    - for 0, for a version newer than the current one and for a
#	      version history no longer holds: full_reload, and applying the
#	      answer to an empty array gives the current array.
#	  Then, on conversations of 10 and 1000 messages: after one append, one
#	  edit by a whole-array save and one removal, the delta from the
#	  version before has exactly one entry, of the same size at both
#	  lengths.
#
# Usage: PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... test/delta_props.sh
#
# The chatpersist extension must exist in the database, and the user must
# be allowed to set chatpersist.history_depth (a superuser).
# DELTA_PROPS_STEPS (default 2000) sets the number of calls,
# DELTA_PROPS_SEED (default: random, printed) the seed.  Writes only rows
# of its two users, and removes them at the end.  Ends with
#	delta_props: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/delta_props.sh
#

set -uo pipefail

steps=${DELTA_PROPS_STEPS:-2000}
seed=${DELTA_PROPS_SEED:-$((RANDOM * 32768 + RANDOM))}
summary_done=
tmpdir=

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	local rc=$?

	[ -z "$tmpdir" ] || rm -rf "$tmpdir"
	if [ -z "$summary_done" ]; then
		echo "FAIL the test aborted with exit status $rc"
		echo "delta_props: 0 passed, 1 failed"
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}
trap finish EXIT

cd "$(dirname "$0")/.." || exit 1	# sql/include/apply_delta.sql
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/delta_props.XXXXXX") || exit 1
echo "delta_props: seed $seed, $steps calls"

psql -X -q -A -t -v ON_ERROR_STOP=1 -v seed="$seed" -v steps="$steps" \
	>"$tmpdir/out" 2>"$tmpdir/err" <<'SQL'
SET client_min_messages = warning;
SET delta_props.steps = :'steps';
SELECT pg_catalog.setseed((:seed % 2147483647) / 2147483647.0);

CREATE TEMP TABLE counts (passed int NOT NULL, failed int NOT NULL);
INSERT INTO counts VALUES (0, 0);
CREATE TEMP TABLE failures (n serial, what text);
CREATE TEMP TABLE ops (step int, u uuid, c text, op text, outcome text);
CREATE TEMP TABLE first_failure (step int, u uuid, c text);

-- record one check
CREATE FUNCTION pg_temp.check(ok boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF ok IS TRUE THEN
		UPDATE counts SET passed = passed + 1;
	ELSE
		UPDATE counts SET failed = failed + 1;
		INSERT INTO failures (what) VALUES (what);
	END IF;
END
$$;

-- The client's algorithm (docs/sync.md): pg_temp.apply_delta
\i sql/include/apply_delta.sql

-- the current array, from the rows
CREATE FUNCTION pg_temp.cur(u uuid, c text) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT coalesce(jsonb_agg(message ORDER BY pos), '[]')
	  FROM chatpersist.messages
	 WHERE user_id = u AND conversation_id = c AND NOT removed
$$;

-- verify every answer of messages_since for one conversation
CREATE FUNCTION pg_temp.verify(u uuid, c text, step int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	head record;
	cur jsonb;
	d record;
	h record;
	applied jsonb;
	tag text;
	minv bigint;
BEGIN
	SELECT version, checksum, deleted INTO head
	  FROM chatpersist.conversations WHERE user_id = u AND id = c;
	IF NOT FOUND THEN
		PERFORM pg_temp.check(NOT EXISTS (SELECT FROM chatpersist.messages_since(u, c, 1)),
							  format('step %s %s: no head, yet an answer', step, c));
		RETURN;
	END IF;
	cur := pg_temp.cur(u, c);
	tag := format('step %s %s/%s v%s', step, u, c, head.version);
	PERFORM pg_temp.check(chatpersist.checksum(cur) = head.checksum,
						  tag || ': the rows do not have the head''s checksum');

	-- every version the device may hold that history covers, and the current one
	FOR h IN SELECT version, messages FROM chatpersist.conversation_history(u, c)
			 UNION ALL SELECT head.version, cur LOOP
		SELECT * INTO d FROM chatpersist.messages_since(u, c, h.version);
		applied := pg_temp.apply_delta(h.messages, d.changes);
		PERFORM pg_temp.check(d.full_reload = false AND d.version = head.version
							  AND d.checksum = head.checksum
							  AND applied = cur AND chatpersist.checksum(applied) = d.checksum,
							  format('%s: from v%s: full %s, applied %s, current %s, changes %s',
									 tag, h.version, d.full_reload, applied, cur, d.changes));
	END LOOP;

	-- versions that get everything
	SELECT min(version) INTO minv FROM chatpersist.conversation_history(u, c);
	FOR h IN SELECT 0::bigint AS v UNION ALL SELECT head.version + 1
			 UNION ALL SELECT coalesce(minv, head.version) - 1 WHERE coalesce(minv, head.version) > 1 LOOP
		SELECT * INTO d FROM chatpersist.messages_since(u, c, h.v);
		PERFORM pg_temp.check(d.full_reload AND pg_temp.apply_delta('[]', d.changes) = cur,
							  format('%s: from v%s (not covered): full %s, changes %s', tag, h.v,
									 d.full_reload, d.changes));
	END LOOP;
END
$$;

-- a new message
CREATE FUNCTION pg_temp.msg(n int) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT CASE (random() * 3)::int
		WHEN 0 THEN jsonb_build_object('id', 'm' || n, 'role', 'user', 'content', md5(random()::text))
		WHEN 1 THEN ('{"id": "m' || n || '", "content": "' || md5(random()::text) || '", "score": 1.50}')::jsonb
		ELSE jsonb_build_object('id', 'm' || n, 'content', repeat('x', (random() * 40)::int),
								'updated_at', (1700000000000 + (random() * 1e9)::bigint))
	END
$$;

-- one random call on (u, c); returns its name
CREATE FUNCTION pg_temp.call(u uuid, c text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	op int := (random() * 17)::int;
	v bigint;
	arr jsonb;
	n int;
	i int;
	j int;
	mid text;
	oldv bigint;
BEGIN
	SELECT version INTO v FROM chatpersist.conversations WHERE user_id = u AND id = c;
	arr := pg_temp.cur(u, c);
	n := jsonb_array_length(arr);
	i := (random() * greatest(n - 1, 0))::int;
	j := (random() * greatest(n - 1, 0))::int;
	mid := arr->i->>'id';
	SELECT version INTO oldv FROM chatpersist.conversation_history(u, c) ORDER BY random() LIMIT 1;
	CASE
		WHEN op = 0 OR v IS NULL THEN
			PERFORM chatpersist.append_messages(u, c, jsonb_build_array(pg_temp.msg((random() * 1e6)::int)), v);
			RETURN 'append';
		WHEN op = 1 AND n > 0 THEN
			PERFORM chatpersist.append_messages(u, c, jsonb_build_array(arr->i));
			RETURN 'append a stored copy (replay)';
		WHEN op = 2 AND n > 0 THEN
			arr := jsonb_set(arr, ARRAY[i::text, 'content'], to_jsonb(md5(random()::text)));
			PERFORM chatpersist.save_conversation(u, c, 't', arr, false, v);
			RETURN 'save: edit';
		WHEN op = 3 AND n > 0 THEN
			PERFORM chatpersist.save_conversation(u, c, 't', arr - i, false, v);
			RETURN 'save: remove';
		WHEN op = 4 AND n > 1 THEN
			arr := jsonb_set(jsonb_set(arr, ARRAY[i::text], arr->j), ARRAY[j::text], arr->i);
			PERFORM chatpersist.save_conversation(u, c, 't', arr, false, v);
			RETURN 'save: reorder';
		WHEN op = 5 AND n > 0 THEN
			arr := jsonb_set(arr, ARRAY[i::text, 'deleted'], 'true');
			PERFORM chatpersist.save_conversation(u, c, 't', arr, false, v);
			RETURN 'save: tombstone';
		WHEN op = 6 AND oldv IS NOT NULL THEN
			SELECT messages INTO arr FROM chatpersist.conversation_history(u, c) WHERE version = oldv;
			arr := arr || jsonb_build_array(pg_temp.msg((random() * 1e6)::int));
			IF jsonb_array_length(arr) > 1 THEN
				arr := jsonb_set(arr, '{0,content}', to_jsonb(md5(random()::text)));
			END IF;
			PERFORM chatpersist.save_conversation(u, c, 't', arr, false, oldv);
			RETURN 'save: stale (merge)';
		WHEN op = 7 THEN
			PERFORM chatpersist.save_conversation(u, c, 't',
				jsonb_build_array(pg_temp.msg((random() * 1e6)::int)) || (CASE WHEN n > 0 THEN jsonb_build_array(arr->i) ELSE '[]' END));
			RETURN 'save: union (no base)';
		WHEN op = 8 THEN
			PERFORM chatpersist.save_conversation(u, c, 't',
				(CASE WHEN n > 0 THEN jsonb_build_array(arr->j) ELSE '[]' END) || jsonb_build_array(pg_temp.msg((random() * 1e6)::int)),
				true);
			RETURN 'save: forced overwrite';
		WHEN op = 9 AND oldv IS NOT NULL THEN
			PERFORM chatpersist.restore_version(u, c, oldv);
			RETURN 'restore_version';
		WHEN op = 10 THEN
			PERFORM chatpersist.delete_conversation(u, c);
			RETURN 'delete_conversation';
		WHEN op = 11 THEN
			INSERT INTO chatpersist.messages (user_id, conversation_id, message)
			VALUES (u, c, pg_temp.msg((random() * 1e6)::int));
			RETURN 'sql: INSERT';
		WHEN op = 12 AND n > 0 THEN
			UPDATE chatpersist.messages SET message = jsonb_set(message, '{content}', to_jsonb(md5(random()::text)))
			 WHERE user_id = u AND conversation_id = c AND messages.id = mid;
			RETURN 'sql: UPDATE message';
		WHEN op = 13 AND n > 1 THEN
			-- move message i before message j (or to the front)
			UPDATE chatpersist.messages m
			   SET pos = t.pos - 1
			  FROM chatpersist.messages t
			 WHERE m.user_id = u AND m.conversation_id = c AND m.id = mid
			   AND t.user_id = u AND t.conversation_id = c AND t.id = arr->j->>'id'
			   AND NOT EXISTS (SELECT FROM chatpersist.messages o
								WHERE o.user_id = u AND o.conversation_id = c AND o.pos = t.pos - 1);
			RETURN 'sql: UPDATE pos';
		WHEN op = 14 AND n > 0 THEN
			UPDATE chatpersist.messages SET removed = true
			 WHERE user_id = u AND conversation_id = c AND messages.id = mid;
			RETURN 'sql: UPDATE removed';
		WHEN op = 15 AND n > 0 THEN
			DELETE FROM chatpersist.messages
			 WHERE user_id = u AND conversation_id = c AND messages.id = mid;
			RETURN 'sql: DELETE';
		WHEN op = 16 THEN
			IF current_setting('chatpersist.history_depth') = '10' THEN
				SET chatpersist.history_depth = 3;
			ELSE
				SET chatpersist.history_depth = 10;
			END IF;
			PERFORM chatpersist.append_messages(u, c, jsonb_build_array(pg_temp.msg((random() * 1e6)::int)));
			RETURN 'history_depth ' || current_setting('chatpersist.history_depth') || ', append';
		ELSE
			PERFORM chatpersist.append_messages(u, c, jsonb_build_array(pg_temp.msg((random() * 1e6)::int)), v);
			RETURN 'append';
	END CASE;
END
$$;

DO $$
DECLARE
	users uuid[] := ARRAY['00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2']::uuid[];
	u uuid;
	c text;
	what text;
BEGIN
	SET chatpersist.history_depth = 10;
	DELETE FROM chatpersist.conversations WHERE user_id = ANY (users);
	FOR step IN 1 .. current_setting('delta_props.steps')::int LOOP
		u := users[1 + (random() * 1)::int];
		c := 'c' || (1 + (random() * 2)::int);
		what := NULL;
		BEGIN
			what := pg_temp.call(u, c);
			INSERT INTO ops VALUES (step, u, c, what, 'ok');
		EXCEPTION
			-- refusals the contract names for such calls: a stale
			-- direct write (40001), a restore of a pruned version
			-- (22023), a row without its conversation (23503) or of a
			-- deleted one (55000)
			WHEN serialization_failure OR invalid_parameter_value OR foreign_key_violation
				OR object_not_in_prerequisite_state THEN
				INSERT INTO ops VALUES (step, u, c, 'a call', 'refused ' || SQLSTATE || ': ' || regexp_replace(SQLERRM, '"[^"]*"', '"..."', 'g'));
		END;
		PERFORM pg_temp.verify(u, c, step);
		IF NOT EXISTS (SELECT FROM first_failure) AND EXISTS (SELECT FROM failures) THEN
			INSERT INTO first_failure VALUES (step, u, c);
		END IF;
	END LOOP;
END
$$;
SELECT 'op ' || op || ': ' || count(*) || ' ' || outcome FROM ops GROUP BY op, outcome ORDER BY 1;

-- The size follows what changed: one append, one edit, one removal to
-- conversations of 10 and 1000 messages
CREATE TEMP TABLE sizes (n int, what text, entries int, bytes int);
DO $$
DECLARE
	u uuid := '00000000-0000-4000-8000-0000000000d1';
	n int;
	v bigint;
	arr jsonb;
	d record;
BEGIN
	FOREACH n IN ARRAY ARRAY[10, 1000] LOOP
		SELECT jsonb_agg(jsonb_build_object('id', 'k' || lpad(i::text, 5, '0'), 'content', 'message ' || lpad(i::text, 5, '0')) ORDER BY i)
		  INTO arr FROM generate_series(1, n) i;
		SELECT version INTO v FROM chatpersist.save_conversation(u, 'size' || n, 't', arr, false, 0);

		PERFORM chatpersist.append_messages(u, 'size' || n, '[{"id": "new", "content": "one more"}]', v);
		SELECT * INTO d FROM chatpersist.messages_since(u, 'size' || n, v);
		INSERT INTO sizes VALUES (n, 'append', jsonb_array_length(d.changes), octet_length(d.changes::text));

		v := d.version;
		arr := pg_temp.cur(u, 'size' || n);
		arr := jsonb_set(arr, ARRAY[(n / 2)::text, 'content'], '"edited"');
		PERFORM chatpersist.save_conversation(u, 'size' || n, 't', arr, false, v);
		SELECT * INTO d FROM chatpersist.messages_since(u, 'size' || n, v);
		INSERT INTO sizes VALUES (n, 'edit', jsonb_array_length(d.changes), octet_length(d.changes::text));

		v := d.version;
		PERFORM chatpersist.save_conversation(u, 'size' || n, 't', arr - (n / 2), false, v);
		SELECT * INTO d FROM chatpersist.messages_since(u, 'size' || n, v);
		INSERT INTO sizes VALUES (n, 'remove', jsonb_array_length(d.changes), octet_length(d.changes::text));
	END LOOP;
END
$$;
SELECT 'size ' || n || ' messages, ' || what || ': ' || entries || ' entries, ' || bytes || ' bytes' FROM sizes ORDER BY what, n;
SELECT pg_temp.check(s.entries = 1, format('%s to %s messages: %s entries', s.what, s.n, s.entries)) FROM sizes s;
SELECT pg_temp.check(a.bytes = b.bytes, format('%s: %s bytes at 10 messages, %s at 1000', a.what, a.bytes, b.bytes))
  FROM sizes a JOIN sizes b ON a.what = b.what AND a.n = 10 AND b.n = 1000;

SET chatpersist.history_depth = 0;
DELETE FROM chatpersist.conversations WHERE user_id IN ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2');
DELETE FROM chatpersist.messages WHERE user_id IN ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2');
DELETE FROM chatpersist.history WHERE user_id IN ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2');
DELETE FROM chatpersist.history_messages WHERE user_id IN ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000d2');
RESET chatpersist.history_depth;

SELECT 'FAIL ' || what FROM failures WHERE n <= 20 ORDER BY n;
-- the calls on the conversation of the first failure, up to it
SELECT 'trace: step ' || o.step || ' ' || o.op || ' ' || o.outcome
  FROM ops o JOIN first_failure f ON o.u = f.u AND o.c = f.c AND o.step <= f.step
 ORDER BY o.step;
SELECT 'counts ' || passed || ' ' || failed FROM counts;
SQL
rc=$?

grep -v -e '^counts ' -e '^$' "$tmpdir/out"
if [ "$rc" -ne 0 ] || ! grep -q '^counts ' "$tmpdir/out"; then
	cat "$tmpdir/err"
	echo "FAIL the property script stopped (psql exit status $rc)"
	passed=0
	failed=1
else
	read -r passed failed < <(sed -n 's/^counts //p' "$tmpdir/out")
fi
summary_done=1
echo "delta_props: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
