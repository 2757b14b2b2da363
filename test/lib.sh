# lib.sh: the setup every test script shares, written once.  A script
# goes to the top of the tree and sources it:
#
#	cd "$(dirname "$0")/.." || exit 1
#	. test/lib.sh
#
# Sourcing it exports PG_CONFIG (default PostgreSQL 15's pg_config: the only
# place that path is written) and loads test/cluster.sh, the throwaway
# clusters (cp_cluster_start, cp_cluster_stop, cp_private_install,
# cp_as_postgres, ...).  Then, in the order a script uses them:
#
# cp_setup [-v]
#	Install what is missing (test/setup.sh), quietly unless -v.  Once per
#	run: the scripts test/run.sh starts skip it (CP_SETUP_DONE).
# cp_pg_env
#	Put PG_CONFIG's bin directory (psql, createdb, pg_dump, ...) first on
#	PATH.
# cp_build [--clean] [VAR=value ...]
#	Build this tree (make -s PG_CONFIG=$PG_CONFIG VAR=value ...), showing
#	only errors and warnings; --clean runs make clean first.
# cp_install [NAME]
#	Install the build into a new private copy of the server,
#	/tmp/NAME.XXXXXX (NAME defaults to chatpersist-install; see
#	cp_private_install: the system's installation is not touched).  Sets
#	CP_INSTALL_DIR and CP_PGBIN (exported).  cp_cleanup removes it.
# cp_own_cluster [postgresql.conf lines ...]
#	The usual start of a standalone run, after cp_build: set the EXIT trap
#	to cp_cleanup, cp_install, and start a throwaway cluster of that copy
#	with the given lines (cp_cluster_start: PGHOST, PGPORT, PGUSER and
#	PGDATABASE then point at it).  Says what failed on stderr.
# cp_this_build
#	For a script that test/run.sh also runs: test/run.sh passes its own
#	private install in CP_PGBIN; without CP_PGBIN, cp_build and cp_install
#	this tree.  The caller's EXIT trap must call cp_cleanup.
# cp_cleanup
#	Stop the cluster (cp_cluster_stop) and remove the private install
#	cp_install made.  Safe to call twice, or when neither exists.  The EXIT
#	trap of cp_own_cluster; a script with an EXIT trap of its own calls it
#	from there.

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

# shellcheck source=test/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

CP_INSTALL_DIR=${CP_INSTALL_DIR:-}
CP_OWN_INSTALL=""	# the private install cp_install made, for cp_cleanup

cp_setup() {
	[ -z "${CP_SETUP_DONE:-}" ] || return 0
	if [ "${1:-}" = -v ]; then
		bash test/setup.sh || return 1
	else
		bash test/setup.sh >/dev/null || return 1
	fi
	CP_SETUP_DONE=1
	export CP_SETUP_DONE
}

cp_pg_env() {
	local bindir
	bindir=$("$PG_CONFIG" --bindir) || return 1
	PATH="$bindir:$PATH"
	export PATH
}

cp_build() {
	if [ "${1:-}" = --clean ]; then
		shift
		make -s clean >/dev/null || return 1
	fi
	make -s PG_CONFIG="$PG_CONFIG" "$@" >/dev/null
}

cp_install() {
	local dir
	dir=$(mktemp -d "/tmp/${1:-chatpersist-install}.XXXXXX") || return 1
	CP_OWN_INSTALL=$dir
	CP_INSTALL_DIR=$dir
	cp_private_install "$dir"
}

cp_own_cluster() {
	trap cp_cleanup EXIT
	cp_install || { echo "install failed" >&2; return 1; }
	cp_cluster_start "$@" || { echo "could not start a cluster" >&2; return 1; }
}

cp_this_build() {
	[ -z "${CP_PGBIN:-}" ] || return 0
	cp_build || { echo "build failed" >&2; return 1; }
	cp_install || { echo "install failed" >&2; return 1; }
}

cp_cleanup() {
	cp_cluster_stop
	if [ -n "$CP_OWN_INSTALL" ]; then
		rm -rf "$CP_OWN_INSTALL"
		CP_OWN_INSTALL=""
	fi
}
