# /api/v1/auth: login, me, refresh rotation and reuse detection, logout,
# signup modes, password policy, forgot/reset through the mail outbox,
# token attacks over HTTP, body limits, and cut-off on deactivation.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha512);
use Time::HiRes qw(time sleep);

my $t = AvatarTest->new;
my $dir = $t->dir;
mkdir "$dir/outbox";
# nginx's workers (nobody, when the test runs as root) write the outbox
system('chown', 'nobody', "$dir/outbox") if $> == 0;
my $http = <<"EOF";
    avatar_signup open;
    avatar_public_url https://adam.example.com;
    avatar_mail outbox dir=$dir/outbox;
EOF
# the module's own limit, below nginx's client_max_body_size
$t->start_nginx(http => $http, server => <<'EOF');
        location = /api/v1/auth/password/forgot {
            avatar_api;
            avatar_max_body_size 2k;
        }
EOF

my ($rc, $out) = $t->avatarctl('bootstrap-admin', '--database', $t->conninfo,
                               '--email', 'Boss@Example.com',
                               '--password', 'Adm1n!pass');
is($rc, 0, 'a super admin is bootstrapped') or diag $out;
for my $bad (['--email', 'not-an-address'], ['--first-name', '   '],
             ['--last-name', 'x' x 101]) {
    my ($brc) = $t->avatarctl('bootstrap-admin', '--database', $t->conninfo,
                              '--email', 'other@example.com',
                              '--password', 'Adm1n!pass', @$bad);
    isnt($brc, 0, "bootstrap-admin refuses $bad->[0] '" . substr($bad->[1], 0, 12) . "'");
}
is($t->psql("SELECT count(*) FROM users WHERE email = 'other\@example.com'"), 0,
   '... and stores nothing');

sub b64url { my $s = encode_base64(shift, ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }

# login
my $r = $t->post('/api/v1/auth/login',
                 json => { email => 'boss@example.com', password => 'Adm1n!pass' });
is($r->{status}, 200, 'login with the e-mail in another case');
my $tok = $r->{json};
ok($tok->{access_token} && $tok->{refresh_token}, '... gives both tokens');
is($tok->{token_type}, 'bearer', '... bearer');
is($tok->{expires_in}, 1800, '... for 30 minutes');
my ($h, $p) = map { decode_json(decode_base64(tr/-_/+\//r . '==')) }
    (split /\./, $tok->{access_token})[0, 1];
is($h->{alg}, 'HS256', 'the access token is HS256');
is($p->{type}, 'access', '... of type access');
is($p->{role}, 'super_admin', '... with the role');
ok($p->{sub} =~ /^\d+$/ && $p->{jti} && $p->{iat}
   && $p->{exp} - $p->{iat} == 1800, '... sub, jti, iat and exp');

$r = $t->get('/api/v1/auth/me', token => $tok->{access_token});
is($r->{status}, 200, 'me answers');
is($r->{json}{email}, 'Boss@Example.com', '... the user as stored');
is($r->{json}{role}, 'super_admin', '... with its role');
ok($r->{json}{last_login} =~ /Z$/, '... last_login set, in UTC');
ok(exists $r->{json}{dealership_id} && !defined $r->{json}{dealership_id},
   '... no dealership');
for my $k (qw(id first_name last_name is_active is_verified created_at updated_at)) {
    ok(exists $r->{json}{$k}, "... has $k");
}

# missing and bad credentials
$r = $t->get('/api/v1/auth/me');
is($r->{status}, 401, 'me without a token is 401');
is($r->{json}{detail}, 'Not authenticated', '... {"detail":"Not authenticated"}');
is($r->{json}{error}{type}, 'AuthenticationError', '... and the error shape');
is($r->{headers}{'www-authenticate'}, 'Bearer', '... WWW-Authenticate: Bearer');

my @wrong = (
    [ { email => 'boss@example.com', password => 'Wrong!pass1' }, 'a wrong password' ],
    [ { email => 'nobody@example.com', password => 'Adm1n!pass' }, 'an unknown e-mail' ],
);
my %took;
for my $w (@wrong) {
    my $t0 = time;
    $r = $t->post('/api/v1/auth/login', json => $w->[0]);
    $took{$w->[1]} = time - $t0;
    is($r->{status}, 401, "login with $w->[1] is 401");
    is($r->{json}{error}{message}, 'Incorrect email or password',
       '... with the same message');
}
my ($a, $b) = values %took;
ok($a / $b > 0.4 && $a / $b < 2.5,
   sprintf('unknown and known e-mails take about the same time (%.3f s, %.3f s)',
           $a, $b));

# token attacks, over HTTP
my $secret = $t->{secret};
my $claims = b64url(encode_json({ %$p }));
my %attacks = (
    'alg none' => b64url('{"alg":"none","typ":"JWT"}') . ".$claims.",
    'HS512 with the right key' => do {
        my $s = b64url('{"alg":"HS512","typ":"JWT"}') . ".$claims";
        "$s." . b64url(hmac_sha512($s, $secret)) },
    'a wrong key' => do {
        my $s = b64url('{"alg":"HS256","typ":"JWT"}') . ".$claims";
        "$s." . b64url(hmac_sha256($s, 'x' x 52)) },
    'a tampered payload' => do {
        my @parts = split /\./, $tok->{access_token};
        $parts[1] = b64url(encode_json({ %$p, role => 'super_admin', sub => '999' }));
        join '.', @parts },
    'an expired token' => do {
        my $s = b64url('{"alg":"HS256","typ":"JWT"}') . '.'
              . b64url(encode_json({ %$p, exp => time - 10, iat => time - 100 }));
        "$s." . b64url(hmac_sha256($s, $secret)) },
    'a refresh token used as access token' => $tok->{refresh_token},
);
for my $name (sort keys %attacks) {
    $r = $t->get('/api/v1/auth/me', token => $attacks{$name});
    is($r->{status}, 401, "$name is refused");
}
{
    my $s = b64url('{"alg":"HS256","typ":"JWT"}') . ".$claims";
    $r = $t->get('/api/v1/auth/me',
                 token => "$s." . b64url(hmac_sha256($s, $secret)));
    is($r->{status}, 200, 'the same claims signed properly are accepted');
}

# refresh: rotation, and reuse of a rotated token revokes the family
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $tok->{refresh_token} });
is($r->{status}, 200, 'refresh answers');
my $tok2 = $r->{json};
isnt($tok2->{refresh_token}, $tok->{refresh_token}, '... with a new refresh token');
$r = $t->get('/api/v1/auth/me', token => $tok2->{access_token});
is($r->{status}, 200, '... and a working access token');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $tok->{refresh_token} });
is($r->{status}, 401, 'the rotated refresh token is refused');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $tok2->{refresh_token} });
is($r->{status}, 401, '... and its reuse revoked the whole family');
is($t->psql("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL"), 0,
   '... in the database');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $tok->{access_token} });
is($r->{status}, 401, 'an access token is not a refresh token');

# logout
$r = $t->post('/api/v1/auth/login',
              json => { email => 'boss@example.com', password => 'Adm1n!pass' });
my $tok3 = $r->{json};
$r = $t->post('/api/v1/auth/logout', json => { refresh_token => $tok3->{refresh_token} });
is($r->{status}, 204, 'logout is 204');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $tok3->{refresh_token} });
is($r->{status}, 401, '... and the refresh token is revoked server-side');
$r = $t->post('/api/v1/auth/logout', json => { refresh_token => 'garbage' });
is($r->{status}, 401, 'logout with a bad token is 401');

# signup (open mode) and the password policy
my %good = (email => 'Trainee@Example.com', password => 'Train!ng1',
            first_name => 'Tia', last_name => 'Trainee');
$r = $t->post('/api/v1/auth/signup', json => { %good, password => 'short' });
is($r->{status}, 422, 'a weak password is 422');
is($r->{json}{error}{details}[0]{field}, 'body.password', '... naming the field');
$r = $t->post('/api/v1/auth/signup', json => { %good, password => 'Aa1!' . ('x' x 70) });
is($r->{status}, 422, 'a password over 72 bytes is 422, not 500');
$r = $t->post('/api/v1/auth/signup', json => { %good, password => 'Äa1!' . ('é' x 34) });
is($r->{status}, 422, '... also when the bytes come from multi-byte characters');
$r = $t->post('/api/v1/auth/signup', json => { %good, email => 'not-an-email' });
is($r->{status}, 422, 'a bad e-mail is 422');
$r = $t->post('/api/v1/auth/signup', json => { %good, first_name => '' });
is($r->{status}, 422, 'an empty first name is 422');
$r = $t->post('/api/v1/auth/signup', json => { %good, first_name => 'x' x 101 });
is($r->{status}, 422, 'a first name over 100 characters is 422');
$r = $t->post('/api/v1/auth/signup', json => { %good, last_name => 7 });
is($r->{status}, 422, 'a number for a name is 422');
$r = $t->post('/api/v1/auth/signup', json => { %good, role => 'super_admin' });
is($r->{status}, 409, 'signing up as another role is 409');
$r = $t->post('/api/v1/auth/signup', json => { %good, dealership_id => 424242 });
is($r->{status}, 422, 'an unknown dealership is 422');
$r = $t->post('/api/v1/auth/signup', json => '{"email": ');
is($r->{status}, 422, 'malformed JSON is 422');
is($r->{json}{error}{type}, 'ValidationError', '... a ValidationError');
$r = $t->post('/api/v1/auth/signup', body => encode_json(\%good),
              headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 422, 'a wrong content type is 422');
$r = $t->post('/api/v1/auth/signup', json => "{\"email\":\"\xff\xfe\"}");
is($r->{status}, 422, 'a body that is not UTF-8 is 422');
is($t->psql('SELECT count(*) FROM users'), 1, 'none of these wrote anything');

$r = $t->post('/api/v1/auth/signup', json => \%good);
is($r->{status}, 201, 'signup is 201');
ok($r->{json}{access_token}, '... with tokens');
$r = $t->post('/api/v1/auth/signup', json => { %good, email => 'TRAINEE@example.com' });
is($r->{status}, 409, 'the same e-mail in another case is 409');

# body limits: the module's own 413 (avatar_max_body_size), and nginx's
# (client_max_body_size) turned into the same JSON by avatar_error
$r = $t->post('/api/v1/auth/password/forgot',
              json => { email => ('x' x 3000) . '@example.com' });
is($r->{status}, 413, 'a body over avatar_max_body_size is 413');
is($r->{json}{error}{type}, 'PayloadTooLarge', '... PayloadTooLarge');
unlike($t->error_log, qr/client intended to send too large body/,
       '... refused by the module, not by nginx');
$r = $t->post('/api/v1/auth/login', json => { email => 'x' x (1024 * 1024 + 10),
                                              password => 'y' });
is($r->{status}, 413, 'a body over client_max_body_size is 413');
is($r->{json}{error}{type}, 'PayloadTooLarge', '... also as JSON');

# forgot and reset, through the outbox
$r = $t->post('/api/v1/auth/password/forgot', json => { email => 'ghost@example.com' });
is($r->{status}, 202, 'forgot for an unknown address is 202');
$r = $t->post('/api/v1/auth/password/forgot', json => { email => 'trainee@EXAMPLE.com' });
is($r->{status}, 202, 'forgot for a known address is 202 too');
my $eml;
for (1 .. 60) {
    ($eml) = glob "$dir/outbox/*.eml";
    last if $eml;
    sleep 0.1;
}
ok($eml, 'the reset mail is written to the outbox');
my $mail = do { local (@ARGV, $/) = $eml; <> };
$mail =~ s/=\r?\n//g;               # quoted-printable soft breaks
$mail =~ s/=3D/=/g;
my ($reset) = $mail =~ m{https://adam\.example\.com/reset-password\?token=([0-9a-f]+)};
ok($reset, '... with a link on the public URL') or diag $mail;
is($t->psql("SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND kind = 'password_reset'"),
   1, '... and marked sent in the queue');
is($t->psql("SELECT count(*) FROM password_resets WHERE token_hash = decode('$reset', 'hex')"),
   0, 'the database holds the reset token only hashed');

my $sess = $t->post('/api/v1/auth/login', json => { email => $good{email},
                                                    password => $good{password} })->{json};
$r = $t->post('/api/v1/auth/password/reset', json => { token => $reset, password => 'weak' });
is($r->{status}, 422, 'reset with a weak password is 422');
$r = $t->post('/api/v1/auth/password/reset', json => { token => 'f' x 64, password => 'N3w!passw' });
is($r->{status}, 422, 'reset with an unknown token is 422');
$r = $t->post('/api/v1/auth/password/reset', json => { token => $reset, password => 'N3w!passw' });
is($r->{status}, 204, 'reset is 204');
$r = $t->post('/api/v1/auth/password/reset', json => { token => $reset, password => 'N3w!passw2' });
is($r->{status}, 422, 'a reset token works once');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $sess->{refresh_token} });
is($r->{status}, 401, 'reset revoked every refresh token');
$r = $t->get('/api/v1/auth/me', token => $sess->{access_token});
is($r->{status}, 401, '... and access tokens issued before it');
$r = $t->post('/api/v1/auth/login', json => { email => $good{email}, password => $good{password} });
is($r->{status}, 401, 'the old password no longer works');
$r = $t->post('/api/v1/auth/login', json => { email => $good{email}, password => 'N3w!passw' });
is($r->{status}, 200, 'the new one does');
my $trainee = $r->{json};

# deactivation cuts a user off at once, whatever the token says
$t->psql("UPDATE users SET is_active = false WHERE lower(email) = 'trainee\@example.com'");
$r = $t->get('/api/v1/auth/me', token => $trainee->{access_token});
is($r->{status}, 401, 'a deactivated user is cut off at once');
$r = $t->post('/api/v1/auth/refresh', json => { refresh_token => $trainee->{refresh_token} });
is($r->{status}, 401, '... and cannot refresh');
$r = $t->post('/api/v1/auth/login', json => { email => $good{email}, password => 'N3w!passw' });
is($r->{status}, 401, '... nor log in');

# repeated failures slow one account down, from any address
for (1 .. 5) {
    $t->post('/api/v1/auth/login', json => { email => 'boss@example.com',
                                             password => 'Wrong!pass1' });
}
my $t0 = time;
$r = $t->post('/api/v1/auth/login', json => { email => 'boss@example.com',
                                              password => 'Adm1n!pass' });
my $slow = time - $t0;
is($r->{status}, 200, 'after failures the right password still works');
ok($slow > 0.9, sprintf('... but only after a delay (%.2f s)', $slow));
$t0 = time;
$r = $t->post('/api/v1/auth/login', json => { email => 'boss@example.com',
                                              password => 'Adm1n!pass' });
ok(time - $t0 < $slow, '... and a success resets the delay');

# signup modes
$t->stop_nginx;
$t->start_nginx(http => "avatar_mail outbox dir=$dir/outbox;");
$r = $t->post('/api/v1/auth/signup', json => { %good, email => 'new@example.com' });
is($r->{status}, 403, 'signup is off by default');
is($r->{json}{error}{type}, 'AuthorizationError', '... AuthorizationError');
$t->stop_nginx;
$t->start_nginx(http => "avatar_signup invite; avatar_mail outbox dir=$dir/outbox;");
$r = $t->post('/api/v1/auth/signup', json => { %good, email => 'new@example.com' });
is($r->{status}, 403, 'invite mode needs an invitation');
$r = $t->post('/api/v1/auth/signup', json => { %good, email => 'new@example.com',
                                               invite_token => 'a' x 64 });
is($r->{status}, 422, '... a valid one');

$t->finish;
done_testing;
