#!/usr/bin/perl
#
# soak.pl
#	  Lost-update soak: 16 concurrent clients hammer a few hot conversations
#	  with every kind of write for a while, then a checker proves that no
#	  acknowledged write was lost.
#
# Usage (a running server with chatpersist installed; PGHOST, PGPORT,
# PGUSER, PGDATABASE say where):
#	perl test/soak/soak.pl [--duration 45] [--clients 16] [--users 2]
#		[--conversations 2] [--rotate 5] [--max-live 1000] [--seed N]
#		[--self-test] [--blind-updates W] [--logdir DIR]
# or, from scratch on its own throwaway cluster (the long run):
#	bash test/soak/run.sh --duration 1800
# test/run.sh runs it for 40 s (CP_SOAK_SECONDS) with --self-test.
#
# The clients (test/perl/CpWorkload.pm) write --users x --conversations hot
# conversations of fresh user ids (all clients move on to new ones every
# --rotate seconds, which bounds their size): fast-forward saves (after a reload),
# stale saves (from a remembered version, so they merge), appends with and
# without expected version, direct SQL with the version read (2.0: a
# message row INSERT after an UPDATE of the head naming the version; 40001
# when stale: read again and retry), message tombstones ("deleted": true
# through append_messages) and conversation deletes (delete_conversation
# with the version read, also whenever a reload finds more than --max-live
# live messages).  One client in four runs under REPEATABLE READ and one
# under SERIALIZABLE (their 40001s are logged and not retried: the write
# was not acknowledged).  Each client logs every write the server acknowledged,
# with the version and checksum it returned.
#
# The checker (test/perl/CpCheck.pm) then verifies that every acknowledged
# message id is in the final state unless an acknowledged
# delete_conversation returned a higher version than that message's
# acknowledgement (an acknowledged message tombstone likewise stays a
# tombstone), that the versions each client saw of a conversation only
# grew, that every row's and history row's checksum and live count are
# right and history keeps exactly the last chatpersist.history_depth
# versions, and that no call failed with anything but 40001 / 40P01.
# Meanwhile the script itself polls changes_since as one more device and
# checks that, after the writers are done, it was told of every
# conversation's final version and never saw one go back.
# --self-test then takes one acknowledged message out of its conversation
# (2.0: removes its message row) and checks that the checker reports
# exactly that loss.
#
# --blind-updates W (an experiment; default 0) adds, with weight W against
# the 14.5 of the other writes, hand-written SQL that does not name the
# version (2.0: the message rows made what was read plus one): the classic
# lost update.  The soak must then fail with lost
# messages (try W = 1).
#
# Prints the figures (acknowledged writes and messages, lost, retries,
# writes per second) and ends with the line
#	soak: N passed, M failed
# exiting non-zero if M > 0.  The client logs are removed unless --logdir
# is given.
#
# Copyright (c) 2026, chatpersist developers
#
# test/soak/soak.pl
#

use strict;
use warnings;

use DBI;
use File::Temp qw(tempdir);
use FindBin;
use Getopt::Long;
use POSIX qw(_exit WNOHANG);
use Time::HiRes qw(time sleep);

use lib "$FindBin::RealBin/../perl";
use CpCheck;
use CpWorkload;

my %opt = (
	duration => $ENV{CP_SOAK_SECONDS} // 45,
	clients => 16,
	users => 2,
	conversations => 2,
	'max-live' => 1000,
	rotate => 5,
	seed => int(time()) ^ $$,
	'self-test' => 0,
	'blind-updates' => 0,
	logdir => undef,
);
GetOptions(\%opt, 'duration=f', 'clients=i', 'users=i', 'conversations=i',
	'max-live=i', 'rotate=f', 'seed=i', 'self-test!', 'blind-updates=f', 'logdir=s')
  or die "usage: $0 [--duration S] [--clients N] [--users N] [--conversations N] "
  . "[--max-live N] [--rotate S] [--seed N] [--self-test] [--blind-updates W] "
  . "[--logdir DIR]\n";

my $passed = 0;
my $failed = 0;

# check(name, ok, detail lines...): count and print one check
sub check
{
	my ($name, $ok, @detail) = @_;
	if ($ok)
	{
		print "ok    $name\n";
		$passed++;
	}
	else
	{
		print "FAIL  $name\n";
		print "      $_\n" for @detail[ 0 .. ($#detail < 19 ? $#detail : 19) ];
		$failed++;
	}
	return $ok;
}

my $dsn = 'dbi:Pg:';	# libpq takes the rest from PGHOST, PGPORT, PGDATABASE
my $dbuser = $ENV{PGUSER} // '';
my $dbh = DBI->connect($dsn, $dbuser, '',
	{ AutoCommit => 1, RaiseError => 1, PrintError => 0 })
  or die "soak: cannot connect: $DBI::errstr\n";

srand($opt{seed});
my @users = map { CpWorkload::user_uuid($opt{seed}, $_) } 1 .. $opt{users};
my @convs = map { my $u = $_; map { [ $u, "hot$_" ] } 1 .. $opt{conversations} } @users;
my $existing = $dbh->selectrow_array(
	'SELECT count(*) FROM chatpersist.conversations WHERE user_id = ANY($1::uuid[])',
	undef, \@users);
die "soak: users of seed $opt{seed} already have conversations; pick another --seed\n"
  if $existing;

my $logdir = $opt{logdir} // tempdir('chatpersist-soak.XXXXXX', TMPDIR => 1, CLEANUP => 1);
-d $logdir or mkdir $logdir or die "soak: cannot create $logdir: $!\n";
printf "soak: %d clients, %d s, %d hot conversations, seed %d, history_depth %s\n",
  $opt{clients}, $opt{duration}, scalar(@convs), $opt{seed},
  $dbh->selectrow_array(q{SELECT current_setting('chatpersist.history_depth')});
$dbh->disconnect;

# one client in four runs under REPEATABLE READ, one under SERIALIZABLE
my @isolation = ('read committed', 'read committed', 'repeatable read', 'serializable');

my $t0 = time();
my $deadline = $t0 + $opt{duration};
my @pids;
for my $i (1 .. $opt{clients})
{
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		my $ok = eval {
			CpWorkload::run_client(
				client => $i,
				dsn => $dsn,
				user => $dbuser,
				log => "$logdir/client-$i.log",
				convs => \@convs,
				deadline => $deadline,
				rotate => $opt{rotate},
				t0 => $t0,
				max_live => $opt{'max-live'},
				seed => $opt{seed} + $i,
				isolation => $isolation[ $i % 4 ],
				weights => {
					%CpWorkload::CORE_WEIGHTS,
					tomb => 1.5,
					delete => 0.03,
					blind => $opt{'blind-updates'},
				});
			1;
		};
		print STDERR "client $i: $@" unless $ok;
		_exit($ok ? 0 : 1);
	}
	push @pids, $pid;
}

# Stop the clients if we are interrupted
$SIG{INT} = $SIG{TERM} = sub { kill('TERM', @pids); exit 1 };

#
# Meanwhile, be one more device that keeps in sync with changes_since,
# always passing the largest cursor it has seen: once the writers are done,
# a last call must have told it of every conversation's final version
#
my %cursor = map { $_ => 0 } @users;
my %feed;			# "user/conv" => newest version the feed reported
my @feed_problems;
my $polls = 0;
$dbh = DBI->connect($dsn, $dbuser, '', { AutoCommit => 1, RaiseError => 1, PrintError => 0 });
my $poll = sub {
	for my $u (@users)
	{
		my $rows = $dbh->selectall_arrayref(
			'SELECT conversation_id, version, cursor '
			  . 'FROM chatpersist.changes_since($1::uuid, $2)', undef, $u, $cursor{$u});
		for my $r (@$rows)
		{
			my ($conv, $version, $cur) = @$r;
			my $k = "$u/$conv";
			push @feed_problems, "[feed] $k went back from version $feed{$k} to $version"
			  if defined $feed{$k} && $version < $feed{$k};
			$feed{$k} = $version;
			$cursor{$u} = $cur if $cur > $cursor{$u};
		}
	}
	$polls++;
};

my $bad_exit = 0;
my %running = map { $_ => 1 } @pids;
while (%running)
{
	$poll->();
	sleep(0.05);
	for my $pid (keys %running)
	{
		next unless waitpid($pid, WNOHANG) == $pid;
		$bad_exit++ if $? != 0;
		delete $running{$pid};
	}
}
my $elapsed = time() - $t0;
$poll->();

my $logs = CpCheck::read_logs($logdir);
my ($problems, $f) = CpCheck::check_state($dbh, $logs, users => \@users);
my %st = %{ $f->{status} // {} };
my %err = %{ $f->{errors} // {} };
my $sum = sub {
	my ($re) = @_;
	my $n = 0;
	$n += $st{$_} for grep { /$re/ } keys %st;
	return $n;
};
my $messages = $sum->(qr/^(save|append|update|blind)/);
my $tombs = $sum->(qr/^tomb /);
my $deletes = $st{'delete deleted'} // 0;
my $r40001 = $err{'retry 40001'} // 0;
my $r40p01 = $err{'retry 40P01'} // 0;
my $other = 0;
$other += $err{$_} for grep { !/^retry / } keys %err;
my $writes = $f->{acks};

print "\n";
printf "acknowledged: %d writes in %.0f s (%.0f saves per second): %d new messages, "
  . "%d message tombstones, %d conversation deletes\n",
  $writes, $elapsed, $writes / $elapsed, $messages, $tombs, $deletes;
printf "  by call and status: %s\n", join(', ', map { "$_ $st{$_}" } sort keys %st);
printf "checked: %d messages and %d tombstones still due (the rest went with an "
  . "acknowledged delete_conversation), %d versions seen, %d rows, %d history rows\n",
  $f->{messages_checked}, $f->{tombstones_checked} // 0, $f->{versions_seen} // 0,
  $f->{rows}, $f->{history_rows};
printf "lost: %d\n", $f->{lost};
printf "retries: %d 40001, %d 40P01, %d other errors\n\n", $r40001, $r40p01, $other;

my @cat = map { my $c = $_; [ grep { /^\[$c\]/ } @$problems ] }
  qw(lost versions checksums rows history errors);
check('every client ran to the end', $bad_exit == 0 && $logs->{done} == $opt{clients},
	"$bad_exit clients failed, $logs->{done} of $opt{clients} finished");
check("no acknowledged message or tombstone lost ($f->{lost} lost)", !@{ $cat[0] }, @{ $cat[0] });
check('acknowledged versions <= the rows\' versions, and each client saw versions only grow',
	!@{ $cat[1] }, @{ $cat[1] });
check('checksums of rows, history and acknowledgements are right', !@{ $cat[2] }, @{ $cat[2] });
check('message_count is the live count, ids unique, contents intact', !@{ $cat[3] }, @{ $cat[3] });
check('history keeps exactly the last history_depth versions, all below the row\'s',
	!@{ $cat[4] }, @{ $cat[4] });
check("no error but 40001 / 40P01 ($other others)", !@{ $cat[5] } && $other == 0,
	@{ $cat[5] }, map { "$_: $err{$_}" } grep { !/^retry / } sort keys %err);

# The writers are done: the feed must catch up (a change may come late
# while some other transaction is still open, never not at all)
my ($final, @lag);
for my $try (1 .. 200)
{
	$final = $dbh->selectall_arrayref(
		'SELECT user_id::text, id, version FROM chatpersist.conversations '
		  . 'WHERE user_id = ANY($1::uuid[])', undef, \@users);
	@lag = map { "[feed] $_->[0]/$_->[1] is at version $_->[2], the feed said "
		  . ($feed{"$_->[0]/$_->[1]"} // 'nothing') }
	  grep { ($feed{"$_->[0]/$_->[1]"} // 0) != $_->[2] } @$final;
	last unless @lag;
	sleep(0.1);
	$poll->();
}
push @feed_problems, @lag;
check(sprintf('changes_since missed no committed change (%d polls, %d conversations)',
		$polls, scalar(@$final)),
	!@feed_problems, @feed_problems);

# The workload really contended, so the checks above meant something
check("stale saves and appends merged (" . $sum->(qr/ merged$/) . ')', $sum->(qr/ merged$/) > 0);
check("stale direct UPDATEs were refused with 40001 ($r40001)", $r40001 > 0);
check("direct UPDATEs, message tombstones and conversation deletes were acknowledged",
	($st{'update direct'} // 0) > 0 && $tombs > 0 && $deletes > 0);

#
# --self-test: take one acknowledged message out of its live conversation
# with direct SQL (2.0: its message row removed; the trigger keeps
# checksum, count and history right, so only the loss itself is left to
# find) and run the checker again
#
if ($opt{'self-test'})
{
	my %deleted;
	for my $a (@{ $logs->{acks} })
	{
		$deleted{"$a->{user}/$a->{conv}"} = $a->{version}
		  if $a->{kind} eq 'delete' && $a->{status} eq 'deleted';
	}
	my ($victim) = grep {
		$_->{kind} =~ /^(append|save_ff)$/
		  && $_->{version} > ($deleted{"$_->{user}/$_->{conv}"} // 0)
	} reverse @{ $logs->{acks} };
	my $ok = 0;
	if ($victim)
	{
		my $n = $dbh->do(
			q{UPDATE chatpersist.messages m SET removed = true
			  WHERE m.id = $1 AND m.user_id = $2 AND m.conversation_id = $3 AND NOT m.removed
				AND EXISTS (SELECT FROM chatpersist.conversations c
							 WHERE c.user_id = m.user_id AND c.id = m.conversation_id AND NOT c.deleted)},
			undef, $victim->{msgid}, $victim->{user}, $victim->{conv});
		my ($again) = CpCheck::check_state($dbh, $logs, users => \@users);
		$ok = $n == 1 && @$again == 1 && $again->[0] =~ /message \Q$victim->{msgid}\E is lost/;
		print "self-test: removed $victim->{msgid} from $victim->{conv}; the checker says:\n";
		print "      $_\n" for @$again[ 0 .. ($#$again < 4 ? $#$again : 4) ];
	}
	check('self-test: the checker reports a planted loss, and only that', $ok);
}
$dbh->disconnect;

print "soak: $passed passed, $failed failed\n";
exit($failed ? 1 : 0);
