#!/usr/bin/env bash
#
# install.sh
#	  Build chatpersist against a given PostgreSQL 15 (PG_CONFIG), install it,
#	  and check that this server loads it: start a throwaway cluster of it,
#	  CREATE EXTENSION chatpersist, save and load a conversation.  If the
#	  server does not find the files where pg_config said (a Nix-built
#	  server, as in Supabase's image, may look elsewhere), install again
#	  into the directories the server itself reports (its pg_config view)
#	  and check again.  Used by examples/supabase-image/Dockerfile.
#
# Usage: PG_CONFIG=/path/to/pg_config [POSTGRES_BIN=dir] install.sh [SOURCE_DIR]
#
# SOURCE_DIR is the chatpersist source tree (default: two levels up from
# this script).  POSTGRES_BIN is the directory of the server's initdb and
# postgres (default: pg_config --bindir).  Run as root (the throwaway
# cluster then runs as the user postgres) or as the user that owns the
# installation.  Exits non-zero, saying why, if anything fails.
#
# Copyright (c) 2026, chatpersist developers
#
# examples/supabase-image/install.sh
#

set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
pg_config=${PG_CONFIG:-pg_config}
bin=${POSTGRES_BIN:-$("$pg_config" --bindir)}
tmp=""
pid=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup()
{
	# the postmaster's own pid: $pid is the background job, which may be
	# runuser, and does not pass a signal on
	if [ -n "$pid" ] && [ -f "$tmp/data/postmaster.pid" ]; then
		kill -INT "$(head -n 1 "$tmp/data/postmaster.pid")" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# as_owner CMD...: run a server command as postgres when we are root
as_owner()
{
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

version=$("$pg_config" --version)
case "$version" in
	"PostgreSQL 15."*) ;;
	*)
		echo "install.sh: $pg_config is $version; this recipe is for PostgreSQL 15" >&2
		exit 1
		;;
esac
if [ ! -f "$("$pg_config" --includedir-server)/postgres.h" ]; then
	echo "install.sh: no server headers in $("$pg_config" --includedir-server)" >&2
	exit 1
fi

echo "== build and install with $pg_config ($version)"
make -C "$src" -s PG_CONFIG="$pg_config" clean
make -C "$src" -s PG_CONFIG="$pg_config"
make -C "$src" -s PG_CONFIG="$pg_config" install

# A throwaway cluster of the server in $bin, on a Unix socket only
tmp=$(mktemp -d)
chmod 755 "$tmp"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp"
as_owner "$bin/initdb" -D "$tmp/data" -U check --auth=trust -E UTF8 --no-sync >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2
	exit 1
}
# postgres itself, not pg_ctl: a Nix-built pg_ctl may not find its postgres
as_owner "$bin/postgres" -D "$tmp/data" -k "$tmp" -c listen_addresses= -c port=5499 >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do
	[ -S "$tmp/.s.PGSQL.5499" ] && break
	sleep 0.5
done
psql_check()
{
	PGOPTIONS="-c client_min_messages=warning" "$bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$tmp" -p 5499 \
		-U check -d postgres "$@"
}

# check: CREATE EXTENSION, a save and a load in a scratch database
check()
{
	psql_check -c "DROP DATABASE IF EXISTS install_check" -c "CREATE DATABASE install_check" >/dev/null &&
		[ "$(psql_check -d install_check \
			-c "CREATE EXTENSION chatpersist" \
			-c "SELECT status FROM chatpersist.save_conversation('00000000-0000-4000-8000-000000000001', 'c', 't', '[{\"id\":\"m1\"}]')" \
			-c "SELECT messages::text FROM chatpersist.load_conversation('00000000-0000-4000-8000-000000000001', 'c')")" \
			= $'created\n[{"id": "m1"}]' ]
}

echo "== check: the server in $bin loads chatpersist"
if check; then
	echo "install.sh: chatpersist $(psql_check -d install_check -c "SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'") installed and loaded"
	exit 0
fi

# The server looks elsewhere than pg_config said: ask it
echo "== the server does not find chatpersist where $pg_config installed it"
libdir=$(psql_check -c "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")
sharedir=$(psql_check -c "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
echo "== the server loads from $libdir and $sharedir/extension; installing there"
make -C "$src" -s PG_CONFIG="$pg_config" install pkglibdir="$libdir" datadir="$sharedir"
if check; then
	echo "install.sh: chatpersist $(psql_check -d install_check -c "SELECT extversion FROM pg_extension WHERE extname = 'chatpersist'") installed into $libdir and $sharedir, and loaded"
	exit 0
fi
echo "install.sh: the server in $bin still cannot load chatpersist; its log:" >&2
cat "$tmp/server.log" >&2
exit 1
