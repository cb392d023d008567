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
use EventHttp qw(openai_error);
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

my (%seen, %enc);
my $streams = 0;

my $http = EventHttp->new(
    EventHttp::openai_errors(),
    port => $opt{port}, watch_stdin => $opt{'watch-stdin'},
    quiet => $opt{quiet}, max_records => $opt{'max-records'},
    record_defaults => { tokens => 0 },
    routes => [
        { path => qr{/chat/completions$}, method => 'POST', others => 405,
          run => \&chat },
        { path => qr{/models$}, method => 'GET', run => \&models },
    ],
    stats => sub { return (streams => $streams) },
    gone => sub { $_[0]{state}{end}->($_[1]) },
);
my $srv = $http->srv;
my $json = $http->json;

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
    # a queue entry's times counts only with a status
    if (my $q = $http->next_entry(times_only_with => 'status')) {
        %o = (%o, %$q);
        delete $o{times};
    }
    for my $k (qw(first tps tokens comment-every retry-after)) {
        $o{$k} = 0 + ($o{$k} =~ /^\d+(?:\.\d+)?$/ ? $o{$k} : 0);
    }
    return \%o;
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

# an SSE event as a piece of the chunked body
sub sse { $http->chunk($_[0], 'data: ' . $json->encode($_[1]) . "\n\n") }

sub models {
    my ($c) = @_;
    $http->respond_json($c, 200, { object => 'list', data => [
        { id => 'openai/gpt-4o', object => 'model' },
        { id => 'mock', object => 'model' } ] });
}

sub chat {
    my ($c, $r) = @_;
    my ($h, $body) = ($r->{headers}, $r->{body});
    my $req = eval { $json->decode($body) };
    my $rec = $http->record(conn => $c->id, method => 'POST',
                            path => $r->{target}, headers => $h,
                            body => $req, ref $req ? () : (raw => $body));
    if (length $opt{key}) {
        my ($key) = ($h->{authorization} // '') =~ /^Bearer\s+(\S+)$/;
        if (!defined $key || $key ne $opt{key}) {
            $rec->{status} = 401;
            $rec->{outcome} = 'done';
            return $http->respond_json($c, 401, openai_error(
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
        return $http->respond_json($c, 400, openai_error(
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
        return $http->respond_json($c, $st, openai_error(
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
            $rec->{t_first} = $rec->{t_end} = $http->stamp;
            $rec->{tokens} = $n;
            $rec->{outcome} = 'done';
            $http->respond_json($c, 200, {
                id => $id, object => 'chat.completion', created => $created,
                model => $model,
                choices => [{ index => 0, finish_reason => $finish,
                              message => { role => 'assistant',
                                           content => join('',
                                               map { $word->($_) }
                                               0 .. $n - 1) } }],
                usage => $usage });
            $http->after_response($c);
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
        $http->chunk($c, 'data: {"choices":[{"delta":{"content":' . $e
                         . '},"finish_reason":null,"index":0}]' . $tail
                         . "\n\n");
    };
    $c->write("HTTP/1.1 200 OK\r\n"
              . "Content-Type: " . ($o->{'sse-type'} // 'text/event-stream')
              . "\r\n"
              . "Cache-Control: no-cache\r\n"
              . "Transfer-Encoding: chunked\r\n\r\n");
    $http->chunk($c, ": OPENROUTER PROCESSING\n\n");
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
        $rec->{t_end} = $http->stamp;
        $srv->cancel($st->{comment});
        $st->{timer} = $st->{comment} = $st->{rec} = undef;
        $st->{busy} = 0;
        $streams--;
        $step = $comment = undef;       # the closures refer to each other
    };
    $comment = sub {
        $http->chunk($c, ": OPENROUTER PROCESSING\n\n");
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
                $http->chunk_end($c);
                $end->('error-sent');
                return $http->after_response($c);
            }
            if ($fail eq 'reset-after') {
                $end->('reset');
                return $c->reset;
            }
            if ($fail eq 'malformed-after') {
                $http->chunk($c, "data: {\"id\":\"$id\",\"choices\":"
                                 . "[{\"delta\":{\"content\": oops\n\n");
                delete $o->{'malformed-after'};
                last;
            }
            # nothing more on this connection; a close is still recorded
            $rec->{outcome} = 'stalled';
            return;
        }
        if ($i < $n) {
            $rec->{t_first} //= $http->stamp;
            $content->($word->($i));
            $rec->{tokens} = ++$i;
            $st->{timer} = $srv->after($gap, $step);
            return;
        }
        sse($c, $delta->({}, $finish));
        sse($c, { %$base, choices => [], usage => $usage })
            if $usage_wanted && !$o->{'no-usage'};
        $http->chunk($c, "data: [DONE]\n\n") unless $o->{'no-done'};
        $http->chunk_end($c);
        $end->('done');
        $http->after_response($c);
    };
    $st->{timer} = $srv->after($o->{first}, $step);
    $st->{end} = $end;
}

$http->run;
