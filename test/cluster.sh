# cluster.sh: a throwaway PostgreSQL cluster for the tests and the demo.
# Source it, call cp_cluster_start, and `trap cp_cluster_stop EXIT` so the
# cluster is stopped and removed even when something fails.
#
# The cluster lives in a fresh directory under /tmp owned by the postgres
# user (initdb and postgres refuse to run as root), listens on 127.0.0.1 on
# the first free port from 54321 on (the next one if another cluster takes
# it first), and trusts local connections. After
# cp_cluster_start, PGHOST, PGPORT, PGUSER and PGDATABASE point at it.
#
# Test scripts source it through test/lib.sh, which sets PG_CONFIG.  The
# cluster runs the binaries in CP_PGBIN: a private install
# (cp_private_install sets it), else PG_CONFIG's bin directory.
# CP_CLUSTER_SUPERUSER names the bootstrap superuser (default postgres;
# test/supabase_move.sh uses supabase_admin, as Supabase's image does).

CP_CLUSTER_DIR=""

# cp_private_install DIR [make variables...]: copy the server's binaries,
# libraries and share files into DIR (with their paths under it, as
# DESTDIR lays them out), install this tree's build there with
# `make install DESTDIR=DIR`, and point CP_PGBIN at the copy.  The server is
# relocatable (it finds its lib and share directories relative to its own
# binary, as PostgreSQL's own `make check` relies on), so a cluster started
# from the copy loads this build and nothing else: the system's
# installation is left alone, and several builds (a sanitizer build, two
# worktrees) can be tested side by side.  DIR must be new or empty (as
# mktemp -d makes it): an empty DIR would be the system's own paths, so it
# is refused.  Uses PG_CONFIG (default pg_config).  About 50 MB.
cp_private_install() {
	local dir=${1:-}
	shift
	local pgc=${PG_CONFIG:-pg_config}
	local bindir sharedir root
	if [ -z "$dir" ] || [ "$dir" = / ]; then
		echo "cp_private_install: no directory given" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	if [ -n "$(ls -A "$dir")" ]; then
		echo "cp_private_install: $dir is not empty" >&2
		return 1
	fi
	bindir=$("$pgc" --bindir) || return 1
	sharedir=$("$pgc" --sharedir) || return 1
	root=$(dirname "$bindir") # /usr/lib/postgresql/15: bin/ and lib/

	mkdir -p "$dir$(dirname "$root")" "$dir$(dirname "$sharedir")" || return 1
	cp -a "$root" "$dir$root" || return 1
	cp -a "$sharedir" "$dir$sharedir" || return 1
	make -s PG_CONFIG="$pgc" DESTDIR="$dir" "$@" install >/dev/null || return 1
	chmod -R a+rX "$dir"
	CP_PGBIN=$dir$bindir
	export CP_PGBIN
}

# Run a command as the postgres user when we are root
cp_as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Is a TCP port on the loopback in use?
cp_port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Create and start the cluster; extra postgresql.conf lines may be given as
# arguments (e.g. "shared_preload_libraries = 'chatpersist'").
cp_cluster_start() {
	local port=54321
	if [ -z "${CP_PGBIN:-}" ]; then
		CP_PGBIN=$("${PG_CONFIG:-pg_config}" --bindir) || return 1
	fi
	while cp_port_in_use "$port"; do
		port=$((port + 1))
	done

	CP_CLUSTER_DIR=$(mktemp -d /tmp/chatpersist-cluster.XXXXXX) || return 1
	chmod 755 "$CP_CLUSTER_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$CP_CLUSTER_DIR"
	fi

	cp_as_postgres "$CP_PGBIN/initdb" -D "$CP_CLUSTER_DIR/data" -U "${CP_CLUSTER_SUPERUSER:-postgres}" \
		--auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$CP_CLUSTER_DIR/initdb.log" 2>&1 || {
		cat "$CP_CLUSTER_DIR/initdb.log" >&2
		return 1
	}

	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$CP_CLUSTER_DIR'"
		echo "max_connections = 60"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_prepared_transactions = 10"
		# no autovacuum: its transactions would hold back changes_since in
		# the specs that pin exactly which changes a read returns
		echo "autovacuum = off"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] '"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$CP_CLUSTER_DIR/data/postgresql.conf"

	# Another cluster may take a free port between the probe and the bind:
	# then try the next one
	local tries=0
	while :; do
		echo "port = $port" >>"$CP_CLUSTER_DIR/data/postgresql.conf"
		if cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$CP_CLUSTER_DIR/data" -l "$CP_CLUSTER_DIR/server.log" \
			-w -t 60 start >/dev/null 2>"$CP_CLUSTER_DIR/pg_ctl.err"; then
			break
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 20 ] || ! grep -q "could not bind\|could not create any TCP/IP sockets" "$CP_CLUSTER_DIR/server.log"; then
			cat "$CP_CLUSTER_DIR/pg_ctl.err" "$CP_CLUSTER_DIR/server.log" >&2
			return 1
		fi
		echo "cluster: port $port was taken while the server started; trying the next one"
		port=$((port + 1))
		while cp_port_in_use "$port"; do
			port=$((port + 1))
		done
	done

	export PGHOST=127.0.0.1 PGPORT=$port PGUSER=${CP_CLUSTER_SUPERUSER:-postgres} PGDATABASE=postgres
	echo "cluster: started on 127.0.0.1:$port in $CP_CLUSTER_DIR"
}

# Stop and remove the cluster (safe to call twice, or when none started)
cp_cluster_stop() {
	[ -n "$CP_CLUSTER_DIR" ] || return 0
	if [ -f "$CP_CLUSTER_DIR/data/postmaster.pid" ]; then
		cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$CP_CLUSTER_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			cp_as_postgres "$CP_PGBIN/pg_ctl" -D "$CP_CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$CP_CLUSTER_DIR"
	CP_CLUSTER_DIR=""
}

# The end of the server log, for failures
cp_cluster_log_tail() {
	[ -n "$CP_CLUSTER_DIR" ] && [ -f "$CP_CLUSTER_DIR/server.log" ] || return 0
	echo "---- last lines of the server log ----"
	tail -n "${1:-40}" "$CP_CLUSTER_DIR/server.log"
}

# Does the server log show a backend crash?
cp_cluster_crashed() {
	[ -n "$CP_CLUSTER_DIR" ] && grep -q "terminated by signal\|was terminated by exception" "$CP_CLUSTER_DIR/server.log"
}
