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
use EventHttp;
use Getopt::Long;

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

my $streams = 0;

sub detail {
    my ($status, $message) = @_;
    return { detail => { status => $status, message => $message } };
}

my $http = EventHttp->new(
    port => $opt{port}, watch_stdin => $opt{'watch-stdin'},
    quiet => $opt{quiet}, max_records => $opt{'max-records'},
    record_defaults => { chunks => 0, bytes => 0 },
    reasons => { 403 => 'Forbidden', 422 => 'Unprocessable Entity' },
    error => \&detail,
    unknown => 'Unknown: ',
    routes => [
        { path => qr{^/v1/text-to-speech/([^/]+)(?:/stream)?$},
          method => 'POST', others => 405, run => \&speak },
        { path => qr{^/v1/voices$}, method => 'GET', run => \&voices },
    ],
    stats => sub { return (streams => $streams) },
    gone => sub { $_[0]{state}{end}->($_[1]) },
);
my $srv = $http->srv;
my $json = $http->json;

# the options of one request: command line, then the queue's next entry
sub options_for {
    my %o = (first => $opt{'first-ms'}, delay => $opt{'chunk-ms'},
             chunk => $opt{chunk}, 'retry-after' => 1);
    if (my $q = $http->next_entry) {
        %o = (%o, %$q);
    }
    for my $k (qw(first delay chunk retry-after)) {
        $o{$k} = 0 + ($o{$k} =~ /^\d+(?:\.\d+)?$/ ? $o{$k} : 0);
    }
    $o{chunk} = 1000 if $o{chunk} < 1;
    return \%o;
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

sub voices {
    my ($c) = @_;
    $http->respond_json($c, 200, { voices => [
        { voice_id => 'pNInz6obpgDQGcFmaJgB', name => 'Adam' },
        { voice_id => '21m00Tcm4TlvDq8ikWAM', name => 'Rachel' },
    ] });
}

sub speak {
    my ($c, $r) = @_;
    my ($h, $body) = ($r->{headers}, $r->{body});
    my ($voice) = @{ $r->{captures} };
    my $q = EventHttp::query_fields($r->{query});
    my $req = eval { $json->decode($body) };
    my $rec = $http->record(conn => $c->id, method => 'POST',
                            path => $r->{path}, query => $q, headers => $h,
                            voice_id => $voice,
                            output_format => $q->{output_format},
                            ref $req ? (body => $req) : (raw => $body));
    my $finish = sub {
        my ($status) = @_;
        $rec->{status} = $status;
        $rec->{outcome} = 'done';
        $rec->{t_end} = $http->stamp;
    };
    if (length $opt{key} && ($h->{'xi-api-key'} // '') ne $opt{key}) {
        $finish->(401);
        return $http->respond_json($c, 401, detail('invalid_api_key',
                                                   'Invalid API key'));
    }
    if (ref $req ne 'HASH' || !defined $req->{text}
        || ref $req->{text} || !length $req->{text})
    {
        $finish->(422);
        return $http->respond_json($c, 422, { detail => [{
            loc => ['body', 'text'], msg => 'field required',
            type => 'value_error.missing' }] });
    }
    if ($voice =~ /^missing/) {
        $finish->(400);
        return $http->respond_json($c, 400, detail('voice_not_found',
            "A voice with the voice_id $voice was not found."));
    }
    my $fmt = $q->{output_format} // 'mp3_44100_128';
    if ($fmt !~ /^(?:mp3_\d+_\d+|pcm_\d+)$/) {
        $finish->(400);
        return $http->respond_json($c, 400, detail('invalid_output_format',
            "Invalid output format: $fmt"));
    }
    my $o = options_for();
    if ($o->{status}) {
        my $st = 0 + $o->{status};
        $finish->($st);
        my $extra = $st == 429 ? "Retry-After: $o->{'retry-after'}\r\n"
                               : '';
        return $http->respond_json($c, $st, detail(
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
            return $http->respond_json($c, 500, detail('internal_server_error',
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
        $rec->{t_end} = $http->stamp;
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
            $rec->{t_first} //= $http->stamp;
            $http->chunk($c, $piece);
            $rec->{chunks}++;
            $rec->{bytes} += length $piece;
            $st->{timer} = $srv->after($o->{delay}, $step);
            return;
        }
        $http->chunk_end($c);
        $end->('done');
        $http->after_response($c);
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

$http->run;
