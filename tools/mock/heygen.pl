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
use EventHttp;
use Getopt::Long;
use JSON::PP;

my %opt = (port => 0, key => 'la-test-key', 'max-records' => 1000);
GetOptions(\%opt, 'port=i', 'key=s', 'max-records=i', 'watch-stdin',
           'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--max-records N] "
           . "[--watch-stdin] [--quiet]\n";

my $pending = 0;

sub envelope {
    my ($code, $msg) = @_;
    return { code => $code, data => undef, message => $msg };
}

my $http = EventHttp->new(
    port => $opt{port}, watch_stdin => $opt{'watch-stdin'},
    quiet => $opt{quiet}, max_records => $opt{'max-records'},
    body_max => 1024 * 1024,
    reasons => { 403 => 'Forbidden', 422 => 'Unprocessable Entity' },
    # FastAPI's fixed bodies for a path or a method it does not serve,
    # the envelope for the rest
    error => sub {
        my ($kind, $message, $status) = @_;
        return { detail => 'Not Found' } if $kind eq 'not_found';
        return { detail => 'Method Not Allowed' }
            if $kind eq 'method_not_allowed';
        return envelope($status, $message);
    },
    routes => [
        { path => qr{^/v1/sessions/token$}, method => 'POST', others => 405,
          run => \&token },
    ],
    stats => sub { return (pending => $pending) },
    forget_next => 1,
    close_record => 1,
    gone => sub { $pending-- },     # a slow answer's client went away
);
my $srv = $http->srv;
my $json = $http->json;

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
    my ($c, $r) = @_;
    my ($h, $body) = ($r->{headers}, $r->{body});
    my $req = eval { $json->decode($body) };
    my $rec = $http->record(method => 'POST', path => $r->{target},
                            headers => $h, body => $req,
                            ref $req ? () : (raw => $body));
    my $o = $http->next_entry(once => 1) // {};

    my $answer = sub {
        $rec->{outcome} = 'done';
        $rec->{t_end} = $http->stamp;
        my $key = $h->{'x-api-key'};
        if (!defined $key || $key ne $opt{key}) {
            $rec->{status} = 401;
            return $http->respond_json($c, 401, envelope(401,
                'Invalid API key: ' . ($key // '')));
        }
        if (my @p = problems($req)) {
            $rec->{status} = 422;
            return $http->respond_json($c, 422, { detail => \@p });
        }
        if ($o->{status}) {
            my $st = 0 + $o->{status};
            $rec->{status} = $st;
            return $http->respond_json($c, $st, envelope($st,
                "Upstream failure ($st) for key $opt{key}"));
        }
        $rec->{status} = 200;
        if ($o->{malformed}) {
            return $http->respond($c, 200, 'application/json',
                                  '{"code":100,"data":{"session_id":');
        }
        if ($o->{'no-data'}) {
            return $http->respond_json($c, 200, { code => 100,
                                                  data => undef,
                                                  message => 'ok' });
        }
        my %data = (session_id => join('-', hex_id(8), hex_id(4), hex_id(4),
                                       hex_id(4), hex_id(12)),
                    session_token => 'eyJ' . hex_id(40) . '.' . hex_id(60));
        delete $data{$o->{missing}} if defined $o->{missing};
        $rec->{data} = \%data;
        $http->respond_json($c, 200, { code => 100, data => \%data,
                                       message => 'Session token created' });
    };

    if ($o->{reset}) {
        $rec->{outcome} = 'reset';
        $rec->{t_end} = $http->stamp;
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
        $http->after_response($c);
    });
}

$http->run;
