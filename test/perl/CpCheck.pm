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
#	- each row's checksum is chatpersist.checksum of its array (2.0: the
#	  message rows that are not removed, in pos order, read in plain SQL;
#	  load_conversation returns the same array), its message_count the
#	  number of live messages, no message id repeats, and each message's
#	  content is the one its id implies;
#	- 2.0 message rows: each row's id is its message's and its hash the
#	  message's, no two rows of the array share a position, none is above
#	  the head's last_pos, and no row lacks its head;
#	- history: each archived version (its array as conversation_history
#	  rebuilds it from chatpersist.history_messages) is below the row's
#	  version, has the checksum and live count of its messages, and a
#	  conversation keeps exactly its last chatpersist.history_depth
#	  replaced versions;
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

	# 2.0: a conversation's array, rebuilt from its message rows
	my $array = q{(SELECT coalesce(jsonb_agg(m.message ORDER BY m.pos), '[]')
				   FROM chatpersist.messages m
				   WHERE m.user_id = c.user_id AND m.conversation_id = c.id AND NOT m.removed)};

	my %row;
	my $sth = $dbh->prepare(
		q{SELECT u, id, version, checksum, chatpersist.checksum(a) AS recomputed, message_count,
				 deleted, } . sprintf($live, 'a') . q{ AS live,
				 (deleted OR a = (SELECT l.messages FROM chatpersist.load_conversation(c2.user_id, c2.id) l))
				   AS loaded
		  FROM (SELECT c.user_id, c.user_id::text AS u, c.id, c.version, c.checksum, c.message_count,
					   c.deleted, } . $array . q{ AS a
				FROM chatpersist.conversations c WHERE c.user_id = ANY($1::uuid[])) c2});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$row{$k} = $r;
		$f{rows}++;
		$problem->('checksums', "$k: checksum $r->{checksum} but checksum(messages) is $r->{recomputed}")
		  if $r->{checksum} ne $r->{recomputed};
		$problem->('rows', "$k: load_conversation returns another array than the message rows hold")
		  unless $r->{loaded};
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
			   CROSS JOIN LATERAL jsonb_array_elements(} . $array . q{) m
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

	# 2.0: the message rows themselves
	$sth = $dbh->prepare(
		q{SELECT m.user_id::text || '/' || m.conversation_id AS k, m.id, m.pos, m.removed,
				 m.id IS DISTINCT FROM m.message->>'id' AS bad_id,
				 m.hash <> ('x' || chatpersist.checksum(m.message))::bit(64)::int8 AS bad_hash,
				 c.id IS NULL AS orphan, m.pos > c.last_pos AS beyond,
				 (NOT m.removed AND EXISTS (SELECT FROM chatpersist.messages o
											 WHERE o.user_id = m.user_id
											   AND o.conversation_id = m.conversation_id
											   AND o.pos = m.pos AND o.id <> m.id AND NOT o.removed))
				   AS shared
		  FROM chatpersist.messages m
			   LEFT JOIN chatpersist.conversations c ON c.user_id = m.user_id AND c.id = m.conversation_id
		  WHERE m.user_id = ANY($1::uuid[])});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $what = "$r->{k}: message row $r->{id}";
		$f{message_rows}++;
		$problem->('rows', "$what: its id is not its message's") if $r->{bad_id};
		$problem->('rows', "$what: its hash is not its message's") if $r->{bad_hash};
		$problem->('rows', "$what: the conversation has no head") if $r->{orphan};
		$problem->('rows', "$what: position $r->{pos} is above the head's last_pos") if $r->{beyond};
		$problem->('rows', "$what: another row of the array has its position $r->{pos}")
		  if $r->{shared};
	}

	# history: the heads of the archived versions, and their arrays as
	# conversation_history rebuilds them
	my %hist;
	my %archived;
	$sth = $dbh->prepare(
		q{SELECT user_id::text AS u, conversation_id AS id, version
		  FROM chatpersist.history WHERE user_id = ANY($1::uuid[])});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$problem->('history', "$k: history version $r->{version} appears twice")
		  if $archived{$k}{ $r->{version} }++;
	}
	$sth = $dbh->prepare(
		q{SELECT h.user_id::text AS u, h.conversation_id AS id, h.version, h.checksum,
				 chatpersist.checksum(h.messages) AS recomputed, h.message_count, }
		  . sprintf($live, 'h.messages') . q{ AS live
		  FROM (SELECT DISTINCT user_id, conversation_id FROM chatpersist.history
				 WHERE user_id = ANY($1::uuid[])) k,
			   LATERAL chatpersist.conversation_history(k.user_id, k.conversation_id) h});
	$sth->execute($users);
	while (my $r = $sth->fetchrow_hashref)
	{
		my $k = "$r->{u}/$r->{id}";
		$f{history_rows}++;
		$problem->('history', "$k: conversation_history returns version $r->{version} twice")
		  if exists $hist{$k}{ $r->{version} };
		$problem->('history', "$k: conversation_history returns version $r->{version}, "
			  . "which history does not hold")
		  unless $archived{$k}{ $r->{version} };
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
	for my $k (sort keys %archived)
	{
		for my $v (sort { $a <=> $b } keys %{ $archived{$k} })
		{
			$problem->('history', "$k: conversation_history lacks archived version $v")
			  unless $hist{$k}{$v};
		}
	}

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
