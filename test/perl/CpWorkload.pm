#
# CpWorkload.pm
#	  The simulated devices of the reliability tests: one forked client
#	  process per device, writing a few hot conversations with every kind of
#	  write chatpersist offers, and logging each write the server
#	  acknowledged.
#
# Used by test/t/010_crash_recovery.pl (crash recovery) and
# test/soak/soak.pl (lost-update soak); CpCheck.pm reads the logs back and
# compares them with the database.  Not run on its own.
#
# A client runs in autocommit mode, so a call that returned success is a
# committed, acknowledged transaction: only then is it logged, one line
# per call, with the version and checksum the call returned.  A call that
# failed (the server died under it, 40001) is logged as an error and never
# as acknowledged, even though it may have committed.
#
# Log lines (tab-separated, first field the record type, second the time
# in milliseconds):
#	A  ts kind status user conv version checksum msgid	an acknowledged write
#	S  ts user conv version								a version the client loaded
#	E  ts kind class sqlstate message					a failed call
#	D  ts												the client finished
# kind is save_ff (save after a reload), save_stale (save from a remembered,
# maybe stale version), append, append_noexp (no expected version), update
# (direct SQL with the version read: 2.0, a message row INSERT after an
# UPDATE of the head naming the version), delete (delete_conversation),
# tomb (a message tombstone sent with append_messages), blind (direct SQL
# without the version: a lost update, for experiments only).  msgid is the
# message the write added or tombstoned, '-' for a delete.  class is retry
# (40001, 40P01), conn (the connection is gone) or unexpected.
#
# Control files in the ctl directory: "stop" ends every client; "hold"
# (containing a generation number G) makes each client drop its connection,
# touch "held.G.<client>" and wait until hold is gone.
#
# Copyright (c) 2026, chatpersist developers
#
# test/perl/CpWorkload.pm
#

package CpWorkload;

use strict;
use warnings;

use DBI;
use Fcntl qw(O_WRONLY O_APPEND O_CREAT);
use JSON::PP;
use Time::HiRes qw(time sleep);

my $json = JSON::PP->new->canonical;

# The write mix the crash test and the soak share ({kind => weight} for
# run_client); the soak adds tombstones, deletes and blind updates to it
our %CORE_WEIGHTS = (
	save_ff => 3,
	save_stale => 3,
	append => 3,
	append_noexp => 1,
	update => 3);

# The content of a message is derived from its id, so that a checker can
# tell a damaged message from a right one without any log.  About one
# message in 37 is large (several kB), so that conversations are TOASTed.
sub content_for
{
	my ($id) = @_;
	my $sum = unpack('%32C*', $id);
	my $reps = ($sum % 37 == 0) ? 400 : 1 + $sum % 30;
	return "$id|" x $reps;
}

# A uuid for user number n of a run, stable for a given tag
sub user_uuid
{
	my ($tag, $n) = @_;
	return sprintf('%08x-0000-4000-8000-%012x', $tag & 0xffffffff, $n);
}

#
# run_client(%opts): the client loop, in a forked child; returns when the
# deadline passed or the stop file appeared.  Options:
#	client	  number of this client (message ids are "<prefix><client>-<seq>")
#	prefix	  message id prefix (default "c")
#	dsn		  DBI data source, user (database user)
#	log		  path of this client's log
#	ctl		  control directory (stop, hold), or undef
#	convs	  [[user uuid, conversation id base], ...]: the hot conversations
#	rotate	  if set, conversation ids get a suffix "-e<epoch>" that moves on
#			  every rotate seconds from t0 (bounds their size without deletes)
#	t0		  epoch start for rotate
#	weights	  {kind => weight}, see the kinds above
#	max_live  reload finding more live messages than this deletes the
#			  conversation (0: never)
#	deadline  time() at which to stop, or undef
#	seed	  random seed
#	isolation default_transaction_isolation of the client's sessions
#			  (default: the server's, read committed)
#
sub run_client
{
	my (%o) = @_;

	srand($o{seed});
	sysopen(my $fh, $o{log}, O_WRONLY | O_APPEND | O_CREAT)
	  or die "cannot open $o{log}: $!";
	my $c = bless {
		%o,
		prefix => $o{prefix} // 'c',
		logfh => $fh,
		seq => 0,
		state => {},
		own => {},
		dbh => undef,
	}, __PACKAGE__;

	my @kinds = grep { ($o{weights}{$_} // 0) > 0 } sort keys %{ $o{weights} };
	my $total = 0;
	$total += $o{weights}{$_} for @kinds;

	while (1)
	{
		last if $o{ctl} && -e "$o{ctl}/stop";
		last if $o{deadline} && time() >= $o{deadline};
		if ($o{ctl} && -e "$o{ctl}/hold")
		{
			$c->hold;
			next;
		}
		next unless $c->connect;

		my $r = rand($total);
		my $kind = $kinds[-1];
		for my $k (@kinds)
		{
			if ($r < $o{weights}{$k})
			{
				$kind = $k;
				last;
			}
			$r -= $o{weights}{$k};
		}
		$c->$kind($c->pick_conv);
	}
	$c->drop;
	$c->log('D');
	return;
}

# Append one line to the log (one write, so lines never interleave)
sub log
{
	my ($c, @fields) = @_;
	my $type = shift @fields;
	my $line = join("\t", $type, int(time() * 1000),
		map { my $f = $_ // ''; $f =~ s/\s+/ /g; $f } @fields) . "\n";
	syswrite($c->{logfh}, $line) == length($line)
	  or die "cannot write the client log: $!";
	return;
}

# A hot conversation: [user, conversation id]
sub pick_conv
{
	my ($c) = @_;
	my $cv = $c->{convs}[ int(rand(@{ $c->{convs} })) ];
	my $id = $cv->[1];
	$id .= '-e' . int((time() - $c->{t0}) / $c->{rotate}) if $c->{rotate};
	return [ $cv->[0], $id ];
}

# Wait while the hold file exists, connection dropped, having said so
sub hold
{
	my ($c) = @_;
	my $ctl = $c->{ctl};
	$c->drop;
	while (open(my $h, '<', "$ctl/hold"))
	{
		my $gen = <$h> // '';
		close $h;
		chomp $gen;
		if ($gen ne '' && !-e "$ctl/held.$gen.$c->{client}")
		{
			my $t;
			open($t, '>', "$ctl/held.$gen.$c->{client}") and close $t;
		}
		sleep(0.02);
		return if -e "$ctl/stop";
	}
	return;
}

sub connect
{
	my ($c) = @_;
	return 1 if $c->{dbh};
	my $dbh = DBI->connect($c->{dsn}, $c->{user}, '',
		{ AutoCommit => 1, RaiseError => 0, PrintError => 0 });
	if (!$dbh)
	{
		sleep(0.05);			# starting up, shutting down, or gone
		return 0;
	}
	if ($c->{isolation}
		&& !$dbh->do("SET default_transaction_isolation = '$c->{isolation}'"))
	{
		$dbh->disconnect;
		return 0;
	}
	$c->{dbh} = $dbh;
	return 1;
}

sub drop
{
	my ($c) = @_;
	if ($c->{dbh})
	{
		$c->{dbh}->disconnect;
		$c->{dbh} = undef;
	}
	return;
}

#
# Run one statement; returns its first row as a hashref ({} for no row),
# or undef when it failed, with the error's class in $c->{err}.
#
sub call
{
	my ($c, $kind, $sql, @args) = @_;
	my $dbh = $c->{dbh};
	$c->{err} = undef;
	my $sth = $dbh->prepare_cached($sql);
	if ($sth && $sth->execute(@args))
	{
		my $row = $sth->fetchrow_hashref;
		$sth->finish;
		return $row // {};
	}

	my $state = $dbh->state // '';
	my $msg = $dbh->errstr // 'prepare failed';
	my $class;
	if ($state eq '40001' || $state eq '40P01')
	{
		$class = 'retry';
	}
	elsif ($state =~ /^(08|57P)/ || !$dbh->ping)
	{
		$class = 'conn';
	}
	else
	{
		$class = 'unexpected';
	}
	$c->log('E', $kind, $class, $state, $msg);
	$c->drop if $class ne 'retry';
	$c->{err} = $class;
	return undef;
}

#
# Run statements in one transaction ([sql, args...] each); returns the last
# one's first row as a hashref ({} for no row) once the COMMIT succeeded,
# or undef when a statement or the COMMIT failed, with the error's class in
# $c->{err} (logged as call logs it)
#
sub call_txn
{
	my ($c, $kind, @stmts) = @_;
	my $dbh = $c->{dbh};
	$c->{err} = undef;
	my $row;
	my $ok = $dbh->begin_work;
	for my $st (@stmts)
	{
		last unless $ok;
		my ($sql, @args) = @$st;
		my $sth = $dbh->prepare_cached($sql);
		$ok = $sth && $sth->execute(@args);
		if ($ok)
		{
			$row = $sth->{NUM_OF_FIELDS} ? ($sth->fetchrow_hashref // {}) : {};
			$sth->finish;
		}
	}
	# (DBD::Pg's commit returns true even when the COMMIT failed, as a
	# serializable transaction's may: its error is in err)
	if ($ok)
	{
		$dbh->commit;
		$ok = !$dbh->err;
	}
	return $row if $ok;

	my $state = $dbh->state // '';
	my $msg = $dbh->errstr // 'prepare failed';
	$dbh->rollback unless $dbh->{AutoCommit};
	my $class;
	if ($state eq '40001' || $state eq '40P01')
	{
		$class = 'retry';
	}
	elsif ($state =~ /^(08|57P)/ || !$dbh->ping)
	{
		$class = 'conn';
	}
	else
	{
		$class = 'unexpected';
	}
	$c->log('E', $kind, $class, $state, $msg);
	$c->drop if $class ne 'retry';
	$c->{err} = $class;
	return undef;
}

# A new message of this client: (id, JSON text)
sub new_message
{
	my ($c) = @_;
	my $id = sprintf('%s%d-%d', $c->{prefix}, $c->{client}, ++$c->{seq});
	my $msg = {
		id => $id,
		role => (rand() < 0.5 ? 'user' : 'assistant'),
		content => content_for($id),
		created_at => int(time() * 1000),
	};
	return ($id, $json->encode($msg));
}

# The array text with one more message at its end
sub plus
{
	my ($text, $msg) = @_;
	return $text eq '[]' ? "[$msg]" : substr($text, 0, -1) . ", $msg]";
}

sub key { return "$_[1][0]/$_[1][1]" }

# What this client last saw of a conversation: {version, text}
sub state
{
	my ($c, $cv) = @_;
	return $c->{state}{ $c->key($cv) } //= { version => undef, text => '[]' };
}

# Log an acknowledged write and remember its message as our own
sub ack
{
	my ($c, $kind, $cv, $r, $msgid) = @_;
	$c->log('A', $kind, $r->{status}, @$cv, $r->{version}, $r->{checksum},
		$msgid);
	my $own = $c->{own}{ $c->key($cv) } //= [];
	if ($kind eq 'delete' && $r->{status} eq 'deleted')
	{
		@$own = ();
	}
	elsif ($kind ne 'tomb' && $kind ne 'delete')
	{
		push @$own, $msgid;
	}
	return;
}

# Reload a conversation; returns its live message count, or undef on error
sub load
{
	my ($c, $cv, $kind) = @_;
	my $r = $c->call($kind,
		'SELECT version, message_count, messages::text AS m '
		  . 'FROM chatpersist.load_conversation($1::uuid, $2)', @$cv);
	return undef unless $r;
	my $st = $c->state($cv);
	if (defined $r->{version})
	{
		@$st{qw(version text)} = ($r->{version}, $r->{m});
		$c->log('S', @$cv, $r->{version});
		return $r->{message_count};
	}
	@$st{qw(version text)} = (undef, '[]');
	return 0;
}

# save_conversation with the remembered state plus one new message
sub save
{
	my ($c, $cv, $kind) = @_;
	my $st = $c->state($cv);
	my ($id, $msg) = $c->new_message;
	my $text = plus($st->{text}, $msg);
	my $r = $c->call($kind,
		'SELECT status, version, checksum FROM chatpersist.save_conversation('
		  . '$1::uuid, $2, $3, $4::jsonb, false, $5::bigint)',
		@$cv, "conversation $cv->[1]", $text, $st->{version});
	return unless $r;
	$c->ack($kind, $cv, $r, $id);

	# Claim a version only when we know its content: a merge wrote more
	# than we sent, so we stay at the version we saw, plus our message
	if ($r->{status} eq 'merged')
	{
		$st->{text} = $text;
	}
	else
	{
		@$st{qw(version text)} = ($r->{version}, $text);
	}
	return;
}

sub save_ff
{
	my ($c, $cv) = @_;
	my $n = $c->load($cv, 'save_ff');
	return unless defined $n;
	return $c->delete($cv, 1) if $c->{max_live} && $n > $c->{max_live};
	return $c->save($cv, 'save_ff');
}

sub save_stale
{
	my ($c, $cv) = @_;
	return $c->save($cv, 'save_stale');
}

# append_messages of one new message, with or without expected version
sub append_common
{
	my ($c, $cv, $kind, $with_expected) = @_;
	my $st = $c->state($cv);
	# no version seen yet: this is an append without one
	$with_expected = 0 unless defined $st->{version};
	my ($id, $msg) = $c->new_message;
	my $r = $c->call($kind,
		'SELECT status, version, checksum FROM chatpersist.append_messages('
		  . '$1::uuid, $2, $3::jsonb, $4::bigint)',
		@$cv, "[$msg]", $with_expected ? $st->{version} : undef);
	return unless $r;
	$c->ack($kind, $cv, $r, $id);
	if ($r->{status} eq 'created')
	{
		@$st{qw(version text)} = ($r->{version}, "[$msg]");
	}
	elsif ($r->{status} eq 'updated' && $with_expected)
	{
		@$st{qw(version text)} = ($r->{version}, plus($st->{text}, $msg));
	}
	else
	{
		$st->{text} = plus($st->{text}, $msg);
	}
	return;
}

sub append { return $_[0]->append_common($_[1], 'append', 1) }
sub append_noexp { return $_[0]->append_common($_[1], 'append_noexp', 0) }

#
# Hand-written SQL with the version read: 40001 when another write came
# first, and then read again and retry.  2.0: the messages are rows, so
# the write is one transaction: an UPDATE of the head naming the version
# read (which changes nothing else, and fails with 40001 when the version
# moved on), the INSERT of the new message row (a new version), and the
# head's version and checksum as acknowledged
#
sub update
{
	my ($c, $cv) = @_;
	my $st = $c->state($cv);
	my ($id, $msg) = $c->new_message;

	for my $try (1 .. 10)
	{
		if (!defined $st->{version})
		{
			return unless defined $c->load($cv, 'update');
			# no live row: nothing to UPDATE, a save creates (or revives) it
			return $c->save($cv, 'save_ff') unless defined $st->{version};
		}
		my $text = plus($st->{text}, $msg);
		my $r = $c->call_txn('update',
			[
				'UPDATE chatpersist.conversations SET version = $1 '
				  . 'WHERE user_id = $2::uuid AND id = $3 AND NOT deleted RETURNING version',
				$st->{version}, @$cv
			],
			[
				# only onto the version read, which the UPDATE above holds
				# (if the UPDATE found no live row, the conversation may have
				# been revived since with other content)
				'INSERT INTO chatpersist.messages (user_id, conversation_id, message) '
				  . 'SELECT $1::uuid, $2, $3::jsonb FROM chatpersist.conversations '
				  . 'WHERE user_id = $1::uuid AND id = $2 AND NOT deleted AND version = $4',
				@$cv, $msg, $st->{version}
			],
			# (under READ COMMITTED each statement sees the newest commits: the
			# conversation may be deleted for the INSERT and revived by another
			# client for this SELECT, so the write counts only if its own
			# message row is there)
			[
				'SELECT \'direct\' AS status, c.version, c.checksum FROM chatpersist.conversations c '
				  . 'WHERE c.user_id = $1::uuid AND c.id = $2 AND NOT c.deleted AND c.version > $3 '
				  . 'AND EXISTS (SELECT FROM chatpersist.messages m WHERE m.user_id = c.user_id '
				  . 'AND m.conversation_id = c.id AND m.id = $4 AND NOT m.removed '
				  . 'AND m.changed_version = c.version)',
				@$cv, $st->{version}, $id
			]);
		if ($r && defined $r->{version})
		{
			$c->ack('update', $cv, $r, $id);
			@$st{qw(version text)} = ($r->{version}, $text);
			return;
		}
		return if !$r && $c->{err} ne 'retry';
		$st->{version} = undef;    # stale or gone: read again
	}
	return;
}

#
# The classic lost update, for experiments only (soak.pl --blind-updates):
# read, then write without naming the version, which the triggers accept.
# 2.0: the message rows are made the array read plus one: every row that
# is not in what was read is removed, the new one inserted.  Whatever
# another client wrote in between is lost, and the checker must say so.
#
sub blind
{
	my ($c, $cv) = @_;
	my $st = $c->state($cv);
	return unless defined $c->load($cv, 'blind');
	return unless defined $st->{version};
	my ($id, $msg) = $c->new_message;
	my $text = plus($st->{text}, $msg);
	sleep(0.002);		# the window in which others write
	my $r = $c->call_txn('blind',
		[
			'UPDATE chatpersist.messages SET removed = true '
			  . 'WHERE user_id = $1::uuid AND conversation_id = $2 AND NOT removed '
			  . 'AND id NOT IN (SELECT m->>\'id\' FROM jsonb_array_elements($3::jsonb) m)',
			@$cv, $st->{text}
		],
		[
			'INSERT INTO chatpersist.messages (user_id, conversation_id, message) '
			  . 'SELECT $1::uuid, $2, $3::jsonb FROM chatpersist.conversations '
			  . 'WHERE user_id = $1::uuid AND id = $2 AND NOT deleted',
			@$cv, $msg
		],
		[
			'SELECT \'direct\' AS status, version, checksum FROM chatpersist.conversations '
			  . 'WHERE user_id = $1::uuid AND id = $2 AND NOT deleted',
			@$cv
		]);
	return unless $r && defined $r->{version};
	$c->ack('blind', $cv, $r, $id);
	@$st{qw(version text)} = ($r->{version}, $text);
	return;
}

# delete_conversation from the version just read (40001 if it moved on)
sub delete
{
	my ($c, $cv, $loaded) = @_;
	my $st = $c->state($cv);
	if (!$loaded)
	{
		return unless defined $c->load($cv, 'delete');
	}
	return unless defined $st->{version};
	my $r = $c->call('delete',
		'SELECT status, version, checksum FROM chatpersist.delete_conversation('
		  . '$1::uuid, $2, $3::bigint)',
		@$cv, $st->{version});
	return unless $r;
	$c->ack('delete', $cv, $r, '-');
	@$st{qw(version text)} = (undef, '[]');
	return;
}

#
# Tombstone one of our own messages: its current copy with "deleted":
# true and a fresh updated_at, sent with append_messages from the version
# that copy was read at
#
sub tomb
{
	my ($c, $cv) = @_;
	my $own = $c->{own}{ $c->key($cv) } // [];
	return $c->append($cv) unless @$own;
	my $i = int(rand(@$own));
	my $id = $own->[$i];
	my $r = $c->call('tomb',
		'SELECT c.version, m.message::text AS copy FROM chatpersist.conversations c '
		  . 'JOIN chatpersist.messages m ON m.user_id = c.user_id AND m.conversation_id = c.id '
		  . 'WHERE c.user_id = $1::uuid AND c.id = $2 AND NOT c.deleted '
		  . 'AND m.id = $3 AND NOT m.removed',
		@$cv, $id);
	return unless $r;
	splice(@$own, $i, 1);
	return unless defined $r->{copy};    # went with a deleted conversation
	my $copy = $json->decode($r->{copy});
	return if $copy->{deleted};
	$copy->{deleted} = JSON::PP::true;
	$copy->{updated_at} = int(time() * 1000);
	$r = $c->call('tomb',
		'SELECT status, version, checksum FROM chatpersist.append_messages('
		  . '$1::uuid, $2, $3::jsonb, $4::bigint)',
		@$cv, '[' . $json->encode($copy) . ']', $r->{version});
	return unless $r;
	$c->ack('tomb', $cv, $r, $id);
	return;
}

1;
