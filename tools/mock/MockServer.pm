# MockServer: the common part of the mock providers under tools/mock/.
#
# One process, one thread, IO::Select over a listening socket on
# 127.0.0.1 and its connections; a protocol handler consumes each
# connection's input buffer.  Core Perl modules only.
#
#   my $srv = MockServer->new(port => $port, watch_stdin => 1);
#   $srv->run(
#       on_connect => sub { my ($c) = @_; $c->write("220 hello\r\n") },
#       on_data    => sub { my ($c) = @_; ... consume $c->{in} ... },
#   );
#
# The chosen port (useful with port 0) is printed as the first line of
# stdout.  With watch_stdin, the server exits when its stdin reaches EOF,
# so a test that gives it a pipe never leaves it behind, even when the
# test crashes.
package MockServer;

use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Errno qw(EINTR EAGAIN);

sub new {
    my ($class, %o) = @_;
    my $ls = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $o{port} // 0,
        Proto     => 'tcp',
        Listen    => 128,
        ReuseAddr => 1,
    ) or die "mock: cannot listen on 127.0.0.1:" . ($o{port} // 0)
             . ": $!\n";
    my $self = bless {
        ls          => $ls,
        sel         => IO::Select->new($ls),
        conns       => {},
        watch_stdin => $o{watch_stdin},
        quiet       => $o{quiet},
    }, $class;
    $self->{sel}->add(\*STDIN) if $o{watch_stdin};
    $| = 1;
    print $ls->sockport, "\n";
    return $self;
}

sub port { $_[0]{ls}->sockport }

# a line on stderr unless --quiet
sub note {
    my ($self, $msg) = @_;
    print STDERR "mock[$$]: $msg\n" unless $self->{quiet};
}

sub run {
    my ($self, %h) = @_;
    $SIG{PIPE} = 'IGNORE';
    for (;;) {
        my @ready = $self->{sel}->can_read;
        if (!@ready) {
            next if $!{EINTR};
            die "mock: select: $!\n";
        }
        for my $fh (@ready) {
            if ($fh == $self->{ls}) {
                my $s = $self->{ls}->accept or next;
                $s->autoflush(1);
                binmode $s;
                my $c = MockServer::Conn->new($self, $s);
                $self->{conns}{fileno $s} = $c;
                $self->{sel}->add($s);
                $h{on_connect}->($c) if $h{on_connect};
                $self->drop($c) if $c->{closing};
                next;
            }
            if ($self->{watch_stdin} && fileno($fh) == fileno(STDIN)) {
                my $buf;
                my $n = sysread(STDIN, $buf, 4096);
                exit 0 if !defined $n || $n == 0;
                next;
            }
            my $c = $self->{conns}{fileno $fh} or next;
            my $n = sysread($fh, my $buf, 65536);
            if (!defined $n) {
                next if $!{EINTR} || $!{EAGAIN};
                $self->drop($c);
                next;
            }
            if ($n == 0) {
                $c->{eof} = 1;
                $h{on_data}->($c) if length $c->{in};
                $self->drop($c);
                next;
            }
            $c->{in} .= $buf;
            $h{on_data}->($c);
            $self->drop($c) if $c->{closing};
        }
    }
}

sub drop {
    my ($self, $c) = @_;
    my $s = $c->{sock} or return;
    delete $self->{conns}{fileno $s};
    $self->{sel}->remove($s);
    close $s;
    $c->{sock} = undef;
}

package MockServer::Conn;

sub new {
    my ($class, $srv, $sock) = @_;
    return bless { srv => $srv, sock => $sock, in => '', eof => 0,
                   closing => 0, state => {} }, $class;
}

# write everything (responses are small; the client is reading)
sub write {
    my ($self, $data) = @_;
    my $s = $self->{sock} or return;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($s, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            $self->{closing} = 1;
            return;
        }
        $off += $n;
    }
}

sub close_after { $_[0]{closing} = 1 }

1;
