#
# CpCheck.pm
#	  The checker of the reliability tests: reads the client logs that
#	  CpWorkload.pm wrote and compares every acknowledged write with the
#	  database.
#
# Used by test/t/010_crash_recovery.pl and test/soak/soak.pl; not run on
# its own.  check_state() returns a list of problems (empty: all is well)
# and the figures it counted.  What it checks, for the users given:
#	- every acknowledged message id is in its conversation, unless an
#	  acknowledged delete_conversation returned a higher version than the
#	  write that added it; an acknowledged message tombstone is still a
#	  tombstone on the same terms;
#	- every acknowledged version is <= the row's version, and its checksum
#	  is the row's (same version) or the history row's (an archived one);
#	- the versions each client saw of a conversation never went down;
#	- each row's checksum is chatpersist.checksum(messages), its
#	  message_count the number of live messages, no message id repeats, and
#	  each message's content is the one its id implies;
#	- history: each archived version is below the row's version, has the
#	  checksum and live count of its messages, and a conversation keeps
#	  exactly its last chatpersist.history_depth replaced versions;
#	- no call failed with an error other than a retryable one (40001,
#	  40P01) or a lost connection.
#
# Copyright (c) 2026, chatpersist developers
#
# test/perl/CpCheck.pm
#

package CpCheck;

use strict;
use warnings;

use CpWorkload;

#
# read_logs(dir): every client-N.log of dir, parsed.  Returns
#	{ acks => [...], seen => [...], errors => [...], order => {client => [...]}, clients => n }
# each record a hashref with client, ts and the fields of its type.
#
sub read_logs
{
	my ($dir) = @_;
	my %r = (acks => [], seen => [], errors => [], order => {}, clients => 0,
		done => 0);
	for my $f (sort glob("$dir/client-*.log"))
	{
		my ($client) = $f =~ /client-(\d+)\.log$/;
		$r{clients}++;
		open(my $fh, '<', $f) or die "cannot read $f: $!";
		while (my $line = <$fh>)
		{
			chomp $line;
			my @f = split(/\t/, $line, -1);
			my $type = shift @f;
			my $rec = { client => $client, ts => shift @f };
			if ($type eq 'A')
			{
				@$rec{qw(kind status user conv version checksum msgid)} = @f;
				$rec->{version} = undef if $rec->{version} eq '';
				push @{ $r{acks} }, $rec;
				push @{ $r{order}{$client} }, $rec;
			}
			elsif ($type eq 'S')
			{
				@$rec{qw(user conv version)} = @f;
				push @{ $r{seen} }, $rec;
				push @{ $r{order}{$client} }, $rec;
			}
			elsif ($type eq 'E')
			{
				@$rec{qw(kind class state message)} = @f;
				push @{ $r{errors} }, $rec;
			}
			elsif ($type eq 'D')
			{
				$r{done}++;
			}
		}
		close $fh;
	}
	return \%r;
}

#
# check_state(dbh, logs, users => [uuid...]): compare the logs with the
# database (read in one REPEATABLE READ transaction).  Returns
# (\@problems, \%facts): each problem a line that starts with its category
# in brackets ([lost], [versions], [checksums], [rows], [history],
# [errors]); facts the figures counted (acks, messages_checked, lost, rows,
# history_rows, status => {"kind status" => n}, errors => {"class state" =>
# n}, problems => {category => n}).
#
sub check_state
{
	my ($dbh, $logs, %opt) = @_;
	my @problems;
	my %f = (acks => 0, messages_checked => 0, rows => 0, history_rows => 0);
	my $users = $opt{users};
	# a problem: its category (lost, versions, checksums, rows, history,
	# errors) in brackets, then what is wrong
	my $problem = sub {
		my ($cat, @text) = @_;
		push @problems, join('', "[$cat] ", @text) if @problems < 1000;
		$f{problems}{$cat}++;
	};

	local $dbh->{RaiseError} = 1;
	local $dbh->{AutoCommit} = 0;
	$dbh->do('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');

	my $depth = $dbh->selectrow_array(
		q{SELECT pg_catalog.current_setting('chatpersist.history_depth')::int});
	$f{history_depth} = $depth;

	my $live = q{(SELECT count(*) FROM jsonb_array_elements(%s) m
				  WHERE (m->'deleted') IS DISTINCT FROM 'true'::jsonb)};

	my %row;
	my $sth = $dbh->prepare(
		q{SELECT user_id::text AS u, id, version, checksum,
				 chatpersist.checksum(messages) AS recomputed, message_count,
				 deleted, } . sprintf($live, 'messages') . q{ AS live
		  FROM chatpersist.conversations WHERE user_id = ANY($1::uuid[])});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$row{$k} = $r;
		$f{rows}++;
		$problem->('checksums', "$k: checksum $r->{checksum} but checksum(messages) is $r->{recomputed}")
		  if $r->{checksum} ne $r->{recomputed};
		$problem->('checksums', "$k: checksum \"$r->{checksum}\" is not 16 lowercase hex digits")
		  if $r->{checksum} !~ /^[0-9a-f]{16}$/;
		$problem->('rows', "$k: message_count $r->{message_count} but $r->{live} live messages")
		  if $r->{message_count} != $r->{live};
	}

	my %msg;
	$sth = $dbh->prepare(
		q{SELECT c.user_id::text AS u, c.id, m->>'id' AS mid,
				 (m->'deleted') IS NOT DISTINCT FROM 'true'::jsonb AS tomb,
				 m->>'content' AS content
		  FROM chatpersist.conversations c
			   CROSS JOIN LATERAL jsonb_array_elements(c.messages) m
		  WHERE c.user_id = ANY($1::uuid[])});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$problem->('rows', "$k: message id $r->{mid} appears twice")
		  if exists $msg{$k}{ $r->{mid} };
		$msg{$k}{ $r->{mid} } = $r->{tomb};
		$problem->('rows', "$k: message $r->{mid} has damaged content")
		  if defined $r->{content}
		  && $r->{content} ne CpWorkload::content_for($r->{mid});
	}

	my %hist;
	$sth = $dbh->prepare(
		q{SELECT user_id::text AS u, conversation_id AS id, version, checksum,
				 chatpersist.checksum(messages) AS recomputed, message_count, }
		  . sprintf($live, 'messages') . q{ AS live
		  FROM chatpersist.history WHERE user_id = ANY($1::uuid[])});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$f{history_rows}++;
		$problem->('history', "$k: history version $r->{version} appears twice")
		  if exists $hist{$k}{ $r->{version} };
		$hist{$k}{ $r->{version} } = $r;
		$problem->('checksums', "$k: history version $r->{version}: checksum $r->{checksum} "
			  . "but checksum(messages) is $r->{recomputed}")
		  if $r->{checksum} ne $r->{recomputed};
		$problem->('history', "$k: history version $r->{version}: message_count "
			  . "$r->{message_count} but $r->{live} live messages")
		  if $r->{message_count} != $r->{live};
		if (!$row{$k})
		{
			$problem->('history', "$k: history version $r->{version} of a conversation with no row");
		}
		elsif ($r->{version} >= $row{$k}{version})
		{
			$problem->('history', "$k: history version $r->{version} is not below the "
				  . "row's version $row{$k}{version}");
		}
	}
	$dbh->commit;

	# A conversation keeps exactly its last history_depth replaced versions
	for my $k (sort keys %row)
	{
		my $v = $row{$k}{version};
		my $n = scalar keys %{ $hist{$k} // {} };
		$problem->('history', "$k: $n history rows, more than history_depth $depth")
		  if $n > $depth;
		my $lo = $v - $depth;
		$lo = 1 if $lo < 1;
		for my $hv ($lo .. $v - 1)
		{
			$problem->('history', "$k: history lacks version $hv (row version $v, depth $depth)")
			  unless $hist{$k}{$hv};
		}
	}

	# Acknowledged conversation deletes, by conversation
	my %deletes;
	for my $a (@{ $logs->{acks} })
	{
		push @{ $deletes{"$a->{user}/$a->{conv}"} }, $a->{version}
		  if $a->{kind} eq 'delete' && $a->{status} eq 'deleted';
	}
	my $deleted_after = sub {
		my ($k, $v) = @_;
		return scalar grep { $_ > $v } @{ $deletes{$k} // [] };
	};

	for my $a (@{ $logs->{acks} })
	{
		my $k = "$a->{user}/$a->{conv}";
		my $what = "client $a->{client} $a->{kind} ($a->{status}) of $k at version "
		  . ($a->{version} // 'NULL');
		$f{acks}++;
		$f{status}{"$a->{kind} $a->{status}"}++;
		next unless defined $a->{version};    # a delete of nothing

		my $r = $row{$k};
		if (!$r)
		{
			$problem->('versions', "$what: the conversation has no row");
			next;
		}
		if ($a->{version} > $r->{version})
		{
			$problem->('versions', "$what: the row is at version $r->{version}");
		}
		elsif ($a->{version} == $r->{version})
		{
			$problem->('checksums', "$what: returned checksum $a->{checksum}, the row has $r->{checksum}")
			  if $a->{checksum} ne $r->{checksum};
		}
		elsif (my $h = $hist{$k}{ $a->{version} })
		{
			$problem->('checksums', "$what: returned checksum $a->{checksum}, history has $h->{checksum}")
			  if $a->{checksum} ne $h->{checksum};
		}

		next if $a->{msgid} eq '-' || $a->{msgid} eq '';
		next if $deleted_after->($k, $a->{version});
		$f{messages_checked}++ if $a->{kind} ne 'tomb';
		$f{tombstones_checked}++ if $a->{kind} eq 'tomb';
		if (!exists $msg{$k}{ $a->{msgid} })
		{
			$problem->('lost', "$what: message $a->{msgid} is lost");
			$f{lost}++;
		}
		elsif ($a->{kind} eq 'tomb' && !$msg{$k}{ $a->{msgid} })
		{
			$problem->('lost', "$what: tombstone of message $a->{msgid} was undone");
			$f{lost}++;
		}
	}

	# The versions a client saw of a conversation never go down
	for my $client (sort { $a <=> $b } keys %{ $logs->{order} })
	{
		my %last;
		for my $rec (@{ $logs->{order}{$client} })
		{
			next unless defined $rec->{version};
			my $k = "$rec->{user}/$rec->{conv}";
			if (defined $last{$k} && $rec->{version} < $last{$k})
			{
				$problem->('versions', "client $client saw $k go back from version "
					  . "$last{$k} to $rec->{version}");
			}
			else
			{
				$last{$k} = $rec->{version};
			}
			$f{versions_seen}++;
		}
	}

	for my $e (@{ $logs->{errors} })
	{
		$f{errors}{"$e->{class} $e->{state}"}++;
		$problem->('errors', "client $e->{client} $e->{kind}: unexpected error "
			  . "$e->{state}: $e->{message}")
		  if $e->{class} eq 'unexpected';
	}
	$f{lost} //= 0;
	return (\@problems, \%f);
}

1;
