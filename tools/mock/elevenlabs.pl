#!/usr/bin/perl
# A mock of ElevenLabs' text-to-speech streaming endpoint, for tests and
# benchmarks: streams real audio with chunked encoding and fails on
# demand.
#
#   perl tools/mock/elevenlabs.pl [--port N] [--key KEY] [--mp3 FILE]
#        [--chunk BYTES] [--chunk-ms MS] [--first-ms MS]
#        [--ms-per-char MS] [--max-records N] [--watch-stdin] [--quiet]
#
#   --port N          listen on 127.0.0.1:N (default 0: any free port);
#                     the port is printed as the first line of stdout
#   --key KEY         the xi-api-key expected (default xi-test; "" accepts
#                     any or none)
#   --mp3 FILE        the MP3 sent for output_format=mp3_*: the file as it
#                     is (tests write one with LAME); without it MP3
#                     requests are answered 500
#   --chunk BYTES     bytes of audio per HTTP chunk (default 1000: chunks
#                     that do not fall on MPEG frames or, odd, on samples)
#   --chunk-ms MS     pause between chunks (default 0)
#   --first-ms MS     pause before the response (default 0)
#   --ms-per-char MS  PCM audio per character of text (default 60, at
#                     least 200 ms in all): a 440 Hz tone
#
# POST /v1/text-to-speech/{voice_id}/stream?output_format=F (and the same
# without /stream), JSON {"text", "model_id", "voice_settings"?}:
#
#   200, Transfer-Encoding: chunked, Content-Type audio/mpeg (F
#     mp3_44100_128...) or audio/pcm (F pcm_16000), the audio in chunks;
#   401 {"detail": {"status": "invalid_api_key", "message"}} for a wrong
#     or missing xi-api-key;
#   422 {"detail": [{"loc", "msg", "type"}]} for a body without "text";
#   400 {"detail": {"status": "voice_not_found"}} for a voice id that
#     starts with "missing", {"status": "invalid_output_format"} for an
#     unknown F.
#
# Failures and pacing, per request: each is a key[=value] of the next
# entry queued with POST /_next (one entry per request; with "times" an
# entry serves that many requests):
#
#   status=CODE          answer CODE with ElevenLabs' error JSON (429
#                        adds Retry-After) instead of audio
#   detail-status=S, message=M   the "status" and "message" of that JSON
#   retry-after=S        the Retry-After of a 429 (default 1)
#   times=N              the entry serves N requests
#   first=MS, delay=MS, chunk=BYTES   as --first-ms, --chunk-ms, --chunk
#   cut-after=N          after N chunks close the connection without the
#                        last chunk (a body cut short)
#   reset-after=N        after N chunks reset the connection (RST)
#   stall-after=N        after N chunks send nothing more
#
# Control endpoints:
#   GET /_requests     {"requests": [...]}: per request its id, conn,
#                      method, path, query (an object), headers (lower-
#                      case names), body (parsed JSON, or "raw"),
#                      voice_id, output_format, status, chunks, bytes,
#                      outcome ("pending", "streaming", "done", "cut",
#                      "reset", "stalled", "client-closed") and times
#                      (t_start, t_first, t_end: seconds since start)
#   DELETE /_requests  forget them
#   POST /_next        queue one object (or an array) of the keys above
#   GET /_stats        {"connections", "streams", "requests"}
#   GET /v1/voices     a voice list
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use EventServer;
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time);

my %opt = (port => 0, key => 'xi-test', chunk => 1000, 'chunk-ms' => 0,
           'first-ms' => 0, 'ms-per-char' => 60, 'max-records' => 2000);
GetOptions(\%opt, 'port=i', 'key=s', 'mp3=s', 'chunk=i', 'chunk-ms=i',
           'first-ms=i', 'ms-per-char=i', 'max-records=i', 'watch-stdin',
           'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--mp3 FILE] [--chunk BYTES] "
           . "[--chunk-ms MS] [--first-ms MS] [--ms-per-char MS] "
           . "[--max-records N] [--watch-stdin] [--quiet]\n";

my $mp3;
if (defined $opt{mp3}) {
    open my $fh, '<:raw', $opt{mp3} or die "mock: $opt{mp3}: $!\n";
    local $/;
    $mp3 = <$fh>;
    close $fh;
}

my $json = JSON::PP->new->canonical->utf8;
my $t0 = time;
my (@records, @queue);
my $served = 0;
my $next_id = 0;
my $streams = 0;
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              403 => 'Forbidden', 404 => 'Not Found',
              405 => 'Method Not Allowed', 411 => 'Length Required',
              413 => 'Payload Too Large', 422 => 'Unprocessable Entity',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable');

my $srv = EventServer->new(port => $opt{port},
                           watch_stdin => $opt{'watch-stdin'},
                           quiet => $opt{quiet});

sub stamp { 0 + sprintf('%.3f', time - $t0) }

sub respond {
    my ($c, $status, $ctype, $body, $extra) = @_;
    my $r = $reason{$status} // 'Status';
    $c->write("HTTP/1.1 $status $r\r\n"
              . "Content-Type: $ctype\r\n"
              . "Content-Length: " . length($body) . "\r\n"
              . ($extra // '')
              . "\r\n$body");
}

sub respond_json {
    my ($c, $status, $v, $extra) = @_;
    respond($c, $status, 'application/json', $json->encode($v), $extra);
}

sub detail {
    my ($status, $message) = @_;
    return { detail => { status => $status, message => $message } };
}

# the options of one request: command line, then the queue's next entry
sub options_for {
    my %o = (first => $opt{'first-ms'}, delay => $opt{'chunk-ms'},
             chunk => $opt{chunk}, 'retry-after' => 1);
    if (my $q = $queue[0]) {
        if (defined $q->{times} && --$q->{times} > 0) {
            %o = (%o, %$q);             # the entry stays for more
        } else {
            shift @queue;
            %o = (%o, %$q);
        }
        delete $o{times};
    }
    for my $k (qw(first delay chunk retry-after)) {
        $o{$k} = 0 + ($o{$k} =~ /^\d+(?:\.\d+)?$/ ? $o{$k} : 0);
    }
    $o{chunk} = 1000 if $o{chunk} < 1;
    return \%o;
}

sub record {
    my (%r) = @_;
    my $rec = { id => ++$next_id, t_start => stamp(), chunks => 0,
                bytes => 0, outcome => 'pending', %r };
    push @records, $rec;
    shift @records while @records > $opt{'max-records'};
    return $rec;
}

# a 440 Hz tone, s16le at 16 kHz
sub pcm_for {
    my ($text) = @_;
    my $ms = length($text) * $opt{'ms-per-char'};
    $ms = 200 if $ms < 200;
    my $n = int($ms * 16);
    return pack('s<*', map { int(8000 * sin(2 * 3.14159265358979 * 440
                                                * $_ / 16000)) } 0 .. $n - 1);
}

sub parse_query {
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

sub chunk {
    my ($c, $data) = @_;
    return unless length $data;
    $c->write(sprintf("%x\r\n", length $data) . $data . "\r\n");
}

sub speak {
    my ($c, $h, $body, $path, $voice, $query) = @_;
    my $q = parse_query($query);
    my $req = eval { $json->decode($body) };
    my $rec = record(conn => $c->id, method => 'POST', path => $path,
                     query => $q, headers => $h, voice_id => $voice,
                     output_format => $q->{output_format},
                     ref $req ? (body => $req) : (raw => $body));
    $served++;
    my $finish = sub {
        my ($status) = @_;
        $rec->{status} = $status;
        $rec->{outcome} = 'done';
        $rec->{t_end} = stamp();
    };
    if (length $opt{key} && ($h->{'xi-api-key'} // '') ne $opt{key}) {
        $finish->(401);
        return respond_json($c, 401, detail('invalid_api_key',
                                            'Invalid API key'));
    }
    if (ref $req ne 'HASH' || !defined $req->{text}
        || ref $req->{text} || !length $req->{text})
    {
        $finish->(422);
        return respond_json($c, 422, { detail => [{
            loc => ['body', 'text'], msg => 'field required',
            type => 'value_error.missing' }] });
    }
    if ($voice =~ /^missing/) {
        $finish->(400);
        return respond_json($c, 400, detail('voice_not_found',
            "A voice with the voice_id $voice was not found."));
    }
    my $fmt = $q->{output_format} // 'mp3_44100_128';
    if ($fmt !~ /^(?:mp3_\d+_\d+|pcm_\d+)$/) {
        $finish->(400);
        return respond_json($c, 400, detail('invalid_output_format',
            "Invalid output format: $fmt"));
    }
    my $o = options_for();
    if ($o->{status}) {
        my $st = 0 + $o->{status};
        $finish->($st);
        my $extra = $st == 429 ? "Retry-After: $o->{'retry-after'}\r\n"
                               : '';
        return respond_json($c, $st, detail(
            $o->{'detail-status'} // ($st == 429
                ? 'too_many_concurrent_requests'
                : $st >= 500 ? 'internal_server_error' : 'error'),
            $o->{message} // ($st == 429
                ? 'Too many concurrent requests for your subscription.'
                : "The mock failed with $st on purpose.")), $extra);
    }
    my $audio;
    my $ctype;
    if ($fmt =~ /^mp3/) {
        if (!defined $mp3) {
            $finish->(500);
            return respond_json($c, 500, detail('internal_server_error',
                'The mock has no MP3 (--mp3 FILE).'));
        }
        $audio = $mp3;
        $ctype = 'audio/mpeg';
    } else {
        $audio = pcm_for($req->{text});
        $ctype = 'audio/pcm';
    }

    my $st = $c->{state};
    $st->{busy} = 1;
    $st->{rec} = $rec;
    $streams++;
    my $off = 0;
    my $step;
    my $end = sub {
        my ($outcome) = @_;
        $rec->{outcome} = $outcome;
        $rec->{t_end} = stamp();
        $st->{timer} = $st->{rec} = undef;
        $st->{busy} = 0;
        $streams--;
        $step = undef;
    };
    $step = sub {
        return unless $c->is_open;
        for my $fail (qw(cut-after reset-after stall-after)) {
            next unless defined $o->{$fail}
                        && $rec->{chunks} == $o->{$fail};
            if ($fail eq 'cut-after') {
                $end->('cut');
                $c->{state}{close} = 1;
                $c->close_after;
                return;
            }
            if ($fail eq 'reset-after') {
                $end->('reset');
                return $c->reset;
            }
            $rec->{outcome} = 'stalled';    # a close is still recorded
            return;
        }
        if ($off < length $audio) {
            my $piece = substr($audio, $off, $o->{chunk});
            $off += length $piece;
            $rec->{t_first} //= stamp();
            chunk($c, $piece);
            $rec->{chunks}++;
            $rec->{bytes} += length $piece;
            $st->{timer} = $srv->after($o->{delay}, $step);
            return;
        }
        $c->write("0\r\n\r\n");
        $end->('done');
        after_response($c);
    };
    $st->{end} = $end;
    $st->{timer} = $srv->after($o->{first}, sub {
        return unless $c->is_open;
        $rec->{status} = 200;
        $rec->{outcome} = 'streaming';
        $c->write("HTTP/1.1 200 OK\r\n"
                  . "Content-Type: $ctype\r\n"
                  . "Transfer-Encoding: chunked\r\n"
                  . "request-id: mock-$rec->{id}\r\n\r\n");
        $step->();
    });
}

# a response is complete: close if asked, else serve what is pipelined
sub after_response {
    my ($c) = @_;
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
            streams => $streams, requests => $served });
    }
    if ($path eq '/_next' && $method eq 'POST') {
        my $v = eval { $json->decode($body) };
        my @e = ref $v eq 'ARRAY' ? @$v : ref $v eq 'HASH' ? ($v) : ();
        return respond_json($c, 400, detail('invalid_request',
                                            'an object or an array'))
            if !@e || grep { ref $_ ne 'HASH' } @e;
        push @queue, @e;
        return respond_json($c, 200, { queued => scalar @queue });
    }
    return respond_json($c, 404, detail('not_found', "Unknown: $path"));
}

sub on_data {
    my ($c) = @_;
    while (!$c->{state}{busy} && $c->is_open && !$c->{closing}) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            if (length $c->{in} > 65536) {
                respond_json($c, 413, detail('invalid_request',
                                             'headers too large'));
                $c->close_after;
            }
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $target) = (shift(@lines) // '')
                                =~ /^(\S+) (\S+) HTTP/;
        if (!defined $method) {
            respond_json($c, 400, detail('invalid_request',
                                         'bad request line'));
            $c->close_after;
            return;
        }
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            respond_json($c, 411, detail('invalid_request',
                                         'Content-Length required'));
            $c->close_after;
            return;
        }
        my $len = $h{'content-length'} // 0;
        if ($len !~ /^\d+$/ || $len > 16 * 1024 * 1024) {
            respond_json($c, 413, detail('invalid_request',
                                         'body too large'));
            $c->close_after;
            return;
        }
        return if length($c->{in}) < $end + 4 + $len;
        my $body = substr($c->{in}, $end + 4, $len);
        substr($c->{in}, 0, $end + 4 + $len) = '';
        $c->{state}{close} = ($h{connection} // '') =~ /close/i;
        my ($path, $query) = $target =~ /^([^?]*)(?:\?(.*))?$/;
        if ($path =~ m{^/_}) {
            control($c, $method, $path, $body);
        } elsif ($path =~ m{^/v1/text-to-speech/([^/]+)(?:/stream)?$}) {
            my $voice = $1;
            if ($method ne 'POST') {
                respond_json($c, 405, detail('method_not_allowed',
                                             "Method $method not allowed"));
            } else {
                speak($c, \%h, $body, $path, $voice, $query);
            }
        } elsif ($path eq '/v1/voices' && $method eq 'GET') {
            respond_json($c, 200, { voices => [
                { voice_id => 'pNInz6obpgDQGcFmaJgB', name => 'Adam' },
                { voice_id => '21m00Tcm4TlvDq8ikWAM', name => 'Rachel' },
            ] });
        } else {
            respond_json($c, 404, detail('not_found', "Unknown: $path"));
        }
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
            # the client went away before the audio was all sent
            $st->{end}->($why eq 'reset' ? 'reset' : 'client-closed');
        }
        %$st = ();
    },
);
