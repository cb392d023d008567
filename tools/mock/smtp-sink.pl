#!/usr/bin/perl
# A minimal SMTP server that keeps every message it accepts, for tests.
#
#   perl tools/mock/smtp-sink.pl --dir DIR [--port N] [--user U --pass P]
#        [--fail N] [--watch-stdin] [--quiet]
#
#   --dir DIR      each accepted message is written to DIR/NNN.eml (001,
#                  002, ...; the data as received, dot-unstuffed) with its
#                  envelope in DIR/NNN.json: {"helo","mail_from",
#                  "rcpt_to":[...],"auth":user-or-null}
#   --port N       listen on 127.0.0.1:N (default 0: any free port); the
#                  port is printed as the first line of stdout
#   --user, --pass AUTH PLAIN and LOGIN are offered and required; without
#                  them no AUTH is offered
#   --fail N       the first N messages are refused after DATA with 451
#   --watch-stdin  exit when stdin reaches EOF
#
# Commands: EHLO, HELO, AUTH, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT
# (and VRFY, answered 252).  STARTTLS is neither offered nor accepted.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use MockServer;
use Getopt::Long;
use MIME::Base64 qw(decode_base64);
use JSON::PP;

my %opt = (port => 0, fail => 0);
GetOptions(\%opt, 'port=i', 'dir=s', 'user=s', 'pass=s', 'fail=i',
           'watch-stdin', 'quiet')
    or die "usage: $0 --dir DIR [--port N] [--user U --pass P] [--fail N] "
           . "[--watch-stdin] [--quiet]\n";
defined $opt{dir} or die "$0: --dir is required\n";
-d $opt{dir} or mkdir $opt{dir} or die "$0: $opt{dir}: $!\n";
my $auth_on = defined $opt{user};
$opt{pass} //= '';

my $json = JSON::PP->new->canonical;
my $messages = 0;
my $max_line = 4096;
my $max_data = 50 * 1024 * 1024;

my $srv = MockServer->new(port => $opt{port},
                          watch_stdin => $opt{'watch-stdin'},
                          quiet => $opt{quiet});

# the next file number: after what the directory already holds
my $seq = 0;
if (opendir my $dh, $opt{dir}) {
    for (readdir $dh) {
        $seq = $1 if /^(\d+)\.eml$/ && $1 > $seq;
    }
    closedir $dh;
}

sub reply { $_[0]->write("$_[1]\r\n") }

sub reset_tx {
    my ($st) = @_;
    delete @{$st}{qw(from rcpt data)};
}

sub store {
    my ($st, $data) = @_;
    $seq++;
    my $base = sprintf '%s/%03d', $opt{dir}, $seq;
    for ([".eml", $data],
         [".json", $json->encode({ helo => $st->{helo},
                                   mail_from => $st->{from},
                                   rcpt_to => $st->{rcpt},
                                   auth => $st->{user} }) . "\n"]) {
        my ($ext, $content) = @$_;
        open my $fh, '>', "$base$ext.tmp" or die "mock: $base$ext: $!\n";
        binmode $fh;
        print $fh $content;
        close $fh or die "mock: $base$ext: $!\n";
    }
    # the envelope first: a reader waiting for NNN.eml finds both
    rename "$base.json.tmp", "$base.json" or die "mock: $base.json: $!\n";
    rename "$base.eml.tmp", "$base.eml" or die "mock: $base.eml: $!\n";
    return $seq;
}

sub check_auth {
    my ($c, $st, $user, $pass) = @_;
    if (defined $user && $user eq $opt{user} && $pass eq $opt{pass}) {
        $st->{user} = $user;
        return reply($c, '235 2.7.0 Authentication successful');
    }
    reply($c, '535 5.7.8 Authentication credentials invalid');
}

sub auth_step {
    my ($c, $st, $line) = @_;
    my $a = $st->{auth};
    if ($line eq '*') {
        delete $st->{auth};
        return reply($c, '501 5.0.0 Authentication cancelled');
    }
    my $v = decode_base64($line);
    if ($a->{mech} eq 'PLAIN') {
        delete $st->{auth};
        my (undef, $u, $p) = split /\0/, $v, 3;
        return check_auth($c, $st, $u, $p // '');
    }
    if (!defined $a->{user}) {
        $a->{user} = $v;
        return reply($c, '334 UGFzc3dvcmQ6');          # Password:
    }
    delete $st->{auth};
    check_auth($c, $st, $a->{user}, $v);
}

sub command {
    my ($c, $st, $line) = @_;
    my ($verb, $arg) = $line =~ /^(\S+)\s*(.*)$/;
    $verb = uc($verb // '');
    $arg //= '';

    if ($verb eq 'EHLO' || $verb eq 'HELO') {
        return reply($c, '501 5.5.4 Syntax: EHLO hostname') if $arg eq '';
        reset_tx($st);
        $st->{helo} = $arg;
        return reply($c, '250 localhost') if $verb eq 'HELO';
        my @ext = ('localhost', 'SIZE ' . $max_data, '8BITMIME');
        push @ext, 'AUTH PLAIN LOGIN' if $auth_on;
        push @ext, 'HELP';
        reply($c, "250-$_") for @ext[0 .. $#ext - 1];
        return reply($c, "250 $ext[-1]");
    }
    if ($verb eq 'NOOP') {
        return reply($c, '250 2.0.0 Ok');
    }
    if ($verb eq 'RSET') {
        reset_tx($st);
        return reply($c, '250 2.0.0 Ok');
    }
    if ($verb eq 'QUIT') {
        reply($c, '221 2.0.0 Bye');
        return $c->close_after;
    }
    if ($verb eq 'VRFY') {
        return reply($c, '252 2.0.0 Cannot VRFY user');
    }
    if ($verb eq 'STARTTLS') {
        return reply($c, '502 5.5.1 STARTTLS not supported');
    }
    if ($verb eq 'AUTH') {
        return reply($c, '503 5.5.1 AUTH not enabled') unless $auth_on;
        return reply($c, '503 5.5.1 Send EHLO first') unless $st->{helo};
        return reply($c, '503 5.5.1 Already authenticated')
            if defined $st->{user};
        my ($mech, $initial) = split /\s+/, $arg, 2;
        $mech = uc($mech // '');
        if ($mech eq 'PLAIN') {
            $st->{auth} = { mech => 'PLAIN' };
            return auth_step($c, $st, $initial) if defined $initial;
            return reply($c, '334 ');
        }
        if ($mech eq 'LOGIN') {
            $st->{auth} = { mech => 'LOGIN' };
            return auth_step($c, $st, $initial) if defined $initial;
            return reply($c, '334 VXNlcm5hbWU6');      # Username:
        }
        return reply($c, '504 5.5.4 Unrecognized authentication type');
    }
    if ($verb eq 'MAIL') {
        return reply($c, '503 5.5.1 Send EHLO first') unless $st->{helo};
        return reply($c, '530 5.7.0 Authentication required')
            if $auth_on && !defined $st->{user};
        return reply($c, '503 5.5.1 Nested MAIL command')
            if defined $st->{from};
        my ($addr) = $arg =~ /^FROM:\s*<([^>]*)>/i
            or return reply($c, '501 5.5.4 Syntax: MAIL FROM:<address>');
        $st->{from} = $addr;
        $st->{rcpt} = [];
        return reply($c, '250 2.1.0 Ok');
    }
    if ($verb eq 'RCPT') {
        return reply($c, '503 5.5.1 Need MAIL command')
            unless defined $st->{from};
        my ($addr) = $arg =~ /^TO:\s*<([^>]+)>/i
            or return reply($c, '501 5.5.4 Syntax: RCPT TO:<address>');
        push @{$st->{rcpt}}, $addr;
        return reply($c, '250 2.1.5 Ok');
    }
    if ($verb eq 'DATA') {
        return reply($c, '503 5.5.1 Need RCPT command')
            unless $st->{rcpt} && @{$st->{rcpt}};
        $st->{data} = '';
        return reply($c, '354 End data with <CR><LF>.<CR><LF>');
    }
    reply($c, '502 5.5.2 Error: command not recognized');
}

sub data_line {
    my ($c, $st, $line) = @_;
    if ($line eq ".\r\n") {
        my $data = delete $st->{data};
        $messages++;
        if ($messages <= $opt{fail}) {
            $srv->note("message $messages: refused with 451 as asked");
            reset_tx($st);
            return reply($c, '451 4.3.0 Try again later');
        }
        my $n = store($st, $data);
        reset_tx($st);
        return reply($c, sprintf '250 2.0.0 Ok: queued as %03d', $n);
    }
    $line = substr($line, 1) if substr($line, 0, 1) eq '.';
    if (length($st->{data}) + length($line) > $max_data) {
        delete $st->{data};
        reset_tx($st);
        reply($c, '552 5.3.4 Message too big');
        return $c->close_after;
    }
    $st->{data} .= $line;
}

$srv->run(
    on_connect => sub {
        reply($_[0], '220 localhost ESMTP smtp-sink');
    },
    on_data => sub {
        my ($c) = @_;
        my $st = $c->{state};
        while ((my $i = index $c->{in}, "\n") >= 0) {
            my $line = substr($c->{in}, 0, $i + 1, '');
            if (defined $st->{data}) {
                $line =~ s/\r?\n$/\r\n/;
                data_line($c, $st, $line);
            } else {
                $line =~ s/\r?\n$//;
                if (length $line > $max_line) {
                    reply($c, '500 5.5.0 Line too long');
                } elsif ($st->{auth}) {
                    auth_step($c, $st, $line);
                } else {
                    command($c, $st, $line);
                }
            }
            return if $c->{closing};
        }
        if (length $c->{in} > $max_line && !defined $st->{data}) {
            reply($c, '500 5.5.0 Line too long');
            $c->close_after;
        }
    },
);
