# oracle.sh: the last 1.x release, rebuilt from git history, as the oracle
# that 2.0's differential and upgrade tests compare with.  Source it after
# test/lib.sh (PG_CONFIG, and test/cluster.sh's cp_private_install).
#
# test/oracle.commit names the commit (its first word; the rest of the line
# says what it is).  It is the last commit before the 2.0 storage change:
# the code 1.x users run.  The functions below never touch the work tree:
# the commit's files come from `git archive`, so a fresh clone (as CI makes)
# that has the history is all they need.
#
# cp_oracle_commit: print the oracle's commit id (fails if the file or the
# commit is missing).
#
# cp_oracle_build DIR: extract the oracle's tree into DIR/src, build it
# (warnings as errors, as test/run.sh builds), and install it privately into
# DIR/install (cp_private_install: a copy of the server that loads this
# build and nothing else; CP_PGBIN then points at its bin directory).  DIR
# must be new or empty.  Prints one line saying what it built.

cp_oracle_commit() {
	local top file commit
	top=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel) || return 1
	file=$top/test/oracle.commit
	if [ ! -f "$file" ]; then
		echo "cp_oracle_commit: $file is missing" >&2
		return 1
	fi
	commit=$(awk 'NF && $1 !~ /^#/ { print $1; exit }' "$file")
	if [ -z "$commit" ] || ! git -C "$top" cat-file -e "$commit^{commit}" 2>/dev/null; then
		echo "cp_oracle_commit: commit '$commit' of $file is not in this repository's history" >&2
		echo "cp_oracle_commit: a shallow clone lacks it; run 'git fetch --unshallow'" >&2
		return 1
	fi
	echo "$commit"
}

cp_oracle_build() {
	local dir=${1:-} top commit
	if [ -z "$dir" ] || [ "$dir" = / ]; then
		echo "cp_oracle_build: no directory given" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	if [ -n "$(ls -A "$dir")" ]; then
		echo "cp_oracle_build: $dir is not empty" >&2
		return 1
	fi
	top=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel) || return 1
	commit=$(cp_oracle_commit) || return 1
	mkdir -p "$dir/src" || return 1
	git -C "$top" archive "$commit" | tar -x -C "$dir/src" || return 1
	(
		cd "$dir/src" &&
			make -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="-Werror" >"$dir/build.log" 2>&1
	) || {
		echo "cp_oracle_build: building $commit failed:" >&2
		cat "$dir/build.log" >&2
		return 1
	}
	# cp_private_install installs the tree it runs in
	pushd "$dir/src" >/dev/null || return 1
	cp_private_install "$dir/install" || { popd >/dev/null; return 1; }
	popd >/dev/null || return 1
	echo "oracle: built chatpersist $(sed -nE "s/^default_version = '(.*)'/\1/p" "$dir/src/chatpersist.control") from $commit in $dir"
}
