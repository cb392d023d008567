# The API's description: /api/v1/openapi.json against the module's routing
# table (every route documented, nothing documented that the server does not
# route), its references, and the /api/v1/docs page made from it.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use JSON::PP;
use Test::More;

my $t = AvatarTest->new;
$t->start_api;

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

$t->finish;
done_testing;
