#!/usr/bin/perl
# A mock of an OpenAI-compatible /audio/transcriptions endpoint (OpenAI's
# whisper-1, whisper.cpp, faster-whisper...), for tests and benchmarks:
# reads the multipart/form-data upload for real, answers in the real
# formats and fails on demand.
#
#   perl tools/mock/openai-audio.pl [--port N] [--key KEY] [--text TEXT]
#        [--max-records N] [--watch-stdin] [--quiet]
#
#   --port N         listen on 127.0.0.1:N (default 0: any free port); the
#                    port is printed as the first line of stdout
#   --key KEY        the key expected in "Authorization: Bearer KEY"
#                    (default sk-test; "" accepts any or none)
#   --text TEXT      the transcript when the queue names none
#   --max-records N  requests kept for GET /_requests (default 2000)
#   --watch-stdin    exit when stdin reaches EOF
#
# POST .../audio/transcriptions, multipart/form-data (RFC 7578) with the
# parts file (required), model (required), language, prompt,
# response_format (json, text, srt, verbose_json, vtt; default json),
# temperature, timestamp_granularities[]:
#
#   verbose_json  {"task": "transcribe", "language": "english",
#                  "duration": S, "text": T, "segments": [{"id", "seek",
#                  "start", "end", "text", "tokens", "temperature",
#                  "avg_logprob", "compression_ratio", "no_speech_prob"}],
#                  and "words": [{"word", "start", "end"}] when asked for
#                  by timestamp_granularities[]=word or the queue}
#   json          {"text": T}
#   text          T as text/plain
#   401 {"error": {...}} with a wrong key (echoed back, as OpenAI does);
#   400 for a body that is not multipart, or lacks file or model, or an
#   unknown response_format; 413 for a body over 26 MB.
#
# The duration is the WAV file's own when the file is a valid WAV (its
# data length over rate, channels and sample size), else the queue's.
#
# What to answer comes from the next entry queued with POST /_next (one
# object or an array, one entry per request), else --text:
#
#   text=T           the transcript
#   status=CODE      answer CODE with an OpenAI error object instead (429
#                    adds Retry-After)
#   times=N          ...for the next N requests (then the entry is used up)
#   retry-after=S    the Retry-After of a 429 (default 1)
#   delay=MS         wait before answering (the request stays pending)
#   stall=1          never answer
#   reset=1          reset the connection (RST) instead of answering
#   malformed=1      a 200 whose body is broken JSON
#   empty=1          a 200 with an empty body
#   no-text=1        a 200 JSON object without "text"
#   words=1          add "words" (one per word of the text, 0.3 s each)
#   duration=S       the duration when the file is not a WAV
#   avg_logprob=X    of the segment (default -0.25)
#   no_speech_prob=X of the segment (default 0.01)
#
# Control endpoints:
#   GET /_requests     {"requests": [...]}: per request its id, conn,
#                      method, path, headers (lower-case names),
#                      content_type, parts (the part names in order),
#                      fields (name => value of the parts without a
#                      filename), files ([{field, filename, content_type,
#                      bytes, md5, wav}], wav {rate, channels, bits,
#                      format, data_bytes} when the file is a valid WAV,
#                      else null), error (why a body was refused), status,
#                      outcome ("pending", "done", "reset", "stalled",
#                      "client-closed") and times (t_start, t_end)
#   DELETE /_requests  forget them
#   POST /_next        queue entries (above)
#   GET /_stats        {"connections", "requests", "pending"}
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use EventHttp qw(openai_error);
use Digest::MD5 qw(md5_hex);
use Getopt::Long;

my %opt = (port => 0, key => 'sk-test', 'max-records' => 2000,
           text => 'What does the vehicle service contract cover?');
GetOptions(\%opt, 'port=i', 'key=s', 'text=s', 'max-records=i',
           'watch-stdin', 'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--text TEXT] "
           . "[--max-records N] [--watch-stdin] [--quiet]\n";

my $pending = 0;
my %language = (en => 'english', de => 'german', fr => 'french',
                es => 'spanish', it => 'italian', pt => 'portuguese');
my $BODY_MAX = 26 * 1024 * 1024;

my $http = EventHttp->new(
    EventHttp::openai_errors(),
    port => $opt{port}, watch_stdin => $opt{'watch-stdin'},
    quiet => $opt{quiet}, max_records => $opt{'max-records'},
    body_max => $BODY_MAX,
    # 26214400 (25 MiB) in the message, though $BODY_MAX is 26 MiB
    too_large => 'Maximum content size limit (26214400) exceeded',
    routes => [
        { path => qr{/audio/transcriptions$}, method => 'POST',
          others => 405, run => \&transcribe },
    ],
    stats => sub { return (pending => $pending) },
    forget_next => 1,
    gone => \&gone,
);
my $srv = $http->srv;

# the client went away before the answer
sub gone {
    my ($c, $outcome) = @_;
    my $rec = $c->{state}{rec};
    $rec->{outcome} = $outcome;
    $rec->{t_end} = $http->stamp;
    $pending--;
}

# a RIFF/WAVE file's format, or undef when it is not a valid one
sub wav_info {
    my ($b) = @_;
    return undef if length($b) < 12 || substr($b, 0, 4) ne 'RIFF'
                    || substr($b, 8, 4) ne 'WAVE';
    my $riff = unpack('V', substr($b, 4, 4));
    return undef if $riff + 8 != length $b;
    my ($off, %w) = (12);
    while ($off + 8 <= length $b) {
        my ($id, $len) = (substr($b, $off, 4),
                          unpack('V', substr($b, $off + 4, 4)));
        return undef if $off + 8 + $len > length $b;
        if ($id eq 'fmt ') {
            return undef if $len < 16;
            my ($fmt, $ch, $rate, $byterate, $align, $bits) =
                unpack('vvVVvv', substr($b, $off + 8, 16));
            return undef if !$ch || !$rate || !$bits
                            || $align != $ch * $bits / 8
                            || $byterate != $rate * $align;
            %w = (format => $fmt, channels => $ch, rate => $rate,
                  bits => $bits);
        } elsif ($id eq 'data') {
            return undef unless %w;
            return undef if $len % ($w{channels} * $w{bits} / 8);
            $w{data_bytes} = $len;
        }
        $off += 8 + $len + ($len & 1);
    }
    return undef unless %w && defined $w{data_bytes};
    return \%w;
}

# parse a multipart/form-data body: (\@parts) or (undef, why); a part is
# {name, filename, content_type, data}
sub multipart {
    my ($body, $boundary) = @_;
    my $delim = "--$boundary";
    return (undef, 'the body does not start with the boundary')
        unless substr($body, 0, length($delim) + 2) eq "$delim\r\n";
    my $pos = length($delim) + 2;
    my @parts;
    for (;;) {
        my $hend = index($body, "\r\n\r\n", $pos);
        return (undef, 'a part without the end of its headers')
            if $hend < 0;
        my %h;
        for my $line (split /\r\n/, substr($body, $pos, $hend - $pos)) {
            my ($k, $v) = $line =~ /^([^:]+):\s*(.*?)\s*$/
                or return (undef, "a bad part header: $line");
            $h{lc $k} = $v;
        }
        my $cd = $h{'content-disposition'} // '';
        return (undef, 'a part that is not form-data')
            unless $cd =~ /^form-data\s*(;|$)/i;
        my ($name) = $cd =~ /;\s*name="([^"]*)"/;
        my ($filename) = $cd =~ /;\s*filename="([^"]*)"/;
        return (undef, 'a part without a name') unless defined $name;
        my $dstart = $hend + 4;
        my $next = index($body, "\r\n$delim", $dstart);
        return (undef, 'a part without a closing boundary') if $next < 0;
        push @parts, { name => $name, filename => $filename,
                       content_type => $h{'content-type'},
                       data => substr($body, $dstart, $next - $dstart) };
        $pos = $next + 2 + length $delim;
        my $after = substr($body, $pos, 2);
        if ($after eq '--') {
            my $rest = substr($body, $pos + 2);
            return (undef, 'bytes after the closing boundary')
                unless $rest eq '' || $rest eq "\r\n";
            return (\@parts);
        }
        return (undef, 'a boundary not followed by CRLF')
            unless $after eq "\r\n";
        $pos += 2;
    }
}

sub transcribe {
    my ($c, $r) = @_;
    my ($h, $body) = ($r->{headers}, $r->{body});
    my $rec = $http->record(conn => $c->id, method => 'POST',
                            path => $r->{target}, headers => $h,
                            content_type => $h->{'content-type'},
                            body_bytes => length $body);
    my $fail = sub {
        my ($status, $msg, $code) = @_;
        $rec->{status} = $status;
        $rec->{error} = $msg;
        $rec->{outcome} = 'done';
        $rec->{t_end} = $http->stamp;
        $http->respond_json($c, $status,
                            openai_error($msg, 'invalid_request_error',
                                         $code));
    };
    if (length $opt{key}) {
        my ($key) = ($h->{authorization} // '') =~ /^Bearer\s+(\S+)$/;
        if (!defined $key || $key ne $opt{key}) {
            return $fail->(401, 'Incorrect API key provided: '
                           . ($key // '') . '. You can find your API key '
                           . 'at https://platform.openai.com/account/'
                           . 'api-keys.', 'invalid_api_key');
        }
    }
    my ($boundary) = ($h->{'content-type'} // '')
        =~ m{^multipart/form-data\s*;.*?\bboundary=("?)([^";]+)\1}i
        ? ($2) : ();
    return $fail->(400, 'Could not parse multipart form: the Content-Type '
                   . 'is not multipart/form-data with a boundary')
        unless defined $boundary;
    my ($parts, $why) = multipart($body, $boundary);
    return $fail->(400, "Could not parse multipart form: $why")
        unless $parts;
    my (%fields, @files);
    $rec->{parts} = [map { $_->{name} } @$parts];
    for my $p (@$parts) {
        if (defined $p->{filename}) {
            push @files, { field => $p->{name}, filename => $p->{filename},
                           content_type => $p->{content_type},
                           bytes => length $p->{data},
                           md5 => md5_hex($p->{data}),
                           wav => wav_info($p->{data}) };
        } else {
            $fields{$p->{name}} = $p->{data};
        }
    }
    $rec->{fields} = \%fields;
    $rec->{files} = \@files;
    my ($file) = grep { $_->{field} eq 'file' } @files;
    return $fail->(400, "1 validation error for Request\nbody -> file\n  "
                   . 'field required') unless $file;
    return $fail->(400, 'you must provide a model parameter')
        unless defined $fields{model} && length $fields{model};
    my $format = $fields{response_format} // 'json';
    return $fail->(400, "Invalid response_format: $format")
        unless $format =~ /^(?:json|text|srt|verbose_json|vtt)$/;

    my $o = $http->next_entry // {};
    if ($o->{status}) {
        my $st = 0 + $o->{status};
        my $ra = $o->{'retry-after'} // 1;
        $rec->{status} = $st;
        $rec->{outcome} = 'done';
        $rec->{t_end} = $http->stamp;
        return $http->respond_json($c, $st, openai_error(
            $st == 429 ? 'Rate limit reached for requests'
                       : "The server had an error ($st) while processing "
                         . 'your request.',
            $st == 429 ? 'requests' : 'server_error', undef),
            $st == 429 ? "Retry-After: $ra\r\n" : '');
    }
    my $text = $o->{text} // $opt{text};
    my $duration = $file->{wav}
        ? $file->{wav}{data_bytes} / ($file->{wav}{rate}
                                      * $file->{wav}{channels}
                                      * $file->{wav}{bits} / 8)
        : $o->{duration} // 0;
    my $want_words = $o->{words}
        || ($fields{'timestamp_granularities[]'} // '') eq 'word';
    my $answer = sub {
        $rec->{t_end} = $http->stamp;
        $rec->{outcome} = 'done';
        $pending--;
        $c->{state}{busy} = 0;
        $c->{state}{rec} = undef;
        if ($o->{reset}) {
            $rec->{outcome} = 'reset';
            return $c->reset;
        }
        $rec->{status} = 200;
        if ($o->{empty}) {
            $http->respond($c, 200, 'application/json', '');
        } elsif ($o->{malformed}) {
            $http->respond($c, 200, 'application/json',
                           '{"task": "transcribe", "text": "What does');
        } elsif ($o->{'no-text'}) {
            $http->respond_json($c, 200, { task => 'transcribe',
                                           duration => $duration });
        } elsif ($format eq 'text') {
            $http->respond($c, 200, 'text/plain; charset=utf-8', "$text\n");
        } elsif ($format eq 'json') {
            $http->respond_json($c, 200, { text => $text });
        } elsif ($format eq 'verbose_json') {
            my @w = split ' ', $text;
            my $v = {
                task => 'transcribe',
                language => $language{lc($fields{language} // 'en')}
                            // $fields{language},
                duration => 0 + sprintf('%.2f', $duration),
                text => length $text ? " $text" : '',
                segments => length $text ? [{
                    id => 0, seek => 0, start => 0.0,
                    end => 0 + sprintf('%.2f', $duration), text => " $text",
                    tokens => [map { 1000 + $_ } 0 .. $#w],
                    temperature => 0.0,
                    avg_logprob => 0 + ($o->{avg_logprob} // -0.25),
                    compression_ratio => 1.1,
                    no_speech_prob => 0 + ($o->{no_speech_prob} // 0.01),
                }] : [],
            };
            if ($want_words) {
                $v->{words} = [map { { word => $w[$_],
                                       start => 0 + sprintf('%.2f', 0.3 * $_),
                                       end => 0 + sprintf('%.2f',
                                                          0.3 * $_ + 0.3) } }
                               0 .. $#w];
            }
            $http->respond_json($c, 200, $v);
        } else {
            $http->respond($c, 200, 'text/plain; charset=utf-8',
                           "1\n00:00:00,000 --> 00:00:02,000\n$text\n");
        }
        $http->after_response($c);
    };
    $pending++;
    $c->{state}{busy} = 1;
    $c->{state}{rec} = $rec;
    if ($o->{stall}) {
        $rec->{outcome} = 'stalled';
        return;
    }
    $c->{state}{timer} = $srv->after(0 + ($o->{delay} // 0), $answer);
}

$http->run;
