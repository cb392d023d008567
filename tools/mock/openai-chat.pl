#!/usr/bin/perl
# A mock of an OpenAI-compatible /chat/completions endpoint (OpenAI,
# OpenRouter, llama.cpp, vLLM...), for tests and benchmarks: speaks the
# real streaming wire format and fails on demand.
#
#   perl tools/mock/openai-chat.pl [--port N] [--key KEY] [--tokens N]
#        [--first-token-ms MS] [--tps N] [--comment-ms MS] [--text TEXT]
#        [--max-records N] [--watch-stdin] [--quiet]
#
#   --port N            listen on 127.0.0.1:N (default 0: any free port);
#                       the port is printed as the first line of stdout
#   --key KEY           the key expected in "Authorization: Bearer KEY"
#                       (default sk-test; "" accepts any or none)
#   --tokens N          content chunks in an answer (default 12), fewer
#                       when the request's max_tokens is smaller
#   --first-token-ms MS delay before the first content chunk (default 0)
#   --tps N             content chunks per second after the first
#                       (default 0: as fast as the socket takes them, one
#                       write each)
#   --comment-ms MS     while waiting for the first token, repeat the
#                       comment ": OPENROUTER PROCESSING" this often
#                       (default 250); one is always sent at once
#   --text TEXT         the words of the answers (cycled)
#   --max-records N     requests kept for GET /_requests (default 2000)
#   --watch-stdin       exit when stdin reaches EOF
#
# POST .../chat/completions {"model", "messages", "stream", "max_tokens",
# "stream_options": {"include_usage"}...}:
#
#   stream true: 200 text/event-stream, chunked: the comment line, then
#     "data: {json}\n\n" chunks of object "chat.completion.chunk": a first
#     one with delta {"role":"assistant","content":""}, one per word with
#     delta {"content":" word"}, a last one with an empty delta and
#     finish_reason "stop" ("length" when max_tokens cut it), then, with
#     stream_options.include_usage, a chunk with "choices": [] and
#     "usage" {"prompt_tokens", "completion_tokens", "total_tokens"},
#     then "data: [DONE]".
#   stream false: one "chat.completion" object with the whole message.
#   401 {"error": {...}} with a wrong key (echoed back, as the real APIs
#     do, so that clients can be tested for keeping it out of logs).
#
# Failure modes and pacing, per request.  Each is a key[=value]; they
# come from the command line (as above), then from the model name after
# an "@" ("gpt-test@first=2000,error-after=3"), then from the next entry
# queued with POST /_next; later ones win.
#
#   status=CODE        answer CODE with an error object (429 adds
#                      Retry-After), instead of the stream
#   times=N            ...only for the first N requests naming this exact
#                      model (or this queue entry), then answer normally
#   retry-after=S      the Retry-After of a 429 (default 1)
#   first=MS           first-token delay; tps=N; tokens=N; comment-every=MS
#   error-after=N      after N content chunks, an error object mid-stream
#                      (OpenRouter's form: "error": {"code", "message"}
#                      and finish_reason "error"), then the end of the body
#   reset-after=N      after N content chunks, reset the connection (RST)
#   malformed-after=N  after N content chunks, a chunk of broken JSON
#   stall-after=N      after N content chunks, send nothing more
#   no-usage, no-done  leave out the usage chunk, the [DONE] line
#   echo               answer with the words of the last user message
#   sse-type=TYPE      the Content-Type of a stream (a server that gets it
#                      wrong)
#   plain              answer with one chat.completion object even when
#                      a stream was asked for (as some servers do)
#
# Control endpoints:
#   GET /_requests     {"requests": [...]}: per request its id, conn,
#                      method, path, headers (lower-case names), body
#                      (parsed JSON, or "raw" when not JSON), model,
#                      status, tokens (content chunks sent), outcome
#                      ("pending", "streaming", "done", "error-sent",
#                      "reset", "stalled", "client-closed"), and times
#                      (t_start, t_first, t_end: seconds since start)
#   DELETE /_requests  forget them
#   POST /_next        queue one object (or an array) of the keys above
#                      for the next requests, one entry each
#   GET /_stats        {"connections", "streams", "requests"}: open
#                      connections, streams running, requests served
#   GET .../models     a model list
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use EventServer;
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time);

my %opt = (port => 0, key => 'sk-test', tokens => 12,
           'first-token-ms' => 0, tps => 0, 'comment-ms' => 250,
           'max-records' => 2000,
           text => 'Adam here. A vehicle service contract covers repairs '
                   . 'after the factory warranty ends, and GAP protection '
                   . 'pays the difference between what is owed on the loan '
                   . 'and what the insurer pays.');
GetOptions(\%opt, 'port=i', 'key=s', 'tokens=i', 'first-token-ms=i',
           'tps=f', 'comment-ms=i', 'text=s', 'max-records=i',
           'watch-stdin', 'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--tokens N] "
           . "[--first-token-ms MS] [--tps N] [--comment-ms MS] "
           . "[--text TEXT] [--max-records N] [--watch-stdin] [--quiet]\n";

my $json = JSON::PP->new->canonical->utf8;
my $t0 = time;
my (@records, @queue, %seen, %enc);
my $served = 0;
my $next_id = 0;
my $streams = 0;
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              404 => 'Not Found', 405 => 'Method Not Allowed',
              411 => 'Length Required', 413 => 'Payload Too Large',
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

sub error_body {
    my ($msg, $type, $code) = @_;
    return { error => { message => $msg, type => $type, param => undef,
                        code => $code } };
}

# the options of one request: command line, model name, queue entry
sub options_for {
    my ($model) = @_;
    my %o = (first => $opt{'first-token-ms'}, tps => $opt{tps},
             tokens => $opt{tokens}, 'comment-every' => $opt{'comment-ms'},
             'retry-after' => 1);
    my ($name, $spec) = ($model // '') =~ /^([^@]*)(?:@(.*))?$/;
    my %m;
    for my $kv (split /,/, $spec // '') {
        my ($k, $v) = split /=/, $kv, 2;
        $m{$k} = $v // 1 if length $k;
    }
    if (defined $m{status} && defined $m{times}
        && ++$seen{$model} > $m{times})
    {
        delete $m{status};
    }
    %o = (%o, %m);
    if (my $q = $queue[0]) {
        if (defined $q->{status} && defined $q->{times}
            && --$q->{times} > 0)
        {
            %o = (%o, %$q);                 # the entry stays for more
        } else {
            shift @queue;
            %o = (%o, %$q);
        }
        delete $o{times};
    }
    for my $k (qw(first tps tokens comment-every retry-after)) {
        $o{$k} = 0 + ($o{$k} =~ /^\d+(?:\.\d+)?$/ ? $o{$k} : 0);
    }
    return \%o;
}

sub record {
    my (%r) = @_;
    my $rec = { id => ++$next_id, t_start => stamp(), tokens => 0,
                outcome => 'pending', %r };
    push @records, $rec;
    shift @records while @records > $opt{'max-records'};
    return $rec;
}

sub words_for {
    my ($req, $o) = @_;
    my $text = $opt{text};
    if ($o->{echo}) {
        for my $m (reverse @{ $req->{messages} // [] }) {
            if (ref $m eq 'HASH' && ($m->{role} // '') eq 'user'
                && defined $m->{content} && !ref $m->{content})
            {
                $text = $m->{content};
                last;
            }
        }
    }
    my @w = split ' ', $text;
    @w = ('...') unless @w;
    return @w;
}

sub prompt_tokens {
    my ($req) = @_;
    my $n = 0;
    for my $m (@{ $req->{messages} // [] }) {
        next unless ref $m eq 'HASH';
        my $s = $m->{content} // '';
        $s = $json->encode($s) if ref $s;
        { use bytes; $n += int(length($s) / 4) + 4; }
    }
    return $n;
}

# the chunk of an SSE line, with HTTP chunked framing
sub chunk {
    my ($c, $data) = @_;
    return unless length $data;
    $c->write(sprintf("%x\r\n", length $data) . $data . "\r\n");
}

sub sse { chunk($_[0], 'data: ' . $json->encode($_[1]) . "\n\n") }

sub chat {
    my ($c, $h, $body, $path) = @_;
    my $req = eval { $json->decode($body) };
    my $rec = record(conn => $c->id, method => 'POST', path => $path,
                     headers => $h, body => $req,
                     ref $req ? () : (raw => $body));
    $served++;
    if (length $opt{key}) {
        my ($key) = ($h->{authorization} // '') =~ /^Bearer\s+(\S+)$/;
        if (!defined $key || $key ne $opt{key}) {
            $rec->{status} = 401;
            $rec->{outcome} = 'done';
            return respond_json($c, 401, error_body(
                'Incorrect API key provided: ' . ($key // '')
                . '. You can find your API key at '
                . 'https://platform.openai.com/account/api-keys.',
                'invalid_request_error', 'invalid_api_key'));
        }
    }
    if (ref $req ne 'HASH' || ref $req->{messages} ne 'ARRAY'
        || !@{ $req->{messages} } || !defined $req->{model})
    {
        $rec->{status} = 400;
        $rec->{outcome} = 'done';
        return respond_json($c, 400, error_body(
            'We could not parse the JSON body of your request, or it has '
            . 'no model or messages.', 'invalid_request_error', undef));
    }
    $rec->{model} = $req->{model};
    my $o = options_for($req->{model});
    if ($o->{status}) {
        my $st = 0 + $o->{status};
        $rec->{status} = $st;
        $rec->{outcome} = 'done';
        my $extra = $st == 429 ? "Retry-After: $o->{'retry-after'}\r\n" : '';
        return respond_json($c, $st, error_body(
            $st == 429 ? 'Rate limit exceeded: free-models-per-min'
                       : "The server had an error ($st) while processing "
                         . 'your request.',
            $st == 429 ? 'rate_limit_exceeded' : 'server_error', $st),
            $extra);
    }

    my @words = words_for($req, $o);
    my $n = $o->{tokens};
    my $finish = 'stop';
    if (defined $req->{max_tokens} && $req->{max_tokens} =~ /^\d+$/
        && $req->{max_tokens} < $n)
    {
        $n = $req->{max_tokens};
        $finish = 'length';
    }
    my $id = 'chatcmpl-mock' . $rec->{id};
    my $created = int time;
    my $model = $req->{model};
    my $usage = { prompt_tokens => prompt_tokens($req),
                  completion_tokens => $n };
    $usage->{total_tokens} = $usage->{prompt_tokens} + $n;
    my $word = sub {
        my ($i) = @_;
        return ($i ? ' ' : '') . $words[$i % @words];
    };
    $rec->{status} = 200;

    if (!$req->{stream} || $o->{plain}) {
        $c->{state}{busy} = 1;
        $c->{state}{timer} = $srv->after($o->{first}, sub {
            $c->{state}{busy} = 0;
            $rec->{t_first} = $rec->{t_end} = stamp();
            $rec->{tokens} = $n;
            $rec->{outcome} = 'done';
            respond_json($c, 200, {
                id => $id, object => 'chat.completion', created => $created,
                model => $model,
                choices => [{ index => 0, finish_reason => $finish,
                              message => { role => 'assistant',
                                           content => join('',
                                               map { $word->($_) }
                                               0 .. $n - 1) } }],
                usage => $usage });
            after_response($c);
        });
        return;
    }

    my $usage_wanted = ref $req->{stream_options} eq 'HASH'
                       && $req->{stream_options}{include_usage};
    my $base = { id => $id, object => 'chat.completion.chunk',
                 created => $created, model => $model };
    my $delta = sub {
        my ($d, $fin) = @_;
        return { %$base, choices => [{ index => 0, delta => $d,
                                       finish_reason => $fin }] };
    };
    # a content chunk is the hot path: the same text as sse($delta->())
    # gives, from a template, so that thousands of streams stay cheap
    my $tail = ',' . substr($json->encode($base), 1);
    my $content = sub {
        my ($w) = @_;
        my $e = $enc{$w} //= do {
            %enc = () if keys %enc > 10000;
            JSON::PP->new->utf8->allow_nonref->encode($w);
        };
        chunk($c, 'data: {"choices":[{"delta":{"content":' . $e
                  . '},"finish_reason":null,"index":0}]' . $tail . "\n\n");
    };
    $c->write("HTTP/1.1 200 OK\r\n"
              . "Content-Type: " . ($o->{'sse-type'} // 'text/event-stream')
              . "\r\n"
              . "Cache-Control: no-cache\r\n"
              . "Transfer-Encoding: chunked\r\n\r\n");
    chunk($c, ": OPENROUTER PROCESSING\n\n");
    $rec->{outcome} = 'streaming';
    $c->{state}{busy} = 1;
    $c->{state}{rec} = $rec;
    $streams++;

    my $st = $c->{state};
    my $first_at = time + $o->{first} / 1000;
    my $gap = $o->{tps} > 0 ? 1000 / $o->{tps} : 0;
    my $i = 0;
    my ($step, $comment);
    my $end = sub {
        my ($outcome) = @_;
        $rec->{outcome} = $outcome;
        $rec->{t_end} = stamp();
        $srv->cancel($st->{comment});
        $st->{timer} = $st->{comment} = $st->{rec} = undef;
        $st->{busy} = 0;
        $streams--;
        $step = $comment = undef;       # the closures refer to each other
    };
    $comment = sub {
        chunk($c, ": OPENROUTER PROCESSING\n\n");
        $st->{comment} = $srv->after($o->{'comment-every'}, $comment)
            if $o->{'comment-every'} > 0;
    };
    if ($o->{first} > 0 && $o->{'comment-every'} > 0
        && $o->{'comment-every'} < $o->{first})
    {
        $st->{comment} = $srv->after($o->{'comment-every'}, $comment);
    }
    $step = sub {
        return unless $c->is_open;
        if ($i == 0) {
            $srv->cancel($st->{comment});
            $st->{comment} = undef;
            sse($c, $delta->({ role => 'assistant', content => '' }, undef));
        }
        for my $fail (qw(error-after reset-after malformed-after
                         stall-after))
        {
            next unless defined $o->{$fail} && $i == $o->{$fail};
            if ($fail eq 'error-after') {
                sse($c, { %$base, provider => 'MockProvider',
                          error => { code => 502, message =>
                              'Upstream provider disconnected' },
                          choices => [{ index => 0,
                                        delta => { content => '' },
                                        finish_reason => 'error' }] });
                $c->write("0\r\n\r\n");
                $end->('error-sent');
                return after_response($c);
            }
            if ($fail eq 'reset-after') {
                $end->('reset');
                return $c->reset;
            }
            if ($fail eq 'malformed-after') {
                chunk($c, "data: {\"id\":\"$id\",\"choices\":[{\"delta\":"
                          . "{\"content\": oops\n\n");
                delete $o->{'malformed-after'};
                last;
            }
            # nothing more on this connection; a close is still recorded
            $rec->{outcome} = 'stalled';
            return;
        }
        if ($i < $n) {
            $rec->{t_first} //= stamp();
            $content->($word->($i));
            $rec->{tokens} = ++$i;
            $st->{timer} = $srv->after($gap, $step);
            return;
        }
        sse($c, $delta->({}, $finish));
        sse($c, { %$base, choices => [], usage => $usage })
            if $usage_wanted && !$o->{'no-usage'};
        chunk($c, "data: [DONE]\n\n") unless $o->{'no-done'};
        $c->write("0\r\n\r\n");
        $end->('done');
        after_response($c);
    };
    $st->{timer} = $srv->after($o->{first}, $step);
    $st->{end} = $end;
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
        return respond_json($c, 400, error_body('an object or an array',
                                                'invalid_request_error'))
            if !@e || grep { ref $_ ne 'HASH' } @e;
        push @queue, @e;
        return respond_json($c, 200, { queued => scalar @queue });
    }
    return respond_json($c, 404, error_body("Unknown request URL: $path",
                                            'not_found', 'not_found'));
}

sub on_data {
    my ($c) = @_;
    while (!$c->{state}{busy} && $c->is_open && !$c->{closing}) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            if (length $c->{in} > 65536) {
                respond_json($c, 413, error_body('headers too large',
                                                 'invalid_request_error'));
                $c->close_after;
            }
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $path) = (shift(@lines) // '') =~ /^(\S+) (\S+) HTTP/;
        if (!defined $method) {
            respond_json($c, 400, error_body('bad request line',
                                             'invalid_request_error'));
            $c->close_after;
            return;
        }
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            respond_json($c, 411, error_body('Content-Length required',
                                             'invalid_request_error'));
            $c->close_after;
            return;
        }
        my $len = $h{'content-length'} // 0;
        if ($len !~ /^\d+$/ || $len > 16 * 1024 * 1024) {
            respond_json($c, 413, error_body('body too large',
                                             'invalid_request_error'));
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
        } elsif ($p =~ m{/chat/completions$}) {
            if ($method ne 'POST') {
                respond_json($c, 405, error_body("Method $method not allowed",
                                                 'invalid_request_error'));
            } else {
                chat($c, \%h, $body, $path);
            }
        } elsif ($p =~ m{/models$} && $method eq 'GET') {
            respond_json($c, 200, { object => 'list', data => [
                { id => 'openai/gpt-4o', object => 'model' },
                { id => 'mock', object => 'model' } ] });
        } else {
            respond_json($c, 404, error_body("Unknown request URL: $path",
                                             'not_found', 'not_found'));
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
        $srv->cancel($st->{comment});
        if (my $rec = $st->{rec}) {
            # the client went away mid-answer
            $st->{end}->($why eq 'reset' ? 'reset' : 'client-closed');
        }
        %$st = ();
    },
);
