#
# 010_crash_recovery.pl
#	  Acknowledged saves survive crashes: concurrent clients write a few hot
#	  conversations while the server is killed again and again, and after
#	  every restart each acknowledged write is checked against the database.
#
# Run it with test/tap.sh, which builds, installs this tree into a private
# copy of the server and runs prove as the postgres user:
#
#	bash test/tap.sh									  # 8 crash cycles
#	CP_CRASH_CYCLES=20 bash test/tap.sh				  # the full run
#	CP_CRASH_CYCLES=40 CP_CRASH_CLIENTS=10 CP_CRASH_SEED=42 bash test/tap.sh
#
# Environment: CP_INSTALL_PATH (the installation to run: the parent of its
# bin/ and lib/; default the pg_config on PATH), CP_CRASH_CYCLES (crash
# cycles, default 8), CP_CRASH_CLIENTS (client processes, default 6),
# CP_CRASH_SEED (random seed, default from the clock; printed), CP_CRASH_CONF
# (extra postgresql.conf lines: CP_CRASH_CONF='synchronous_commit = off'
# shows the test failing when acknowledged commits are not durable).
#
# Each cycle: the clients (CpWorkload.pm: fast-forward and stale saves,
# appends with and without expected version, direct SQL with the version
# read: 2.0, a message row INSERT after an UPDATE of the head) run for a random 0.5 to 2.5 s (in a third of the cycles
# with a CHECKPOINT under way); then the server dies, in turn:
#	- kill -9 (two cycles in four): SIGKILL to the postmaster; its other
#	  processes, frozen an instant before, are orphans still attached to
#	  the old shared memory, and a start must be refused; then they go on
#	  for a random 0 to 30 ms (and may still acknowledge commits) and get
#	  SIGKILL too; the restart is retried while they still hold the memory;
#	- pg_ctl stop -m immediate, then a start;
#	- SIGKILL to one backend: the postmaster ends the others, resets shared
#	  memory (running chatpersist's shmem startup again) and recovers.
# The clients are held; once the server has recovered, stats() must count
# in the new shared memory, CpCheck.pm compares every write a client saw
# acknowledged with the database, and pg_amcheck checks every heap, TOAST
# table and B-tree (--heapallindexed, --parent-check), and a device that
# follows changes_since with its cursor kept across the crashes must learn
# every conversation's version.  Then the clients reconnect and go on.  At
# the end the checker must find a planted loss.
#
# Copyright (c) 2026, chatpersist developers
#
# test/t/010_crash_recovery.pl
#

use strict;
use warnings;

use Cwd qw(realpath);
use DBI;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use POSIX qw(:sys_wait_h _exit);
use Time::HiRes qw(time sleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CpCheck;
use CpWorkload;

my $cycles = $ENV{CP_CRASH_CYCLES} // 8;
my $nclients = $ENV{CP_CRASH_CLIENTS} // 6;
my $seed = $ENV{CP_CRASH_SEED} // (int(time()) ^ $$);
srand($seed);
note "seed $seed, $cycles cycles, $nclients clients";

#
# Orphaned server processes are re-parented to the nearest "subreaper".
# Be one, so that a killed postmaster and its backends become our children
# and we can reap them: a zombie postmaster would still look alive to the
# lock file check of the next start.
#
{
	require 'sys/syscall.ph';
	my $PR_SET_CHILD_SUBREAPER = 36;
	syscall(&SYS_prctl, $PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
	  or BAIL_OUT("prctl(PR_SET_CHILD_SUBREAPER): $!");
}

my %client_status;	   # pid => exit status of clients we reaped
my @client_pids;

sub reap
{
	while ((my $pid = waitpid(-1, WNOHANG)) > 0)
	{
		$client_status{$pid} = $? if grep { $_ == $pid } @client_pids;
	}
	return;
}

my $node = PostgreSQL::Test::Cluster->new('crash',
	$ENV{CP_INSTALL_PATH} ? (install_path => $ENV{CP_INSTALL_PATH}) : ());
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'chatpersist'
chatpersist.history_depth = 4
# a commit is acknowledged only once its WAL is written (fsync is off, as
# in every test cluster: the OS keeps what was written when processes die)
synchronous_commit = on
log_statement = none
# startup, recovery and FATAL lines, not the clients' many 40001 errors
log_min_messages = log
max_connections = 40
# the postmaster itself recovers after a backend was killed
restart_after_crash = on
# checkpoints often, so that crashes land before, during and after them
checkpoint_timeout = 30s
max_wal_size = 64MB
autovacuum_naptime = 1s
});
# more settings, for experiments (synchronous_commit = off must fail)
$node->append_conf('postgresql.conf', $ENV{CP_CRASH_CONF}) if $ENV{CP_CRASH_CONF};
$node->start;
my $datadir = realpath($node->data_dir);
$node->safe_psql('postgres', 'CREATE DATABASE crash');
$node->safe_psql('crash', 'CREATE EXTENSION chatpersist');

my $ctl = PostgreSQL::Test::Utils::tempdir('ctl');
my $logdir = PostgreSQL::Test::Utils::tempdir('logs');
my $dsn = sprintf('dbi:Pg:host=%s;port=%d;dbname=crash', $node->host, $node->port);
my @users = map { CpWorkload::user_uuid($seed, $_) } 1 .. 2;
my @convs = map { my $u = $_; map { [ $u, "k$_" ] } 1 .. 3 } @users;
my $t0 = time();

# The server's processes: those whose working directory is its data directory
sub server_pids
{
	my @pids;
	opendir(my $d, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir($d))
	{
		my $cwd = readlink("/proc/$pid/cwd");
		push @pids, $pid if defined $cwd && $cwd eq $datadir;
	}
	closedir($d);
	return @pids;
}

# Stop everything we started, also when a check bailed out or we were
# interrupted (a signal would otherwise skip the END blocks)
$SIG{INT} = $SIG{TERM} = sub { die "interrupted\n" };
END
{
	local $?;	 # waitpid would replace the test's exit status
	if (@client_pids)
	{
		kill('KILL', @client_pids);
		waitpid($_, 0) for @client_pids;
	}
	if ($datadir)
	{
		my @left = server_pids();
		kill('KILL', @left) if @left;
	}
}

for my $i (1 .. $nclients)
{
	my $pid = fork() // BAIL_OUT("fork: $!");
	if ($pid == 0)
	{
		# A child must not run the test's END blocks (they would stop the
		# node): leave with _exit
		my $ok = eval {
			CpWorkload::run_client(
				client => $i,
				prefix => 'k',
				dsn => $dsn,
				user => 'postgres',
				log => "$logdir/client-$i.log",
				ctl => $ctl,
				convs => \@convs,
				rotate => 15,
				t0 => $t0,
				seed => $seed + $i,
				weights => {%CpWorkload::CORE_WEIGHTS});
			1;
		};
		print STDERR "client $i: $@" unless $ok;
		_exit($ok ? 0 : 1);
	}
	push @client_pids, $pid;
}

my $generation = 0;

# Hold the clients (they drop their connections) and wait until all are held
sub hold_clients
{
	$generation++;
	open(my $h, '>', "$ctl/hold.tmp") or die;
	print $h "$generation\n";
	close $h;
	rename("$ctl/hold.tmp", "$ctl/hold") or die;
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my @held = glob("$ctl/held.$generation.*");
		return 1 if @held == $nclients;
		reap();
		sleep(0.02);
	}
	return 0;
}

sub release_clients
{
	unlink("$ctl/hold");
	unlink(glob("$ctl/held.*"));
	return;
}

# Is a process attached to a System V shared memory segment (the one
# PostgreSQL keeps as the interlock of its data directory)?
sub attached_to_sysv_shm
{
	my ($pid) = @_;
	open(my $maps, '<', "/proc/$pid/maps") or return 0;
	my $attached = grep { m{ /SYSV[0-9a-f]+} } <$maps>;
	close $maps;
	return $attached;
}

#
# Kill the postmaster with SIGKILL, its other processes frozen (SIGSTOP,
# as orphans the scheduler has not run yet).  While one of them is still
# attached to the old shared memory, a start must be refused.  Then let them go on for a random 0 to 30 ms (as orphans they
# may still acknowledge commits) and SIGKILL whatever is left.  Returns a
# hashref: outlived (server processes alive after the postmaster),
# attached (of them, still attached to the shared memory), refused (1 if
# the start was refused for it), started (1 if the start was accepted:
# none was attached), t_from and t_to (the orphans' window).
#
sub kill_server
{
	my %k = (refused => 0, started => 0);
	my $postmaster = $node->{_pid};
	# frozen an instant before the postmaster dies: many would otherwise
	# exit within microseconds of noticing its death
	my @orphans = grep { $_ != $postmaster } server_pids();
	kill('STOP', @orphans) if @orphans;
	$k{t_from} = time();
	$node->kill9;
	$k{outlived} = scalar(@orphans);
	$k{attached} = grep { attached_to_sysv_shm($_) } @orphans;
	waitpid($postmaster, 0);	# ours, as subreaper: no zombie lock holder

	if ($k{attached})
	{
		my $log_size = -s $node->logfile;
		if ($node->start(fail_ok => 1))
		{
			fail("a start while $k{attached} orphans hold the old shared memory "
				  . 'must be refused');
			BAIL_OUT('two servers on one data directory');
		}
		my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
		$k{refused} = 1
		  if substr($log, $log_size) =~ /pre-existing shared memory block .* is still in use/;
	}
	kill('CONT', @orphans) if @orphans;

	sleep(rand(0.03));
	kill('KILL', @orphans) if @orphans;
	$k{t_to} = time();
	return \%k;
}

#
# Kill one client backend with SIGKILL: the postmaster then ends every
# other backend, resets shared memory (which runs chatpersist's shmem
# startup again) and recovers by itself (restart_after_crash = on)
#
sub kill_backend
{
	for my $pid (server_pids())
	{
		open(my $fh, '<', "/proc/$pid/cmdline") or next;
		my $title = <$fh> // '';
		close $fh;
		if ($title =~ /^postgres: crash: \S+ crash /)
		{
			kill('KILL', $pid);
			return 1;
		}
	}
	return 0;
}

# In some cycles a CHECKPOINT runs when the crash comes
sub background_checkpoint
{
	my $pid = fork() // die "fork: $!";
	return $pid if $pid;
	my $dbh = DBI->connect($dsn, 'postgres', '', { PrintError => 0 });
	$dbh->do('CHECKPOINT') if $dbh;
	_exit(0);
}

# Wait until no process of the old server is left, reaping our zombies
sub wait_server_gone
{
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		reap();
		return 1 unless server_pids();
		sleep(0.02);
	}
	return 0;
}

# Start again; the start fails while orphaned backends still hold the
# shared memory, so retry
sub restart
{
	for my $try (1 .. 100)
	{
		return $try if $node->start(fail_ok => 1);
		reap();
		sleep(0.1);
	}
	return 0;
}

#
# One more device, kept across the crashes: it follows changes_since with
# the largest cursor it has seen.  With the clients held, the feed must
# catch up with every row's version (a change may come late while another
# transaction is still open, never not at all).  Returns the conversations
# it lags behind on, after 20 s of trying.
#
my %cursor = map { $_ => 0 } @users;
my %feed;

sub feed_lag
{
	my ($dbh) = @_;
	my @lag;
	for my $try (1 .. 200)
	{
		for my $u (@users)
		{
			my $rows = $dbh->selectall_arrayref(
				'SELECT conversation_id, version, cursor '
				  . 'FROM chatpersist.changes_since($1::uuid, $2)', undef, $u, $cursor{$u});
			for my $r (@$rows)
			{
				push @lag, "the feed went back on $u/$r->[0]"
				  if ($feed{"$u/$r->[0]"} // 0) > $r->[1];
				$feed{"$u/$r->[0]"} = $r->[1];
				$cursor{$u} = $r->[2] if $r->[2] > $cursor{$u};
			}
		}
		my $rows = $dbh->selectall_arrayref(
			'SELECT user_id::text, id, version FROM chatpersist.conversations '
			  . 'WHERE user_id = ANY($1::uuid[])', undef, \@users);
		@lag = (@lag, map { "$_->[0]/$_->[1] is at version $_->[2], the feed says "
			  . ($feed{"$_->[0]/$_->[1]"} // 'nothing') }
		  grep { ($feed{"$_->[0]/$_->[1]"} // 0) != $_->[2] } @$rows);
		return () unless @lag;
		return @lag if grep { /went back/ } @lag;
		@lag = ();
		sleep(0.1);
	}
	return ('no answer');
}

my %total = (outlived => 0, attached => 0, refused => 0, late => 0,
	kill9 => 0, immediate => 0, backend => 0);
my $acks_before = 0;

sub check_cycle
{
	my ($label) = @_;
	my $logs = CpCheck::read_logs($logdir);
	my $dbh = DBI->connect($dsn, 'postgres', '',
		{ AutoCommit => 1, RaiseError => 1, PrintError => 0 });
	my ($problems, $facts) = CpCheck::check_state($dbh, $logs, users => \@users);

	# The shared counters were set up again, and count
	my $stat = sub {
		return $dbh->selectrow_array(
			'SELECT value FROM chatpersist.stats() WHERE name = $1', undef, $_[0]);
	};
	my $before = $stat->('saves_created');
	$dbh->selectrow_array(
		q{SELECT chatpersist.save_conversation($1, $2, 'stats', '[]')},
		undef, CpWorkload::user_uuid($seed, 99), $label);
	ok($stat->('cluster_wide') == 1 && $stat->('saves_created') == $before + 1,
		"$label: stats() counts cluster-wide in the new shared memory");
	my @lag = feed_lag($dbh);
	ok(!@lag, "$label: changes_since, its cursor kept across the crashes, "
		  . 'reports every conversation\'s version')
	  or diag(join("\n", @lag[ 0 .. ($#lag < 10 ? $#lag : 9) ]));
	$dbh->disconnect;

	my $new = $facts->{acks} - $acks_before;
	$acks_before = $facts->{acks};
	cmp_ok($new, '>', 0, "$label: the clients had new acknowledged writes ($new)");
	ok(!@$problems,
		"$label: $facts->{acks} acknowledged writes ($facts->{messages_checked} messages) "
		  . "present with their versions and checksums; $facts->{rows} rows and "
		  . "$facts->{history_rows} history rows consistent")
	  or diag(join("\n", @$problems[ 0 .. ($#$problems < 30 ? $#$problems : 29) ]));

	$node->command_checks_all(
		[
			'pg_amcheck', '--install-missing', '--heapallindexed', '--parent-check',
			'-d', 'crash', '-d', 'postgres'
		],
		0, [qr/^$/], [qr/^(NOTICE:  extension "amcheck" already exists, skipping\n)*$/],
		"$label: pg_amcheck finds nothing");
	return $facts;
}

for my $cycle (1 .. $cycles)
{
	# the cycles go round: kill, kill, immediate stop, backend, ...
	my $mode = ('backend', 'kill9', 'kill9', 'immediate')[ $cycle % 4 ];
	my $label = "cycle $cycle ($mode)";
	sleep(0.5 + rand(2.0));

	my $checkpointer;
	if (rand() < 0.33)
	{
		$checkpointer = background_checkpoint();
		sleep(rand(0.1));
	}

	my $k = { outlived => 0, attached => 0, refused => 0, t_from => 0, t_to => 0 };
	if ($mode eq 'kill9')
	{
		$k = kill_server();
	}
	elsif ($mode eq 'immediate')
	{
		$node->stop('immediate');
	}
	else
	{
		ok(kill_backend(), "$label: killed a backend");
	}
	waitpid($checkpointer, 0) if $checkpointer;
	ok(hold_clients(), "$label: clients held");
	if ($mode eq 'backend')
	{
		ok($node->poll_query_until('crash', 'SELECT true'),
			"$label: the postmaster reinitialised and recovered");
	}
	elsif ($mode eq 'immediate')
	{
		ok(wait_server_gone(), "$label: no process of the old server is left");
	}
	ok($k->{refused}, "$label: a start was refused while $k->{attached} orphans held "
		  . 'the old shared memory')
	  if $k->{attached};
	if ($mode ne 'backend')
	{
		# retried while the killed orphans still hold the shared memory
		my $tries = restart();
		ok($tries, "$label: restarted and recovered (start attempts: $tries)");
		BAIL_OUT('the server did not restart') unless $tries;
	}
	$total{$mode}++;
	$total{$_} += $k->{$_} for qw(outlived attached refused);

	# acknowledgements that arrived while the orphans went on (by the
	# clients' clock, once the reply was in)
	my $late = grep { $_->{ts} >= $k->{t_from} * 1000 && $_->{ts} <= $k->{t_to} * 1000 }
	  @{ CpCheck::read_logs($logdir)->{acks} };
	$total{late} += $late;
	note "$label: $k->{outlived} server processes outlived the postmaster "
	  . "($k->{attached} attached to its shared memory); "
	  . "$late acknowledgements arrived while they went on"
	  if $mode eq 'kill9';

	check_cycle($label);
	release_clients();
}

# Stop the clients; the last check sees everything they did
{
	open(my $s, '>', "$ctl/stop") or die "cannot create $ctl/stop: $!";
	close $s;
}
release_clients();
for my $pid (@client_pids)
{
	waitpid($pid, 0) unless exists $client_status{$pid};
	$client_status{$pid} //= $?;
}
is(scalar(grep { $client_status{$_} != 0 } @client_pids), 0,
	'every client ran until told to stop');
@client_pids = ();

my $logs = CpCheck::read_logs($logdir);
my $dbh = DBI->connect($dsn, 'postgres', '',
	{ AutoCommit => 1, RaiseError => 1, PrintError => 0 });
my ($problems, $facts) = CpCheck::check_state($dbh, $logs, users => \@users);
ok(!@$problems, "final: $facts->{acks} acknowledged writes checked after $cycles crashes")
  or diag(join("\n", @$problems[ 0 .. ($#$problems < 30 ? $#$problems : 29) ]));

# The workload did what it claims: merges, fast-forwards, direct updates
# and stale direct updates refused with 40001 all happened
my %st = %{ $facts->{status} };
note join(', ', map { "$_: $st{$_}" } sort keys %st);
cmp_ok($st{'save_stale merged'} // 0, '>', 0, 'stale saves merged');
cmp_ok(($st{'save_ff updated'} // 0), '>', 0, 'fast-forward saves updated');
cmp_ok($st{'append merged'} // 0, '>', 0, 'stale appends merged');
cmp_ok($st{'update direct'} // 0, '>', 0, 'direct UPDATEs acknowledged');
cmp_ok($facts->{errors}{'retry 40001'} // 0, '>', 0, 'stale direct UPDATEs got 40001');
cmp_ok($total{outlived}, '>', 0, 'server processes outlived the killed postmaster');
cmp_ok($total{refused}, '>', 0,
	'a start was refused while orphans held the shared memory');


#
# The checker catches a loss: take one acknowledged message out of its
# conversation with direct SQL (2.0: its message row removed; the trigger
# keeps checksum, count and history right, so only the loss itself is left
# to find)
#
my ($victim) = grep { $_->{kind} eq 'append' } reverse @{ $logs->{acks} };
my $removed = $dbh->do(
	q{UPDATE chatpersist.messages SET removed = true
	  WHERE user_id = $1 AND conversation_id = $2 AND id = $3 AND NOT removed}, undef,
	$victim->{user}, $victim->{conv}, $victim->{msgid});
is($removed, 1, "planted: the message row of $victim->{msgid} removed");
($problems) = CpCheck::check_state($dbh, $logs, users => \@users);
my @caught = grep { /message \Q$victim->{msgid}\E is lost/ } @$problems;
is(scalar(@caught), 1, "the checker finds a planted loss of message $victim->{msgid}");
is(scalar(@$problems), 1, 'and nothing else')
  or diag(join("\n", @$problems[ 0 .. ($#$problems < 10 ? $#$problems : 9) ]));
$dbh->disconnect;

diag sprintf('crash_recovery: %d cycles (%d kill -9 of the server, %d immediate '
	  . 'stops, %d kill -9 of a backend) in %d s, %d acknowledged writes (%d messages) '
	  . 'checked after each; %d server processes outlived the postmaster, %d '
	  . 'acknowledgements arrived while orphans went on, %d starts refused '
	  . 'while orphans held the old shared memory',
	$cycles, $total{kill9}, $total{immediate}, $total{backend}, time() - $t0,
	$facts->{acks}, $facts->{messages_checked}, $total{outlived}, $total{late},
	$total{refused});

$node->stop;
done_testing();
