# The API's description: /api/v1/openapi.json against the module's routing
# table (every route documented, nothing documented that the server does not
# route), its references, the /api/v1/docs page made from it, and the real
# answers of the server (as a super admin, a dealership admin and a user,
# successes and errors) against the document's response schemas.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for start_mock sse_events);
use B ();
use JSON::PP;
use Test::More;

my $t = AvatarTest->new;
# the avatar provider is a mock that speaks its wire format
my $KEY = 'la-test-key-0123456789';
my ($mpid, $mport, $min) = start_mock('heygen.pl', '--key', $KEY);
$ENV{HEYGEN_API_KEY} = $KEY;
$t->start_api(main => 'env HEYGEN_API_KEY;',
              http => "avatar_signup invite;\n"
                    . "avatar_public_url https://adam.example.com;\n"
                    . "avatar_cache_zone avatar_cache:8m;\n"
                    . "avatar_avatar heygen base_url=http://127.0.0.1:$mport/"
                    . ' avatar_id=dd73ea75-1218-4ef3-92ce-606d5f7fbc0a'
                    . ' sandbox=on key=env:HEYGEN_API_KEY timeout=2000'
                    . ' "voices=voice-a:Wayne Smith,voice-b:Ann Lee";');

# the routing table, read from the module's source
my %method = (NGX_HTTP_AVATAR_GET => 'get', NGX_HTTP_POST => 'post',
              NGX_HTTP_PATCH => 'patch', NGX_HTTP_DELETE => 'delete',
              NGX_HTTP_PUT => 'put');
open(my $fh, '<', 'ngx_avatar_module/ngx_http_avatar_routes.c')
    or die "routes: $!";
my $src = do { local $/; <$fh> };
close($fh);
my ($table) = $src =~ /ngx_http_avatar_routes\[\] = \{(.*?)\n\};/s
    or die "routes: no table";
my %routes;
while ($table =~ /\{\s*(NGX_HTTP_\w+)\s*,\s*"([^"]+)"/g) {
    my $m = $method{$1} or die "unknown method $1";
    $routes{"$m $2"} = 1;
}
cmp_ok(scalar(keys %routes), '>', 50, 'the routing table read ('
       . scalar(keys %routes) . ' routes)');

my $r = $t->get('/api/v1/openapi.json');
is($r->{status}, 200, 'GET /api/v1/openapi.json answers');
like($r->{headers}{'content-type'}, qr{^application/json}, '... as JSON');
my $doc = $r->{json};
ok(ref $doc eq 'HASH', '... an object');
like($doc->{openapi} // '', qr/^3\.1\.\d+$/, '... OpenAPI 3.1');
my $root = $t->get('/api/v1/');
is($doc->{info}{version}, $root->{json}{version},
   "info.version is the server's version");
ok($doc->{info}{title} && $doc->{info}{description}, 'a title and a text');
is($t->http('HEAD', '/api/v1/openapi.json')->{status}, 200, 'HEAD too');

# both directions: routed <=> documented
my (%documented, %ops, @sockets);
for my $path (sort keys %{$doc->{paths}}) {
    for my $m (qw(get post put patch delete)) {
        my $op = $doc->{paths}{$path}{$m} or next;
        if ($op->{'x-websocket'}) {
            push @sockets, $path;
            next;
        }
        $documented{"$m $path"} = $op;
    }
}
my @undocumented = grep { !$documented{$_} } sort keys %routes;
is_deeply(\@undocumented, [], 'every route is documented');
my @unrouted = grep { !$routes{$_} } sort keys %documented;
is_deeply(\@unrouted, [], 'every documented operation is routed');
ok(scalar(grep { m{/voice/ws/} } @sockets) >= 1,
   'the voice sockets are described (' . join(', ', @sockets) . ')');

# operation ids, path parameters, public or not
my (%ids, @dupes, @params);
for my $k (sort keys %documented) {
    my $op = $documented{$k};
    my $id = $op->{operationId} // '';
    push @dupes, $k if $id eq '' || $ids{$id}++;
    my ($path) = $k =~ / (.*)/;
    my %in = map { ($_->{in} // '') eq 'path' ? ($_->{name} => 1) : () }
             map { $_->{'$ref'} ? resolve($_->{'$ref'}) : $_ }
             @{$op->{parameters} // []};
    for my $p ($path =~ /\{(\w+)\}/g) {
        push @params, "$k {$p}" unless $in{$p};
    }
    ok($op->{summary} && $op->{responses}, "$k: a summary and responses");
}
is_deeply(\@dupes, [], 'operation ids are present and unique');
is_deeply(\@params, [], 'every path parameter is declared');
is_deeply($documented{'post /api/v1/auth/login'}{security}, [],
          'login is public');
ok(!defined $documented{'get /api/v1/users/'}{security},
   'listing users needs the token (global security)');
ok($doc->{components}{securitySchemes}{bearerAuth}, 'bearer auth scheme');

# every $ref resolves
sub resolve {
    my ($ref) = @_;
    return undef unless $ref =~ m{^#/(.*)};
    my $node = $doc;
    for my $part (split m{/}, $1) {
        $part =~ s/~1/\//g;
        $part =~ s/~0/~/g;
        return undef unless ref $node eq 'HASH' && exists $node->{$part};
        $node = $node->{$part};
    }
    return $node;
}
my @refs;
my @todo = ($doc);
while (@todo) {
    my $n = shift @todo;
    if (ref $n eq 'HASH') {
        push @refs, $n->{'$ref'} if defined $n->{'$ref'};
        push @todo, grep { ref } values %$n;
    } elsif (ref $n eq 'ARRAY') {
        push @todo, grep { ref } @$n;
    }
}
my @broken = grep { !defined resolve($_) } @refs;
cmp_ok(scalar(@refs), '>', 20, 'references used (' . scalar(@refs) . ')');
is_deeply(\@broken, [], 'every $ref resolves');
ok($doc->{components}{schemas}{Error}, 'the error shape is a schema');

# the server answers every documented operation (without a token: 401, or
# 4xx for bad input on public routes; never 404 or 405 from the routing)
my @misrouted;
for my $k (sort keys %documented) {
    my ($m, $path) = split / /, $k, 2;
    (my $p = $path) =~ s/\{\w+\}/1/g;
    my $res = $t->http(uc $m, $p, $m eq 'get' || $m eq 'delete'
                                  ? () : (json => {}));
    push @misrouted, "$k: $res->{status}"
        if $res->{status} == 404 || $res->{status} == 405;
}
is_deeply(\@misrouted, [], 'every documented operation is answered');

# the page
$r = $t->get('/api/v1/docs');
is($r->{status}, 200, 'GET /api/v1/docs answers');
like($r->{headers}{'content-type'}, qr{^text/html; charset=utf-8},
     '... as HTML');
my $html = $r->{body};
like($html, qr/^<!DOCTYPE html>/, '... a page');
like($html, qr/\Q$doc->{info}{version}\E/, '... with the version');
unlike($html, qr/<script|<style|style=/i,
       '... no script and no style (the CSP stays strict)');
like($html, qr{href="/api/v1/openapi.json"}, '... linking the JSON');
my @missing;
for my $k (sort keys %documented) {
    my ($m, $path) = split / /, $k, 2;
    my $id = $documented{$k}{operationId};
    push @missing, $k
        unless index($html, '<code>' . uc($m) . " $path</code>") >= 0
               && index($html, "id=\"op-$id\"") >= 0;
}
is_deeply(\@missing, [], 'every operation is on the page');
for my $name (sort keys %{$doc->{components}{schemas}}) {
    like($html, qr/id="schema-\Q$name\E"/, "schema $name is on the page");
}
# text from the document is escaped
$html =~ s/&(amp|lt|gt|quot|#39);//g;
my $amp = () = $html =~ /&/g;
is($amp, 0, 'every & of the text is escaped');
is($t->get('/api/v1/docs')->{body}, $r->{body},
   'asked again: the same page (made once)');

# --- the answers: real responses against the document's schemas ---
#
# A small JSON Schema validator (the keywords the document uses: type,
# with arrays of types and "null"; const, enum; properties, required,
# additionalProperties; items, minItems, maxItems; minLength, maxLength,
# pattern; minimum, maximum; $ref into the document; allOf, anyOf, oneOf),
# and format date-time as API.md has dates: ISO 8601 UTC with Z.  Other
# formats and the other annotations are not checked.  Answers are held to
# it strictly: an object whose schema lists properties and says nothing of
# additionalProperties may carry no other member, so that what the server
# sends is all documented.

my %annotation = map { $_ => 1 } qw(description format examples default
    contentEncoding contentMediaType title deprecated readOnly writeOnly);
my %keyword = map { $_ => 1 } qw($ref type const enum properties required
    additionalProperties items minItems maxItems minLength maxLength pattern
    minimum maximum allOf anyOf oneOf);

# every keyword of every schema of the document is one the validator knows
my (@unknown, @schemas);
push @schemas, values %{ $doc->{components}{schemas} };
for my $path (values %{ $doc->{paths} }) {
    for my $op (grep { ref eq 'HASH' } values %$path) {
        for my $resp (values %{ $op->{responses} || {} }) {
            push @schemas, map { $_->{schema} // () }
                           values %{ $resp->{content} || {} };
        }
    }
}
for my $resp (values %{ $doc->{components}{responses} }) {
    push @schemas, map { $_->{schema} // () } values %{ $resp->{content} || {} };
}
while (my $s = shift @schemas) {
    next unless ref $s eq 'HASH';
    for my $k (sort keys %$s) {
        push @unknown, $k unless $keyword{$k} || $annotation{$k};
    }
    push @schemas, values %{ $s->{properties} || {} };
    push @schemas, $s->{items} if ref $s->{items} eq 'HASH';
    push @schemas, $s->{additionalProperties}
        if ref $s->{additionalProperties} eq 'HASH';
    push @schemas, @{ $s->{$_} || [] } for qw(allOf anyOf oneOf);
}
is_deeply([sort @unknown], [], 'the validator knows every keyword the schemas use');

# the JSON type of a freshly decoded value
sub json_type {
    my ($v) = @_;
    return 'null' unless defined $v;
    if (ref $v) {
        return 'boolean' if ref $v eq 'JSON::PP::Boolean';
        return 'object' if ref $v eq 'HASH';
        return 'array' if ref $v eq 'ARRAY';
        return ref $v;
    }
    my $f = B::svref_2object(\$v)->FLAGS;
    return 'string' if $f & B::SVp_POK;
    return 'integer' if $f & B::SVp_IOK;
    return $v == int($v) ? 'integer' : 'number' if $f & B::SVp_NOK;
    return 'string';
}

my $canon = JSON::PP->new->canonical->allow_nonref;
sub same_json { $canon->encode($_[0]) eq $canon->encode($_[1]) }

# the names of the properties a schema declares, through $ref and allOf;
# undef when it leaves other members open (additionalProperties)
sub declared {
    my ($s, $seen) = @_;
    $seen //= {};
    my %p;
    return \%p unless ref $s eq 'HASH';
    return undef if exists $s->{additionalProperties};
    $p{$_} = 1 for keys %{ $s->{properties} || {} };
    my @parts = @{ $s->{allOf} || [] };
    if (defined $s->{'$ref'} && !$seen->{ $s->{'$ref'} }++) {
        push @parts, resolve($s->{'$ref'});
    }
    for my $part (@parts) {
        my $d = declared($part, $seen) // return undef;
        @p{ keys %$d } = values %$d;
    }
    return \%p;
}

# the errors of a value against a schema, each "where: what"; $inner is
# set for a schema that is part of another (a $ref or an allOf member),
# whose caller checks for undeclared members itself
sub schema_errors {
    my ($s, $v, $at, $inner) = @_;
    # the boolean schemas: true allows anything, false nothing
    return $s ? () : ("$at: nothing is allowed here")
        if ref $s eq 'JSON::PP::Boolean';
    return ("$at: the schema is not an object") unless ref $s eq 'HASH';
    my @e;
    if (defined $s->{'$ref'}) {
        my $target = resolve($s->{'$ref'});
        return ("$at: $s->{'$ref'} does not resolve") unless ref $target;
        push @e, schema_errors($target, $v, $at, 1);
    }
    push @e, schema_errors($_, $v, $at, 1) for @{ $s->{allOf} || [] };
    if (my $any = $s->{anyOf}) {
        my @fails = map { [schema_errors($_, $v, $at)] } @$any;
        push @e, "$at: matches none of anyOf ("
               . join('; ', map { @$_ ? $_->[0] : () } @fails) . ')'
            unless grep { !@$_ } @fails;
    }
    if (my $one = $s->{oneOf}) {
        my @fails = map { [schema_errors($_, $v, $at)] } @$one;
        my $n = grep { !@$_ } @fails;
        push @e, "$at: matches $n of oneOf, not exactly one"
               . ($n ? '' : ' (' . join('; ', map { $_->[0] } @fails) . ')')
            unless $n == 1;
    }
    my $type = json_type($v);
    if (exists $s->{type}) {
        my @want = ref $s->{type} ? @{ $s->{type} } : ($s->{type});
        return (@e, "$at: $type, not " . join(' or ', @want))
            unless grep { $_ eq $type || ($_ eq 'number' && $type eq 'integer') }
                        @want;
    }
    push @e, "$at: not the constant " . $canon->encode($s->{const})
        if exists $s->{const} && !same_json($v, $s->{const});
    push @e, "$at: " . $canon->encode($v) . ' is not one of '
           . $canon->encode($s->{enum})
        if $s->{enum} && !grep { same_json($v, $_) } @{ $s->{enum} };
    if ($type eq 'string') {
        push @e, "$at: shorter than $s->{minLength}"
            if defined $s->{minLength} && length($v) < $s->{minLength};
        push @e, "$at: longer than $s->{maxLength}"
            if defined $s->{maxLength} && length($v) > $s->{maxLength};
        push @e, "$at: does not match $s->{pattern}"
            if defined $s->{pattern} && $v !~ /$s->{pattern}/;
        push @e, "$at: $v is not an ISO 8601 UTC date-time with Z"
            if ($s->{format} // '') eq 'date-time'
               && $v !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\z/;
    }
    if ($type eq 'integer' || $type eq 'number') {
        push @e, "$at: $v is below $s->{minimum}"
            if defined $s->{minimum} && $v < $s->{minimum};
        push @e, "$at: $v is above $s->{maximum}"
            if defined $s->{maximum} && $v > $s->{maximum};
    }
    if ($type eq 'array') {
        push @e, "$at: fewer than $s->{minItems} items"
            if defined $s->{minItems} && @$v < $s->{minItems};
        push @e, "$at: more than $s->{maxItems} items"
            if defined $s->{maxItems} && @$v > $s->{maxItems};
        if (ref $s->{items} eq 'HASH') {
            push @e, schema_errors($s->{items}, $v->[$_], "$at\[$_]")
                for 0 .. $#$v;
        }
    }
    if ($type eq 'object') {
        my $props = $s->{properties} || {};
        for my $k (@{ $s->{required} || [] }) {
            push @e, "$at: no member $k" unless exists $v->{$k};
        }
        for my $k (sort keys %$v) {
            if (exists $props->{$k}) {
                push @e, schema_errors($props->{$k}, $v->{$k}, "$at.$k");
            } elsif (ref $s->{additionalProperties}) {
                push @e, schema_errors($s->{additionalProperties}, $v->{$k},
                                       "$at.$k");
            } elsif (exists $s->{additionalProperties}
                     && !$s->{additionalProperties}) {
                push @e, "$at: member $k is not allowed";
            }
        }
        # strict: every member documented
        my $d = $inner ? undef : declared($s);
        if ($d && %$d) {
            push @e, "$at: member $_ is not documented"
                for grep { !$d->{$_} } sort keys %$v;
        }
    }
    return @e;
}

# the validator itself, on a schema of its own: it passes what it should
# and refuses what it should
my $thing = {
    type => 'object',
    required => [qw(id kind on parent at)],
    properties => {
        id => { type => 'integer' },
        kind => { type => 'string', enum => ['a', 'b'] },
        on => { type => 'boolean' },
        parent => { type => ['integer', 'null'] },
        at => { type => 'string', format => 'date-time' },
        tag => { const => 'x' },
        conf => { anyOf => [ { type => 'object',
                               properties => { n => { type => 'integer' } },
                               additionalProperties => JSON::PP::true },
                             { type => 'null' } ] },
        counts => { type => 'object',
                    additionalProperties => { type => 'integer' } },
    },
};
my $good = { id => 1, kind => 'a', on => JSON::PP::true, parent => undef,
             at => '2024-01-01T00:00:00.123456Z', tag => 'x', conf => undef,
             counts => { a => 1 } };
my $detail_ref = { '$ref' => '#/components/schemas/ErrorDetail' };
my @passed = (
    [ 'an object as declared', $thing, $good ],
    [ 'the object branch of anyOf, open to other members', $thing,
      { %$good, conf => { n => 1, other => 'y' } } ],
    [ 'members declared by allOf branches',
      { allOf => [ { properties => { a => {} } },
                   { properties => { b => {} } } ] }, { a => 1, b => 2 } ],
    [ 'a $ref into the document', $detail_ref,
      { field => 'body.x', message => 'm', type => 'missing' } ],
);
for my $case (@passed) {
    my ($what, $schema, $value) = @$case;
    my @e = schema_errors($schema, $canon->decode($canon->encode($value)),
                          '$');
    ok(!@e, "validator: passes $what") or diag(join "\n", @e);
}
my $two = $canon->encode($good) =~ s/"id":1,/"id":2.0,/r;
ok($two =~ /2\.0/ && !schema_errors($thing, $canon->decode($two), '$'),
   'validator: passes 2.0 as an integer');
my @refused = (
    [ 'an integer as a string', $thing, { %$good, id => '1' } ],
    [ 'a fraction where an integer is due', $thing, { %$good, id => 1.5 } ],
    [ 'a value out of the enum', $thing, { %$good, kind => 'c' } ],
    [ 'a boolean as 1', $thing, { %$good, on => 1 } ],
    [ 'a string where integer or null is due', $thing, { %$good, parent => 'p' } ],
    [ 'null where the type has no null', $thing, { %$good, id => undef } ],
    [ 'a missing required member', $thing,
      { map { $_ => $good->{$_} } grep { $_ ne 'parent' } keys %$good } ],
    [ 'an undocumented member', $thing, { %$good, secret => 'x' } ],
    [ 'a wrong constant', $thing, { %$good, tag => 'y' } ],
    [ 'neither branch of anyOf', $thing, { %$good, conf => 'x' } ],
    [ 'a bad member of the object branch of anyOf', $thing,
      { %$good, conf => { n => 'one' } } ],
    [ 'a bad additionalProperties value', $thing,
      { %$good, counts => { a => 'two' } } ],
    [ 'an object where an array is due', { type => 'array', items => $thing },
      $good ],
    [ 'a bad array item', { type => 'array', items => $thing },
      [ $good, { %$good, kind => undef } ] ],
    [ 'an integer below minimum', { type => 'integer', minimum => 0 }, -1 ],
    [ 'a number above maximum', { type => 'number', maximum => 1 }, 1.5 ],
    [ 'a string over maxLength', { type => 'string', maxLength => 2 }, 'abc' ],
    [ 'a string under minLength', { type => 'string', minLength => 2 }, 'a' ],
    [ 'a pattern mismatch', { type => 'string', pattern => '^[a-z]+$' }, 'A1' ],
    [ 'too many items', { type => 'array', maxItems => 1 }, [1, 2] ],
    [ 'too few items', { type => 'array', minItems => 1 }, [] ],
    [ 'the schema false', { type => 'object', properties => {
      a => JSON::PP::false } }, { a => 1 } ],
    [ 'additionalProperties false', { type => 'object',
      properties => { a => {} }, additionalProperties => JSON::PP::false },
      { a => 1, b => 2 } ],
    [ 'two branches of oneOf', { oneOf => [ { type => 'integer' },
      { type => 'number' } ] }, 3 ],
    [ 'no branch of oneOf', { oneOf => [ { type => 'integer' },
      { type => 'null' } ] }, 'x' ],
    [ 'a failing allOf member', { allOf => [ { type => 'object' },
      { required => ['a'] } ] }, {} ],
    [ 'a date-time with an offset', $thing,
      { %$good, at => '2024-01-01T00:00:00+02:00' } ],
    [ 'a date as a date-time', $thing, { %$good, at => '2024-01-01' } ],
    [ 'a $ref target that does not match', $detail_ref, { field => 'body.x' } ],
    [ 'a $ref that does not resolve', { '$ref' => '#/components/schemas/Nope' }, 1 ],
);
for my $case (@refused) {
    my ($what, $schema, $value) = @$case;
    my $v = $canon->decode($canon->encode($value));
    ok(scalar(schema_errors($schema, $v, '$')), "validator: refuses $what");
}

# Each request below names its documented operation; the answer's status
# must be documented for it, its content type too, and its body must match
# the schema; an error answer also carries the type API.md gives its status
# and the request's path.
my %error_type = (401 => 'AuthenticationError', 403 => 'AuthorizationError',
                  404 => 'NotFoundError', 409 => 'ConflictError',
                  413 => 'PayloadTooLarge', 422 => 'ValidationError',
                  429 => 'RateLimitError', 500 => 'InternalServerError',
                  502 => 'UpstreamError', 503 => 'ServiceUnavailable',
                  504 => 'UpstreamError');
my %validated;

sub answer_errors {
    my ($m, $tmpl, $path, $r) = @_;
    my $op = $doc->{paths}{$tmpl} && $doc->{paths}{$tmpl}{$m}
        or return ("$m $tmpl is not documented");
    my $resp = $op->{responses}{ $r->{status} }
        or return ("status $r->{status} is not documented for $m $tmpl");
    $resp = resolve($resp->{'$ref'}) if $resp->{'$ref'};
    my $content = $resp->{content};
    unless ($content && %$content) {
        return length($r->{body} // '')
            ? ("a body where the document has none: $r->{body}") : ();
    }
    my ($ct) = ($r->{headers}{'content-type'} // '') =~ /^\s*([^;\s]+)/;
    my ($media) = map { $content->{$_} }
                  grep { /^\s*([^;\s]+)/ && lc $1 eq lc($ct // '') }
                  sort keys %$content;
    return ('content type ' . ($ct // 'none') . ' is not documented (only '
            . join(', ', sort keys %$content) . ')') unless $media;
    return () unless lc $ct eq 'application/json';
    my $data = eval { JSON::PP->new->allow_nonref->decode($r->{body}) };
    return ("not JSON: $@") unless defined $data || !$@;
    my @e = schema_errors($media->{schema}, $data, '$');
    if ($r->{status} >= 400 && ref $data eq 'HASH' && ref $data->{error}) {
        my $want = $error_type{ $r->{status} };
        push @e, "error.type $data->{error}{type} for $r->{status}, not $want"
            if $want && ($data->{error}{type} // '') ne $want;
        push @e, "error.path " . ($data->{error}{path} // 'none')
               . ", not $path"
            unless ($data->{error}{path} // '') eq $path;
        # API.md: ValidationError (422, with details)
        push @e, 'a 422 without details'
            if $r->{status} == 422
               && !(ref $data->{error}{details} eq 'ARRAY'
                    && @{ $data->{error}{details} });
    }
    return @e;
}

# the answer checks refuse what they should, on made-up answers
my $json_ct = { 'content-type' => 'application/json; charset=utf-8' };
my $err404 = '{"error":{"message":"User with ID 9 not found",'
           . '"type":"NotFoundError","path":"/api/v1/users/9"}}';
my @bad_answers = (
    [ 'an undocumented status', 'get', '/api/v1/users/{id}', '/api/v1/users/9',
      { status => 418, headers => $json_ct, body => $err404 } ],
    [ 'an undocumented content type', 'get', '/api/v1/users/{id}',
      '/api/v1/users/9',
      { status => 404, headers => { 'content-type' => 'text/html' },
        body => '<p>no</p>' } ],
    [ 'a body where none is documented', 'post', '/api/v1/auth/logout',
      '/api/v1/auth/logout', { status => 204, headers => {}, body => '{}' } ],
    [ 'a body that is not JSON', 'get', '/api/v1/users/{id}', '/api/v1/users/9',
      { status => 404, headers => $json_ct, body => '{"error":' } ],
    [ 'an error type of another status', 'get', '/api/v1/users/{id}',
      '/api/v1/users/9', { status => 404, headers => $json_ct,
      body => $err404 =~ s/NotFoundError/ConflictError/r } ],
    [ 'an error path of another request', 'get', '/api/v1/users/{id}',
      '/api/v1/users/8', { status => 404, headers => $json_ct, body => $err404 } ],
    [ 'a 422 without details', 'post', '/api/v1/auth/signup',
      '/api/v1/auth/signup', { status => 422, headers => $json_ct,
      body => '{"error":{"message":"Invalid or expired invitation",'
            . '"type":"ValidationError","path":"/api/v1/auth/signup"}}' } ],
    [ 'an operation that is not documented', 'put', '/api/v1/users/{id}',
      '/api/v1/users/9', { status => 404, headers => $json_ct, body => $err404 } ],
);
ok(!answer_errors('get', '/api/v1/users/{id}', '/api/v1/users/9',
                  { status => 404, headers => $json_ct, body => $err404 }),
   'answer check: passes a documented error');
for my $case (@bad_answers) {
    my ($what, @args) = @$case;
    ok(scalar(answer_errors(@args)), "answer check: refuses $what");
}

# conform(METHOD, documented path, status, name, params => {id => ..},
# query => '...', and what $t->http takes; files => [[name, content]]
# uploads): the request, the status and the answer checked; the answer
sub conform {
    my ($m, $tmpl, $status, $name, %o) = @_;
    my $params = delete $o{params} || {};
    my $query = delete $o{query};
    my $files = delete $o{files};
    (my $path = $tmpl) =~ s/\{(\w+)\}/$params->{$1}
                            \/\/ die "$name: no value for {$1}\n"/ge;
    my $r = $files
        ? $t->upload($params->{id}, $params->{topic}, $o{token}, @$files)
        : $t->http($m, defined $query ? "$path?$query" : $path, %o);
    is($r->{status}, $status, "$name: $status") or diag($r->{body});
    my @e = answer_errors(lc $m, $tmpl, $path, $r);
    ok(!@e, "$name: as documented") or diag(join "\n", @e);
    $validated{ lc($m) . " $tmpl" }{ $r->{status} }++
        if !@e && $r->{status} == $status;
    return $r;
}

# accounts: a super admin, and an admin and a user of Acme (Best is the
# other dealership)
my $PW = 'Adm1n!pass';
my $sa_id = $t->bootstrap_admin('sa@example.com', $PW);
my $A = $t->make_dealership('Acme Motors');
my $B = $t->make_dealership('Best Cars');
my $da_id = $t->create_user(email => 'da@acme.com', like => 'sa@example.com',
                            role => 'dealership_admin', dealership_id => $A);
my $u_id = $t->create_user(email => 'u@acme.com', like => 'sa@example.com',
                           dealership_id => $A);
my $ub_id = $t->create_user(email => 'u@best.com', like => 'sa@example.com',
                            dealership_id => $B);
my $LOGIN = '/api/v1/auth/login';
sub login_ok {
    my ($email, $name) = @_;
    my $r = conform(POST => $LOGIN, 200, $name,
                    json => { email => $email, password => $PW });
    return $r->{json} || {};
}

# service
conform(GET => '/api/v1/', 200, 'the API root');
conform(GET => '/health', 200, 'health');
conform(GET => '/api/v1/openapi.json', 200, 'the document itself');
conform(GET => '/api/v1/docs', 200, 'the docs page');
conform(GET => '/metrics', 200, 'the metrics');

# auth
my $sa_tokens = login_ok('sa@example.com', 'login as the super admin');
my $sa = $sa_tokens->{access_token};
my $da = login_ok('da@acme.com', 'login as a dealership admin')->{access_token};
my $u_tokens = login_ok('u@acme.com', 'login as a user');
my $u = $u_tokens->{access_token};
my $ub = login_ok('u@best.com', "login as the other dealership's user")
    ->{access_token};
conform(POST => $LOGIN, 401, 'login with a wrong password',
        json => { email => 'u@acme.com', password => 'Wr0ng!pass' });
conform(POST => $LOGIN, 422, 'login without a password',
        json => { email => 'u@acme.com' });
my $refreshed = conform(POST => '/api/v1/auth/refresh', 200, 'refresh',
                        json => { refresh_token => $u_tokens->{refresh_token} });
conform(POST => '/api/v1/auth/refresh', 401, 'refresh with a used token',
        json => { refresh_token => $u_tokens->{refresh_token} });
conform(GET => '/api/v1/auth/me', 200, 'me as the super admin', token => $sa);
conform(GET => '/api/v1/auth/me', 200, 'me as a dealership admin', token => $da);
conform(GET => '/api/v1/auth/me', 200, 'me as a user', token => $u);
conform(GET => '/api/v1/auth/me', 401, 'me without a token');
conform(GET => '/api/v1/auth/me', 401, 'me with a bad token', token => 'x.y.z');
conform(POST => '/api/v1/auth/password/forgot', 202, 'forgot password',
        json => { email => 'nobody@example.com' });
my $spare = login_ok('u@best.com', 'another login, to log out');
conform(POST => '/api/v1/auth/logout', 204, 'logout',
        json => { refresh_token => $spare->{refresh_token} });
conform(POST => '/api/v1/auth/logout', 401, 'logout with a bad token',
        json => { refresh_token => 'garbage' });

# the newest link of a kind mailed to an address (through the outbox)
sub mailed_token {
    my ($to, $kind) = @_;
    my $tok;
    wait_for(sub {
        for my $f (glob $t->dir . '/outbox/*.eml') {
            my $mail = do { local (@ARGV, $/) = $f; <> };
            next unless $mail =~ /^To:.*\Q$to\E/mi;
            $mail =~ s/=\r?\n//g;
            $mail =~ s/=3D/=/g;
            ($tok) = $mail =~ m{/$kind\?token=([0-9a-f]+)};
            return 1 if $tok;
        }
        return 0;
    }, 10);
    return $tok;
}
$t->create_user(email => 'reset@acme.com', like => 'sa@example.com',
                dealership_id => $A);
conform(POST => '/api/v1/auth/password/forgot', 202, 'forgot a known password',
        json => { email => 'reset@acme.com' });
my $reset = mailed_token('reset@acme.com', 'reset-password');
ok($reset, 'the reset link is mailed');
conform(POST => '/api/v1/auth/password/reset', 422, 'reset with a weak password',
        json => { token => $reset // 'none', password => 'weak' });
conform(POST => '/api/v1/auth/password/reset', 204, 'reset',
        json => { token => $reset // 'none', password => 'N3w!passw' });

# users
my $USERS = '/api/v1/users/';
my $USER = '/api/v1/users/{id}';
conform(GET => $USERS, 200, 'SA lists users', token => $sa);
conform(GET => $USERS, 200, 'DA lists users', token => $da,
        query => 'role=user&is_active=true&limit=5');
conform(GET => $USERS, 403, 'a user lists users', token => $u);
conform(GET => $USERS, 422, 'users with a bad limit', token => $sa,
        query => 'limit=0');
conform(GET => '/api/v1/users/count', 200, 'SA counts users', token => $sa);
conform(GET => '/api/v1/users/count', 200, 'DA counts users', token => $da,
        query => "dealership_id=$A");
my $new = conform(POST => $USERS, 201, 'SA creates a user', token => $sa,
                  json => { email => 'new@acme.com', password => 'N3w!passw',
                            first_name => 'New', last_name => 'User',
                            role => 'user', dealership_id => $A });
my $new_id = ($new->{json} || {})->{id} // 0;
my $new2 = conform(POST => $USERS, 201, 'DA creates an admin', token => $da,
                   json => { email => 'da2@acme.com', password => 'N3w!passw',
                             first_name => 'Second', last_name => 'Admin',
                             role => 'dealership_admin' });
my $new2_id = ($new2->{json} || {})->{id} // 0;
conform(POST => $USERS, 409, 'a duplicate e-mail', token => $sa,
        json => { email => 'NEW@acme.com', password => 'N3w!passw',
                  first_name => 'New', last_name => 'User' });
conform(POST => $USERS, 422, 'a weak password', token => $sa,
        json => { email => 'weak@acme.com', password => 'weak',
                  first_name => 'W', last_name => 'P' });
conform(POST => $USERS, 403, 'DA creates a super admin', token => $da,
        json => { email => 'boss@acme.com', password => 'N3w!passw',
                  first_name => 'B', last_name => 'S', role => 'super_admin' });
conform(GET => $USER, 200, 'SA gets a user', token => $sa,
        params => { id => $new_id });
conform(GET => $USER, 200, 'DA gets a user of its own', token => $da,
        params => { id => $u_id });
conform(GET => $USER, 404, "DA gets another dealership's user", token => $da,
        params => { id => $ub_id });
conform(GET => $USER, 404, 'a missing user', token => $sa,
        params => { id => 999999 });
conform(PATCH => $USER, 200, 'SA updates a user', token => $sa,
        params => { id => $new_id },
        json => { first_name => 'Renamed', is_active => JSON::PP::true });
conform(PATCH => $USER, 200, 'DA updates a user', token => $da,
        params => { id => $new_id }, json => { last_name => 'Changed' });
conform(PATCH => $USER, 403, 'SA changes its own role', token => $sa,
        params => { id => $sa_id }, json => { role => 'user' });
conform(PATCH => '/api/v1/users/{id}/toggle-active', 200, 'deactivate',
        token => $sa, params => { id => $new_id });
conform(PATCH => '/api/v1/users/{id}/toggle-active', 200, 'activate again',
        token => $da, params => { id => $new_id });
conform(DELETE => $USER, 204, 'DA deletes a user', token => $da,
        params => { id => $new2_id });
conform(DELETE => $USER, 403, 'SA deletes itself', token => $sa,
        params => { id => $sa_id });

# an invitation, and the signup it allows
my $inv = conform(POST => '/api/v1/users/invites', 201, 'SA invites',
                  token => $sa, json => { email => 'invitee@acme.com',
                                          role => 'user', dealership_id => $A });
my $itok = mailed_token('invitee@acme.com', 'signup');
ok($itok, 'the invitation is mailed');
conform(POST => '/api/v1/auth/signup', 201, 'signup by invitation',
        json => { email => 'invitee@acme.com', password => 'Inv1te!pw',
                  first_name => 'In', last_name => 'Vitee',
                  invite_token => $itok // 'none' });
conform(POST => '/api/v1/auth/signup', 403, 'signup without an invitation',
        json => { email => 'x@acme.com', password => 'Inv1te!pw',
                  first_name => 'X', last_name => 'Y' });
sub detail_field { ((($_[0]{json} || {})->{error} || {})->{details} || [{}])->[0]{field} // '' }
my $used = conform(POST => '/api/v1/auth/signup', 422,
                   'signup with a used invitation',
        json => { email => 'x@acme.com', password => 'Inv1te!pw',
                  first_name => 'X', last_name => 'Y',
                  invite_token => $itok // 'none' });
is(detail_field($used), 'body.invite_token', '... the detail names the invitation');

# dealerships
my $DEALERS = '/api/v1/dealerships/';
my $DEALER = '/api/v1/dealerships/{id}';
conform(GET => $DEALERS, 200, 'SA lists dealerships', token => $sa);
conform(GET => $DEALERS, 200, 'DA lists dealerships', token => $da);
conform(GET => $DEALERS, 200, 'a user lists dealerships', token => $u,
        query => 'skip=0&limit=10');
my $C = conform(POST => $DEALERS, 201, 'SA creates a dealership', token => $sa,
                json => { name => 'Cars Inc', address => '1 Main St',
                          contact_email => 'office@cars.example',
                          contact_phone => '+1 555 0100' });
my $C_id = ($C->{json} || {})->{id} // 0;
my $D = conform(POST => $DEALERS, 201, 'a dealership with the optional fields null',
                token => $sa, json => { name => 'Delta Autos', address => undef });
my $D_id = ($D->{json} || {})->{id} // 0;
conform(POST => $DEALERS, 409, 'a duplicate dealership name', token => $sa,
        json => { name => 'Acme Motors' });
conform(POST => $DEALERS, 403, 'DA creates a dealership', token => $da,
        json => { name => 'Mine' });
conform(POST => $DEALERS, 422, 'a dealership without a name', token => $sa,
        json => { address => 'x' });
conform(GET => $DEALER, 200, 'SA gets a dealership', token => $sa,
        params => { id => $C_id });
conform(GET => $DEALER, 200, 'a user gets its own', token => $u,
        params => { id => $A });
conform(GET => $DEALER, 404, 'a user gets another', token => $u,
        params => { id => $B });
conform(PATCH => $DEALER, 200, 'SA updates a dealership', token => $sa,
        params => { id => $C_id },
        json => { name => 'Cars Incorporated', is_active => JSON::PP::true,
                  contact_phone => undef });
conform(PATCH => $DEALER, 200, 'DA updates its own', token => $da,
        params => { id => $A }, json => { address => '2 Side St' });
conform(PATCH => $DEALER, 409, 'a rename onto another name', token => $sa,
        params => { id => $C_id }, json => { name => 'Best Cars' });
conform(PATCH => '/api/v1/dealerships/{id}/rag-config', 200,
        'SA sets knowledge-base settings', token => $sa,
        params => { id => $C_id },
        json => { chunk_size => 800, chunk_overlap => 100,
                  topics => ['books', 'playbooks'], metadata => { a => 1 } });
conform(DELETE => $DEALER, 204, 'SA deletes a dealership', token => $sa,
        params => { id => $C_id });
conform(DELETE => $DEALER, 404, 'deleting it again', token => $sa,
        params => { id => $C_id });

# knowledge base
my $RAG = '/api/v1/rag/{id}';
conform(GET => "$RAG/status", 200, 'status before initialisation', token => $u,
        params => { id => $A });
conform(POST => "$RAG/initialize", 201, 'DA initializes', token => $da,
        params => { id => $A });
conform(POST => "$RAG/initialize", 422, 'initializing twice', token => $sa,
        params => { id => $A });
conform(POST => "$RAG/initialize", 403, 'a user initializes', token => $u,
        params => { id => $A });
conform(POST => "$RAG/initialize", 201, 'SA initializes the other dealership',
        token => $sa, params => { id => $B });
my $gap = "GAP Protection Basics\n\nGuaranteed asset protection covers the "
        . "difference between the loan balance and the insurer's actual cash "
        . "value settlement after a total loss or theft. " x 12;
my $up = conform(POST => "$RAG/upload/{topic}", 201, 'upload a text file',
                 token => $da, params => { id => $A, topic => 'product_knowledge' },
                 files => [['gap.txt', $gap]]);
my $doc_id = ((($up->{json} || {})->{documents} || [])->[0] || {})->{id} // 0;
my $unk = conform(POST => "$RAG/upload/{topic}", 422, 'upload to an unknown topic',
        token => $da, params => { id => $A, topic => 'nonsense' },
        files => [['x.txt', 'Some text here.']]);
is(detail_field($unk), 'path.topic', '... the detail names the topic');
wait_for(sub {
    ($t->get("/api/v1/rag/$A/documents/$doc_id", token => $u)->{body} // '')
        =~ /"status":"(ready|failed)"/ }, 30);
conform(GET => "$RAG/status", 200, 'status after an upload', token => $u,
        params => { id => $A });
conform(GET => "$RAG/documents", 200, 'documents', token => $u,
        params => { id => $A });
conform(GET => "$RAG/documents", 200, 'documents of a topic', token => $da,
        params => { id => $A }, query => 'topic=product_knowledge&skip=0&limit=10');
conform(GET => "$RAG/documents/{doc_id}", 200, 'a document', token => $u,
        params => { id => $A, doc_id => $doc_id });
conform(GET => "$RAG/documents/{doc_id}", 404, 'a missing document', token => $u,
        params => { id => $A, doc_id => 999999 });
conform(POST => "$RAG/query", 200, 'a query', token => $u,
        params => { id => $A }, query => 'query=what+does+GAP+cover&top_k=3');
conform(POST => "$RAG/query", 200, 'a query in some topics', token => $u,
        params => { id => $A }, query => 'query=total+loss',
        json => ['product_knowledge', 'books']);
conform(POST => "$RAG/query", 422, 'a query without a query', token => $u,
        params => { id => $A });
my $up2 = conform(POST => "$RAG/upload/{topic}", 201, 'upload to the other dealership',
                  token => $sa, params => { id => $B, topic => 'books' },
                  files => [['b.txt', "Best Cars sells service contracts. " x 20],
                            ['c.txt', "Best Cars explains GAP to customers. " x 20]]);
my $bdoc = ((($up2->{json} || {})->{documents} || [])->[0] || {})->{id} // 0;
conform(DELETE => "$RAG/documents/{doc_id}", 204, 'SA deletes a document',
        token => $sa, params => { id => $B, doc_id => $bdoc });
conform(DELETE => "$RAG/reset", 200, 'SA resets a knowledge base', token => $sa,
        params => { id => $B });
conform(GET => "$RAG/status", 404, "another dealership's status", token => $u,
        params => { id => $B });

# chat
my $CHAT = '/api/v1/chat/';
my $c1 = conform(POST => $CHAT, 200, 'a training answer', token => $u,
                 json => { message => 'What does GAP protection cover?' });
my $sid = ($c1->{json} || {})->{session_id} // 'none';
conform(POST => $CHAT, 200, 'a follow-up', token => $u,
        json => { message => 'And what does it not cover?', session_id => $sid });
conform(POST => $CHAT, 200, 'a role-play turn', token => $ub,
        json => { message => 'Hello, how can I help?', mode => 'roleplay',
                  conversation_history => [
                      { role => 'user', content => 'Earlier question' },
                      { role => 'assistant', content => 'Earlier answer' } ] });
conform(POST => $CHAT, 200, 'SA chats for a dealership', token => $sa,
        json => { message => 'What is GAP?', dealership_id => $A });
my $nod = conform(POST => $CHAT, 422, 'SA without a dealership', token => $sa,
        json => { message => 'What is GAP?' });
is(detail_field($nod), 'body.dealership_id', '... the detail names dealership_id');
$t->create_user(email => 'u@delta.com', like => 'sa@example.com',
                dealership_id => $D_id);
my $ud = $t->login('u@delta.com', $PW);
conform(POST => $CHAT, 422, 'training without a knowledge base', token => $ud,
        json => { message => 'What is GAP?' });
conform(POST => $CHAT, 404, "another dealership's id", token => $ub,
        json => { message => 'What is GAP?', dealership_id => $A });
# the streamed answer: its events' data against the document's shapes
my $sse = conform(POST => $CHAT, 200, 'a streamed answer', token => $u,
                  json => { message => 'Who needs GAP the most?' },
                  headers => { Accept => 'text/event-stream' });
my @ev = sse_events($sse->{body});
my %ev_schema = (
    token => { type => 'object', required => ['text'],
               properties => { text => { type => 'string' } } },
    sources => { type => ['array', 'null'],
                 items => { '$ref' => '#/components/schemas/Source' } },
    done => { '$ref' => '#/components/schemas/ChatDone' },
);
my @ev_errors;
for my $e (@ev) {
    my $s = $ev_schema{ $e->[0] };
    push @ev_errors, "event $e->[0] is not expected" unless $s;
    push @ev_errors, schema_errors($s, $canon->decode($canon->encode($e->[1])),
                                   "event $e->[0]") if $s;
}
ok(@ev >= 3 && $ev[-1][0] eq 'done' && !@ev_errors,
   'the streamed events carry the documented data (' . scalar(@ev) . ' events)')
    or diag(join "\n", @ev_errors);
conform(GET => '/api/v1/chat/sessions', 200, 'sessions', token => $u);
conform(GET => '/api/v1/chat/history', 200, 'the history of a session',
        token => $u, query => "session_id=$sid");
conform(GET => '/api/v1/chat/history', 200, 'the latest messages', token => $u,
        query => 'limit=2');
conform(GET => '/api/v1/chat/history', 404, "another user's session",
        token => $ub, query => "session_id=$sid");
conform(POST => '/api/v1/chat/prewarm', 200, 'prewarm', token => $u,
        json => { session_id => 'warm-1' });
conform(POST => '/api/v1/chat/prewarm', 422, 'prewarm without a session',
        token => $u, json => {});
conform(GET => '/api/v1/chat/scenarios', 200, 'the scenarios', token => $u);
conform(GET => '/api/v1/chat/cache/stats', 200, 'cache stats', token => $sa);
conform(GET => '/api/v1/chat/cache/stats', 403, 'cache stats as DA', token => $da);
conform(POST => '/api/v1/chat/session/{session_id}/clear', 404,
        "clearing another user's session", token => $ub,
        params => { session_id => $sid });
conform(POST => '/api/v1/chat/session/{session_id}/clear', 200,
        'clearing a session', token => $u, params => { session_id => $sid });

# reports
my $REPORT = '/api/v1/report';
conform(POST => "$REPORT/inaccuracy", 200, 'an inaccuracy report', token => $u,
        json => { user_input => 'What is GAP?', avatar_response => 'A shop.',
                  conversation_context => [ { role => 'user', content => 'Hi' } ],
                  user_note => 'Wrong', session_id => $sid, mode => 'training' });
conform(POST => "$REPORT/send-to-team", 200, 'a message to the team',
        token => $u, json => { user_question => 'Q?', ai_response => 'A.',
                               conversation_history => [],
                               additional_notes => 'Please look' });
conform(POST => "$REPORT/inaccuracy", 422, 'a report without its fields',
        token => $u, json => { user_note => 'x' });
my $reports = conform(GET => "$REPORT/", 200, 'SA lists reports', token => $sa);
conform(GET => "$REPORT/", 200, 'DA lists reports', token => $da);
conform(GET => "$REPORT/", 403, 'a user lists reports', token => $u);
my $rep_id = ((($reports->{json} || [])->[0]) || {})->{id} // 0;
conform(PATCH => "$REPORT/{id}", 200, 'DA resolves a report', token => $da,
        params => { id => $rep_id },
        json => { status => 'resolved', resolution_note => 'Fixed' });
conform(PATCH => "$REPORT/{id}", 422, 'a bad report status', token => $da,
        params => { id => $rep_id }, json => { status => 'gone' });

# analytics
my $SUMMARY = '/api/v1/analytics/summary';
conform(GET => $SUMMARY, 200, 'SA summary', token => $sa);
conform(GET => $SUMMARY, 200, 'SA summary of a dealership', token => $sa,
        query => "dealership_id=$A&from=2020-01-01&to=2099-12-31");
conform(GET => $SUMMARY, 200, 'DA summary', token => $da);
conform(GET => $SUMMARY, 200, 'user summary', token => $u);
conform(GET => $SUMMARY, 404, "DA summary of another dealership", token => $da,
        query => "dealership_id=$B");
conform(GET => $SUMMARY, 422, 'a bad range', token => $sa, query => 'from=yesterday');

# voice (the embedded speech defaults)
my $tts = conform(POST => '/api/v1/voice/tts', 200, 'text to speech', token => $u,
                  json => { text => 'What does a vehicle service contract cover?' });
my $audio = ($tts->{json} || {})->{audio_base64} // '';
conform(POST => '/api/v1/voice/tts', 422, 'text to speech without text',
        token => $u, json => { text => '' });
conform(POST => '/api/v1/voice/stt', 200, 'speech to text', token => $u,
        json => { audio_base64 => $audio, mime_type => 'audio/mpeg' });
my $vc = conform(POST => '/api/v1/voice/chat', 200, 'a voice turn', token => $u,
                 json => { audio_base64 => $audio, mode => 'training' });
my $vsid = ($vc->{json} || {})->{session_id} // 'none';
conform(POST => '/api/v1/voice/chat/fast', 200, 'a fast voice turn', token => $u,
        json => { audio_base64 => $audio, session_id => $vsid });
conform(POST => '/api/v1/voice/chat', 422, 'a voice turn of bad base64',
        token => $u, json => { audio_base64 => '%%%' });
conform(DELETE => '/api/v1/voice/session/{session_id}', 200,
        'clearing a voice session', token => $u, params => { session_id => $vsid });

# avatar, against the provider's mock
my $AV = '/api/v1/avatar';
conform(GET => "$AV/voices", 200, 'the avatar voices', token => $u);
conform(POST => "$AV/session", 200, 'an avatar session', token => $u, json => {});
conform(POST => "$AV/session", 200, 'an avatar session with a voice', token => $u,
        json => { voice_id => 'voice-a' });
$t->http('POST', '/_next', port => $mport, json => { status => 500 });
conform(POST => "$AV/session", 502, 'the provider fails', token => $u, json => {});
conform(POST => "$AV/session", 401, 'an avatar session without a token',
        json => {});

# the voice sockets' refusals before the upgrade
my $VAD = '/api/v1/voice/ws/vad/{client_id}';
my $LIVE = '/api/v1/voice/ws/live/{user_id}';
conform(GET => $VAD, 426, 'the VAD socket asked without an upgrade',
        token => $u, params => { client_id => 'c1' });
for my $case ([ $LIVE, { user_id => $u_id }, 403,
                'the live socket from a foreign origin',
                origin => 'https://evil.example' ],
              [ $VAD, { client_id => 'c1' }, 403,
                'the VAD socket from a foreign origin',
                origin => 'https://evil.example' ],
              [ $VAD, { client_id => 'c' x 129 }, 404,
                'the VAD socket with an id too long' ]) {
    my ($tmpl, $params, $status, $name, @o) = @$case;
    (my $path = $tmpl) =~ s/\{(\w+)\}/$params->{$1}/g;
    my $ws = $t->ws_connect($path, token => $u, @o);
    is($ws->{status}, $status, "$name: $status") or diag($ws->{status_line});
    my @e = answer_errors('get', $tmpl, $path,
                          { status => $ws->{status}, headers => $ws->{headers},
                            body => $ws->{body} });
    ok(!@e, "$name: as documented") or diag(join "\n", @e);
    $ws->close;
}

# the coverage: every documented success answer (but the sockets') was
# validated
my @unchecked;
for my $k (sort keys %documented) {
    for my $st (sort keys %{ $documented{$k}{responses} }) {
        push @unchecked, "$k $st" if $st =~ /^2/ && !$validated{$k}{$st};
    }
}
is_deeply(\@unchecked, [], 'every documented success answer was validated');
my @ops = grep { grep { /^2/ } keys %{ $validated{$_} } } keys %validated;
cmp_ok(scalar(@ops), '>=', 50,
       'operations whose success answers were validated: ' . scalar(@ops));

# last: /health while PostgreSQL is down
$t->stop_pg;
conform(GET => '/health', 503, 'health with the database down');
$t->start_pg;
ok(wait_for(sub { $t->get('/health')->{status} == 200 }, 10),
   'healthy again');

$t->finish;
done_testing;
