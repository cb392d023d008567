#!/usr/bin/perl
# A mock of Mailgun's send API, for tests: speaks the real wire format.
#
#   perl tools/mock/mailgun.pl [--port N] [--key KEY] [--domain D]
#        [--fail N] [--status CODE] [--log FILE] [--watch-stdin] [--quiet]
#
#   --port N       listen on 127.0.0.1:N (default 0: any free port); the
#                  port is printed as the first line of stdout
#   --key KEY      the API key expected in "Authorization: Basic
#                  base64(api:KEY)" (default key-test)
#   --domain D     only this sending domain exists (default: any)
#   --fail N       the first N requests to the send endpoint answer 500
#   --status CODE  every authenticated send answers CODE (e.g. 429, 503)
#   --log FILE     append each accepted message as one JSON line
#   --watch-stdin  exit when stdin reaches EOF
#
# POST /v3/{domain}/messages with multipart/form-data (or
# application/x-www-form-urlencoded) fields from, to, subject, text and/or
# html (and any other field, e.g. h:Header, o:option, v:variable):
#   200 {"id":"<...@domain>","message":"Queued. Thank you."}
#   400 {"message":"'to' parameter is missing"} (or from, subject, text)
#   401 Forbidden            (wrong or missing credentials)
#   404 {"message":"Domain not found: D"} / unknown path
#   405 for another method on the endpoint
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use MockServer;
use Getopt::Long;
use MIME::Base64 qw(decode_base64);
use JSON::PP;
use POSIX qw(strftime);

my %opt = (key => 'key-test', fail => 0, port => 0);
GetOptions(\%opt, 'port=i', 'key=s', 'domain=s', 'fail=i', 'status=i',
           'log=s', 'watch-stdin', 'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--domain D] [--fail N] "
           . "[--status CODE] [--log FILE] [--watch-stdin] [--quiet]\n";

my $json = JSON::PP->new->canonical->utf8(0);
my $requests = 0;
my $seq = 0;
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              404 => 'Not Found', 405 => 'Method Not Allowed',
              411 => 'Length Required', 413 => 'Payload Too Large',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable');

my $srv = MockServer->new(port => $opt{port},
                          watch_stdin => $opt{'watch-stdin'},
                          quiet => $opt{quiet});

sub respond {
    my ($c, $status, $ctype, $body, $close) = @_;
    my $r = $reason{$status} // 'Status';
    $c->write("HTTP/1.1 $status $r\r\n"
              . "Content-Type: $ctype\r\n"
              . "Content-Length: " . length($body) . "\r\n"
              . ($close ? "Connection: close\r\n" : '')
              . "\r\n$body");
    $c->close_after if $close;
}

sub respond_json {
    my ($c, $status, $obj) = @_;
    respond($c, $status, 'application/json', $json->encode($obj));
}

sub url_decode {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr(hex $1)/ge;
    return $s;
}

# fields as name => value (repeated names joined with ", "), raw bytes
sub parse_fields {
    my ($ctype, $body) = @_;
    my @pairs;
    if ($ctype =~ m{^multipart/form-data}i) {
        my ($b) = $ctype =~ /boundary="?([^";]+)"?/i or return;
        my @parts = split /\r\n--\Q$b\E/, "\r\n$body";
        shift @parts;                       # the preamble
        for my $p (@parts) {
            last if $p =~ /^--/;            # the closing delimiter
            $p =~ s/^\r\n// or return;
            my ($head, $value) = split /\r\n\r\n/, $p, 2;
            return unless defined $value;
            my ($name) = $head =~ /name="([^"]*)"/i or return;
            push @pairs, [$name, $value];
        }
        return unless $body =~ /--\Q$b\E--/;
    } elsif ($ctype =~ m{^application/x-www-form-urlencoded}i) {
        for my $kv (split /&/, $body) {
            my ($k, $v) = split /=/, $kv, 2;
            push @pairs, [url_decode($k), url_decode($v // '')];
        }
    } else {
        return;
    }
    my %f;
    for (@pairs) {
        my ($k, $v) = @$_;
        $f{$k} = exists $f{$k} ? "$f{$k}, $v" : $v;
    }
    return \%f;
}

sub handle {
    my ($c, $method, $path, $h, $body) = @_;

    my ($domain) = $path =~ m{^/v3/([^/?]+)/messages(?:\?.*)?$};
    if (!defined $domain) {
        return respond_json($c, 404, { message => 'not found' });
    }
    if ($method ne 'POST') {
        return respond_json($c, 405, { message => 'method not allowed' });
    }
    $requests++;
    my $auth = $h->{authorization} // '';
    my ($cred) = $auth =~ /^Basic\s+(\S+)$/i;
    if (!defined $cred || decode_base64($cred) ne "api:$opt{key}") {
        return respond($c, 401, 'text/plain', 'Forbidden');
    }
    if (defined $opt{domain} && $domain ne $opt{domain}) {
        return respond_json($c, 404,
                            { message => "Domain not found: $domain" });
    }
    if ($requests <= $opt{fail}) {
        $srv->note("request $requests: failing with 500 as asked");
        return respond_json($c, 500, { message => 'Internal Server Error' });
    }
    if ($opt{status}) {
        return respond_json($c, $opt{status},
                            { message => "status $opt{status} as asked" });
    }
    my $f = parse_fields($h->{'content-type'} // '', $body);
    if (!$f) {
        return respond_json($c, 400, { message => 'malformed body' });
    }
    for my $need (qw(from to subject)) {
        if (!defined $f->{$need} || $f->{$need} eq '') {
            return respond_json($c, 400,
                                { message => "'$need' parameter is missing" });
        }
    }
    if (!defined $f->{text} && !defined $f->{html}) {
        return respond_json($c, 400,
                            { message => "Need at least one of 'text', 'html'"
                                         . ", 'amp-html' or 'template'"
                                         . " parameters specified" });
    }
    $seq++;
    my $id = sprintf '<%s.%d.%d@%s>', strftime('%Y%m%d%H%M%S', gmtime),
                     $$, $seq, $domain;
    if ($opt{log}) {
        my %rec = (%$f, domain => $domain, id => $id);
        open my $fh, '>>', $opt{log} or die "mock: $opt{log}: $!\n";
        binmode $fh;
        print $fh $json->encode(\%rec), "\n";
        close $fh or die "mock: $opt{log}: $!\n";
    }
    respond_json($c, 200, { id => $id, message => 'Queued. Thank you.' });
}

$srv->run(on_data => sub {
    my ($c) = @_;
    for (;;) {
        my $end = index $c->{in}, "\r\n\r\n";
        if ($end < 0) {
            respond($c, 413, 'text/plain', 'headers too large', 1)
                if length $c->{in} > 65536;
            return;
        }
        my @lines = split /\r\n/, substr($c->{in}, 0, $end);
        my ($method, $path) = (shift(@lines) // '') =~ /^(\S+) (\S+) HTTP/
            or return respond($c, 400, 'text/plain', 'bad request', 1);
        my %h;
        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
            $h{lc $k} = $v;
        }
        if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
            return respond($c, 411, 'text/plain', 'length required', 1);
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
