#!/usr/bin/perl
# A mock of a Pinecone index's data plane, for tests: speaks the real wire
# format (REST, API versions 2024-07 to 2025-10) over an in-memory store
# with one set of vectors per namespace.
#
#   perl tools/mock/pinecone.pl [--port N] [--key KEY] [--dimension D]
#        [--fail N] [--status CODE] [--delay MS] [--watch-stdin] [--quiet]
#
#   --port N       listen on 127.0.0.1:N (default 0: any free port); the
#                  port is printed as the first line of stdout
#   --key KEY      the API key expected in "Api-Key: KEY" (default
#                  pc-test-key)
#   --dimension D  the index dimension (default 0: fixed by the first
#                  vector upserted)
#   --fail N       the first N authenticated data-plane requests answer
#                  500
#   --status CODE  every authenticated data-plane request answers CODE
#                  (e.g. 429, 503) with a Pinecone error body
#   --delay MS     every data-plane answer is sent MS milliseconds late
#                  (other connections are served meanwhile)
#   --watch-stdin  exit when stdin reaches EOF
#
# Every data-plane request needs "Api-Key" (else 401 {"error":{"code":
# "UNAUTHENTICATED","message":...}}) and "X-Pinecone-API-Version" with a
# known version (else 400), and a JSON body of at most 2,000,000 bytes
# (else 400 {"code":3,"message":"Request size ..."}).  Unknown fields are
# refused, as by Pinecone's protobuf decoding.
#
# POST /vectors/upsert {"vectors":[{"id","values","metadata"}],"namespace"}
#   200 {"upsertedCount":N}; 400 {"code":3,...} for more than 1,000
#   vectors, a wrong dimension, metadata over 40,960 bytes, a bad id
# POST /query {"namespace","vector","topK","includeMetadata",
#              "includeValues","filter"}
#   200 {"results":[],"matches":[{"id","score","values":[],"metadata"}],
#        "namespace","usage":{"readUnits":N}}: cosine similarity, best
#   first; filter: field: value, $eq $ne $in $nin $gt $gte $lt $lte
#   $exists, $and $or; topK at most 1,000 with metadata or values
# POST /vectors/delete {"ids":[...],"namespace"} | {"deleteAll":true,
#              "namespace"}
#   200 {}; 404 {"code":5,"message":"Namespace not found"} when the
#   namespace does not exist; 400 for more than 1,000 ids or a filter
#   (serverless indexes cannot delete by metadata)
#
# For tests, without authentication:
#   GET /__stats    {"requests":{path:N},"data_requests":N,"namespaces":
#                   {ns:count},"upsert_batches":[N...],"delete_batches":
#                   [N...],"max_body":{path:bytes},"api_versions":{v:N},
#                   "dimension":D}
#   GET /__requests {"requests":[{"path","status","api_key","api_version",
#                   "namespace", and by path: upsert "count","ids",
#                   "metadata" (of each vector, values left out); query
#                   "top_k","filter","include_metadata"; delete "ids" or
#                   "delete_all"}]}: every data-plane request, in order
#   POST /__fail    {"path":"/query","status":503,"count":N}: the next N
#                   authenticated requests to path answer status (count
#                   absent or -1: all of them); with "delay":MS instead
#                   of a status they are answered as usual, MS late;
#                   {"path":P,"count":0} stops that for P, {} for all
#   POST /__reset   empties the store, the counters, the request log and
#                   the failures
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use MockServer;
use Getopt::Long;
use JSON::PP;
use B ();
use Scalar::Util qw(looks_like_number);
use Time::HiRes qw(time setitimer ITIMER_REAL);

my %opt = (key => 'pc-test-key', fail => 0, port => 0, delay => 0,
           dimension => 0);
GetOptions(\%opt, 'port=i', 'key=s', 'dimension=i', 'fail=i', 'status=i',
           'delay=i', 'watch-stdin', 'quiet')
    or die "usage: $0 [--port N] [--key KEY] [--dimension D] [--fail N] "
           . "[--status CODE] [--delay MS] [--watch-stdin] [--quiet]\n";

my %versions = map { $_ => 1 } qw(2024-07 2024-10 2025-01 2025-04 2025-10);
my $MAX_BATCH   = 1000;
my $MAX_REQUEST = 2_000_000;
my $MAX_META    = 40960;
my $MAX_ID      = 512;
my $MAX_DIM     = 20000;
my $MAX_TOP_K   = 10000;
my $MAX_TOP_K_WITH_DATA = 1000;

my $json = JSON::PP->new->utf8->canonical->allow_nonref;
my %reason = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
              403 => 'Forbidden', 404 => 'Not Found',
              405 => 'Method Not Allowed', 411 => 'Length Required',
              413 => 'Payload Too Large', 415 => 'Unsupported Media Type',
              429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable',
              504 => 'Gateway Timeout');
# the gRPC status Pinecone puts in "code" for an HTTP status
my %grpc = (400 => 3, 401 => 16, 403 => 7, 404 => 5, 409 => 6, 429 => 8,
            500 => 13, 501 => 12, 503 => 14, 504 => 4);

my (%store, %stats, $dimension, $data_requests, $authed, @log, %fail,
    $current, $late_ms);

sub reset_all {
    @log = ();
    %fail = ();                 # path => [status, remaining or -1, delay]
    %store = ();                # ns => { id => [values, metadata, norm] }
    %stats = (requests => {}, upsert_batches => [], delete_batches => [],
              max_body => {}, api_versions => {});
    $dimension = $opt{dimension} || undef;
    $data_requests = $authed = 0;
}
reset_all();

my $srv = MockServer->new(port => $opt{port},
                          watch_stdin => $opt{'watch-stdin'},
                          quiet => $opt{quiet});

# Late answers: [due, conn, bytes, close], in order of due time (the delay
# is the same for all, so this also keeps each connection's order).  The
# server's select is interrupted by SIGALRM, whose handler sends them.
my @late;

sub arm {
    return unless @late;
    my $wait = $late[0][0] - time;
    setitimer(ITIMER_REAL, $wait > 0.001 ? $wait : 0.001);
}

$SIG{ALRM} = sub {
    local ($!, $@);
    my $now = time;
    while (@late && $late[0][0] <= $now) {
        my ($due, $c, $bytes, $close) = @{ shift @late };
        $c->write($bytes);
        $srv->drop($c) if $close;
    }
    arm();
};

sub respond {
    my ($c, $status, $ctype, $body, %o) = @_;
    my $close = $o{close} || $c->{state}{close};
    my $r = $reason{$status} // 'Status';
    my $bytes = "HTTP/1.1 $status $r\r\n"
                . "Content-Type: $ctype\r\n"
                . "Content-Length: " . length($body) . "\r\n"
                . ($close ? "Connection: close\r\n" : '')
                . "\r\n$body";
    my $delay = $o{late} ? ($late_ms || $opt{delay}) : 0;
    if ($delay > 0) {
        @late = sort { $a->[0] <=> $b->[0] }
                @late, [time + $delay / 1000, $c, $bytes, $close];
        arm();
        return;
    }
    $c->write($bytes);
    $c->close_after if $close;
}

sub respond_json {
    my ($c, $status, $obj, %o) = @_;
    $current->{status} = $status if $current && $o{late};
    respond($c, $status, 'application/json', $json->encode($obj), %o);
}

# what the request log keeps of a data-plane request
sub log_entry {
    my ($path, $h, $req) = @_;
    my $e = { path => $path, api_key => $h->{'api-key'},
              api_version => $h->{'x-pinecone-api-version'} };
    return $e unless ref $req eq 'HASH';
    $e->{namespace} = $req->{namespace};
    if ($path eq '/vectors/upsert' && ref $req->{vectors} eq 'ARRAY') {
        my @v = grep { ref $_ eq 'HASH' } @{ $req->{vectors} };
        $e->{count} = scalar @v;
        $e->{ids} = [ map { $_->{id} } @v ];
        $e->{metadata} = [ map { $_->{metadata} } @v ];
    } elsif ($path eq '/query') {
        $e->{top_k} = $req->{topK};
        $e->{filter} = $req->{filter};
        $e->{include_metadata} = $req->{includeMetadata};
    } elsif ($path eq '/vectors/delete') {
        $e->{ids} = $req->{ids} if defined $req->{ids};
        $e->{delete_all} = $req->{deleteAll} if defined $req->{deleteAll};
    }
    return $e;
}

# a data-plane error: {"code":N,"message":"...","details":[]}
sub rpc_error {
    my ($status, $msg) = @_;
    return ($status, { code => $grpc{$status} // 2, message => $msg,
                       details => [] });
}

sub is_num { defined $_[0] && !ref $_[0] && looks_like_number($_[0]) }
sub is_str { defined $_[0] && !ref $_[0] }
sub is_bool { JSON::PP::is_bool($_[0]) }

sub unknown_field {
    my ($obj, @known) = @_;
    my %k = map { $_ => 1 } @known;
    for (sort keys %$obj) {
        return $_ unless $k{$_};
    }
    return;
}

# Pinecone metadata: string, number, boolean or a list of strings
sub bad_metadata {
    my ($m) = @_;
    return 'metadata must be an object' unless ref $m eq 'HASH';
    for my $k (sort keys %$m) {
        my $v = $m->{$k};
        next if is_bool($v) || is_num($v) || is_str($v);
        if (ref $v eq 'ARRAY') {
            next unless grep { !is_str($_) || ref $_ } @$v;
        }
        return "metadata field '$k' must be a string, number, boolean "
               . 'or list of strings';
    }
    my $size = length $json->encode($m);
    return "Metadata size is $size bytes, which exceeds the limit of "
           . "$MAX_META bytes per vector" if $size > $MAX_META;
    return;
}

sub bad_values {
    my ($v, $what, $dim) = @_;
    return "$what must be a non-empty list of numbers"
        unless ref $v eq 'ARRAY' && @$v && !grep { !is_num($_) } @$v;
    return "$what has more than $MAX_DIM dimensions" if @$v > $MAX_DIM;
    if (defined $dim && @$v != $dim) {
        return "$what dimension " . scalar(@$v) . " does not match the "
               . "dimension of the index $dim";
    }
    return;
}

sub norm {
    my ($v) = @_;
    my $s = 0;
    $s += $_ * $_ for @$v;
    return sqrt $s;
}

sub upsert {
    my ($req) = @_;
    if (my $f = unknown_field($req, qw(vectors namespace))) {
        return rpc_error(400, "Invalid request: unknown field \"$f\"");
    }
    my $ns = $req->{namespace} // '';
    return rpc_error(400, 'namespace must be a string') unless is_str($ns);
    my $vecs = $req->{vectors};
    return rpc_error(400, 'Invalid request: vectors must be a non-empty '
                          . 'list') unless ref $vecs eq 'ARRAY' && @$vecs;
    if (@$vecs > $MAX_BATCH) {
        return rpc_error(400, 'Request contains ' . scalar(@$vecs)
                              . " vectors, which exceeds the limit of "
                              . "$MAX_BATCH vectors per upsert request");
    }
    my $dim = $dimension;
    for my $v (@$vecs) {
        return rpc_error(400, 'Invalid request: a vector must be an object')
            unless ref $v eq 'HASH';
        if (my $f = unknown_field($v, qw(id values sparseValues metadata))) {
            return rpc_error(400, "Invalid request: unknown field \"$f\"");
        }
        my $id = $v->{id};
        return rpc_error(400, "Vector ID must be 1 to $MAX_ID bytes")
            unless is_str($id) && length($id) >= 1
                   && length(do { my $b = $id; utf8::encode($b); $b })
                      <= $MAX_ID;
        if (my $e = bad_values($v->{values}, 'Vector', $dim)) {
            return rpc_error(400, $e);
        }
        $dim //= scalar @{ $v->{values} };
        if (defined $v->{metadata}) {
            my $e = bad_metadata($v->{metadata});
            return rpc_error(400, $e) if $e;
        }
    }
    $dimension = $dim;
    for my $v (@$vecs) {
        $store{$ns}{ $v->{id} } = [ $v->{values}, $v->{metadata} // {},
                                    norm($v->{values}) ];
    }
    push @{ $stats{upsert_batches} }, scalar @$vecs;
    return (200, { upsertedCount => scalar @$vecs });
}

# filters: checked whole first, so that a bad one is refused even when
# no vector would reach it
sub bad_filter {
    my ($f) = @_;
    return 'filter must be an object' unless ref $f eq 'HASH';
    for my $k (sort keys %$f) {
        my $c = $f->{$k};
        if ($k eq '$and' || $k eq '$or') {
            return "$k needs a list of filters" unless ref $c eq 'ARRAY';
            for (@$c) {
                my $e = bad_filter($_);
                return $e if $e;
            }
            next;
        }
        return "unknown operator $k" if $k =~ /^\$/;
        next unless ref $c eq 'HASH';
        for my $op (sort keys %$c) {
            my $a = $c->{$op};
            if ($op eq '$in' || $op eq '$nin') {
                return "$op needs a list" unless ref $a eq 'ARRAY';
                return "$op has more than 10000 values" if @$a > 10000;
            } elsif ($op =~ /^\$(gt|gte|lt|lte)$/) {
                return "$op needs a number" unless is_num($a);
            } elsif ($op eq '$exists') {
                return '$exists needs a boolean' unless is_bool($a);
            } elsif ($op ne '$eq' && $op ne '$ne') {
                return "unknown operator $op";
            }
        }
    }
    return;
}

sub same {
    my ($v, $a) = @_;
    return 0 if !defined $v || ref $a;
    return scalar grep { same($_, $a) } @$v if ref $v eq 'ARRAY';
    return $v == $a if is_num($v) && is_num($a) && !is_str_value($v, $a);
    return "$v" eq "$a";
}

# JSON "1" and 1 differ: compare as strings unless both were numbers
sub is_str_value {
    my ($x, $y) = @_;
    for ($x, $y) {
        return 1 if is_bool($_);
        my $flags = B::svref_2object(\$_)->FLAGS;
        return 1 if ($flags & B::SVp_POK()) && !($flags & (B::SVp_IOK()
                                                           | B::SVp_NOK()));
    }
    return 0;
}

sub matches_filter {
    my ($f, $m) = @_;
    for my $k (keys %$f) {
        my $c = $f->{$k};
        if ($k eq '$and') {
            return 0 if grep { !matches_filter($_, $m) } @$c;
            next;
        }
        if ($k eq '$or') {
            return 0 unless grep { matches_filter($_, $m) } @$c;
            next;
        }
        my $v = $m->{$k};
        $c = { '$eq' => $c } unless ref $c eq 'HASH';
        for my $op (keys %$c) {
            my $a = $c->{$op};
            my $ok = $op eq '$eq'  ? same($v, $a)
                   : $op eq '$ne'  ? !same($v, $a)
                   : $op eq '$in'  ? scalar(grep { same($v, $_) } @$a)
                   : $op eq '$nin' ? !grep { same($v, $_) } @$a
                   : $op eq '$exists' ? (defined $v ? 1 : 0) == ($a ? 1 : 0)
                   : !is_num($v) ? 0
                   : $op eq '$gt'  ? $v > $a
                   : $op eq '$gte' ? $v >= $a
                   : $op eq '$lt'  ? $v < $a
                   :                 $v <= $a;
            return 0 unless $ok;
        }
    }
    return 1;
}

sub query {
    my ($req) = @_;
    if (my $f = unknown_field($req, qw(namespace topK filter includeValues
                                       includeMetadata vector sparseVector
                                       id queries))) {
        return rpc_error(400, "Invalid request: unknown field \"$f\"");
    }
    my $ns = $req->{namespace} // '';
    return rpc_error(400, 'namespace must be a string') unless is_str($ns);
    my $k = $req->{topK};
    my $with = ($req->{includeMetadata} || $req->{includeValues}) ? 1 : 0;
    return rpc_error(400, "topK must be an integer from 1 to $MAX_TOP_K")
        unless is_num($k) && $k == int $k && $k >= 1 && $k <= $MAX_TOP_K;
    if ($with && $k > $MAX_TOP_K_WITH_DATA) {
        return rpc_error(400, "topK must be less than or equal to "
                              . "$MAX_TOP_K_WITH_DATA when including "
                              . "metadata or values");
    }
    for (qw(includeValues includeMetadata)) {
        return rpc_error(400, "$_ must be a boolean")
            if defined $req->{$_} && !is_bool($req->{$_});
    }
    my $q = $req->{vector};
    if (!defined $q && defined $req->{id}) {
        my $rec = $store{$ns}{ $req->{id} }
            or return (200, { matches => [], namespace => $ns,
                              results => [], usage => { readUnits => 1 } });
        $q = $rec->[0];
    }
    return rpc_error(400, 'Invalid request: vector or id is required')
        unless defined $q;
    if (my $e = bad_values($q, 'Query vector', $dimension)) {
        return rpc_error(400, $e);
    }
    my $f = $req->{filter};
    if (defined $f) {
        my $e = bad_filter($f);
        return rpc_error(400, "Invalid filter: $e") if $e;
    }
    my $qn = norm($q);
    my @hits;
    my $vecs = $store{$ns} // {};
    for my $id (keys %$vecs) {
        my ($v, $m, $n) = @{ $vecs->{$id} };
        next if $f && !matches_filter($f, $m);
        my $dot = 0;
        $dot += $v->[$_] * $q->[$_] for 0 .. $#$q;
        my $score = $n > 0 && $qn > 0 ? $dot / ($n * $qn) : 0;
        push @hits, [$id, 0 + sprintf('%.8g', $score)];
    }
    @hits = sort { $b->[1] <=> $a->[1] || $a->[0] cmp $b->[0] } @hits;
    splice @hits, $k if @hits > $k;
    my @matches = map {
        my $rec = $vecs->{ $_->[0] };
        { id => $_->[0], score => $_->[1],
          values => $req->{includeValues} ? $rec->[0] : [],
          ($req->{includeMetadata} ? (metadata => $rec->[1]) : ()) }
    } @hits;
    return (200, { results => [], matches => \@matches, namespace => $ns,
                   usage => { readUnits => 1 + int(keys(%$vecs) / 1000) } });
}

sub delete_vectors {
    my ($req) = @_;
    if (my $f = unknown_field($req, qw(ids deleteAll namespace filter))) {
        return rpc_error(400, "Invalid request: unknown field \"$f\"");
    }
    my $ns = $req->{namespace} // '';
    return rpc_error(400, 'namespace must be a string') unless is_str($ns);
    my $all = $req->{deleteAll};
    return rpc_error(400, 'deleteAll must be a boolean')
        if defined $all && !is_bool($all);
    my $ids = $req->{ids};
    my $n = (defined $ids ? 1 : 0) + ($all ? 1 : 0)
            + (defined $req->{filter} ? 1 : 0);
    return rpc_error(400, 'Invalid request: exactly one of ids, deleteAll '
                          . 'or filter is required') if $n != 1;
    if (defined $req->{filter}) {
        return rpc_error(400, 'Serverless and Starter indexes do not '
                              . 'support deleting with metadata filtering');
    }
    if (defined $ids) {
        return rpc_error(400, 'ids must be a non-empty list of strings')
            unless ref $ids eq 'ARRAY' && @$ids && !grep { !is_str($_) }
                                                         @$ids;
        if (@$ids > $MAX_BATCH) {
            return rpc_error(400, 'Request contains ' . scalar(@$ids)
                                  . " ids, which exceeds the limit of "
                                  . "$MAX_BATCH ids per delete request");
        }
    }
    return rpc_error(404, 'Namespace not found') unless exists $store{$ns};
    if ($all) {
        delete $store{$ns};
        return (200, {});
    }
    delete @{ $store{$ns} }{@$ids};
    push @{ $stats{delete_batches} }, scalar @$ids;
    return (200, {});
}

my %routes = ('/vectors/upsert' => \&upsert, '/query' => \&query,
              '/vectors/delete' => \&delete_vectors);

sub stats {
    return { %stats, data_requests => $data_requests,
             dimension => $dimension,
             namespaces => { map { $_ => scalar keys %{ $store{$_} } }
                             keys %store } };
}

sub handle {
    my ($c, $method, $path, $h, $body) = @_;

    $late_ms = 0;
    $current = undef;
    $path =~ s/\?.*//s;
    if ($path eq '/__stats' && $method eq 'GET') {
        return respond_json($c, 200, stats());
    }
    if ($path eq '/__reset' && $method eq 'POST') {
        reset_all();
        return respond_json($c, 200, {});
    }
    if ($path eq '/__requests' && $method eq 'GET') {
        return respond_json($c, 200, { requests => \@log });
    }
    if ($path eq '/__fail' && $method eq 'POST') {
        my $f = eval { $json->decode($body) };
        return respond_json($c, 400, { error => 'a JSON object' })
            unless ref $f eq 'HASH';
        if (!defined $f->{path}) {
            %fail = ();
        } elsif (defined $f->{count} && $f->{count} == 0) {
            delete $fail{ $f->{path} };
        } else {
            $fail{ $f->{path} } = [ $f->{delay} ? undef : $f->{status} // 500,
                                    $f->{count} // -1, $f->{delay} ];
        }
        return respond_json($c, 200, {});
    }
    my $route = $routes{$path};
    if (!$route) {
        return respond($c, 404, 'text/plain', 'Not Found');
    }
    $stats{requests}{$path}++;
    # decoded once (JSON::PP takes a second or two for 1,000 vectors)
    my $req = length $body <= $MAX_REQUEST
              ? eval { $json->decode($body) } : undef;
    $current = log_entry($path, $h, $req);
    push @log, $current;
    my $max = $stats{max_body}{$path} // 0;
    $stats{max_body}{$path} = length $body if length $body > $max;
    my @late = (late => 1);
    if ($method ne 'POST') {
        return respond_json($c, 405,
                            (rpc_error(405, 'Method Not Allowed'))[1],
                            @late);
    }
    $data_requests++;
    my $key = $h->{'api-key'};
    if (!defined $key || $key ne $opt{key}) {
        return respond_json($c, 401, { error => {
            code => 'UNAUTHENTICATED',
            message => defined $key ? 'Invalid API Key'
                                    : 'API key is missing' } }, @late);
    }
    my $ver = $h->{'x-pinecone-api-version'};
    if (!defined $ver || !$versions{$ver}) {
        return respond_json($c, 400, { error => {
            code => 'INVALID_ARGUMENT',
            message => defined $ver ? "Unsupported API version: $ver"
                       : 'Missing X-Pinecone-API-Version header' } },
            @late);
    }
    $stats{api_versions}{$ver}++;
    if (++$authed <= $opt{fail}) {
        $srv->note("request $authed: failing with 500 as asked");
        return respond_json($c, 500, (rpc_error(500, 'Internal error'))[1],
                            @late);
    }
    $late_ms = 0;
    if (my $f = $fail{$path}) {
        my ($status, $left, $delay) = @$f;
        delete $fail{$path} if $left > 0 && --$f->[1] == 0;
        $late_ms = $delay if $delay;
        if (defined $status) {
            $srv->note("$path: failing with $status as asked");
            return respond_json($c, $status,
                                (rpc_error($status,
                                           "status $status as asked"))[1],
                                @late);
        }
    }
    if ($opt{status}) {
        return respond_json($c, $opt{status},
                            (rpc_error($opt{status},
                                       "status $opt{status} as asked"))[1],
                            @late);
    }
    if (length $body > $MAX_REQUEST) {
        my $mb = int((length($body) + 999_999) / 1_000_000);
        return respond_json($c, 400,
                            (rpc_error(400, "Request size ${mb}MB exceeds "
                                       . 'the maximum supported size of '
                                       . '2MB'))[1], @late);
    }
    if (($h->{'content-type'} // '') !~ m{^application/json\b}i) {
        return respond_json($c, 415,
                            (rpc_error(400, 'Content-Type must be '
                                       . 'application/json'))[1], @late);
    }
    if (ref $req ne 'HASH') {
        return respond_json($c, 400,
                            (rpc_error(400, 'Invalid request body: not a '
                                       . 'JSON object'))[1], @late);
    }
    my ($status, $obj) = $route->($req);
    respond_json($c, $status, $obj, @late);
    $current = undef;
    $late_ms = 0;
}

$srv->run(on_data => sub {
    my ($c) = @_;
    my $st = $c->{state};
    for (;;) {
        if (!$st->{req}) {
            my $end = index $c->{in}, "\r\n\r\n";
            if ($end < 0) {
                respond($c, 413, 'text/plain', 'headers too large',
                        close => 1) if length $c->{in} > 65536;
                return;
            }
            my @lines = split /\r\n/, substr($c->{in}, 0, $end);
            substr($c->{in}, 0, $end + 4) = '';
            my ($method, $path) = (shift(@lines) // '')
                =~ /^(\S+) (\S+) HTTP/
                or return respond($c, 400, 'text/plain', 'bad request',
                                  close => 1);
            my %h;
            for (@lines) {
                my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
                $h{lc $k} = $v;
            }
            if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
                return respond($c, 411, 'text/plain', 'length required',
                               close => 1);
            }
            my $len = $h{'content-length'} // 0;
            if ($len !~ /^\d+$/ || $len > 64 * 1024 * 1024) {
                return respond($c, 413, 'text/plain', 'body too large',
                               close => 1);
            }
            $st->{req} = [$method, $path, \%h, $len];
            if (($h{expect} // '') =~ /^100-continue$/i
                && length($c->{in}) < $len) {
                $c->write("HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
        my ($method, $path, $h, $len) = @{ $st->{req} };
        return if length($c->{in}) < $len;
        my $body = substr($c->{in}, 0, $len, '');
        delete $st->{req};
        $st->{close} = ($h->{connection} // '') =~ /close/i ? 1 : 0;
        handle($c, $method, $path, $h, $body);
        return if $c->{closing} || $st->{close};
    }
});
