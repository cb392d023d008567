# EventServer: a non-blocking, event-driven base for mock providers that
# must hold many connections at once (streaming answers to hundreds or
# thousands of clients).  MockServer.pm writes each response in one
# blocking loop, which is right for small answers; this one never blocks:
#
#   - poll(2) (IO::Poll's _poll on a plain fd => mask table, so that an
#     iteration costs little even with thousands of connections), so the
#     number of connections is not bound by select's FD_SETSIZE (1024);
#   - each connection has an output queue, flushed as the socket accepts
#     it (POLLOUT only while something is queued);
#   - timers on a binary heap, so a stream can send its next piece later
#     without holding up the others;
#   - a peer that goes away is noticed at once (EOF, error or hang-up on
#     read), and the handler is told through on_close with the reason.
#
# Core Perl modules only.
#
#   my $srv = EventServer->new(port => 0, watch_stdin => 1);
#   $srv->run(
#       on_data  => sub { my ($c) = @_; ... consume $c->{in} ... },
#       on_close => sub { my ($c, $why) = @_; ... },  # "eof", "error"...
#   );
#   $c->write($bytes);             queue output
#   $c->close_after;               close once the queue is written
#   $c->reset;                     close now with an RST (SO_LINGER 0)
#   my $t = $srv->after($ms, sub { ... });  $srv->cancel($t);
#
# The chosen port is printed as the first line of stdout.  With
# watch_stdin the server exits when its stdin reaches EOF, so a test that
# gives it a pipe never leaves it behind.
package EventServer;

use strict;
use warnings;
use IO::Socket::INET;
use IO::Poll qw(POLLIN POLLOUT POLLERR POLLHUP POLLNVAL);
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);
use Errno qw(EINTR EAGAIN EWOULDBLOCK);

sub new {
    my ($class, %o) = @_;
    my $ls = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $o{port} // 0,
        Proto     => 'tcp',
        Listen    => $o{backlog} // 4096,
        ReuseAddr => 1,
    ) or die "mock: cannot listen on 127.0.0.1:" . ($o{port} // 0)
             . ": $!\n";
    $ls->blocking(0);
    my $self = bless {
        ls          => $ls,
        mask        => {},          # fileno => poll events wanted
        conns       => {},          # fileno => conn
        heap        => [],          # timers: [when, seq, cb, live]
        seq         => 0,
        watch_stdin => $o{watch_stdin},
        quiet       => $o{quiet},
        accepted    => 0,
    }, $class;
    $self->{mask}{fileno $ls} = POLLIN;
    $self->{mask}{fileno STDIN} = POLLIN if $o{watch_stdin};
    $| = 1;
    print $ls->sockport, "\n";
    return $self;
}

sub port { $_[0]{ls}->sockport }

sub now { time() }

# a line on stderr unless quiet
sub note {
    my ($self, $msg) = @_;
    print STDERR "mock[$$]: $msg\n" unless $self->{quiet};
}

# the connections open now
sub connections { scalar keys %{ $_[0]{conns} } }

# timers

sub after {
    my ($self, $ms, $cb) = @_;
    my $t = [now() + $ms / 1000, ++$self->{seq}, $cb, 1];
    my $h = $self->{heap};
    push @$h, $t;
    my $i = $#$h;
    while ($i > 0) {
        my $p = ($i - 1) >> 1;
        last if _before($h->[$p], $h->[$i]);
        @$h[$p, $i] = @$h[$i, $p];
        $i = $p;
    }
    return $t;
}

sub cancel {
    my ($self, $t) = @_;
    $t->[3] = 0 if $t;              # dropped lazily when it comes up
}

sub _before {
    my ($a, $b) = @_;
    return $a->[0] < $b->[0] || ($a->[0] == $b->[0] && $a->[1] < $b->[1]);
}

sub _pop {
    my ($self) = @_;
    my $h = $self->{heap};
    my $top = $h->[0];
    my $last = pop @$h;
    if (@$h) {
        $h->[0] = $last;
        my $i = 0;
        for (;;) {
            my ($l, $r, $m) = (2 * $i + 1, 2 * $i + 2, $i);
            $m = $l if $l < @$h && _before($h->[$l], $h->[$m]);
            $m = $r if $r < @$h && _before($h->[$r], $h->[$m]);
            last if $m == $i;
            @$h[$m, $i] = @$h[$i, $m];
            $i = $m;
        }
    }
    return $top;
}

sub _run_timers {
    my ($self) = @_;
    my $h = $self->{heap};
    my $t = now();
    while (@$h && (!$h->[0][3] || $h->[0][0] <= $t)) {
        my $e = $self->_pop;
        $e->[2]->() if $e->[3];
    }
}

# seconds until the next live timer, or undef
sub _next_timeout {
    my ($self) = @_;
    my $h = $self->{heap};
    while (@$h && !$h->[0][3]) {
        $self->_pop;
    }
    return undef unless @$h;
    my $d = $h->[0][0] - now();
    return $d > 0 ? $d : 0;
}

# the loop

sub run {
    my ($self, %h) = @_;
    $self->{h} = \%h;
    $SIG{PIPE} = 'IGNORE';
    my $lfd = fileno $self->{ls};
    for (;;) {
        $self->_run_timers;
        my $timeout = $self->_next_timeout;
        # poll(2) takes whole milliseconds: round up, never spin
        my $ms = defined $timeout ? int($timeout * 1000) + 1 : -1;
        my @p = %{ $self->{mask} };
        my $n = IO::Poll::_poll($ms, @p);       # revents replace masks
        if (!defined $n || $n < 0) {
            next if $!{EINTR};
            die "mock: poll: $!\n";
        }
        next if $n == 0;
        for (my $i = 0; $i < @p; $i += 2) {
            my $ev = $p[$i + 1] or next;
            my $fd = $p[$i];
            if ($fd == $lfd) {
                $self->_accept;
                next;
            }
            if ($self->{watch_stdin} && $fd == 0) {
                my $n = sysread(STDIN, my $buf, 4096);
                exit 0 if !defined $n || $n == 0;
                next;
            }
            my $c = $self->{conns}{$fd} or next;
            $c->_readable if $ev & (POLLIN | POLLERR | POLLHUP | POLLNVAL);
            $c->_flush if $c->{sock} && ($ev & POLLOUT);
        }
    }
}

sub _accept {
    my ($self) = @_;
    for (1 .. 64) {
        my $s = $self->{ls}->accept or return;
        $s->blocking(0);
        binmode $s;
        setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
        my $c = EventServer::Conn->new($self, $s, ++$self->{accepted});
        $self->{conns}{fileno $s} = $c;
        $self->{mask}{fileno $s} = POLLIN;
        $self->{h}{on_connect}->($c) if $self->{h}{on_connect};
    }
}

sub _drop {
    my ($self, $c, $why) = @_;
    my $s = $c->{sock} or return;
    delete $self->{conns}{fileno $s};
    delete $self->{mask}{fileno $s};
    close $s;
    $c->{sock} = undef;
    $c->{closed} = $why;
    $self->{h}{on_close}->($c, $why) if $self->{h}{on_close};
}

package EventServer::Conn;

use IO::Poll qw(POLLIN POLLOUT);
use Socket qw(SOL_SOCKET SO_LINGER);

sub new {
    my ($class, $srv, $sock, $id) = @_;
    return bless { srv => $srv, sock => $sock, id => $id, in => '',
                   out => '', closing => 0, closed => undef, state => {} },
                 $class;
}

sub id { $_[0]{id} }
sub srv { $_[0]{srv} }
sub is_open { defined $_[0]{sock} }

sub _readable {
    my ($self) = @_;
    my $n = sysread($self->{sock}, my $buf, 65536);
    if (!defined $n) {
        return if $!{EINTR} || $!{EAGAIN} || $!{EWOULDBLOCK};
        $self->{srv}->_drop($self, 'error');
        return;
    }
    if ($n == 0) {
        $self->{srv}->_drop($self, 'eof');
        return;
    }
    return if $self->{closing};     # input after we decided to close
    $self->{in} .= $buf;
    $self->{srv}{h}{on_data}->($self) if $self->{srv}{h}{on_data};
}

# queue bytes and try to send them now
sub write {
    my ($self, $data) = @_;
    return unless $self->{sock};
    $self->{out} .= $data;
    $self->_flush;
}

sub _flush {
    my ($self) = @_;
    my $s = $self->{sock} or return;
    while (length $self->{out}) {
        my $n = syswrite($s, $self->{out});
        if (!defined $n) {
            if ($!{EAGAIN} || $!{EWOULDBLOCK}) {
                $self->{srv}{mask}{fileno $s} = POLLIN | POLLOUT;
                return;
            }
            next if $!{EINTR};
            $self->{out} = '';
            $self->{srv}->_drop($self, 'error');
            return;
        }
        substr($self->{out}, 0, $n) = '';
    }
    $self->{srv}{mask}{fileno $s} = POLLIN;
    $self->{srv}->_drop($self, 'closed') if $self->{closing};
}

# close once everything queued is written
sub close_after {
    my ($self) = @_;
    return unless $self->{sock};
    $self->{closing} = 1;
    $self->_flush;
}

# close at once with a TCP reset, dropping anything queued
sub reset {
    my ($self) = @_;
    my $s = $self->{sock} or return;
    $self->{out} = '';
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    $self->{srv}->_drop($self, 'reset');
}

1;
