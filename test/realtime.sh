#!/usr/bin/env bash
#
# realtime.sh
#	  What Supabase Realtime's Postgres Changes would deliver from
#	  chatpersist.messages, as far as PostgreSQL can show it without a
#	  Realtime server (docs/supabase.md, "Realtime: Postgres Changes on the
#	  message rows").  A cluster with wal_level = logical, the publication
#	  supabase_realtime set up by the docs' own block, and a logical slot read
#	  with pgoutput (the publication's changes, each decoded from its binary
#	  message) and with test_decoding (everything the transaction wrote):
#	  - one append_messages of one message is exactly one INSERT on
#	    chatpersist.messages, whose size is the message's text plus a small
#	    constant (measured and printed); the head update and the history row
#	    of the same transaction are not published;
#	  - a save_conversation of a whole array with one message edited is one
#	    UPDATE; a message left out of the array is an UPDATE with removed =
#	    true; delete_conversation is one such UPDATE per live message; a
#	    large (TOASTed) message is not resent by its removal;
#	  - with REPLICA IDENTITY DEFAULT an UPDATE carries no old row and a
#	    DELETE only the primary key; FULL adds the whole old row;
#	  - the row-level security check that Realtime runs for each change (as
#	    the subscriber's role, with its JWT claims in request.jwt.claims, a
#	    SELECT of the changed row by its primary key), with the docs' grants:
#	    user B's subscriber sees none of user A's changes and all of its own,
#	    and the other way round; a subscriber without identity sees nothing;
#	    anon lacks the column privilege Realtime checks first;
#	  - pg_dump does not keep the table in the publication (the docs say to
#	    add it again after a restore).
#
# Usage: bash test/realtime.sh
#
# test/run.sh runs it with CP_PGBIN pointing at its private install of this
# build; without CP_PGBIN it builds and installs this tree into a private
# copy of the server itself (test/lib.sh's cp_this_build; the
# system's installation is not touched).  Starts a throwaway cluster of its
# own (test/cluster.sh) and stops it on exit, also on failure.  Ends with
#	realtime: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/realtime.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. test/lib.sh

passed=0
failed=0
cluster_dir=""
A=00000000-0000-0000-0000-0000000000a1
B=00000000-0000-0000-0000-0000000000b2
# a decoded change may exceed the message's text by at most this many bytes
# (the other columns and pgoutput's framing; measured: about 130)
MAX_OVERHEAD=200

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	[ -n "$cluster_dir" ] && CP_CLUSTER_DIR=$cluster_dir cp_cluster_stop
	cp_cleanup	# the private install, if this script made one
}
trap finish EXIT

# check NAME COMMAND... and eq NAME GOT WANT (test/check.sh)
. test/check.sh


bail()
{
	echo "realtime: $1"
	echo "realtime: $passed passed, $((failed + 1)) failed"
	exit 1
}

cp_this_build || bail "could not build and install this tree"

# synchronous_commit = on: the slot functions decode only WAL that is
# flushed, and cluster.sh turns it off
cp_cluster_start "wal_level = logical" "max_replication_slots = 4" "max_wal_senders = 4" \
	"synchronous_commit = on" >/dev/null || bail "could not start a cluster"
cluster_dir=$CP_CLUSTER_DIR
port=$PGPORT

# q SQL...: run the statements in one session of database rt; prints their
# rows, unaligned, one a line
q()
{
	local args=() s
	for s in "$@"; do
		args+=(-c "$s")
	done
	"$CP_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d rt "${args[@]}"
}

# doc_block HEADING: the first ```sql norun block of docs/supabase.md after
# the line HEADING, as printed there
doc_block()
{
	awk -v h="$1" '
		$0 == h { after = 1; next }
		after && !inside && $0 == "```sql norun" { inside = 1; next }
		inside && $0 == "```" { exit }
		inside { print }' docs/supabase.md
}

"$CP_PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE rt" || bail "createdb failed"

# Supabase's roles as Supabase makes them, the docs' grants, and the
# publication as Supabase creates it (empty), then the docs' Realtime block
grants=$(doc_block "## Grants")
setup=$(doc_block "## Realtime: Postgres Changes on the message rows")
[ -n "$grants" ] || bail "docs/supabase.md has no grant block"
[ -n "$setup" ] || bail "docs/supabase.md has no Postgres Changes block"
q "CREATE EXTENSION chatpersist" \
	"CREATE ROLE anon NOLOGIN" "CREATE ROLE authenticated NOLOGIN" \
	"CREATE ROLE service_role NOLOGIN BYPASSRLS" \
	"CREATE PUBLICATION supabase_realtime" >/dev/null || bail "setup failed"
q "$grants" >/dev/null || bail "the docs' grant block failed"
q "$setup" >/dev/null || bail "the docs' Postgres Changes block failed"
eq "the docs' block puts chatpersist.messages (only) in supabase_realtime" \
	"$(q "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables WHERE pubname = 'supabase_realtime'")" \
	"chatpersist.messages"
eq "chatpersist.messages keeps REPLICA IDENTITY DEFAULT (its primary key)" \
	"$(q "SELECT relreplident FROM pg_class WHERE oid = 'chatpersist.messages'::regclass")" d

# The decoder: every message pgoutput (protocol 1) sends for the
# publication, consumed from the slot, as one row each: its kind (B, R, I,
# U, D, C, ...), size in bytes, the table, and for a change the old tuple's
# kind (K: key only, O: the whole old row, empty: none), the old and new
# tuples as JSON objects of the column's text values, and the columns sent
# as "unchanged TOAST" (u) without their value
q "CREATE SCHEMA rt_test" "
CREATE FUNCTION rt_test.tuple(d bytea, INOUT pos int, rel regclass, OUT vals jsonb, OUT unchanged text[])
LANGUAGE plpgsql AS \$\$
DECLARE
	ncols int := get_byte(d, pos) * 256 + get_byte(d, pos + 1);
	names text[] := ARRAY(SELECT attname FROM pg_attribute
						   WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped ORDER BY attnum);
	k text;
	len int;
BEGIN
	vals := '{}';
	unchanged := '{}';
	pos := pos + 2;
	FOR i IN 1 .. ncols LOOP
		k := chr(get_byte(d, pos));
		pos := pos + 1;
		IF k = 't' THEN
			len := (get_byte(d, pos) << 24) | (get_byte(d, pos + 1) << 16) | (get_byte(d, pos + 2) << 8) | get_byte(d, pos + 3);
			vals := vals || jsonb_build_object(names[i], convert_from(substring(d FROM pos + 5 FOR len), 'UTF8'));
			pos := pos + 4 + len;
		ELSIF k = 'n' THEN
			vals := vals || jsonb_build_object(names[i], NULL);
		ELSIF k = 'u' THEN
			unchanged := unchanged || names[i];
		ELSE
			RAISE EXCEPTION 'unexpected column kind % at byte %', k, pos - 1;
		END IF;
	END LOOP;
END
\$\$" "
CREATE TABLE rt_test.decoded (seq int, kind text, bytes int, rel regclass, old_kind text,
							  old jsonb, new jsonb, unchanged text[])" "
CREATE FUNCTION rt_test.decode() RETURNS SETOF rt_test.decoded
LANGUAGE plpgsql AS \$\$
DECLARE
	d bytea;
	r rt_test.decoded;
	pos int;
	t record;
	n int := 0;
BEGIN
	FOR d IN SELECT c.data FROM pg_logical_slot_get_binary_changes('rt_pgoutput', NULL, NULL,
				'proto_version', '1', 'publication_names', 'supabase_realtime') c LOOP
		n := n + 1;
		r := (n, chr(get_byte(d, 0)), octet_length(d), NULL, '', NULL, NULL, '{}');
		IF r.kind IN ('I', 'U', 'D') THEN
			r.rel := ((get_byte(d, 1)::bigint << 24) | (get_byte(d, 2) << 16) | (get_byte(d, 3) << 8) | get_byte(d, 4))::oid;
			pos := 5;
			IF chr(get_byte(d, pos)) IN ('K', 'O') THEN
				r.old_kind := chr(get_byte(d, pos));
				t := rt_test.tuple(d, pos + 1, r.rel);
				r.old := t.vals;
				pos := t.pos;
			END IF;
			IF r.kind <> 'D' THEN
				IF chr(get_byte(d, pos)) <> 'N' THEN
					RAISE EXCEPTION 'no new tuple in a % message', r.kind;
				END IF;
				t := rt_test.tuple(d, pos + 1, r.rel);
				r.new := t.vals;
				r.unchanged := t.unchanged;
				pos := t.pos;
			END IF;
			IF pos <> octet_length(d) THEN
				RAISE EXCEPTION '% message of % bytes, decoded %', r.kind, octet_length(d), pos;
			END IF;
		END IF;
		RETURN NEXT r;
	END LOOP;
END
\$\$" "GRANT USAGE ON SCHEMA rt_test TO authenticated, anon" \
	"GRANT SELECT ON rt_test.decoded TO authenticated, anon" >/dev/null || bail "could not create the decoder"

q "SELECT 1 FROM pg_create_logical_replication_slot('rt_pgoutput', 'pgoutput')" \
	"SELECT 1 FROM pg_create_logical_replication_slot('rt_all', 'test_decoding')" >/dev/null ||
	bail "could not create the slots"

# step NAME SQL: run SQL (the writes of the step), then put what the
# pgoutput slot decodes for them in rt_test.decoded (replacing the last
# step's) and what test_decoding decodes in $all: the table and kind of
# every change the transactions wrote, "table: KIND" a line
step()
{
	q "$2" >/dev/null || check "$1: the write succeeds" false
	q "DELETE FROM rt_test.decoded" "INSERT INTO rt_test.decoded SELECT * FROM rt_test.decode()" >/dev/null ||
		check "$1: pgoutput's messages decode" false
	all=$(q "SELECT substring(data FROM '^table ([^:]*: [A-Z]*):') FROM pg_logical_slot_get_changes('rt_all', NULL, NULL)
			  WHERE data LIKE 'table chatpersist.%'")
}

# changes: the decoded changes of the last step, "KIND table" a line
changes()
{
	q "SELECT kind || ' ' || rel::text FROM rt_test.decoded WHERE kind IN ('I', 'U', 'D', 'T') ORDER BY seq"
}

# ---------------------------------------------------------------------------
echo "== (a) what one write publishes"

step "first append" "SELECT chatpersist.append_messages('$A', 'trip',
	'[{\"id\":\"a1\",\"role\":\"user\",\"content\":\"Where should we go?\",\"created_at\":1000}]')"
eq "first append (creates the conversation): one INSERT on chatpersist.messages" "$(changes)" "I chatpersist.messages"

msg='{"id":"a2","role":"user","content":"Lisbon, or Porto? Somewhere by the sea, in May.","created_at":2000}'
step "append" "SELECT chatpersist.append_messages('$A', 'trip', '[$msg]')"
eq "append of one message: exactly one change, an INSERT on chatpersist.messages" "$(changes)" "I chatpersist.messages"
eq "... framed as one transaction (B, R, I, C)" \
	"$(q "SELECT string_agg(kind, '' ORDER BY seq) FROM rt_test.decoded")" "BRIC"
eq "... carrying the stored message, the key and the stamps" \
	"$(q "SELECT d.new->>'message' = m.message::text AND d.new->>'user_id' = '$A' AND d.new->>'conversation_id' = 'trip'
				 AND d.new->>'id' = 'a2' AND d.new->>'removed' = 'f' AND (d.new->>'changed_version')::bigint = c.version
			FROM rt_test.decoded d, chatpersist.messages m, chatpersist.conversations c
		   WHERE d.kind = 'I' AND m.user_id = '$A' AND m.id = 'a2' AND c.user_id = '$A' AND c.id = 'trip'")" t
eq "... no old tuple on an INSERT" "$(q "SELECT old_kind FROM rt_test.decoded WHERE kind = 'I'")" ""
eq "the transaction also wrote the head and its history row, which are not published" "$all" \
	"chatpersist.history: INSERT
chatpersist.conversations: UPDATE
chatpersist.messages: INSERT"
overhead=$(q "SELECT d.bytes - octet_length(m.message::text) FROM rt_test.decoded d, chatpersist.messages m
			   WHERE d.kind = 'I' AND m.user_id = '$A' AND m.id = 'a2'")
echo "      the INSERT is $(q "SELECT bytes FROM rt_test.decoded WHERE kind = 'I'") bytes: the message's text plus $overhead"
check "... the INSERT's size is the message's text plus less than $MAX_OVERHEAD bytes (got $overhead)" \
	test "${overhead:-99999}" -lt "$MAX_OVERHEAD"

# A conversation of 40 messages; then the whole array saved with one edited
arr=$(q "SELECT jsonb_agg(jsonb_build_object('id', 'b' || i, 'role', 'user', 'content', 'message number ' || i,
											 'created_at', 3000 + i) ORDER BY i) FROM generate_series(1, 40) i")
step "save 40" "SELECT chatpersist.save_conversation('$A', 'long', 'Long', '$arr')"
eq "a first save of 40 messages: 40 INSERTs" "$(changes | sort | uniq -c | sed 's/^ *//')" "40 I chatpersist.messages"
v=$(q "SELECT version FROM chatpersist.conversations WHERE user_id = '$A' AND id = 'long'")
edited=$(q "SELECT jsonb_set('$arr'::jsonb, '{19,content}', '\"message number 20, edited\"')")
step "save one edited" "SELECT chatpersist.save_conversation('$A', 'long', 'Long', '$edited', p_expected_version := $v)"
eq "save_conversation of the whole array with one message edited: exactly one change, an UPDATE" \
	"$(changes)" "U chatpersist.messages"
eq "... of that message, with the new content and no old tuple (REPLICA IDENTITY DEFAULT, key unchanged)" \
	"$(q "SELECT new->>'id', (new->>'message')::jsonb->>'content', old_kind FROM rt_test.decoded WHERE kind = 'U'")" \
	"b20|message number 20, edited|"
overhead=$(q "SELECT bytes - octet_length(new->>'message') FROM rt_test.decoded WHERE kind = 'U'")
check "... its size is the message's text plus less than $MAX_OVERHEAD bytes (got $overhead)" \
	test "${overhead:-99999}" -lt "$MAX_OVERHEAD"

v=$((v + 1))
without=$(q "SELECT '$edited'::jsonb - 4")	# drops b5
step "save one left out" "SELECT chatpersist.save_conversation('$A', 'long', 'Long', '$without', p_expected_version := $v)"
eq "a message left out of a saved array: one UPDATE, removed = true, the row kept" \
	"$(changes) $(q "SELECT new->>'id', new->>'removed' FROM rt_test.decoded WHERE kind = 'U'")" \
	"U chatpersist.messages b5|t"

step "tombstone" "SELECT chatpersist.append_messages('$A', 'trip', '[{\"id\":\"a1\",\"deleted\":true}]')"
eq "a message tombstone (\"deleted\": true): one UPDATE of the message, removed = false" \
	"$(changes) $(q "SELECT new->>'id', (new->>'message')::jsonb->>'deleted', new->>'removed' FROM rt_test.decoded WHERE kind = 'U'")" \
	"U chatpersist.messages a1|true|f"

step "delete_conversation" "SELECT chatpersist.delete_conversation('$A', 'trip')"
eq "delete_conversation: one UPDATE with removed = true per message row of the array, no DELETE" \
	"$(changes | sort | uniq -c | sed 's/^ *//') $(q "SELECT string_agg(new->>'id' || '=' || (new->>'removed'), ',' ORDER BY new->>'id') FROM rt_test.decoded WHERE kind = 'U'")" \
	"2 U chatpersist.messages a1=t,a2=t"

# A large message: stored out of line (TOAST); its removal does not resend it
big=$(q "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i")
step "big append" "SELECT chatpersist.append_messages('$A', 'big', '[{\"id\":\"g1\",\"content\":\"$big\"}]')"
overhead=$(q "SELECT d.bytes - octet_length(m.message::text) FROM rt_test.decoded d, chatpersist.messages m
			   WHERE d.kind = 'I' AND m.user_id = '$A' AND m.conversation_id = 'big'")
echo "      a message of $(q "SELECT octet_length(message::text) FROM chatpersist.messages WHERE user_id = '$A' AND conversation_id = 'big'") bytes: its INSERT is that plus $overhead"
check "a large (TOASTed) message: one INSERT, its text plus less than $MAX_OVERHEAD bytes (got $overhead)" \
	test "$(changes)" = "I chatpersist.messages" -a "${overhead:-99999}" -lt "$MAX_OVERHEAD"
step "big removal" "SELECT chatpersist.save_conversation('$A', 'big', NULL, '[]', p_force_overwrite := true)"
eq "its removal: one UPDATE, removed = true, the message sent as unchanged TOAST (no value)" \
	"$(changes) $(q "SELECT new->>'removed', new ? 'message', unchanged FROM rt_test.decoded WHERE kind = 'U'")" \
	"U chatpersist.messages t|f|{message}"
check "... so the UPDATE is small (got $(q "SELECT bytes FROM rt_test.decoded WHERE kind = 'U'") bytes)" \
	test "$(q "SELECT bytes FROM rt_test.decoded WHERE kind = 'U'")" -lt "$MAX_OVERHEAD"

# ---------------------------------------------------------------------------
echo "== replica identity: what an UPDATE and a DELETE carry"

# as_user CLAIMS SQL: SQL as authenticated with request.jwt.claims = CLAIMS
# (how PostgREST and Realtime's check set the identity), in one transaction
as_user()
{
	q "BEGIN" "SET LOCAL ROLE authenticated" "SET LOCAL request.jwt.claims = '$1'" "$2" "COMMIT"
}
claims_a="{\"sub\":\"$A\",\"role\":\"authenticated\"}"
claims_b="{\"sub\":\"$B\",\"role\":\"authenticated\"}"

step "two rows" "SELECT chatpersist.append_messages('$A', 'ri', '[{\"id\":\"r1\",\"content\":\"first\"},{\"id\":\"r2\",\"content\":\"second\"}]')"
eq "an append of two messages: two INSERTs" "$(changes | sort | uniq -c | sed 's/^ *//')" "2 I chatpersist.messages"
# a plain SQL DELETE of a message row by its user, through the policy
step "delete default" "BEGIN; SET LOCAL ROLE authenticated; SET LOCAL request.jwt.claims = '$claims_a';
	DELETE FROM chatpersist.messages WHERE conversation_id = 'ri' AND id = 'r2'; COMMIT;"
eq "DEFAULT: a DELETE of a message row (direct SQL) is a DELETE carrying only the primary key" \
	"$(changes) $(q "SELECT old_kind, (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(jsonb_strip_nulls(old)) k) FROM rt_test.decoded WHERE kind = 'D'")" \
	"D chatpersist.messages K|conversation_id,id,user_id"
eq "... and its own user cannot see the row any more: no RLS check can decide who may receive it" \
	"$(as_user "$claims_a" "SELECT count(*) FROM chatpersist.messages WHERE conversation_id = 'ri' AND id = 'r2'")" 0

step "update default" "SELECT chatpersist.append_messages('$A', 'ri', '[{\"id\":\"r1\",\"content\":\"first, edited\"}]')"
default_old=$(q "SELECT old_kind FROM rt_test.decoded WHERE kind = 'U'")
default_bytes=$(q "SELECT bytes FROM rt_test.decoded WHERE kind = 'U'")
eq "DEFAULT: an edit is an UPDATE without an old tuple" "$(changes) $default_old" "U chatpersist.messages "
q "ALTER TABLE chatpersist.messages REPLICA IDENTITY FULL" >/dev/null
step "update full" "SELECT chatpersist.append_messages('$A', 'ri', '[{\"id\":\"r1\",\"content\":\"first, edited twice\"}]')"
full_bytes=$(q "SELECT bytes FROM rt_test.decoded WHERE kind = 'U'")
eq "FULL: the same kind of edit also carries the whole old row (the old message)" \
	"$(q "SELECT old_kind, (old->>'message')::jsonb->>'content', (new->>'message')::jsonb->>'content' FROM rt_test.decoded WHERE kind = 'U'")" \
	"O|first, edited|first, edited twice"
echo "      the edit's UPDATE: $default_bytes bytes with DEFAULT, $full_bytes with FULL"
check "... which makes it at least 1.5 times as large ($default_bytes vs $full_bytes bytes)" \
	test "${full_bytes:-0}" -ge "$(( ${default_bytes:-99999} * 3 / 2 ))"
step "delete full" "DELETE FROM chatpersist.messages WHERE user_id = '$A' AND conversation_id = 'ri' AND id = 'r1'"
eq "FULL: a DELETE carries the whole old row, message included" \
	"$(q "SELECT old_kind, (old->>'message')::jsonb->>'content' FROM rt_test.decoded WHERE kind = 'D'")" \
	"O|first, edited twice"
q "ALTER TABLE chatpersist.messages REPLICA IDENTITY DEFAULT" >/dev/null

# ---------------------------------------------------------------------------
echo "== (b) row-level security as Realtime applies it"

# Realtime first checks that the subscriber's role may SELECT the columns
# (else "Error 401: Unauthorized"), then, for every INSERT and UPDATE, runs
# as that role with request.jwt.claims set to the subscriber's JWT claims
#	SELECT EXISTS (SELECT 1 FROM <table> WHERE <primary key> = <the change's>)
# and delivers the change only if it is true.
eq "authenticated may SELECT every column of chatpersist.messages (the docs' grants)" \
	"$(q "SELECT bool_and(has_column_privilege('authenticated', 'chatpersist.messages', attname, 'SELECT'))
			FROM pg_attribute WHERE attrelid = 'chatpersist.messages'::regclass AND attnum > 0 AND NOT attisdropped")" t
eq "anon may not (Realtime answers its subscription with 401)" \
	"$(q "SELECT bool_or(has_column_privilege('anon', 'chatpersist.messages', attname, 'SELECT'))
			FROM pg_attribute WHERE attrelid = 'chatpersist.messages'::regclass AND attnum > 0 AND NOT attisdropped")" f

# Both users write (appends, an edit by save, a removal, a delete, and the
# same conversation and message ids for both), then every change decoded
# from the slot is checked as each subscriber
step "both users" "
	SELECT chatpersist.append_messages('$A', 'a-chat', '[{\"id\":\"x1\",\"content\":\"from A\"}]');
	SELECT chatpersist.append_messages('$B', 'b-chat', '[{\"id\":\"y1\",\"content\":\"from B\"}]');
	SELECT chatpersist.append_messages('$A', 'a-chat', '[{\"id\":\"x2\",\"content\":\"from A again\"}]');
	SELECT chatpersist.append_messages('$B', 'b-chat', '[{\"id\":\"y2\",\"content\":\"from B again\"}]');
	SELECT chatpersist.save_conversation('$A', 'a-chat', NULL, '[{\"id\":\"x2\",\"content\":\"from A, edited\"}]', p_expected_version := 2);
	SELECT chatpersist.append_messages('$B', 'same', '[{\"id\":\"x1\",\"content\":\"B, ids as A\"}]');
	SELECT chatpersist.append_messages('$A', 'same', '[{\"id\":\"x1\",\"content\":\"A, ids as B\"}]');
	SELECT chatpersist.delete_conversation('$B', 'b-chat');"
eq "the writes of both users decode to changes of each: A's and B's INSERTs and UPDATEs" \
	"$(q "SELECT string_agg(n || ' ' || u || ' ' || k, ', ' ORDER BY u, k) FROM
			(SELECT CASE WHEN new->>'user_id' = '$A' THEN 'A' ELSE 'B' END u, kind k, count(*) n
			   FROM rt_test.decoded WHERE kind IN ('I', 'U', 'D') GROUP BY 1, 2) x")" \
	"3 A I, 2 A U, 3 B I, 2 B U"

# seen CLAIMS: as that subscriber, "<A's changes it may see> <B's>"
seen()
{
	as_user "$1" "SELECT count(*) FILTER (WHERE d.new->>'user_id' = '$A') || ' ' || count(*) FILTER (WHERE d.new->>'user_id' = '$B')
					FROM rt_test.decoded d
				   WHERE d.kind IN ('I', 'U')
					 AND EXISTS (SELECT 1 FROM chatpersist.messages m
								  WHERE m.user_id = (d.new->>'user_id')::uuid
									AND m.conversation_id = d.new->>'conversation_id'
									AND m.id = d.new->>'id')"
}
eq "user B's subscriber: none of A's 5 changes, all 5 of its own" "$(seen "$claims_b")" "0 5"
eq "user A's subscriber: all 5 of its own, none of B's 5" "$(seen "$claims_a")" "5 0"
eq "a subscriber whose claims have no sub: nothing" "$(seen '{"role":"authenticated"}')" "0 0"
eq "B's subscriber, identity from chatpersist.user_id instead of the claims: the same" \
	"$(q "BEGIN" "SET LOCAL ROLE authenticated" "SET LOCAL chatpersist.user_id = '$B'" \
		"SELECT count(*) FILTER (WHERE d.new->>'user_id' = '$A') || ' ' || count(*) FILTER (WHERE d.new->>'user_id' = '$B')
		   FROM rt_test.decoded d WHERE d.kind IN ('I', 'U')
			AND EXISTS (SELECT 1 FROM chatpersist.messages m WHERE m.user_id = (d.new->>'user_id')::uuid
						   AND m.conversation_id = d.new->>'conversation_id' AND m.id = d.new->>'id')" "COMMIT")" "0 5"
eq "B's removal UPDATEs (delete_conversation) reach B: the rows stay, removed = true" \
	"$(as_user "$claims_b" "SELECT count(*) FROM rt_test.decoded d JOIN chatpersist.messages m
							  ON m.user_id = (d.new->>'user_id')::uuid AND m.conversation_id = d.new->>'conversation_id' AND m.id = d.new->>'id'
						   WHERE d.kind = 'U' AND d.new->>'removed' = 't'")" 2

# ---------------------------------------------------------------------------
echo "== migrate_user"

C=00000000-0000-0000-0000-0000000000c3
nrows=$(q "SELECT count(*) FROM chatpersist.messages WHERE user_id = '$A'")
step "migrate" "SELECT chatpersist.migrate_user('$A', '$C')"
eq "migrate_user: a DELETE (key only) of each of the guest's $nrows message rows, INSERTs for the account" \
	"$(q "SELECT count(*) FILTER (WHERE kind = 'D' AND old_kind = 'K' AND old->>'user_id' = '$A') || ' '
				 || count(*) FILTER (WHERE kind = 'D') || ' '
				 || (count(*) FILTER (WHERE kind = 'I' AND new->>'user_id' = '$C') > 0)
			FROM rt_test.decoded")" "$nrows $nrows true"

# ---------------------------------------------------------------------------
echo "== dump and restore"
"$CP_PGBIN/pg_dump" -s -h 127.0.0.1 -p "$port" -U postgres -d rt >"$cluster_dir/schema.sql" ||
	check "pg_dump -s succeeds" false
check "pg_dump keeps the publication but not chatpersist.messages in it (add it again after a restore)" \
	bash -c "grep -q '^CREATE PUBLICATION supabase_realtime' '$cluster_dir/schema.sql' &&
			 ! grep -q 'ADD TABLE ONLY chatpersist.messages' '$cluster_dir/schema.sql'"

if grep -q "terminated by signal\|was terminated by exception" "$cluster_dir/server.log"; then
	check "no backend crashed" false
fi
echo "realtime: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
