#!/usr/bin/env bash
#
# fuzz.sh
#	  Run the chatpersist fuzzer (test/fuzz/fuzz.py with its in-server
#	  driver test/fuzz/driver.sql): random and malformed inputs to every SQL
#	  entry point, each checked against the contract's outcome and
#	  invariants.  See docs/reliability.md, section "Fuzzing".
#
# Usage:
#	bash test/fuzz.sh [--count N] [--seed S] [--batch B] [fuzz.py options]
#		Standalone: builds the extension, installs it into a private copy of
#		the server (test/cluster.sh), starts a throwaway cluster, fuzzes a
#		fresh database, and stops and removes the cluster, also on failure.
#		The long run:  bash test/fuzz.sh --count 1000000 --progress 25
#	PGHOST=... PGPORT=... PGUSER=<superuser> FUZZ_SERVER_LOG=... bash test/fuzz.sh --here [...]
#		Against a running server that has chatpersist installed (test/run.sh
#		does this): creates and drops the database chatpersist_fuzz.
#
# The seed is random unless given, and printed first; --seed S --count N
# repeats a run exactly.  Ends with the line
#	fuzz: N passed, M failed
# and exits non-zero if M > 0.  Needs Debian's python3-psycopg2 and
# libxxhash0 (test/setup.sh installs them).
#
# Copyright (c) 2026, chatpersist developers
#
# test/fuzz.sh
#

set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
here=
if [ "${1:-}" = "--here" ]; then
	here=1
	shift
fi

if [ -z "$here" ]; then
	bash test/setup.sh >/dev/null || exit 1
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
	export PG_CONFIG
	export PATH="$("$PG_CONFIG" --bindir):$PATH"
	make -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="-DUSE_ASSERT_CHECKING" >/dev/null || {
		echo "fuzz: build failed"
		echo "fuzz: 0 passed, 1 failed"
		exit 1
	}
	. test/cluster.sh
	install_dir=$(mktemp -d /tmp/chatpersist-fuzz-install.XXXXXX)
	trap 'cp_cluster_stop; rm -rf "$install_dir"' EXIT
	cp_private_install "$install_dir" || { echo "fuzz: install failed"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
	cp_cluster_start "shared_preload_libraries = 'chatpersist'" >/dev/null ||
		{ echo "fuzz: could not start a cluster"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
	FUZZ_SERVER_LOG=$CP_CLUSTER_DIR/server.log
fi

dropdb --if-exists chatpersist_fuzz >/dev/null 2>&1
createdb chatpersist_fuzz || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
psql -X -q -d chatpersist_fuzz -c "CREATE EXTENSION chatpersist" || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
PGDATABASE=chatpersist_fuzz "$PYTHON" test/fuzz/fuzz.py ${FUZZ_SERVER_LOG:+--server-log "$FUZZ_SERVER_LOG"} "$@"
rc=$?
dropdb --if-exists chatpersist_fuzz >/dev/null 2>&1
exit $rc
