# EventHttp: the HTTP/1.1 side of the event-driven provider mocks, on top
# of EventServer.pm.  A mock gives its routes, the shape of its errors
# and what its /_stats adds; this layer does the rest:
#
#   - requests read from the connection's input: a request line, headers
#     (names lower-cased), a body of Content-Length bytes (a chunked body
#     is refused with 411, one over body_max with 413, headers over 64 KB
#     with 413; each of these closes the connection);
#   - keep-alive and pipelining: while an answer is under way
#     ($c->{state}{busy}) later requests wait in the input; once it is
#     complete (after_response) the connection closes if the request
#     asked for it ("Connection: close"), else the next one is served;
#   - answers with Content-Length (respond, respond_json) or pieces of a
#     chunked body (chunk, chunk_end);
#   - the requests kept for GET /_requests (record), the entries queued
#     with POST /_next (next_entry), and the control routes:
#       GET /_requests     {"requests": [...]}
#       DELETE /_requests  {"cleared": true}
#       GET /_stats        {"connections", "requests", ...what stats adds}
#       POST /_next        one object or an array of them: {"queued": N}
#       DELETE /_next      {"queued": 0} (with forget_next)
#   - a connection that closes: its timer ($c->{state}{timer}) cancelled,
#     gone told when an answer was under way, its state cleared.
#
# Core Perl modules only.
#
#   my $http = EventHttp->new(
#       port => 0, watch_stdin => 1, quiet => 0,  # as EventServer's
#       max_records => 2000,        # requests kept for GET /_requests
#       record_defaults => { tokens => 0 },   # fields every record starts with
#       body_max => 16 * 1024 * 1024,   # bytes a body may have
#       too_large => 'body too large',  # what a 413 for a body says
#       reasons => { 422 => 'Unprocessable Entity' },  # more reason
#           # phrases than the common ones; a code without one: "Status"
#       error => sub { my ($kind, $message, $status) = @_; ... },
#           # the JSON value of an error this layer answers; $kind is
#           # "invalid_request", "method_not_allowed" or "not_found"
#       unknown => 'Unknown: ',     # a 404's message, before the path
#       unknown_target => 0,        # a 404 for a path no route serves
#           # names the target as sent, query and all (else the path; a
#           # control path is always named without its query)
#       routes => [                 # the first whose path matches serves
#           { path => qr{/things/([^/]+)$}, method => 'POST', others => 405,
#             run => sub { my ($c, $req) = @_; ... } },
#       ],  # other methods: 405 with others => 405, else the next route
#       stats => sub { return (streams => $n) },   # more for GET /_stats
#       forget_next => 1,           # DELETE /_next empties the queue
#       gone => sub { my ($c, $outcome) = @_; ... },
#           # the connection closed while $c->{state}{rec} was set;
#           # $outcome is "reset" or "client-closed"
#       close_record => 1,          # before gone, that record's outcome
#           # is set to $outcome and its t_end to the time
#   );
#   $req: {method, target (as sent), path, query (after "?", or undef),
#          headers, body, captures (the path's groups)}
#   $http->respond($c, $status, $ctype, $body, $extra_headers);
#   $http->respond_json($c, $status, $value, $extra_headers);
#   $http->chunk($c, $bytes);  $http->chunk_end($c);
#   $http->after_response($c);  # an answer that was busy is complete
#       # (nothing once the connection is closed)
#   my $rec = $http->record(field => value...);  # counted in "requests"
#   my $entry = $http->next_entry;   # a copy without "times", or undef
#   $http->next_entry(times_only_with => 'status');   # "times" counts
#       # only in an entry that has a status
#   $http->next_entry(once => 1);    # "times" never counts: each entry
#       # serves one request
#   $http->stamp;  $http->json;  $http->srv;  EventHttp::query_fields($query);
#   $http->run;
#
# The OpenAI-compatible mocks share OpenAI's error object:
#
#   use EventHttp qw(openai_error);
#   openai_error($message, $type, $code);   # {"error": {...}}
#   EventHttp->new(EventHttp::openai_errors(), ...);
#       # this layer's errors in that form, a 404 naming the target
package EventHttp;

use strict;
use warnings;
use Exporter qw(import);
use EventServer;
use JSON::PP;
use Time::HiRes qw(time);

our @EXPORT_OK = qw(openai_error);

my %REASON = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              404 => 'Not Found', 405 => 'Method Not Allowed',
              411 => 'Length Required', 413 => 'Payload Too Large',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable');

sub new {
    my ($class, %o) = @_;
    die "EventHttp: no error hook\n" unless ref $o{error} eq 'CODE';
    my $self = bless {
        json            => JSON::PP->new->canonical->utf8,
        t0              => time,
        records         => [],
        queue           => [],
        served          => 0,
        next_id         => 0,
        max_records     => $o{max_records} // 2000,
        record_defaults => $o{record_defaults} // {},
        body_max        => $o{body_max} // 16 * 1024 * 1024,
        too_large       => $o{too_large} // 'body too large',
        reason          => { %REASON, %{ $o{reasons} // {} } },
        error           => $o{error},
        unknown         => $o{unknown} // 'Unknown: ',
        unknown_target  => $o{unknown_target},
        routes          => $o{routes} // [],
        stats           => $o{stats},
        forget_next     => $o{forget_next},
        gone            => $o{gone},
        close_record    => $o{close_record},
    }, $class;
    $self->{srv} = EventServer->new(port => $o{port},
                                    watch_stdin => $o{watch_stdin},
                                    quiet => $o{quiet});
    return $self;
}

sub srv { $_[0]{srv} }
sub json { $_[0]{json} }

# seconds since the mock started, to the millisecond
sub stamp { 0 + sprintf('%.3f', time - $_[0]{t0}) }

sub respond {
    my ($self, $c, $status, $ctype, $body, $extra) = @_;
    my $r = $self->{reason}{$status} // 'Status';
    $c->write("HTTP/1.1 $status $r\r\n"
              . "Content-Type: $ctype\r\n"
              . "Content-Length: " . length($body) . "\r\n"
              . ($extra // '')
              . "\r\n$body");
}

sub respond_json {
    my ($self, $c, $status, $v, $extra) = @_;
    $self->respond($c, $status, 'application/json',
                   $self->{json}->encode($v), $extra);
}

# an error of this layer, in the mock's own form
sub fail {
    my ($self, $c, $status, $kind, $message) = @_;
    $self->respond_json($c, $status,
                        $self->{error}->($kind, $message, $status));
}

sub openai_error {
    my ($msg, $type, $code) = @_;
    return { error => { message => $msg, type => $type, param => undef,
                        code => $code } };
}

# new's settings for errors in OpenAI's form: type "not_found" and code
# "not_found" for a 404, else type "invalid_request_error", no code
sub openai_errors {
    return (
        error => sub {
            my ($kind, $msg) = @_;
            return $kind eq 'not_found'
                ? openai_error($msg, 'not_found', 'not_found')
                : openai_error($msg, 'invalid_request_error');
        },
        unknown => 'Unknown request URL: ',
        unknown_target => 1,
    );
}

# one piece of a chunked body (nothing for no bytes: that is the end)
sub chunk {
    my ($self, $c, $data) = @_;
    return unless length $data;
    $c->write(sprintf("%x\r\n", length $data) . $data . "\r\n");
}

sub chunk_end { $_[1]->write("0\r\n\r\n") }

# keep a request for GET /_requests and count it as served
sub record {
    my ($self, %r) = @_;
    my $rec = { id => ++$self->{next_id}, t_start => $self->stamp,
                %{ $self->{record_defaults} }, outcome => 'pending', %r };
    my $all = $self->{records};
    push @$all, $rec;
    shift @$all while @$all > $self->{max_records};
    $self->{served}++;
    return $rec;
}

# the next entry queued with POST /_next, as a copy without "times", or
# undef: an entry with times=N serves N requests (with times_only_with =>
# KEY, only when it has KEY too; with once, never; else it serves one)
sub next_entry {
    my ($self, %o) = @_;
    my $q = $self->{queue}[0] or return undef;
    my $stays = !$o{once} && defined $q->{times}
                && (!defined $o{times_only_with}
                    || defined $q->{ $o{times_only_with} })
                && --$q->{times} > 0;
    shift @{ $self->{queue} } unless $stays;
    my %e = %$q;
    delete $e{times};
    return \%e;
}

# a query string's fields ("a=1&b=x+y" => {a => 1, b => "x y"})
sub query_fields {
    my ($q) = @_;
    my %h;
    for my $kv (split /&/, $q // '') {
        my ($k, $v) = split /=/, $kv, 2;
        next unless defined $k && length $k;
        for ($k, $v) {
            next unless defined;
            tr/+/ /;
            s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        }
        $h{$k} = $v // '';
    }
    return \%h;
}

# a response is complete: close if asked, else serve what is pipelined
sub after_response {
    my ($self, $c) = @_;
    return unless $c->is_open;
    if ($c->{state}{close}) {
        $c->close_after;
        return;
    }
    $self->on_data($c) if length $c->{in};
}

sub control {
    my ($self, $c, $method, $path, $body) = @_;
    if ($path eq '/_requests' && $method eq 'GET') {
        return $self->respond_json($c, 200,
                                   { requests => $self->{records} });
    }
    if ($path eq '/_requests' && $method eq 'DELETE') {
        @{ $self->{records} } = ();
        return $self->respond_json($c, 200, { cleared => JSON::PP::true });
    }
    if ($path eq '/_stats' && $method eq 'GET') {
        return $self->respond_json($c, 200, {
            connections => $self->{srv}->connections - 1,   # not this one
            requests => $self->{served},
            $self->{stats} ? $self->{stats}->() : () });
    }
    if ($path eq '/_next' && $method eq 'POST') {
        my $v = eval { $self->{json}->decode($body) };
        my @e = ref $v eq 'ARRAY' ? @$v : ref $v eq 'HASH' ? ($v) : ();
        return $self->fail($c, 400, 'invalid_request',
                           'an object or an array')
            if !@e || grep { ref $_ ne 'HASH' } @e;
        push @{ $self->{queue} }, @e;
        return $self->respond_json($c, 200,
                                   { queued => scalar @{ $self->{queue} } });
    }
    if ($path eq '/_next' && $method eq 'DELETE' && $self->{forget_next}) {
        @{ $self->{queue} } = ();
        return $self->respond_json($c, 200, { queued => 0 });
    }
    return $self->fail($c, 404, 'not_found', $self->{unknown} . $path);
}

# a provider's route, or 405 or 404
sub route {
    my ($self, $c, $req) = @_;
    for my $r (@{ $self->{routes} }) {
        next unless $req->{path} =~ $r->{path};
        $req->{captures} = [@{^CAPTURE}];
        if ($req->{method} eq $r->{method}) {
            return $r->{run}->($c, $req);
        }
        if (($r->{others} // 0) == 405) {
            return $self->fail($c, 405, 'method_not_allowed',
                               "Method $req->{method} not allowed");
        }
    }
    return $self->fail($c, 404, 'not_found', $self->{unknown}
        . ($self->{unknown_target} ? $req->{target} : $req->{path}));
}

sub on_data {
    my ($self, $c) = @_;
    while (!$c->{state}{busy} && $c->is_open && !$c->{closing}) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            if (length $c->{in} > 65536) {
                $self->fail($c, 413, 'invalid_request', 'headers too large');
                $c->close_after;
            }
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $target) = (shift(@lines) // '')
                                =~ /^(\S+) (\S+) HTTP/;
        if (!defined $method) {
            $self->fail($c, 400, 'invalid_request', 'bad request line');
            $c->close_after;
            return;
        }
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            $self->fail($c, 411, 'invalid_request',
                        'Content-Length required');
            $c->close_after;
            return;
        }
        my $len = $h{'content-length'} // 0;
        if ($len !~ /^\d+$/ || $len > $self->{body_max}) {
            $self->fail($c, 413, 'invalid_request', $self->{too_large});
            $c->close_after;
            return;
        }
        return if length($c->{in}) < $end + 4 + $len;
        my $body = substr($c->{in}, $end + 4, $len);
        substr($c->{in}, 0, $end + 4 + $len) = '';
        $c->{state}{close} = ($h{connection} // '') =~ /close/i;
        my ($path, $query) = $target =~ /^([^?]*)(?:\?(.*))?$/;
        if ($path =~ m{^/_}) {
            $self->control($c, $method, $path, $body);
        } else {
            $self->route($c, { method => $method, target => $target,
                               path => $path, query => $query,
                               headers => \%h, body => $body });
        }
        next if $c->{state}{busy};
        if ($c->{state}{close}) {
            $c->close_after;
            return;
        }
    }
}

sub run {
    my ($self) = @_;
    my $srv = $self->{srv};
    $srv->run(
        on_data  => sub { $self->on_data(@_) },
        on_close => sub {
            my ($c, $why) = @_;
            my $st = $c->{state};
            $srv->cancel($st->{timer});
            # the client went away in the middle of an answer
            if (my $rec = $st->{rec}) {
                my $outcome = $why eq 'reset' ? 'reset' : 'client-closed';
                if ($self->{close_record}) {
                    $rec->{outcome} = $outcome;
                    $rec->{t_end} = $self->stamp;
                }
                $self->{gone}->($c, $outcome) if $self->{gone};
            }
            %$st = ();
        },
    );
}

1;
