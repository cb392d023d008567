#!/usr/bin/perl
# A mock of OpenAI's embeddings API, for tests: speaks the real wire format.
#
#   perl tools/mock/openai-embeddings.pl [--port N] [--key KEY] [--dim N]
#        [--rate-limit N] [--retry-after S] [--fail N] [--status CODE]
#        [--wrong-dim] [--shuffle] [--delay MS] [--log FILE]
#        [--watch-stdin] [--quiet]
#
#   --port N         listen on 127.0.0.1:N (default 0: any free port); the
#                    port is printed as the first line of stdout
#   --key KEY        the key expected in "Authorization: Bearer KEY"
#                    (default sk-test)
#   --dim N          the model's own dimension, used when the request has
#                    no "dimensions" (default 1536)
#   --rate-limit N   the first N requests answer 429 with Retry-After
#   --retry-after S  the Retry-After of those answers (default 1)
#   --fail N         the first N requests answer 500
#   --status CODE    every authenticated request answers CODE
#   --wrong-dim      vectors have one dimension more than asked
#   --shuffle        the "data" items come in reverse order (with their
#                    "index", as the API allows)
#   --delay MS       wait before answering (a slow provider)
#   --log FILE       append one JSON line per request that reached the
#                    endpoint: {"status", "inputs", "tokens", "model",
#                    "dimensions", "encoding_format"}
#   --watch-stdin    exit when stdin reaches EOF
#
# POST .../embeddings with {"model", "input": string or array of strings,
# "dimensions"?, "encoding_format"?: "float"}:
#   200 {"object":"list","data":[{"object":"embedding","index":i,
#        "embedding":[...]}],"model":...,"usage":{"prompt_tokens",
#        "total_tokens"}}; each vector is a deterministic function of its
#        text (unit length), so equal texts get equal vectors
#   400 {"error":{"message","type":"invalid_request_error"}} for a bad
#       body, more than 2048 inputs, more than 300000 tokens (estimated as
#       bytes / 4) or an empty string
#   401 {"error":{"message":"Incorrect API key provided: <key>" ...}}: the
#       key is echoed back, as the real API does, so that clients can be
#       tested for keeping it out of their logs
#   404 for another path, 405 for another method
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use MockServer;
use Getopt::Long;
use JSON::PP;
use Digest::MD5 qw(md5);
use Time::HiRes qw(usleep);

my %opt = (key => 'sk-test', dim => 1536, port => 0, 'rate-limit' => 0,
           'retry-after' => 1, fail => 0, delay => 0);
GetOptions(\%opt, 'port=i', 'key=s', 'dim=i', 'rate-limit=i',
           'retry-after=i', 'fail=i', 'status=i', 'wrong-dim', 'shuffle',
           'delay=i', 'log=s', 'watch-stdin', 'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--dim N] [--rate-limit N] "
           . "[--retry-after S] [--fail N] [--status CODE] [--wrong-dim] "
           . "[--shuffle] [--delay MS] [--log FILE] [--watch-stdin] "
           . "[--quiet]\n";

my $json = JSON::PP->new->canonical->utf8;
my $requests = 0;
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              404 => 'Not Found', 405 => 'Method Not Allowed',
              411 => 'Length Required', 413 => 'Payload Too Large',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable');

my $srv = MockServer->new(port => $opt{port},
                          watch_stdin => $opt{'watch-stdin'},
                          quiet => $opt{quiet});

sub respond {
    my ($c, $status, $body, $extra, $close) = @_;
    my $r = $reason{$status} // 'Status';
    $c->write("HTTP/1.1 $status $r\r\n"
              . "Content-Type: application/json\r\n"
              . "Content-Length: " . length($body) . "\r\n"
              . ($extra // '')
              . ($close ? "Connection: close\r\n" : '')
              . "\r\n$body");
    $c->close_after if $close;
}

sub error {
    my ($c, $status, $msg, $type, $extra) = @_;
    respond($c, $status, $json->encode({ error => {
        message => $msg, type => $type // 'invalid_request_error',
        param => undef, code => undef } }), $extra);
}

sub logline {
    my (%rec) = @_;
    return unless $opt{log};
    open my $fh, '>>', $opt{log} or die "mock: $opt{log}: $!\n";
    print $fh $json->encode(\%rec), "\n";
    close $fh or die "mock: $opt{log}: $!\n";
}

# a unit vector of $d floats, a function of the text alone
sub vector {
    my ($text, $d) = @_;
    my (@v, $seed, $norm);
    $seed = md5($text);
    my $i = 0;
    while (@v < $d) {
        $seed = md5($seed . $i++);
        push @v, map { ($_ - 32767.5) / 32767.5 } unpack('n8', $seed);
    }
    splice @v, $d;
    $norm += $_ * $_ for @v;
    $norm = sqrt($norm) || 1;
    return [map { 0 + sprintf('%.6f', $_ / $norm) } @v];
}

sub handle {
    my ($c, $method, $path, $h, $body) = @_;

    if ($path !~ m{/embeddings(?:\?.*)?$}) {
        return error($c, 404, "Unknown request URL: $path", 'not_found');
    }
    if ($method ne 'POST') {
        return error($c, 405, "Method $method not allowed");
    }
    $requests++;
    my $auth = $h->{authorization} // '';
    my ($key) = $auth =~ /^Bearer\s+(\S+)$/;
    if (!defined $key || $key ne $opt{key}) {
        logline(status => 401);
        return error($c, 401, 'Incorrect API key provided: '
                     . ($key // '') . '. You can find your API key at '
                     . 'https://platform.openai.com/account/api-keys.',
                     'invalid_request_error');
    }
    if ($requests <= $opt{'rate-limit'}) {
        $srv->note("request $requests: 429 as asked");
        logline(status => 429);
        return error($c, 429, 'Rate limit reached for requests',
                     'requests', "Retry-After: $opt{'retry-after'}\r\n");
    }
    if ($requests <= $opt{'rate-limit'} + $opt{fail}) {
        $srv->note("request $requests: 500 as asked");
        logline(status => 500);
        return error($c, 500, 'The server had an error while processing '
                     . 'your request.', 'server_error');
    }
    if ($opt{status}) {
        logline(status => $opt{status});
        return error($c, $opt{status}, "status $opt{status} as asked",
                     'server_error');
    }
    my $req = eval { $json->decode($body) };
    if (!$req || ref $req ne 'HASH') {
        return error($c, 400, 'We could not parse the JSON body of your '
                     . 'request.');
    }
    my $input = $req->{input};
    my @in = ref $input eq 'ARRAY' ? @$input : defined $input ? ($input) : ();
    if (!@in || grep { !defined $_ || ref $_ || $_ eq '' } @in) {
        return error($c, 400, "'input' must be a non-empty string or an "
                     . "array of non-empty strings");
    }
    my $tokens = 0;
    for (@in) {
        my $bytes = do { use bytes; length $_ };
        $tokens += int(($bytes + 3) / 4) || 1;
    }
    my $d = $req->{dimensions} // $opt{dim};
    my $bad = @in > 2048 ? "'input' : maximum 2048 inputs, got " . @in
            : $tokens > 300000 ? "Requested $tokens tokens, max 300000 "
                                 . "tokens per request"
            : ($d !~ /^\d+$/ || $d < 1)
              ? "'dimensions' must be a positive integer" : undef;
    logline(status => $bad ? 400 : 200, inputs => scalar @in,
            tokens => $tokens, model => $req->{model},
            dimensions => $req->{dimensions},
            encoding_format => $req->{encoding_format});
    return error($c, 400, $bad) if $bad;
    $d++ if $opt{'wrong-dim'};
    usleep($opt{delay} * 1000) if $opt{delay};
    my @data = map { { object => 'embedding', index => $_,
                       embedding => vector($in[$_], $d) } } 0 .. $#in;
    @data = reverse @data if $opt{shuffle};
    respond($c, 200, $json->encode({
        object => 'list', data => \@data,
        model => $req->{model} // 'text-embedding-3-small',
        usage => { prompt_tokens => $tokens, total_tokens => $tokens } }));
}

$srv->run(on_data => sub {
    my ($c) = @_;
    for (;;) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            respond($c, 413, '{}', undef, 1) if length $c->{in} > 65536;
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $path) = (shift(@lines) // '') =~ /^(\S+) (\S+) HTTP/
            or return respond($c, 400, '{}', undef, 1);
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            return respond($c, 411, '{}', undef, 1);
        }
        my $len = $h{'content-length'} // 0;
        return if length($c->{in}) < $end + 4 + $len;
        my $body = substr($c->{in}, $end + 4, $len);
        substr($c->{in}, 0, $end + 4 + $len) = '';
        handle($c, $method, $path, \%h, $body);
        return if $c->{closing};
        $c->close_after if ($h{connection} // '') =~ /close/i;
        return if $c->{closing};
    }
});
