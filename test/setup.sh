#!/usr/bin/env bash
# setup.sh: install what chatpersist needs to build and test, from Debian's
# packages. Idempotent: installs only what is missing (apt-get update once,
# then apt-get install). Run as root (Debian 12, PostgreSQL 15).
set -euo pipefail

packages=(
	make gcc                              # the build
	postgresql-15                         # server: initdb, postgres, pg_ctl, psql
	postgresql-server-dev-15              # PGXS, headers, pg_regress, pg_isolation_regress
	libxxhash-dev                         # xxhash.h (inlined: no runtime library)
	xxhash                                # xxhsum, the outside reference for checksums
	postgresql-15-pgtap                   # pgTAP
	libtap-parser-sourcehandler-pgtap-perl # pg_prove
	libipc-run-perl                       # PostgreSQL's Perl TAP test modules
	libdbd-pg-perl                        # DBI clients of the crash and soak tests
	cppcheck                              # static analysis in the test suite
	clang libclang-rt-14-dev              # libFuzzer and sanitizers (test/fuzz)
	libasan8 libubsan1                    # gcc's ASan and UBSan runtimes (test/sanitize.sh)
	valgrind                              # memcheck, and its client-request headers (test/sanitize.sh)
	python3-psycopg2                      # the fuzzer (test/fuzz.sh), run by Debian's python3
	libxxhash0                            # XXH3 for the fuzzer's independent checksum oracle
)

# Node.js and npm run the client example's tests (examples/node); the
# machine image usually has them, else Debian's packages do
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all build and test dependencies are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages: ${missing[*]}" >&2
	echo "setup: run this script as root (it uses apt-get)" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
