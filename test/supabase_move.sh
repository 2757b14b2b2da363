#!/usr/bin/env bash
#
# supabase_move.sh
#	  docs/supabase.md's recipes for an app that already runs on Supabase,
#	  run as the page prints them, on a cluster made like Supabase's:
#	  the superuser is supabase_admin; postgres is an ordinary role with
#	  BYPASSRLS, pg_read_all_data and the API roles; anon, authenticated,
#	  service_role and authenticator; an auth.uid() that reads
#	  request.jwt.claims; Supabase's default privileges in public.
#
#	  - "Moving an existing app to chatpersist": a database with a stand-in
#	    for the seed app (public.conversations with rows of three users,
#	    the five-argument save_conversation and load_conversations, owned
#	    by postgres) gets the move block while an old save waits for the
#	    old table; then the app's own calls work and are unambiguous, every
#	    row moved, each user sees only their own, anon is refused; after
#	    writes through chatpersist, the rollback block brings back the old
#	    functions and rows, with those writes.
#	  - the wrapper block on a second such database: it replaces the old
#	    functions, and the app's calls work.
#	  - "Backups and restores on Supabase": a dump restored as postgres
#	    fails as the page says (also with --no-owner); restored as
#	    supabase_admin it is whole, anon may execute the wrappers until the
#	    after-restore block runs (or the default-privileges block ran
#	    before), an old cursor gets a full resync, and postgres reads every
#	    user's rows where the server-role block's role reads one user's.
#	  - "Server-side apps with their own connection" (Identity): the block,
#	    as printed, connected as a login role that is a member of
#	    authenticated, returns the user's conversations, and nothing with
#	    another user set.
#	  - "Realtime: tell a user's devices that a conversation changed": the
#	    trigger block and the policy block, on an EMULATION of the parts of
#	    Supabase's realtime schema they use (realtime.messages,
#	    realtime.send, realtime.topic(); made below, from Supabase's
#	    documentation): one broadcast per change through save_conversation,
#	    append_messages and delete_conversation, none for an unchanged save
#	    or a rolled-back one, on chat:<user_id>, ids, version, checksum and
#	    deleted only; what the policy lets anon and authenticated read for
#	    a topic; no client inserts there or calls the trigger function.
#	    Not shown: delivery over websockets and Realtime's own
#	    authorization flow (no Realtime server here).
#
#	  Each block is taken from docs/supabase.md by the marker line
#	  "<!-- test/supabase_move.sh: NAME -->" above it, so the page and the
#	  test cannot drift.
#
# Usage: bash test/supabase_move.sh (test/run.sh passes its private install
# in CP_PGBIN; without it, this tree is built and installed privately:
# test/lib.sh's cp_this_build)
#
# Starts a throwaway cluster of its own (test/cluster.sh) and stops it on
# exit, also on failure.  Ends with
#	supabase_move: N passed, M failed
# and exits non-zero if M > 0.
#
# Copyright (c) 2026, chatpersist developers
#
# test/supabase_move.sh
#

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

. test/lib.sh

passed=0
failed=0
summary_done=
U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333
DOC=docs/supabase.md
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/supabase_move.XXXXXX") || { echo "supabase_move: 0 passed, 1 failed"; exit 1; }
chmod 755 "$tmpdir"
bg_pids=()

# shellcheck disable=SC2317  # invoked by the EXIT trap
finish()
{
	local rc=$? p

	for p in "${bg_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	exec 3>&- 2>/dev/null
	cp_cleanup
	rm -rf "$tmpdir"
	if [ -z "$summary_done" ]; then
		echo "FAIL  the test aborted with exit status $rc"
		echo "supabase_move: $passed passed, $((failed + 1)) failed"
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}
trap finish EXIT

# check NAME COMMAND... and eq NAME GOT WANT (test/check.sh)
. test/check.sh


# contains NAME TEXT PATTERN: check that TEXT contains the fixed string
contains()
{
	local name=$1 text=$2 pattern=$3
	if [[ "$text" == *"$pattern"* ]]; then
		check "$name" true
	else
		echo "      got:  $text"
		echo "      want: ... $pattern ..."
		check "$name" false
	fi
}

# block NAME: the sql block of docs/supabase.md under the marker line
# "<!-- test/supabase_move.sh: NAME -->"; fails if there is none
block()
{
	local out
	out=$(awk -v m="<!-- test/supabase_move.sh: $1 -->" '
		$0 == m { found = 1; next }
		found && /^```/ { if (inside) exit; inside = 1; next }
		found && inside { print }
		found && !inside && !/^```/ { exit }' "$DOC")
	[ -n "$out" ] || { echo "no block \"$1\" in $DOC" >&2; return 1; }
	printf '%s\n' "$out"
}

# q DB SQL: rows of a query as supabase_admin (unaligned, tuples only)
q()
{
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# q_as DB ROLE SQL: rows of SQL run as ROLE (a login role)
q_as()
{
	psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$2" -d "$1" -c "$3"
}

# api DB ROLE USER SQL: SQL as PostgREST runs a request: in a transaction,
# as ROLE (anon, authenticated), with the claims of USER (or none); prints
# the rows, or the error on stderr
api()
{
	local claims=""
	[ -z "$3" ] || claims="SET LOCAL \"request.jwt.claims\" = '{\"sub\":\"$3\",\"role\":\"$2\"}';"
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" <<SQL
BEGIN;
SET LOCAL ROLE $2;
$claims
$4;
COMMIT;
SQL
}

# api_error DB ROLE USER SQL: the SQLSTATE and message of the error SQL
# raises as ROLE, or "no error"
api_error()
{
	local out
	if out=$(psql -X -q -A -t -d "$1" 2>&1 <<SQL
\\set ON_ERROR_STOP 1
\\set VERBOSITY default
BEGIN;
SET LOCAL ROLE $2;
SET LOCAL "request.jwt.claims" = '{"sub":"$3","role":"$2"}';
$4;
COMMIT;
SQL
	); then
		echo "no error"
	else
		echo "$out" | sed -n 's/^.*ERROR:  //p' | head -n 1
	fi
}

# wait_for DB SQL: wait (up to 30 s) until SQL returns t
wait_for()
{
	local _
	for _ in $(seq 1 150); do
		[ "$(q "$1" "$2")" = t ] && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------------------
# A cluster made like Supabase's
# ---------------------------------------------------------------------------
cp_this_build || exit 1
CP_CLUSTER_SUPERUSER=supabase_admin cp_cluster_start >/dev/null || exit 1

psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL' || exit 1
-- roles as Supabase's init scripts and migrations make them
CREATE ROLE postgres LOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_read_all_data TO postgres;
SQL

# supabase_db NAME: a database as a Supabase project's: public open to the
# API roles, functions and tables created there by supabase_admin or
# postgres granted to them by default, and auth.uid()
supabase_db()
{
	createdb "$1" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" >/dev/null <<SQL
GRANT ALL ON DATABASE $1 TO postgres;
GRANT ALL ON SCHEMA public TO postgres;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

CREATE SCHEMA auth;
-- the signed-in user of a request: the sub of the claims PostgREST sets
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
\$\$ SELECT nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid \$\$;
GRANT USAGE ON SCHEMA auth TO postgres, anon, authenticated, service_role;
SQL
}

# with_chatpersist DB: CREATE EXTENSION and the docs' two grant blocks, as
# supabase_admin
with_chatpersist()
{
	{
		echo "CREATE EXTENSION chatpersist;"
		block grants && block grants-migration
	} >"$tmpdir/install.sql" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$tmpdir/install.sql" >/dev/null
}

# seed_app DB: the stand-in for the seed app, created by postgres as the
# app's own migrations would: its table under row-level security with
# auth.uid(), save_conversation (refuses a save without force that has
# fewer messages than stored; md5 checksum) and load_conversations, and
# rows of three users, some written through the old function as the users
seed_app()
{
	psql -X -q -v ON_ERROR_STOP=1 -U postgres -d "$1" >/dev/null <<'SQL' || return 1
CREATE TABLE public.conversations (
	id				text NOT NULL,
	user_id			uuid NOT NULL,
	title			text,
	version			integer NOT NULL DEFAULT 1,
	checksum		text,
	last_modified	timestamptz NOT NULL DEFAULT now(),
	messages		jsonb NOT NULL DEFAULT '[]',
	PRIMARY KEY (user_id, id)
);
ALTER TABLE public.conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversations_own ON public.conversations
	USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

CREATE FUNCTION public.save_conversation(p_user_id uuid, p_conversation_id text, p_title text,
										 p_messages jsonb, p_force_overwrite boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
	cur public.conversations;
BEGIN
	SELECT * INTO cur FROM public.conversations
	 WHERE user_id = p_user_id AND id = p_conversation_id FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO public.conversations (id, user_id, title, version, checksum, messages)
		VALUES (p_conversation_id, p_user_id, p_title, 1, md5(p_messages::text), p_messages);
		RETURN jsonb_build_object('success', true, 'version', 1, 'checksum', md5(p_messages::text));
	END IF;
	IF NOT p_force_overwrite AND jsonb_array_length(p_messages) < jsonb_array_length(cur.messages) THEN
		RETURN jsonb_build_object('success', false, 'conflict', true, 'version', cur.version);
	END IF;
	UPDATE public.conversations
	   SET title = p_title, messages = p_messages, version = cur.version + 1,
		   checksum = md5(p_messages::text), last_modified = now()
	 WHERE user_id = p_user_id AND id = p_conversation_id;
	RETURN jsonb_build_object('success', true, 'version', cur.version + 1, 'checksum', md5(p_messages::text));
END
$$;

CREATE FUNCTION public.load_conversations(p_user_id uuid)
RETURNS SETOF public.conversations
LANGUAGE sql STABLE
AS $$ SELECT * FROM public.conversations WHERE user_id = p_user_id ORDER BY last_modified DESC $$;

-- rows as the old app left them (postgres bypasses the policy)
INSERT INTO public.conversations (id, user_id, title, version, checksum, last_modified, messages)
SELECT id, user_id::uuid, title, version, md5(messages::text), last_modified::timestamptz, messages::jsonb
  FROM (VALUES
	('trip', '11111111-1111-4111-8111-111111111111', 'Trip ✈', 7, '2026-01-02 10:00+00',
	 '[{"id":"m1","role":"user","content":"Où allons-nous ?","created_at":1700000000000},
	   {"id":"m2","role":"assistant","content":"日本","created_at":"2026-01-02T10:00:00Z","price":1.50}]'),
	('empty', '11111111-1111-4111-8111-111111111111', NULL, 1, '2026-01-01 09:00+00', '[]'),
	('notes', '22222222-2222-4222-8222-222222222222', 'Notes', 3, '2026-01-03 08:00+00',
	 '[{"id":"n1","content":"a","meta":{"tags":["x","y"],"nested":{"k":null}}},{"id":"n2","content":"b","deleted":true}]'),
	('trip', '22222222-2222-4222-8222-222222222222', 'Same id, other user', 2, '2026-01-04 08:00+00',
	 '[{"id":"t1","content":"not U1''s"}]'),
	('long', '33333333-3333-4333-8333-333333333333', 'Long', 40, '2025-12-31 23:59+00',
	 (SELECT jsonb_agg(jsonb_build_object('id', 'l' || i, 'content', repeat('x', i)) ORDER BY i)
		FROM generate_series(1, 200) i)::text)
  ) v(id, user_id, title, version, last_modified, messages);
SQL
	# and writes through the old function, as the users (version 2 of a
	# new conversation of U3, and a refused save)
	api "$1" authenticated "$U3" "SELECT public.save_conversation('$U3', 'fresh', 'Fresh', '[{\"id\":\"f1\"}]')" >/dev/null &&
		api "$1" authenticated "$U3" "SELECT public.save_conversation('$U3', 'fresh', 'Fresh', '[{\"id\":\"f1\"},{\"id\":\"f2\"}]')" >/dev/null
}

# rows DB [SCHEMA]: the old table's rows, in a stable order
rows()
{
	q "$1" "SELECT user_id, id, title, version, checksum, last_modified, messages::text
			FROM ${2:-public}.conversations ORDER BY user_id, id"
}

# defs DB: the text of the two old functions
defs()
{
	q "$1" "SELECT md5(string_agg(pg_get_functiondef(p.oid), '' ORDER BY p.proname))
			FROM pg_proc p
		   WHERE p.pronamespace = 'public'::regnamespace
			 AND p.proname IN ('save_conversation', 'load_conversations')"
}

# overloads DB: how many functions of each name public has
overloads()
{
	q "$1" "SELECT string_agg(proname || '=' || n, ' ' ORDER BY proname)
			FROM (SELECT proname, count(*) AS n FROM pg_proc
				   WHERE pronamespace = 'public'::regnamespace
					 AND proname IN ('save_conversation', 'load_conversations')
				   GROUP BY proname) s"
}

# ---------------------------------------------------------------------------
# Moving an existing app
# ---------------------------------------------------------------------------
echo "== the move (docs/supabase.md, Moving an existing app to chatpersist)"
supabase_db app && with_chatpersist app && seed_app app || exit 1
block move >"$tmpdir/move.sql" || exit 1
block rollback >"$tmpdir/rollback.sql" || exit 1
rows app >"$tmpdir/old.rows"
old_defs=$(defs app)
eq "the stand-in: six conversations of three users, the old app's call works" \
	"$(q app "SELECT count(*) || ' ' || count(DISTINCT user_id) FROM public.conversations") $(api app authenticated "$U3" \
		"SELECT public.save_conversation('$U3', 'fresh', 'Fresh', '[{\"id\":\"f1\"}]')")" \
	'6 3 {"success": false, "version": 2, "conflict": true}'

# The move while an old save is in flight: a session holds the old table
# (its lock released on cue), the move queues for it, and an old save of U1
# queues behind the move
mkfifo "$tmpdir/holder.in"
psql -X -q -d app <"$tmpdir/holder.in" >/dev/null 2>&1 &
bg_pids+=($!)
exec 3>"$tmpdir/holder.in"
echo "BEGIN; LOCK TABLE public.conversations IN ACCESS SHARE MODE;" >&3
wait_for app "SELECT count(*) = 1 FROM pg_locks WHERE relation = 'public.conversations'::regclass AND mode = 'AccessShareLock' AND granted"
psql -X -q -v ON_ERROR_STOP=1 -d app -f "$tmpdir/move.sql" >"$tmpdir/move.out" 2>&1 &
move_pid=$!
bg_pids+=("$move_pid")
check "the move waits for the old table" \
	wait_for app "SELECT count(*) = 1 FROM pg_locks WHERE relation = 'public.conversations'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted"
api app authenticated "$U1" \
	"SELECT public.save_conversation('$U1', 'trip', 'Trip ✈', '[{\"id\":\"m1\"},{\"id\":\"m2\"},{\"id\":\"inflight\"}]')" \
	>"$tmpdir/inflight.out" 2>&1 &
inflight_pid=$!
bg_pids+=("$inflight_pid")
check "an old save waits behind the move" \
	wait_for app "SELECT count(*) >= 2 FROM pg_locks WHERE locktype = 'relation' AND NOT granted"
echo "COMMIT;" >&3
exec 3>&-
wait "$move_pid"
move_rc=$?
wait "$inflight_pid"
inflight_rc=$?
[ "$move_rc" -eq 0 ] || cat "$tmpdir/move.out"
eq "the move block runs without an error" "$move_rc" 0
eq "it moved six conversations" "$(grep -E '^ *[0-9]+$' "$tmpdir/move.out" | tr -d ' ')" 6
check "the old save that waited fails (nothing written behind the move's back)" test "$inflight_rc" -ne 0
contains "... because the old table is gone from public" "$(cat "$tmpdir/inflight.out")" 'relation "public.conversations" does not exist'
eq "... and the old table still holds what it held" "$(rows app app_before_chatpersist)" "$(cat "$tmpdir/old.rows")"

eq "after the move: one save_conversation and one load_conversations in public" "$(overloads app)" \
	"load_conversations=1 save_conversation=1"
eq "the old table is not in public, the old functions are kept aside" \
	"$(q app "SELECT to_regclass('public.conversations') IS NULL,
					 to_regprocedure('app_before_chatpersist.save_conversation(uuid, text, text, jsonb, boolean)') IS NOT NULL,
					 to_regprocedure('app_before_chatpersist.load_conversations(uuid)') IS NOT NULL")" "t|t|t"
eq "authenticated and anon cannot reach the kept schema" \
	"$(q app "SELECT has_schema_privilege('authenticated', 'app_before_chatpersist', 'USAGE'),
					 has_schema_privilege('anon', 'app_before_chatpersist', 'USAGE')")" "f|f"

# the data: every row, as each user loads it through the wrapper
for u in "$U1" "$U2" "$U3"; do
	eq "user ${u:0:8}: the same conversations, titles and arrays through load_conversations" \
		"$(api app authenticated "$u" "SELECT id, title, messages::text FROM public.load_conversations('$u') ORDER BY id")" \
		"$(q app "SELECT id, coalesce(title, ''), messages::text FROM app_before_chatpersist.conversations
				   WHERE user_id = '$u' ORDER BY id")"
done
eq "count: six live conversations in chatpersist" "$(q app "SELECT count(*) FROM chatpersist.conversations WHERE NOT deleted")" 6
eq "versions start again at 1; checksums are chatpersist's; the old values are in metadata.moved_from" \
	"$(q app "SELECT count(*) FILTER (WHERE c.version = 1
										AND c.checksum = chatpersist.checksum(o.messages)
										AND c.checksum <> o.checksum
										AND (c.metadata -> 'moved_from' ->> 'version')::int = o.version
										AND c.metadata -> 'moved_from' ->> 'checksum' = o.checksum
										AND (c.metadata -> 'moved_from' ->> 'last_modified')::timestamptz = o.last_modified)
				FROM app_before_chatpersist.conversations o
				JOIN chatpersist.conversations c ON c.user_id = o.user_id AND c.id = o.id")" 6

# the app's own calls, as the old app made them
eq "the app's call, positional, as U1" \
	"$(api app authenticated "$U1" "SELECT status, version FROM public.save_conversation('$U1', 'trip', 'Trip ✈',
		'[{\"id\":\"m1\",\"role\":\"user\",\"content\":\"Où allons-nous ?\",\"created_at\":1700000000000},{\"id\":\"m3\",\"content\":\"and Kyoto?\"}]', false)")" \
	"merged|2"
eq "... the merge kept m2, which the call left out (the old function refused such a save)" \
	"$(api app authenticated "$U1" "SELECT string_agg(m ->> 'id', ',' ORDER BY m ->> 'id')
		FROM public.load_conversations('$U1') l, jsonb_array_elements(l.messages) m WHERE l.id = 'trip'")" \
	"m1,m2,m3"
eq "the app's call with named arguments, as PostgREST sends them" \
	"$(api app authenticated "$U3" "SELECT status, version FROM public.save_conversation(p_user_id := '$U3',
		p_conversation_id := 'new', p_title := 'New', p_messages := '[{\"id\":\"x\"}]', p_force_overwrite := false)")" \
	"created|1"
eq "the app's call without p_force_overwrite" \
	"$(api app authenticated "$U2" "SELECT status, version FROM public.save_conversation(p_user_id := '$U2',
		p_conversation_id := 'notes', p_title := 'Notes', p_messages := '[{\"id\":\"n3\"}]')")" \
	"merged|2"
eq "the app's load call" \
	"$(api app authenticated "$U3" "SELECT string_agg(id, ',' ORDER BY id) FROM public.load_conversations('$U3')")" \
	"fresh,long,new"

# isolation: each user only their own, through the wrappers and with SQL
eq "U1 loads nothing of U2 through the wrapper" \
	"$(api app authenticated "$U1" "SELECT count(*) FROM public.load_conversations('$U2')")" 0
eq "U1 sees only U1's rows with SQL" \
	"$(api app authenticated "$U1" "SELECT string_agg(DISTINCT user_id::text, ',') FROM chatpersist.conversations")" "$U1"
contains "U1 cannot save into U2's conversation" \
	"$(api_error app authenticated "$U1" "SELECT public.save_conversation('$U2', 'trip', 'x', '[]', true)")" \
	'new row violates row-level security policy for table "conversations"'
contains "anon is refused save_conversation" \
	"$(api_error app anon "" "SELECT public.save_conversation('$U1', 'trip', 'x', '[]')")" \
	"permission denied for function save_conversation"
contains "anon is refused load_conversations" \
	"$(api_error app anon "" "SELECT * FROM public.load_conversations('$U1')")" \
	"permission denied for function load_conversations"

# more changes through chatpersist, then the rollback
api app authenticated "$U2" "SELECT chatpersist.delete_conversation('$U2', 'trip')" >/dev/null
echo "== the rollback"
rollback_out=$(psql -X -q -v ON_ERROR_STOP=1 -d app -f "$tmpdir/rollback.sql" 2>&1)
rollback_rc=$?
[ "$rollback_rc" -eq 0 ] || echo "$rollback_out"
eq "the rollback block runs without an error" "$rollback_rc" 0
eq "the old functions are back, their text unchanged, and nothing else of their names" \
	"$(defs app) $(overloads app)" "$old_defs load_conversations=1 save_conversation=1"
eq "the kept schema is gone" "$(q app "SELECT to_regnamespace('app_before_chatpersist') IS NULL")" t
eq "the rows nobody changed since the move are as they were (versions, checksums, times)" \
	"$(rows app | grep -v -e "^$U1|trip|" -e "^$U2|notes|" -e "^$U2|trip|" -e "^$U3|new|")" \
	"$(grep -v -e "^$U1|trip|" -e "^$U2|notes|" -e "^$U2|trip|" "$tmpdir/old.rows")"
eq "the conversations changed since the move are written back by the old function" \
	"$(q app "SELECT id || ' ' || version || ' ' || (checksum = md5(messages::text)) || ' ' || jsonb_array_length(messages)
			  FROM public.conversations WHERE (user_id, id) IN (('$U1', 'trip'), ('$U2', 'notes'), ('$U3', 'new'))
			  ORDER BY user_id")" \
	"$(printf 'trip 8 true 3\nnotes 4 true 3\nnew 1 true 1')"
eq "the conversation deleted since the move is deleted" \
	"$(q app "SELECT count(*) FROM public.conversations WHERE user_id = '$U2' AND id = 'trip'")" 0
eq "the app's call works again, on the old function" \
	"$(api app authenticated "$U3" "SELECT public.save_conversation('$U3', 'new', 'New', '[]')")" \
	'{"success": false, "version": 1, "conflict": true}'

# ---------------------------------------------------------------------------
# The wrapper block on a database that has the old functions
# ---------------------------------------------------------------------------
echo "== the wrapper block (docs/supabase.md, Thin wrappers in public) on the old functions"
supabase_db app2 && with_chatpersist app2 && seed_app app2 || exit 1
block wrappers >"$tmpdir/wrappers.sql" || exit 1
out=$(psql -X -q -v ON_ERROR_STOP=1 -d app2 -f "$tmpdir/wrappers.sql" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || echo "$out"
eq "the wrapper block runs without an error" "$rc" 0
eq "one save_conversation and one load_conversations in public, the chatpersist ones" \
	"$(overloads app2) $(q app2 "SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.oid::regprocedure::text) FROM pg_proc p
								  WHERE p.pronamespace = 'public'::regnamespace AND p.prosrc LIKE '%chatpersist.%'")" \
	"load_conversations=1 save_conversation=1 load_conversations(uuid) save_conversation(uuid,text,text,jsonb,boolean,bigint,jsonb)"
eq "the app's call, positional and named" \
	"$(api app2 authenticated "$U1" "SELECT status FROM public.save_conversation('$U1', 'a', 'A', '[{\"id\":\"1\"}]', false)
		UNION ALL SELECT status FROM public.save_conversation(p_user_id := '$U1', p_conversation_id := 'b', p_title := 'B',
															 p_messages := '[{\"id\":\"2\"}]', p_force_overwrite := true)")" \
	"$(printf 'created\ncreated')"
eq "... and load" "$(api app2 authenticated "$U1" "SELECT string_agg(id, ',' ORDER BY id) FROM public.load_conversations('$U1')")" "a,b"
out=$(psql -X -q -v ON_ERROR_STOP=1 -d app2 -f "$tmpdir/wrappers.sql" 2>&1)
eq "the block runs again without an error" "$?" 0
contains "anon is refused the wrapper" \
	"$(api_error app2 anon "" "SELECT public.save_conversation('$U1', 'a', 'x', '[]')")" \
	"permission denied for function save_conversation"

# ---------------------------------------------------------------------------
# Backups and restores
# ---------------------------------------------------------------------------
echo "== backups and restores (docs/supabase.md, Backups and restores on Supabase)"
api app2 authenticated "$U2" "SELECT public.save_conversation('$U2', 'c', 'C', '[{\"id\":\"1\"},{\"id\":\"2\"}]')" >/dev/null
cursor=$(api app2 authenticated "$U1" "SELECT max(cursor) FROM chatpersist.changes_since('$U1', 0)")
# as supabase db dump does, without the schemas Supabase itself creates
pg_dump -N auth -d app2 -f "$tmpdir/app2.sql" || exit 1
pg_dump -N auth -O -d app2 -f "$tmpdir/app2-no-owner.sql" || exit 1
pg_dump -N auth --schema-only --quote-all-identifiers --no-comments -d app2 -f "$tmpdir/app2-schema.sql" || exit 1
contains "a schema dump (as supabase db dump makes it) gives the schema its owner" \
	"$(cat "$tmpdir/app2-schema.sql")" 'ALTER SCHEMA "chatpersist" OWNER TO "supabase_admin";'

supabase_db r1 || exit 1
out=$(psql -X -q -v ON_ERROR_STOP=1 -U postgres -d r1 -f "$tmpdir/app2.sql" 2>&1)
line=$(echo "$out" | sed -nE 's/^psql:[^:]*:([0-9]+): ERROR:.*/\1/p' | head -n 1)
contains "restored as postgres: must be member of role \"supabase_admin\"" "$out" 'ERROR:  must be member of role "supabase_admin"'
eq "... at ALTER SCHEMA chatpersist OWNER" "$(sed -n "${line:-0}p" "$tmpdir/app2.sql")" "ALTER SCHEMA chatpersist OWNER TO supabase_admin;"
dropdb r1 && supabase_db r1 || exit 1
out=$(psql -X -q -v ON_ERROR_STOP=1 -U postgres -d r1 -f "$tmpdir/app2-no-owner.sql" 2>&1)
contains "restored as postgres with --no-owner: CREATE EXTENSION needs a superuser" "$out" \
	'ERROR:  permission denied to create extension "chatpersist"'

# as supabase_admin, on a database with Supabase's default privileges
supabase_db r2 || exit 1
out=$(psql -X -q -v ON_ERROR_STOP=1 -d r2 -f "$tmpdir/app2.sql" 2>&1)
eq "restored as supabase_admin without an error" "$?" 0
snap="SELECT c.user_id, c.id, c.title, c.version, c.checksum, l.messages::text, c.deleted
		FROM chatpersist.conversations c
		LEFT JOIN LATERAL chatpersist.load_conversation(c.user_id, c.id) l ON true ORDER BY 1, 2"
eq "... every conversation (three) as on the source (versions, checksums, arrays)" \
	"$(q r2 "$snap" | wc -l) $(q r2 "$snap")" "3 $(q app2 "$snap")"
block after-restore >"$tmpdir/after-restore.sql" || exit 1
anon_query=$(sed -n '/^SELECT p.oid::regprocedure/,/;$/p' "$tmpdir/after-restore.sql")
eq "after the restore anon may execute the wrappers (the page's query lists them)" \
	"$(q r2 "$anon_query" | sort | tr '\n' ' ')" \
	"load_conversations(uuid) save_conversation(uuid,text,text,jsonb,boolean,bigint,jsonb) "
contains "... and reaches them (stopped only at the schema)" \
	"$(api_error r2 anon "" "SELECT * FROM public.load_conversations('$U1')")" "permission denied for schema chatpersist"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d r2 -f "$tmpdir/after-restore.sql" 2>&1)
rc=$?
eq "the after-restore block runs, and its query lists nothing" "$rc:$out" "0:"
contains "anon is refused the wrappers again" \
	"$(api_error r2 anon "" "SELECT * FROM public.load_conversations('$U1')")" "permission denied for function load_conversations"
eq "authenticated still calls them" \
	"$(api r2 authenticated "$U1" "SELECT string_agg(id, ',' ORDER BY id) FROM public.load_conversations('$U1')")" "a,b"
eq "a cursor of the source gets a full resync on the restored database" \
	"$(api r2 authenticated "$U1" "SELECT string_agg(conversation_id, ',' ORDER BY conversation_id) FROM chatpersist.changes_since('$U1', $cursor)")" \
	"a,b"
eq "... where it was up to date on the source" \
	"$(api app2 authenticated "$U1" "SELECT count(*) FROM chatpersist.changes_since('$U1', $cursor)")" 0

supabase_db r3 || exit 1
block default-privileges >"$tmpdir/default-privileges.sql" || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d r3 -f "$tmpdir/default-privileges.sql" >/dev/null
eq "the default-privileges block runs before the restore" "$?" 0
psql -X -q -v ON_ERROR_STOP=1 -d r3 -f "$tmpdir/app2.sql" >/dev/null 2>&1
eq "... restored as supabase_admin" "$?" 0
eq "... then anon gets no EXECUTE on the wrappers, with no block run after the restore" \
	"$(q r3 "$anon_query"; echo "rc=$?")" "rc=0"
anon_defaults="SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a
				WHERE d.defaclobjtype = 'f' AND d.defaclnamespace = 'public'::regnamespace
				  AND a.grantee = 'anon'::regrole"
eq "... but the restore brought back the source's default privileges for anon (supabase_admin's and postgres')" \
	"$(q r3 "$anon_defaults")" 2
psql -X -q -v ON_ERROR_STOP=1 -d r3 -f "$tmpdir/default-privileges.sql" >/dev/null
eq "... which the default-privileges block, run again, takes away" "$?:$(q r3 "$anon_defaults")" "0:0"
eq "... and authenticated keeps it" \
	"$(q r3 "SELECT has_function_privilege('authenticated', 'public.load_conversations(uuid)', 'EXECUTE')")" t

# postgres reads every user's rows; the server role reads one user's
eq "postgres (BYPASSRLS, pg_read_all_data) reads every user's conversations" \
	"$(q_as r2 postgres "SELECT count(DISTINCT user_id) FROM chatpersist.conversations")" 2
eq "... with any identity set" \
	"$(psql -X -q -A -t -U postgres -d r2 -c "SET chatpersist.user_id = '$U1'" \
		-c "SELECT count(DISTINCT user_id) FROM chatpersist.conversations")" 2
block server-role >"$tmpdir/server-role.sql" || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d r2 -f "$tmpdir/server-role.sql" >/dev/null
eq "the server-role block runs" "$?" 0
eq "chat_server has no BYPASSRLS" "$(q r2 "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'chat_server'")" f
contains "chat_server reads nothing by itself" \
	"$(psql -X -q -A -t -U chat_server -d r2 -c "SELECT count(*) FROM chatpersist.conversations" 2>&1)" \
	"permission denied for schema chatpersist"
eq "chat_server as authenticated with U1 set reads U1's rows only" \
	"$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U chat_server -d r2 <<SQL
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL chatpersist.user_id = '$U1';
SELECT string_agg(DISTINCT user_id::text, ',') || ' ' || count(*) FROM chatpersist.conversations;
COMMIT;
SQL
)" "$U1 2"

# ---------------------------------------------------------------------------
# A server-side app with its own connection (docs/supabase.md, Identity)
# ---------------------------------------------------------------------------
echo "== the server-side block (docs/supabase.md, Identity: Server-side apps with their own connection)"
# the user id the block is written with
DOC_U=0b9c2d1e-0000-4000-8000-000000000001
supabase_db rt && with_chatpersist rt || exit 1
# the connecting role: a login role that is a member of authenticated, made
# as the page's server-role block makes chat_server
q rt "CREATE ROLE edge_fn LOGIN NOINHERIT; GRANT authenticated TO edge_fn;" >/dev/null || exit 1
for c in a b; do
	api rt authenticated "$DOC_U" "SELECT chatpersist.save_conversation('$DOC_U', '$c', 'Doc $c', '[{\"id\":\"1\"}]')" >/dev/null || exit 1
done
api rt authenticated "$U2" "SELECT chatpersist.save_conversation('$U2', 'a', 'Not the doc user''s', '[{\"id\":\"1\"}]')" >/dev/null || exit 1
block server-side >"$tmpdir/server-side.sql" || exit 1
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U edge_fn -d rt -f "$tmpdir/server-side.sql" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || echo "$out"
eq "the server-side block runs as written, connected as a member of authenticated" "$rc" 0
eq "... and returns the user's two conversations, as the superuser sees them" \
	"$(echo "$out" | wc -l) $out" "2 $(q rt "SELECT * FROM chatpersist.load_conversations('$DOC_U')")"
eq "... which are the user's only" "$(echo "$out" | cut -d'|' -f1 | sort -u | tr '\n' ' ')" "$DOC_U "
sed "s/SET LOCAL chatpersist.user_id = '$DOC_U'/SET LOCAL chatpersist.user_id = '$U2'/" \
	"$tmpdir/server-side.sql" >"$tmpdir/server-side-u2.sql"
eq "with another user set, the same load returns nothing (row-level security, not the argument)" \
	"$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U edge_fn -d rt -f "$tmpdir/server-side-u2.sql" 2>&1; echo "rc=$?")" "rc=0"

# ---------------------------------------------------------------------------
# Realtime Broadcast, against an emulation of Supabase's realtime schema
# ---------------------------------------------------------------------------
# An emulation, written from Supabase's documentation ("Broadcast from the
# database", "Realtime Authorization"), of the parts of the realtime schema
# the recipe uses:
#   - realtime.messages: topic, extension, event, payload, private,
#     inserted_at; row-level security on; SELECT, INSERT and UPDATE granted
#     to anon and authenticated, so that the policies alone decide;
#   - realtime.send(payload, event, topic, private): sets realtime.topic for
#     the transaction and inserts a 'broadcast' row; any error becomes a
#     WARNING, so a failed broadcast never fails the writer;
#   - realtime.topic(): the setting realtime.topic, which Realtime sets to
#     the topic a client joins before it checks the policies as that client.
# What it does not show: delivery (Realtime reads the rows and sends them to
# the websockets joined to the topic), Realtime's own authorization flow (it
# checks the SELECT policy once, when a client joins a private channel, with
# the client's JWT claims), the table's partitions, and what later versions
# of realtime.send add to the payload.  This checks what the recipe writes
# and what its policy lets each role read, not that a device receives it.
echo "== the Broadcast recipe (docs/supabase.md, Realtime: tell a user's devices), on an emulated realtime schema"
psql -X -q -v ON_ERROR_STOP=1 -d rt >/dev/null <<'SQL' || exit 1
CREATE SCHEMA realtime;
GRANT USAGE ON SCHEMA realtime TO postgres, anon, authenticated, service_role;
CREATE TABLE realtime.messages (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	topic		text NOT NULL,
	extension	text NOT NULL,
	event		text,
	payload		jsonb,
	private		boolean DEFAULT false,
	inserted_at	timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated;
GRANT ALL ON realtime.messages TO postgres, service_role;

CREATE FUNCTION realtime.topic() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('realtime.topic', true), '') $$;

CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql AS
$$
BEGIN
	PERFORM set_config('realtime.topic', topic, true);
	INSERT INTO realtime.messages (topic, extension, event, payload, private)
	VALUES (topic, 'broadcast', event, payload, private);
EXCEPTION WHEN OTHERS THEN
	RAISE WARNING 'realtime.send: %', SQLERRM;
END
$$;
SQL

for b in broadcast-trigger broadcast-policy; do
	block "$b" >"$tmpdir/$b.sql" || exit 1
	out=$(psql -X -q -v ON_ERROR_STOP=1 -d rt -f "$tmpdir/$b.sql" 2>&1)
	rc=$?
	[ "$rc" -eq 0 ] || echo "$out"
	eq "the $b block runs as supabase_admin without an error" "$rc" 0
done

# broadcasts: the rows realtime.messages holds (as supabase_admin)
broadcasts()
{
	q rt "SELECT count(*) FROM realtime.messages"
}
# last_broadcast USER CONV: the newest broadcast's topic and payload, and the
# payload the conversation's head row should give
last_broadcast()
{
	q rt "SELECT m.topic || ' ' || m.event || ' ' || m.extension || ' ' || m.private || ' '
				 || (m.payload = jsonb_build_object('conversation_id', c.id, 'version', c.version,
													'checksum', c.checksum, 'deleted', c.deleted))
				 || ' ' || (m.payload ->> 'version') || ' ' || (m.payload ->> 'deleted')
			FROM realtime.messages m, chatpersist.conversations c
		   WHERE c.user_id = '$1' AND c.id = '$2'
		   ORDER BY m.id DESC LIMIT 1"
}
n0=$(broadcasts)
eq "a new conversation (save_conversation): created" \
	"$(api rt authenticated "$U1" "SELECT status FROM chatpersist.save_conversation('$U1', 'r', 'R',
		'[{\"id\":\"m1\",\"content\":\"secret words\"}]', false, 0)")" created
eq "... one broadcast, on chat:<user id>, with the head's id, version, checksum and deleted" \
	"$(($(broadcasts) - n0)) $(last_broadcast "$U1" r)" "1 chat:$U1 conversation_changed broadcast true true 1 false"
eq "the same array saved again: unchanged" \
	"$(api rt authenticated "$U1" "SELECT status FROM chatpersist.save_conversation('$U1', 'r', 'R',
		'[{\"id\":\"m1\",\"content\":\"secret words\"}]', false, 1)")" unchanged
eq "... no broadcast" "$(($(broadcasts) - n0))" 1
eq "append_messages: version 2" \
	"$(api rt authenticated "$U1" "SELECT status || ' ' || version FROM chatpersist.append_messages('$U1', 'r',
		'[{\"id\":\"m2\",\"content\":\"more secret words\"}]', 1)")" "updated 2"
eq "... one broadcast" "$(($(broadcasts) - n0)) $(last_broadcast "$U1" r)" \
	"2 chat:$U1 conversation_changed broadcast true true 2 false"
eq "a save that merges (stale expected version)" \
	"$(api rt authenticated "$U1" "SELECT status || ' ' || version FROM chatpersist.save_conversation('$U1', 'r', 'R',
		'[{\"id\":\"m1\",\"content\":\"secret words\"},{\"id\":\"m3\",\"content\":\"x\"}]', false, 1)")" "merged 3"
eq "... one broadcast" "$(($(broadcasts) - n0)) $(last_broadcast "$U1" r)" \
	"3 chat:$U1 conversation_changed broadcast true true 3 false"
eq "delete_conversation: deleted" \
	"$(api rt authenticated "$U1" "SELECT status || ' ' || version FROM chatpersist.delete_conversation('$U1', 'r')")" "deleted 4"
eq "... one broadcast, deleted true" "$(($(broadcasts) - n0)) $(last_broadcast "$U1" r)" \
	"4 chat:$U1 conversation_changed broadcast true true 4 true"
eq "delete_conversation again: unchanged, no broadcast" \
	"$(api rt authenticated "$U1" "SELECT status FROM chatpersist.delete_conversation('$U1', 'r')") $(($(broadcasts) - n0))" \
	"unchanged 4"
psql -X -q -A -t -d rt >/dev/null 2>&1 <<SQL
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL "request.jwt.claims" = '{"sub":"$U1","role":"authenticated"}';
SELECT chatpersist.save_conversation('$U1', 'rolled-back', 'x', '[{"id":"1"}]');
ROLLBACK;
SQL
eq "a save whose transaction rolls back: no broadcast" "$(($(broadcasts) - n0))" 4
api rt authenticated "$U2" "SELECT chatpersist.save_conversation('$U2', 'r', 'U2''s', '[{\"id\":\"m1\",\"content\":\"U2 secret\"}]')" >/dev/null
eq "U2's save: one broadcast, on chat:<U2>" "$(($(broadcasts) - n0)) $(last_broadcast "$U2" r)" \
	"5 chat:$U2 conversation_changed broadcast true true 1 false"
eq "every payload holds the four keys, and no message content" \
	"$(q rt "SELECT string_agg(DISTINCT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(payload) k), ' ')
			   || ' ' || bool_or(payload::text LIKE '%secret%') FROM realtime.messages")" \
	"checksum,conversation_id,deleted,version false"

# who reads what: Realtime sets realtime.topic to the topic a client joins
# and checks the SELECT policy as that client, with its claims
# reads ROLE USER TOPIC SQL
reads()
{
	local claims=""
	[ -z "$2" ] || claims="SET LOCAL \"request.jwt.claims\" = '{\"sub\":\"$2\",\"role\":\"$1\"}';"
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d rt 2>&1 <<SQL
BEGIN;
SET LOCAL ROLE $1;
$claims
SET LOCAL realtime.topic = '$3';
$4;
COMMIT;
SQL
}
u1_topic_rows="SELECT count(*) || ' ' || string_agg(DISTINCT topic, ',') FROM realtime.messages WHERE topic = realtime.topic()"
eq "authenticated with U1's claims, joining chat:<U1>, reads U1's four broadcasts" \
	"$(reads authenticated "$U1" "chat:$U1" "$u1_topic_rows")" "4 chat:$U1"
eq "... and joining chat:<U2>, reads none" \
	"$(reads authenticated "$U1" "chat:$U2" "SELECT count(*) FROM realtime.messages")" 0
eq "... U2 joining chat:<U2> reads U2's one" \
	"$(reads authenticated "$U2" "chat:$U2" "SELECT count(*) FROM realtime.messages WHERE topic = realtime.topic()")" 1
eq "authenticated without claims reads none" \
	"$(reads authenticated "" "chat:$U1" "SELECT count(*) FROM realtime.messages")" 0
eq "anon reads none" \
	"$(reads anon "" "chat:$U1" "SELECT count(*) FROM realtime.messages")" 0
# the policy decides whether a client may join a topic; it does not compare
# a row's topic: with its own topic joined, a role that could run SQL would
# read every broadcast row (clients cannot: Realtime runs the check, and
# PostgREST does not expose realtime nor let a client set realtime.topic)
eq "the policy gates the topic joined, not each row's topic (see docs/supabase.md)" \
	"$(reads authenticated "$U1" "chat:$U1" "SELECT count(*) FROM realtime.messages")" 5
contains "authenticated cannot insert into realtime.messages, not even on its own topic (no INSERT policy)" \
	"$(reads authenticated "$U1" "chat:$U1" "INSERT INTO realtime.messages (topic, extension, event, payload, private)
		VALUES ('chat:$U1', 'broadcast', 'conversation_changed', '{}', true)")" \
	'new row violates row-level security policy for table "messages"'
eq "no client role may execute private.chatpersist_broadcast" \
	"$(q rt "SELECT has_function_privilege(r, 'private.chatpersist_broadcast()', 'EXECUTE')
			  FROM unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator']) r")" \
	"$(printf 'f\nf\nf\nf')"
contains "... and a call as authenticated is refused" \
	"$(api_error rt authenticated "$U1" "SELECT private.chatpersist_broadcast()")" "permission denied for"

summary_done=1
echo "supabase_move: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
