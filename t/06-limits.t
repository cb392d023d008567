# Rate limits of conf/ (through tools/conf.sh, as make run uses them):
# logins per client address, per-user zones keyed on $avatar_user_id,
# 429 in the JSON error shape with Retry-After; and the variables.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;

my $t = AvatarTest->new;
my $dir = $t->dir;
open my $fh, '>', "$dir/secret" or die;
print $fh $t->{secret}, "\n";
close $fh;
my $port = AvatarTest::free_port();
my ($rc, $out) = $t->run_cmd('sh', "$AvatarTest::TOP/tools/conf.sh", "$dir/real",
                             $t->conninfo, "$dir/secret", $port, 1);
is($rc, 0, 'conf/ rendered for this checkout') or diag $out;
# the real configuration, logging to the test's error log
system('sed', '-i', "s|^error_log .*|error_log $dir/error.log info;|",
       "$dir/real/nginx.conf");
$t->start_nginx(file => "$dir/real/nginx.conf", port => $port,
                pidfile => "$dir/real/nginx.pid");

for my $u (['a@example.com', 'Alpha!pass1'], ['b@example.com', 'Bravo!pass1']) {
    my ($c, $o) = $t->avatarctl('bootstrap-admin', '--database', $t->conninfo,
                                '--email', $u->[0], '--password', $u->[1]);
    is($c, 0, "user $u->[0] created") or diag $o;
}
my $ta = $t->post('/api/v1/auth/login', json => { email => 'a@example.com',
                                                  password => 'Alpha!pass1' })->{json};
my $tb = $t->post('/api/v1/auth/login', json => { email => 'b@example.com',
                                                  password => 'Bravo!pass1' })->{json};
ok($ta->{access_token} && $tb->{access_token}, 'both users logged in');

# 5/min per address, burst 10 without delay: two logins above, 9 more
# pass, then 429 (API.md's defaults)
my @codes;
for (1 .. 12) {
    my $r = $t->post('/api/v1/auth/login', json => { email => 'x@example.com',
                                                     password => 'Wrong!pass1' });
    push @codes, $r->{status};
    if ($r->{status} == 429) {
        is($r->{json}{error}{type}, 'RateLimitError', '429 is a RateLimitError');
        is($r->{json}{error}{path}, '/api/v1/auth/login', '... naming the path');
        ok($r->{headers}{'retry-after'} =~ /^\d+$/, '... with Retry-After');
        last;
    }
}
is(scalar(grep { $_ == 401 } @codes), 9, 'nine more logins are answered');
is($codes[-1], 429, 'then the address is limited');
my $r = $t->post('/api/v1/auth/signup', json => {});
is($r->{status}, 429, 'signup shares the per-address limit');

# per user: user A exhausts the chat zone (30/min, burst 10); user B,
# from the same address, is not limited
my $limited = 0;
for (1 .. 15) {
    $r = $t->post('/api/v1/chat/', token => $ta->{access_token},
                  json => { message => 'hi' });
    if ($r->{status} == 429) { $limited = $_; last }
}
ok($limited && $limited <= 12, "user A is limited after its burst ($limited)");
$r = $t->post('/api/v1/chat/', token => $tb->{access_token}, json => { message => 'hi' });
isnt($r->{status}, 429, 'user B from the same address is not');
$r = $t->post('/api/v1/chat/', token => $ta->{access_token}, json => { message => 'hi' });
is($r->{status}, 429, 'user A still is');

# the variables in the access log
my $log = do { local (@ARGV, $/) = "$dir/real/logs/avatar-api.log"; <> } // '';
my $ida = $t->psql("SELECT id FROM users WHERE email = 'a\@example.com'");
like($log, qr/user=$ida role=super_admin dealership=- /m,
     '$avatar_user_id and $avatar_role reach the access log');
like($log, qr/user=- role=- dealership=- .*"POST \/api\/v1\/auth\/login/m,
     '... empty without a token');
unlike($log, qr/eyJ/, '... and no token is logged');

# an upload larger than nginx's default client_max_body_size reaches the
# module (here: 404 for a dealership that does not exist), not nginx's 413
{
    my $b = 'BoUnD';
    my $body = "--$b\r\nContent-Disposition: form-data; name=\"files\"; "
             . "filename=\"big.txt\"\r\n\r\n" . ('x' x (2 * 1024 * 1024))
             . "\r\n--$b--\r\n";
    my $up = $t->http('POST', '/api/v1/rag/424242/upload/books',
                      token => $tb->{access_token}, body => $body,
                      headers => { 'Content-Type' => "multipart/form-data; boundary=$b" });
    is($up->{status}, 404, 'a 2 MB upload passes nginx to the module');
    is($up->{json}{error}{type}, 'NotFoundError', '... which answers it');
}

# security headers from conf/avatar-headers.conf, on every kind of answer
for my $path ('/api/v1/', '/api/v1/nope', '/', '/deep/link', '/health') {
    my $r = $t->get($path);
    my $h = $r->{headers};
    ok($h->{'x-content-type-options'} eq 'nosniff'
       && $h->{'x-frame-options'} eq 'DENY'
       && $h->{'referrer-policy'} eq 'strict-origin-when-cross-origin'
       && ($h->{'permissions-policy'} // '') =~ /microphone=\(self\)/
       && ($h->{'content-security-policy'} // '') =~ /default-src 'self'/,
       "security headers on $path ($r->{status})");
}
$r = $t->get('/deep/link');
is($r->{status}, 200, 'a deep link of the web app falls back to index.html');
like($r->{headers}{'cache-control'} // '', qr/no-cache/, '... never cached');

$t->finish;
done_testing;
