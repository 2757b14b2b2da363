#!/usr/bin/env bash
#
# run.sh
#	  The lost-update soak (test/soak/soak.pl) from scratch, on a throwaway
#	  cluster of its own: the long run.
#
# Usage, as root on Debian 12:
#	bash test/soak/run.sh --duration 1800		# half an hour
#	bash test/soak/run.sh --duration 600 --clients 32 --conversations 1
#
# Installs what is missing (test/setup.sh), builds, installs the build into
# a private copy of the server under /tmp (the system's installation is
# not touched), starts a cluster with chatpersist in
# shared_preload_libraries (test/cluster.sh), creates a database with the
# extension and runs soak.pl with the given options (see its banner;
# --self-test is always on).  The cluster and the private install are
# removed at the end, also on failure.  Ends with soak.pl's line
#	soak: N passed, M failed
#
# Copyright (c) 2026, chatpersist developers
#
# test/soak/run.sh
#

set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
. test/lib.sh

cp_setup || exit 1
cp_build || { echo "build failed"; exit 1; }
cp_own_cluster "shared_preload_libraries = 'chatpersist'" "max_connections = 100" || exit 1
export PATH="$CP_PGBIN:$PATH"

createdb chatpersist_soak || exit 1
psql -X -q -d chatpersist_soak -c "CREATE EXTENSION chatpersist" || exit 1
PGDATABASE=chatpersist_soak perl test/soak/soak.pl --self-test "$@"
status=$?
if [ "$status" -ne 0 ]; then
	cp_cluster_log_tail 40
fi
exit "$status"
