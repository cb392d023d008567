# The service routes, routing (404/405), CORS, error shapes, metrics, and
# nginx's own errors turned into the API's JSON errors.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;

my $t = AvatarTest->new;
$t->start_nginx(
    http => 'avatar_cors_origins https://app.example.com;',
    server => 'location = /api/v1/tiny/ { avatar_api; client_max_body_size 10; '
            . 'error_page 413 @avatar_error; }');

my $r = $t->get('/api/v1/');
is($r->{status}, 200, 'GET /api/v1/ answers');
is($r->{json}{message}, 'Avatar Adam API', '... with the message');
like($r->{json}{version}, qr/^\d+\.\d+\.\d+$/, '... and a version');
is($r->{json}{docs}, '/api/v1/docs', '... and the docs path');
like($r->{headers}{'content-type'}, qr{^application/json; charset=utf-8},
     '... as JSON');

$r = $t->get('/health');
is($r->{status}, 200, 'GET /health is 200 with the database up');
is($r->{json}{status}, 'healthy', '... healthy');
ok($r->{json}{version}, '... with the version');

$r = $t->http('HEAD', '/api/v1/');
is($r->{status}, 200, 'HEAD /api/v1/ answers');
ok(!length($r->{body} // ''), '... without a body');

$r = $t->get('/api/v1/no/such/thing');
is($r->{status}, 404, 'an unknown path is 404');
is($r->{json}{error}{type}, 'NotFoundError', '... NotFoundError');
is($r->{json}{error}{path}, '/api/v1/no/such/thing', '... with the path');
ok($r->{json}{error}{message}, '... and a message');

$r = $t->get('/api/v1');
isnt($r->{status}, 200, 'the path without its trailing slash is not the root');

$r = $t->post('/api/v1/', json => {});
is($r->{status}, 405, 'a wrong method is 405');
is($r->{json}{error}{type}, 'MethodNotAllowed', '... in the error shape');
like($r->{headers}{allow}, qr/GET/, '... with Allow');

$r = $t->http('DELETE', '/health');
is($r->{status}, 405, 'DELETE /health is 405');

# CORS
$r = $t->http('OPTIONS', '/api/v1/', headers => {
    Origin => 'https://app.example.com',
    'Access-Control-Request-Method' => 'POST',
    'Access-Control-Request-Headers' => 'authorization, content-type' });
is($r->{status}, 204, 'a preflight from an allowed origin is 204');
is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com',
   '... echoing the origin');
is($r->{headers}{'access-control-allow-credentials'}, 'true',
   '... with credentials');
like($r->{headers}{'access-control-allow-methods'}, qr/PATCH/, '... methods');
like($r->{headers}{'access-control-allow-headers'}, qr/Authorization/,
     '... headers');

$r = $t->http('OPTIONS', '/api/v1/', headers => {
    Origin => 'https://evil.example.com',
    'Access-Control-Request-Method' => 'POST' });
is($r->{status}, 403, 'a preflight from another origin is refused');
ok(!$r->{headers}{'access-control-allow-origin'}, '... without CORS headers');

$r = $t->get('/api/v1/', headers => { Origin => 'https://app.example.com' });
is($r->{headers}{'access-control-allow-origin'}, 'https://app.example.com',
   'a simple request from an allowed origin gets CORS headers');
$r = $t->get('/api/v1/', headers => { Origin => 'https://evil.example.com' });
ok(!$r->{headers}{'access-control-allow-origin'}, '... another origin none');

# metrics
$r = $t->get('/metrics');
is($r->{status}, 200, 'GET /metrics answers');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0.0.4},
     '... in the Prometheus text format');
like($r->{body}, qr/^avatar_api_requests_total\{class="2xx"\} \d+$/m,
     '... counting requests');
like($r->{body}, qr/^avatar_db_queries_total \d+$/m, '... and queries');

# nginx's own 413 becomes the JSON shape through avatar_error
$r = $t->post('/api/v1/tiny/', body => 'x' x 100,
              headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 413, 'a body over client_max_body_size is 413');
is($r->{json}{error}{type}, 'PayloadTooLarge', '... as PayloadTooLarge JSON');
is($r->{json}{error}{path}, '/api/v1/tiny/', '... naming the path');

$t->finish;
done_testing;
