#!/usr/bin/perl
# A mock of HeyGen LiveAvatar's session-token endpoint, for tests: speaks
# the real wire format and fails on demand.
#
#   perl tools/mock/heygen.pl [--port N] [--key KEY] [--max-records N]
#        [--watch-stdin] [--quiet]
#
#   --port N         listen on 127.0.0.1:N (default 0: any free port); the
#                    port is printed as the first line of stdout
#   --key KEY        the key expected in "X-API-KEY: KEY" (default
#                    la-test-key)
#   --max-records N  requests kept for GET /_requests (default 1000)
#   --watch-stdin    exit when stdin reaches EOF
#
# POST /v1/sessions/token with a JSON body {"mode":"FULL", "avatar_id",
# "is_sandbox"?: bool, "avatar_persona": {"voice_id"?: string, ...}}:
#
#   200 {"code":100,"data":{"session_id","session_token"},
#        "message":"Session token created"}
#   401 {"code":401,"data":null,"message":"Invalid API key: KEY"} with a
#       missing or wrong key (echoed back, so that clients can be tested
#       for keeping it out of answers and logs)
#   422 {"detail":[{"loc","msg","type"}]} (FastAPI's shape) when the body
#       is not JSON, mode is not FULL, avatar_id is missing or not a
#       string, is_sandbox is not a boolean, avatar_persona is missing or
#       not an object, or its voice_id is not a string
#   404 / 405 for other paths and methods
#
# Failures, per request, queued with POST /_next (one object, or an array
# of them, one entry per request, in order):
#
#   {"status": CODE}         answer CODE with the error envelope above
#   {"slow": MS}             answer only after MS milliseconds
#   {"malformed": 1}         200 with a body that is not JSON
#   {"no-data": 1}           200 {"code":100,"data":null,...}
#   {"missing": "FIELD"}     200 whose data lacks FIELD (session_id or
#                            session_token)
#   {"reset": 1}             reset the connection (RST) without answering
#
# Control endpoints:
#   GET /_requests     {"requests": [...]}: per request its id, method,
#                      path, headers (lower-case names), body (parsed
#                      JSON, or "raw" when not JSON), status, data (what
#                      a success answered), outcome ("pending", "done",
#                      "reset", "client-closed"), t_start and t_end
#                      (seconds since the mock started)
#   DELETE /_requests  forget them
#   POST /_next        queue failures (above)
#   DELETE /_next      forget the failures still queued
#   GET /_stats        {"connections", "pending", "requests"}
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use EventServer;
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time);

my %opt = (port => 0, key => 'la-test-key', 'max-records' => 1000);
GetOptions(\%opt, 'port=i', 'key=s', 'max-records=i', 'watch-stdin',
           'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--max-records N] "
           . "[--watch-stdin] [--quiet]\n";

my $json = JSON::PP->new->canonical->utf8;
my $t0 = time;
my (@records, @queue);
my ($served, $next_id, $pending) = (0, 0, 0);
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              403 => 'Forbidden', 404 => 'Not Found',
              405 => 'Method Not Allowed', 411 => 'Length Required',
              413 => 'Payload Too Large', 422 => 'Unprocessable Entity',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable');

my $srv = EventServer->new(port => $opt{port},
                           watch_stdin => $opt{'watch-stdin'},
                           quiet => $opt{quiet});

sub respond {
    my ($c, $status, $ctype, $body) = @_;
    my $r = $reason{$status} // 'Status';
    $c->write("HTTP/1.1 $status $r\r\n"
              . "Content-Type: $ctype\r\n"
              . "Content-Length: " . length($body) . "\r\n"
              . "\r\n$body");
}

sub respond_json {
    my ($c, $status, $v) = @_;
    respond($c, $status, 'application/json', $json->encode($v));
}

sub stamp { 0 + sprintf('%.3f', time - $t0) }

sub envelope {
    my ($code, $msg) = @_;
    return { code => $code, data => undef, message => $msg };
}

sub hex_id {
    my ($n) = @_;
    return join '', map { sprintf '%x', int rand 16 } 1 .. $n;
}

# FastAPI-style problems with a token request, as a list of details
sub problems {
    my ($req) = @_;
    return ({ loc => ['body'], msg => 'Input should be a valid dictionary',
              type => 'dict_type' }) if ref $req ne 'HASH';
    my @p;
    push @p, { loc => ['body', 'mode'], msg => "Input should be 'FULL'",
               type => 'literal_error' }
        unless defined $req->{mode} && !ref $req->{mode}
               && $req->{mode} eq 'FULL';
    push @p, { loc => ['body', 'avatar_id'], msg => 'Field required',
               type => 'missing' }
        unless defined $req->{avatar_id} && !ref $req->{avatar_id}
               && length $req->{avatar_id};
    push @p, { loc => ['body', 'is_sandbox'],
               msg => 'Input should be a valid boolean', type => 'bool_type' }
        if exists $req->{is_sandbox} && !JSON::PP::is_bool($req->{is_sandbox});
    my $persona = $req->{avatar_persona};
    if (ref $persona ne 'HASH') {
        push @p, { loc => ['body', 'avatar_persona'],
                   msg => 'Field required', type => 'missing' };
    } elsif (exists $persona->{voice_id}
             && (!defined $persona->{voice_id} || ref $persona->{voice_id}))
    {
        push @p, { loc => ['body', 'avatar_persona', 'voice_id'],
                   msg => 'Input should be a valid string',
                   type => 'string_type' };
    }
    return @p;
}

sub token {
    my ($c, $h, $body, $path) = @_;
    my $req = eval { $json->decode($body) };
    my $rec = { id => ++$next_id, method => 'POST', path => $path,
                headers => $h, body => $req, outcome => 'pending',
                t_start => stamp(), ref $req ? () : (raw => $body) };
    push @records, $rec;
    shift @records while @records > $opt{'max-records'};
    $served++;
    my $o = shift(@queue) // {};

    my $answer = sub {
        $rec->{outcome} = 'done';
        $rec->{t_end} = stamp();
        my $key = $h->{'x-api-key'};
        if (!defined $key || $key ne $opt{key}) {
            $rec->{status} = 401;
            return respond_json($c, 401, envelope(401, 'Invalid API key: '
                                                  . ($key // '')));
        }
        if (my @p = problems($req)) {
            $rec->{status} = 422;
            return respond_json($c, 422, { detail => \@p });
        }
        if ($o->{status}) {
            my $st = 0 + $o->{status};
            $rec->{status} = $st;
            return respond_json($c, $st, envelope($st,
                "Upstream failure ($st) for key $opt{key}"));
        }
        $rec->{status} = 200;
        if ($o->{malformed}) {
            return respond($c, 200, 'application/json',
                           '{"code":100,"data":{"session_id":');
        }
        if ($o->{'no-data'}) {
            return respond_json($c, 200, { code => 100, data => undef,
                                           message => 'ok' });
        }
        my %data = (session_id => join('-', hex_id(8), hex_id(4), hex_id(4),
                                       hex_id(4), hex_id(12)),
                    session_token => 'eyJ' . hex_id(40) . '.' . hex_id(60));
        delete $data{$o->{missing}} if defined $o->{missing};
        $rec->{data} = \%data;
        respond_json($c, 200, { code => 100, data => \%data,
                                message => 'Session token created' });
    };

    if ($o->{reset}) {
        $rec->{outcome} = 'reset';
        $rec->{t_end} = stamp();
        return $c->reset;
    }
    my $slow = $o->{slow} && $o->{slow} =~ /^\d+$/ ? $o->{slow} : 0;
    return $answer->() unless $slow;
    $pending++;
    $c->{state}{busy} = 1;
    $c->{state}{rec} = $rec;
    $c->{state}{timer} = $srv->after($slow, sub {
        $pending--;
        $c->{state}{busy} = 0;
        $c->{state}{rec} = undef;
        $answer->();
        after_response($c);
    });
}

# a response is complete: close if asked, else serve what is pipelined
sub after_response {
    my ($c) = @_;
    return unless $c->is_open;
    if ($c->{state}{close}) {
        $c->close_after;
        return;
    }
    on_data($c) if length $c->{in};
}

sub control {
    my ($c, $method, $path, $body) = @_;
    if ($path eq '/_requests' && $method eq 'GET') {
        return respond_json($c, 200, { requests => \@records });
    }
    if ($path eq '/_requests' && $method eq 'DELETE') {
        @records = ();
        return respond_json($c, 200, { cleared => JSON::PP::true });
    }
    if ($path eq '/_stats' && $method eq 'GET') {
        return respond_json($c, 200, {
            connections => $srv->connections - 1,   # not this one
            pending => $pending, requests => $served });
    }
    if ($path eq '/_next' && $method eq 'POST') {
        my $v = eval { $json->decode($body) };
        my @e = ref $v eq 'ARRAY' ? @$v : ref $v eq 'HASH' ? ($v) : ();
        return respond_json($c, 400, envelope(400, 'an object or an array'))
            if !@e || grep { ref $_ ne 'HASH' } @e;
        push @queue, @e;
        return respond_json($c, 200, { queued => scalar @queue });
    }
    if ($path eq '/_next' && $method eq 'DELETE') {
        @queue = ();
        return respond_json($c, 200, { queued => 0 });
    }
    return respond_json($c, 404, { detail => 'Not Found' });
}

sub on_data {
    my ($c) = @_;
    while (!$c->{state}{busy} && $c->is_open && !$c->{closing}) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            if (length $c->{in} > 65536) {
                respond_json($c, 413, envelope(413, 'headers too large'));
                $c->close_after;
            }
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $path) = (shift(@lines) // '') =~ /^(\S+) (\S+) HTTP/;
        if (!defined $method) {
            respond_json($c, 400, envelope(400, 'bad request line'));
            $c->close_after;
            return;
        }
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            respond_json($c, 411, envelope(411, 'Content-Length required'));
            $c->close_after;
            return;
        }
        my $len = $h{'content-length'} // 0;
        if ($len !~ /^\d+$/ || $len > 1024 * 1024) {
            respond_json($c, 413, envelope(413, 'body too large'));
            $c->close_after;
            return;
        }
        return if length($c->{in}) < $end + 4 + $len;
        my $body = substr($c->{in}, $end + 4, $len);
        substr($c->{in}, 0, $end + 4 + $len) = '';
        $c->{state}{close} = ($h{connection} // '') =~ /close/i;
        (my $p = $path) =~ s/\?.*//;
        if ($p =~ m{^/_}) {
            control($c, $method, $p, $body);
        } elsif ($p eq '/v1/sessions/token') {
            if ($method ne 'POST') {
                respond_json($c, 405, { detail => 'Method Not Allowed' });
            } else {
                token($c, \%h, $body, $path);
            }
        } else {
            respond_json($c, 404, { detail => 'Not Found' });
        }
        return unless $c->is_open;
        next if $c->{state}{busy};
        if ($c->{state}{close}) {
            $c->close_after;
            return;
        }
    }
}

$srv->run(
    on_data  => \&on_data,
    on_close => sub {
        my ($c, $why) = @_;
        my $st = $c->{state};
        $srv->cancel($st->{timer});
        if (my $rec = $st->{rec}) {
            # the client went away before the answer
            $rec->{outcome} = $why eq 'reset' ? 'reset' : 'client-closed';
            $rec->{t_end} = stamp();
            $pending--;
        }
        %$st = ();
    },
);
