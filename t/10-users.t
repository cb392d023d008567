# /api/v1/users: every route for every role (super admin, dealership
# admin, user, no token), the refusals of API.md, validation (422 with
# details, nothing written), cutting accounts off, invitations (mailed,
# then used to sign up), and avatarctl user.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use JSON::PP;
use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep);

my $t = AvatarTest->new;
$t->start_api(http => 'avatar_signup invite;'
                      . ' avatar_public_url https://adam.example.com;');

my $PW = 'Adm1n!pass';
my $sa_id = $t->bootstrap_admin('sa@example.com', $PW);
my $A = $t->make_dealership('Acme Motors');
my $B = $t->make_dealership('Best Cars');
my $da_id = $t->create_user(email => 'da.a@example.com', like => 'sa@example.com',
                            role => 'dealership_admin', dealership_id => $A);
my $u_id = $t->create_user(email => 'u.a@example.com', like => 'sa@example.com',
                           role => 'user', dealership_id => $A);
my $ub_id = $t->create_user(email => 'u.b@example.com', like => 'sa@example.com',
                            role => 'user', dealership_id => $B);

my $sa = $t->login('sa@example.com', $PW);
my $da = $t->login('da.a@example.com', $PW);
my $u = $t->login('u.a@example.com', $PW);

sub users_count { $t->psql('SELECT count(*) FROM users') }
sub user_row {
    $t->psql("SELECT row_to_json(u)::text FROM users u WHERE id = $_[0]");
}
sub live_tokens {
    $t->psql('SELECT count(*) FROM refresh_tokens WHERE user_id = '
             . int($_[0]) . ' AND revoked_at IS NULL');
}

sub error_ok {
    my ($r, $status, $type, $name, $msg) = @_;
    is($r->{status}, $status, "$name: $status")
        or diag($r->{body});
    is($r->{json} && $r->{json}{error} && $r->{json}{error}{type}, $type,
       "$name: $type");
    like($r->{json}{error}{path} // '', qr{^/api/v1/users/}, "$name: path");
    is($r->{json}{error}{message}, $msg, "$name: message") if defined $msg;
}

# the fields named by the details of a 422
sub fields_of {
    my ($r) = @_;
    return join ',', sort map { $_->{field} }
        @{ ($r->{json} && $r->{json}{error}{details}) || [] };
}

sub invalid_ok {
    my ($r, $fields, $name) = @_;
    is($r->{status}, 422, "$name: 422") or diag($r->{body});
    is($r->{json}{error}{type}, 'ValidationError', "$name: ValidationError");
    my @d = @{ $r->{json}{error}{details} || [] };
    ok(@d && !grep({ !($_->{field} && $_->{message} && $_->{type}) } @d),
       "$name: details with field, message and type");
    is(fields_of($r), $fields, "$name: names $fields") if defined $fields;
}

my $user_keys = join ',', sort qw(id email first_name last_name role
    is_active is_verified dealership_id last_login created_at updated_at);

my @routes = (
    [ GET => '/api/v1/users/' ],
    [ GET => '/api/v1/users/count' ],
    [ GET => "/api/v1/users/$u_id" ],
    [ POST => '/api/v1/users/', { email => 'x@example.com' } ],
    [ PATCH => "/api/v1/users/$u_id", { first_name => 'X' } ],
    [ DELETE => "/api/v1/users/$u_id" ],
    [ PATCH => "/api/v1/users/$u_id/toggle-active" ],
    [ POST => '/api/v1/users/invites', { email => 'inv@example.com' } ],
);

# -- no token, a bad token: 401 in both shapes, nothing written ---------

my $before = users_count();
for my $rt (@routes) {
    my ($m, $p, $body) = @$rt;
    my $r = $t->http($m, $p, defined $body ? (json => $body) : ());
    is($r->{status}, 401, "$m $p without a token: 401");
    is($r->{json}{detail}, 'Not authenticated', '... {"detail"}');
    is($r->{json}{error}{type}, 'AuthenticationError', '... and the error shape');
    is($r->{json}{error}{message}, 'Not authenticated', '... its message');
    is($r->{headers}{'www-authenticate'}, 'Bearer', '... WWW-Authenticate');
    $r = $t->http($m, $p, token => 'not.a.token',
                  defined $body ? (json => $body) : ());
    is($r->{status}, 401, "$m $p with a bad token: 401");
}
is(users_count(), $before, 'no account written without a token');

# -- a user: 403 on every route -------------------------------------------

my $u_row = user_row($u_id);
for my $rt (@routes, [ GET => "/api/v1/users/$sa_id" ],
            [ POST => '/api/v1/users/', { email => 'new@example.com',
              password => 'Passw0rd!', first_name => 'N', last_name => 'N',
              role => 'user', dealership_id => $A } ],
            [ PATCH => "/api/v1/users/$u_id", { role => 'super_admin' } ])
{
    my ($m, $p, $body) = @$rt;
    my $r = $t->http($m, $p, token => $u,
                     defined $body ? (json => $body) : ());
    error_ok($r, 403, 'AuthorizationError', "user: $m $p");
}
is(users_count(), $before, 'a user created nothing');
is(user_row($u_id), $u_row, 'a user changed nothing, not even itself');

# -- super admin: list, count, filters, paging ------------------------------

my $r = $t->get('/api/v1/users/', token => $sa);
is($r->{status}, 200, 'SA lists the users');
is(scalar @{ $r->{json} }, 4, '... all of them');
is(join(',', map { $_->{id} } @{ $r->{json} }),
   join(',', $ub_id, $u_id, $da_id, $sa_id), '... newest first');
is(join(',', sort keys %{ $r->{json}[0] }), $user_keys, '... as User objects');
ok(!grep({ exists $_->{password_hash} } @{ $r->{json} }), '... no password hash');
ok(JSON::PP::is_bool($r->{json}[0]{is_active}), '... is_active a boolean');

$r = $t->get('/api/v1/users/?skip=1&limit=2', token => $sa);
is(join(',', map { $_->{id} } @{ $r->{json} }), "$u_id,$da_id", 'skip and limit');
$r = $t->get("/api/v1/users/?dealership_id=$A", token => $sa);
is(join(',', sort map { $_->{id} } @{ $r->{json} }),
   join(',', sort($da_id, $u_id)), 'filter dealership_id');
$r = $t->get('/api/v1/users/?role=super_admin', token => $sa);
is(join(',', map { $_->{id} } @{ $r->{json} }), $sa_id, 'filter role');
$t->psql("UPDATE users SET is_active = false WHERE id = $ub_id");
$r = $t->get('/api/v1/users/?is_active=false', token => $sa);
is(join(',', map { $_->{id} } @{ $r->{json} }), $ub_id, 'filter is_active');
$r = $t->get("/api/v1/users/count?is_active=true&dealership_id=$A&role=user",
             token => $sa);
is_deeply($r->{json}, { count => 1 }, 'count with every filter');
$r = $t->get('/api/v1/users/count', token => $sa);
is_deeply($r->{json}, { count => 4 }, 'count of all');
$t->psql("UPDATE users SET is_active = true WHERE id = $ub_id");

for my $q ('skip=-1', 'skip=x', 'limit=0', 'limit=101', 'limit=1.5',
           'role=boss', 'is_active=maybe', 'dealership_id=abc') {
    (my $name = $q) =~ s/=.*//;
    invalid_ok($t->get("/api/v1/users/?$q", token => $sa), "query.$name",
               "GET /users/?$q");
}
invalid_ok($t->get('/api/v1/users/count?role=x', token => $sa), 'query.role',
           'GET /users/count?role=x');

# -- get one ------------------------------------------------------------------

$r = $t->get("/api/v1/users/$u_id", token => $sa);
is($r->{status}, 200, 'SA reads a user');
is($r->{json}{email}, 'u.a@example.com', '... that user');
is($r->{json}{dealership_id}, $A, '... with its dealership');
error_ok($t->get('/api/v1/users/987654', token => $sa), 404, 'NotFoundError',
         'a missing user', 'User with ID 987654 not found');
invalid_ok($t->get('/api/v1/users/abc', token => $sa), 'path.id',
           'a non-numeric id');
invalid_ok($t->get('/api/v1/users/-1', token => $sa), 'path.id',
           'a negative id');

# -- create -------------------------------------------------------------------

my %new = (email => 'New.One@Example.com', password => 'Passw0rd!',
           first_name => 'New', last_name => 'One', role => 'dealership_admin',
           dealership_id => $A);
$r = $t->post('/api/v1/users/', token => $sa, json => \%new);
is($r->{status}, 201, 'SA creates a user') or diag($r->{body});
my $new_id = $r->{json}{id};
is(join(',', sort keys %{ $r->{json} }), $user_keys, '... a User');
is($r->{json}{email}, 'New.One@Example.com', '... e-mail stored as given');
is($r->{json}{role}, 'dealership_admin', '... with the role');
is($r->{json}{dealership_id}, $A, '... and the dealership');
ok($r->{json}{is_active} && $r->{json}{is_verified}, '... active and verified');
like($t->psql("SELECT password_hash FROM users WHERE id = $new_id"),
     qr/^\$2b\$\d\d\$/, '... with a bcrypt hash');
ok($t->login('new.one@example.com', 'Passw0rd!'), '... who can log in');

$r = $t->post('/api/v1/users/', token => $sa,
              json => { %new, email => 'NEW.ONE@example.COM' });
error_ok($r, 409, 'ConflictError', 'the same e-mail in other case');
$r = $t->post('/api/v1/users/', token => $sa,
              json => { %new, email => 'other@example.com',
                        dealership_id => 999999 });
invalid_ok($r, 'body.dealership_id', 'an unknown dealership');
is($r->{json}{error}{message}, 'Dealership with ID 999999 not found',
   '... says which');

$r = $t->post('/api/v1/users/', token => $sa,
              json => { email => 'plain@example.com', password => 'Passw0rd!',
                        first_name => 'P', last_name => 'Q' });
is($r->{status}, 201, 'role defaults to user');
is($r->{json}{role}, 'user', '... user');
is($r->{json}{dealership_id}, undef, '... without a dealership');
my $plain_id = $r->{json}{id};

$before = users_count();
my $long = 'Aa1!' . ("\x{e9}" x 35);      # 39 characters, 74 bytes
my @bad = (
    [ {}, 'body.email,body.first_name,body.last_name,body.password',
      'an empty object' ],
    [ { %new, email => 'not-an-address' }, 'body.email', 'a bad e-mail' ],
    [ { %new, email => 5 }, 'body.email', 'a number as e-mail' ],
    [ { %new, password => 'password' }, 'body.password', 'a weak password' ],
    [ { %new, password => 'Sh0rt!' }, 'body.password', 'a short password' ],
    [ { %new, password => $long }, 'body.password', 'a 74-byte password' ],
    [ { %new, password => 'Aa1!' . ('x' x 97) }, 'body.password',
      'a 101-character password' ],
    [ { %new, first_name => '' }, 'body.first_name', 'an empty first name' ],
    [ { %new, last_name => 'x' x 101 }, 'body.last_name',
      'a 101-character last name' ],
    [ { %new, first_name => 7 }, 'body.first_name', 'a number as name' ],
    [ { %new, role => 'boss' }, 'body.role', 'an unknown role' ],
    [ { %new, dealership_id => 'one' }, 'body.dealership_id',
      'a string as dealership_id' ],
    [ { %new, dealership_id => 1.5 }, 'body.dealership_id',
      'a fraction as dealership_id' ],
);
for my $b (@bad) {
    my ($body, $fields, $name) = @$b;
    $body->{email} = 'fresh@example.com'
        if exists $body->{email} && $body->{email} eq $new{email};
    invalid_ok($t->post('/api/v1/users/', token => $sa, json => $body),
               $fields, "POST /users/ with $name");
}
$r = $t->post('/api/v1/users/', token => $sa,
              json => { %new, email => 'fresh@example.com', password => $long });
like($r->{json}{error}{message}, qr/72 bytes/, 'the 74-byte password: why');
$r = $t->post('/api/v1/users/', token => $sa,
              json => { %new, email => 'fresh@example.com',
                        password => 'passw0rd!' });
like($r->{json}{error}{message}, qr/uppercase/, 'a weak password: why');
for my $raw ([ '{"email":', 'malformed JSON' ], [ '[]', 'an array' ],
             [ '"x"', 'a string' ], [ "\xff\xfe{}", 'bad UTF-8' ],
             [ '', 'no body' ]) {
    invalid_ok($t->post('/api/v1/users/', token => $sa, body => $raw->[0],
                        headers => { 'Content-Type' => 'application/json' }),
               'body', "POST /users/ with $raw->[1]");
}
invalid_ok($t->post('/api/v1/users/', token => $sa,
                    body => encode_json({ %new, email => 'fresh@example.com' }),
                    headers => { 'Content-Type' => 'text/plain' }),
           'body', 'POST /users/ as text/plain');
is(users_count(), $before, 'no bad request wrote anything');

# -- dealership admin: its own dealership only ----------------------------

$r = $t->get('/api/v1/users/', token => $da);
is(join(',', sort map { $_->{id} } @{ $r->{json} }),
   join(',', sort($da_id, $u_id, $new_id)), 'DA lists its dealership only');
$r = $t->get("/api/v1/users/?dealership_id=$B", token => $da);
is_deeply($r->{json}, [], 'DA asking for another dealership: []');
$r = $t->get('/api/v1/users/count', token => $da);
is_deeply($r->{json}, { count => 3 }, 'DA counts its dealership only');
$r = $t->get("/api/v1/users/count?dealership_id=$B", token => $da);
is_deeply($r->{json}, { count => 0 }, '... 0 for another dealership');
$r = $t->get("/api/v1/users/$u_id", token => $da);
is($r->{status}, 200, 'DA reads a user of its dealership');
error_ok($t->get("/api/v1/users/$ub_id", token => $da), 404, 'NotFoundError',
         'DA reads another dealership\'s user',
         "User with ID $ub_id not found");
error_ok($t->get("/api/v1/users/$sa_id", token => $da), 404, 'NotFoundError',
         'DA reads the super admin', "User with ID $sa_id not found");
error_ok($t->get("/api/v1/users/$plain_id", token => $da), 404,
         'NotFoundError', 'DA reads a user of no dealership');

$r = $t->post('/api/v1/users/', token => $da,
              json => { email => 'trainee@example.com', password => 'Passw0rd!',
                        first_name => 'T', last_name => 'R' });
is($r->{status}, 201, 'DA creates a user');
is($r->{json}{dealership_id}, $A, '... in its own dealership');
my $trainee_id = $r->{json}{id};
$r = $t->post('/api/v1/users/', token => $da,
              json => { email => 'da2@example.com', password => 'Passw0rd!',
                        first_name => 'D', last_name => 'A',
                        role => 'dealership_admin', dealership_id => $A });
is($r->{status}, 201, 'DA creates a dealership admin of its dealership');
my $da2_id = $r->{json}{id};
$before = users_count();
error_ok($t->post('/api/v1/users/', token => $da,
                  json => { email => 'root2@example.com',
                            password => 'Passw0rd!', first_name => 'R',
                            last_name => 'T', role => 'super_admin' }),
         403, 'AuthorizationError', 'DA creates a super admin');
$r = $t->post('/api/v1/users/', token => $da,
              json => { email => 'spy@example.com', password => 'Passw0rd!',
                        first_name => 'S', last_name => 'P',
                        dealership_id => $B });
invalid_ok($r, 'body.dealership_id', 'DA creates a user elsewhere');
is($r->{json}{error}{message}, "Dealership with ID $B not found",
   '... answered like a missing dealership');
is(users_count(), $before, '... nothing written');

# -- update -------------------------------------------------------------------

$r = $t->patch("/api/v1/users/$u_id", token => $sa,
               json => { first_name => 'Ursula', last_name => 'Ames',
                         email => 'ursula@example.com' });
is($r->{status}, 200, 'SA updates names and e-mail');
is_deeply([ @{ $r->{json} }{qw(first_name last_name email role)} ],
          [ 'Ursula', 'Ames', 'ursula@example.com', 'user' ],
          '... the new values, the rest unchanged');
$r = $t->patch("/api/v1/users/$u_id", token => $sa, json => {});
is($r->{status}, 200, 'an empty update answers the user');
is($r->{json}{first_name}, 'Ursula', '... unchanged');
my $row = user_row($u_id);
error_ok($t->patch("/api/v1/users/$u_id", token => $sa,
                   json => { email => 'DA.A@example.com' }),
         409, 'ConflictError', 'an e-mail taken (other case)');
$r = $t->patch("/api/v1/users/$u_id", token => $sa,
               json => { dealership_id => 424242 });
invalid_ok($r, 'body.dealership_id', 'an unknown dealership');
invalid_ok($t->patch("/api/v1/users/$u_id", token => $sa,
                     json => { is_active => 'yes', role => 'king',
                               email => 'x', first_name => '' }),
           'body.email,body.first_name,body.is_active,body.role',
           'PATCH with four bad fields');
invalid_ok($t->patch("/api/v1/users/$u_id", token => $sa, body => '{',
                     headers => { 'Content-Type' => 'application/json' }),
           'body', 'PATCH with malformed JSON');
invalid_ok($t->patch("/api/v1/users/$u_id", token => $sa, body => '{}',
                     headers => { 'Content-Type' => 'text/plain' }),
           'body', 'PATCH as text/plain');
error_ok($t->patch('/api/v1/users/987654', token => $sa,
                   json => { first_name => 'X' }),
         404, 'NotFoundError', 'PATCH a missing user',
         'User with ID 987654 not found');
is(user_row($u_id), $row, 'refused updates changed nothing');

$r = $t->patch("/api/v1/users/$sa_id", token => $sa,
               json => { role => 'user' });
error_ok($r, 403, 'AuthorizationError', 'SA changes its own role',
         'Cannot change your own role');
error_ok($t->patch("/api/v1/users/$da_id", token => $da,
                   json => { role => 'user' }),
         403, 'AuthorizationError', 'DA changes its own role',
         'Cannot change your own role');
error_ok($t->patch("/api/v1/users/$sa_id", token => $sa,
                   json => { is_active => JSON::PP::false }),
         403, 'AuthorizationError', 'SA deactivates itself by PATCH',
         'Cannot deactivate your own account');
$r = $t->patch("/api/v1/users/$sa_id", token => $sa,
               json => { role => 'super_admin', first_name => 'Root' });
is($r->{status}, 200, 'restating its own role is no change');

$r = $t->patch("/api/v1/users/$u_id", token => $da,
               json => { last_name => 'Adams' });
is($r->{status}, 200, 'DA updates a user of its dealership');
is($r->{json}{last_name}, 'Adams', '... done');
$row = user_row($u_id);
error_ok($t->patch("/api/v1/users/$u_id", token => $da,
                   json => { role => 'super_admin' }),
         403, 'AuthorizationError', 'DA grants super_admin');
error_ok($t->patch("/api/v1/users/$u_id", token => $da,
                   json => { dealership_id => $B }),
         403, 'AuthorizationError', 'DA moves a user to another dealership');
error_ok($t->patch("/api/v1/users/$ub_id", token => $da,
                   json => { first_name => 'X' }),
         404, 'NotFoundError', 'DA updates another dealership\'s user');
error_ok($t->patch("/api/v1/users/$sa_id", token => $da,
                   json => { first_name => 'X' }),
         404, 'NotFoundError', 'DA updates the super admin');
is(user_row($u_id), $row, '... nothing changed');

# a role change revokes the refresh tokens; the access token follows the
# database at once
my $u2 = $t->login('ursula@example.com', $PW);
ok(live_tokens($u_id) > 0, 'the user holds refresh tokens');
$r = $t->patch("/api/v1/users/$u_id", token => $da,
               json => { role => 'dealership_admin' });
is($r->{json}{role}, 'dealership_admin', 'DA promotes a user');
is(live_tokens($u_id), 0, '... its refresh tokens are revoked');
is($t->get('/api/v1/users/count', token => $u2)->{status}, 200,
   '... and its token carries the new role at once');
$r = $t->patch("/api/v1/users/$u_id", token => $sa,
               json => { role => 'user', dealership_id => $B });
is_deeply([ @{ $r->{json} }{qw(role dealership_id)} ], [ 'user', $B ],
          'SA moves a user to another dealership');
is($t->get('/api/v1/users/count', token => $u2)->{status}, 403,
   '... the demoted token is refused at once');
$t->patch("/api/v1/users/$u_id", token => $sa,
          json => { dealership_id => $A });

# -- toggle-active: cuts the account off at once ----------------------------

$u2 = $t->login('ursula@example.com', $PW);
is($t->get('/api/v1/dealerships/', token => $u2)->{status}, 200,
   'the user\'s token works');
$r = $t->patch("/api/v1/users/$u_id/toggle-active", token => $da);
is($r->{status}, 200, 'DA deactivates a user');
is($r->{json}{is_active}, JSON::PP::false, '... inactive');
is($t->get('/api/v1/dealerships/', token => $u2)->{status}, 401,
   '... whose token is refused at once');
is(live_tokens($u_id), 0, '... whose refresh tokens are revoked');
$r = $t->patch("/api/v1/users/$u_id/toggle-active", token => $sa);
is($r->{json}{is_active}, JSON::PP::true, 'SA reactivates it');
error_ok($t->patch("/api/v1/users/$sa_id/toggle-active", token => $sa),
         403, 'AuthorizationError', 'SA toggles itself',
         'Cannot deactivate your own account');
error_ok($t->patch("/api/v1/users/$da_id/toggle-active", token => $da),
         403, 'AuthorizationError', 'DA toggles itself',
         'Cannot deactivate your own account');
$row = user_row($ub_id);
error_ok($t->patch("/api/v1/users/$ub_id/toggle-active", token => $da),
         404, 'NotFoundError', 'DA toggles another dealership\'s user');
is(user_row($ub_id), $row, '... unchanged');
error_ok($t->patch('/api/v1/users/987654/toggle-active', token => $sa),
         404, 'NotFoundError', 'toggle a missing user');

# -- delete ---------------------------------------------------------------------

error_ok($t->del("/api/v1/users/$sa_id", token => $sa), 403,
         'AuthorizationError', 'SA deletes itself',
         'Cannot delete your own account');
error_ok($t->del("/api/v1/users/$da_id", token => $da), 403,
         'AuthorizationError', 'DA deletes itself',
         'Cannot delete your own account');
error_ok($t->del("/api/v1/users/$ub_id", token => $da), 404,
         'NotFoundError', 'DA deletes another dealership\'s user');
error_ok($t->del("/api/v1/users/$sa_id", token => $da), 404,
         'NotFoundError', 'DA deletes the super admin');
is($t->psql("SELECT count(*) FROM users WHERE id IN ($ub_id, $sa_id)"), 2,
   '... both still there');
my $tr = $t->login('trainee@example.com', 'Passw0rd!');
$r = $t->del("/api/v1/users/$trainee_id", token => $da);
is($r->{status}, 204, 'DA deletes a user of its dealership');
is($r->{body} // '', '', '... no body');
is($t->psql("SELECT count(*) FROM users WHERE id = $trainee_id"), 0,
   '... gone');
is($t->psql("SELECT count(*) FROM refresh_tokens WHERE user_id = $trainee_id"),
   0, '... with its refresh tokens');
is($t->get('/api/v1/dealerships/', token => $tr)->{status}, 401,
   '... and its token is refused at once');
error_ok($t->del("/api/v1/users/$trainee_id", token => $da), 404,
         'NotFoundError', 'deleting it again');
$r = $t->del("/api/v1/users/$da2_id", token => $sa);
is($r->{status}, 204, 'SA deletes a user');

# -- invitations ------------------------------------------------------------------

sub invites_state {
    $t->psql('SELECT (SELECT count(*) FROM invites) || \'/\''
             . ' || (SELECT count(*) FROM mail_outbox)');
}

# the token of the newest invitation mailed to an address
sub mailed_token {
    my ($to) = @_;
    for (1 .. 100) {
        for my $f (glob $t->dir . '/outbox/*.eml') {
            my $m = do { local (@ARGV, $/) = $f; <> };
            next unless $m =~ /^To:.*\Q$to\E/mi;
            $m =~ s/=\r?\n//g;
            $m =~ s/=3D/=/g;
            my ($tok) = $m =~ m{https://adam\.example\.com/signup\?token=([0-9a-f]{64})};
            return ($tok, $m) if $tok;
        }
        sleep 0.05;
    }
    return;
}

$r = $t->post('/api/v1/users/invites', token => $sa,
              json => { email => 'Invitee@example.com', role => 'dealership_admin',
                        dealership_id => $A });
is($r->{status}, 201, 'SA invites a dealership admin') or diag($r->{body});
is(join(',', sort keys %{ $r->{json} || {} }), 'email,expires_at,id',
   '... {id, email, expires_at}');
like($r->{json}{expires_at}, qr/^\d{4}-\d\d-\d\dT[\d:.]+Z$/, '... in ISO 8601');
my $inv_id = $r->{json}{id};
is($t->psql("SELECT concat_ws('|', role, dealership_id, created_by,"
            . " octet_length(token_hash), used_at IS NULL,"
            . " expires_at > now() + interval '6 days')"
            . " FROM invites WHERE id = $inv_id"),
   "dealership_admin|$A|$sa_id|32|t|t", '... stored, valid for 7 days');
my ($itok, $imail) = mailed_token('Invitee@example.com');
ok($itok, '... and mailed with a signup link') or diag($imail);
like($imail // '', qr/Acme Motors/, '... naming the dealership');
is($t->psql("SELECT count(*) FROM invites WHERE token_hash ="
            . " decode('" . sha256_hex($itok // '') . "', 'hex')"), 1,
   '... the database holds only its SHA-256');
$r = $t->post('/api/v1/auth/signup',
              json => { email => 'invitee@example.com', password => 'Inv1te!pw',
                        first_name => 'In', last_name => 'Vitee',
                        invite_token => $itok });
is($r->{status}, 201, 'the invitation signs the invitee up') or diag($r->{body});
is($t->psql("SELECT role || '|' || dealership_id FROM users"
            . " WHERE lower(email) = 'invitee\@example.com'"),
   "dealership_admin|$A", '... with the role and dealership it fixed');

$r = $t->post('/api/v1/users/invites', token => $da,
              json => { email => 'rookie@example.com' });
is($r->{status}, 201, 'DA invites a user');
is($t->psql("SELECT role || '|' || dealership_id FROM invites"
            . " WHERE id = " . ($r->{json}{id} // 0)), "user|$A",
   '... to its own dealership');
ok((mailed_token('rookie@example.com'))[0], '... mailed');

my $inv_before = invites_state();
error_ok($t->post('/api/v1/users/invites', token => $da,
                  json => { email => 'boss@example.com', role => 'super_admin' }),
         403, 'AuthorizationError', 'DA invites a super admin');
$r = $t->post('/api/v1/users/invites', token => $da,
              json => { email => 'spy@example.com', dealership_id => $B });
invalid_ok($r, 'body.dealership_id', 'DA invites into another dealership');
is($r->{json}{error}{message}, "Dealership with ID $B not found",
   '... answered like a missing dealership');
invalid_ok($t->post('/api/v1/users/invites', token => $sa,
                    json => { email => 'x@example.com', dealership_id => 999999 }),
           'body.dealership_id', 'SA invites into a missing dealership');
invalid_ok($t->post('/api/v1/users/invites', token => $sa,
                    json => { email => 'x@example.com', role => 'user' }),
           'body.dealership_id', 'SA invites a user to no dealership');
error_ok($t->post('/api/v1/users/invites', token => $sa,
                  json => { email => 'DA.A@example.com', dealership_id => $A }),
         409, 'ConflictError', 'inviting a registered address');
invalid_ok($t->post('/api/v1/users/invites', token => $sa,
                    json => { email => 'nope', role => 'chief',
                              dealership_id => 'A' }),
           'body.dealership_id,body.email,body.role', 'three bad fields');
invalid_ok($t->post('/api/v1/users/invites', token => $sa, body => '{',
                    headers => { 'Content-Type' => 'application/json' }),
           'body', 'malformed JSON');
is(invites_state(), $inv_before, 'refused invitations wrote nothing, mailed nothing');

# -- routing ----------------------------------------------------------------------

is($t->get('/api/v1/users', token => $sa)->{status}, 404,
   '/api/v1/users without the slash is not a route');
is($t->http('PUT', "/api/v1/users/$u_id", token => $sa, json => {})->{status},
   405, 'PUT is 405');
is($t->post('/api/v1/users/count', token => $sa, json => {})->{status}, 405,
   'POST /users/count is 405');

# -- avatarctl user ---------------------------------------------------------------

my $db = $t->conninfo;
my ($rc, $out) = $t->avatarctl('user', 'create', '--database', $db,
    '--email', 'cli@example.com', '--first-name', 'Cli', '--last-name', 'User',
    '--role', 'user', '--dealership', $A);
is($rc, 0, 'avatarctl user create') or diag($out);
my ($gen) = $out =~ /^password: (\S+)$/m;
ok($gen, '... prints a generated password once');
ok($t->login('cli@example.com', $gen), '... which logs in');
($rc, $out) = $t->avatarctl('user', 'create', '--database', $db,
    '--email', 'CLI@example.com', '--first-name', 'C', '--last-name', 'U',
    '--role', 'user', '--password', 'Passw0rd!');
is($rc, 1, '... a taken e-mail fails') or diag($out);
like($out, qr/exists/, '... saying so');
($rc, $out) = $t->avatarctl('user', 'create', '--database', $db,
    '--email', 'c2@example.com', '--first-name', 'C', '--last-name', 'U',
    '--role', 'admin', '--password', 'Passw0rd!');
is($rc, 2, '... a bad role is a usage error');
($rc, $out) = $t->avatarctl('user', 'create', '--database', $db,
    '--email', 'c2@example.com', '--first-name', 'C', '--last-name', 'U',
    '--role', 'user', '--password', 'weak');
is($rc, 2, '... a weak password is refused');
($rc, $out) = $t->avatarctl('user', 'create', '--database', $db,
    '--email', 'c3@example.com', '--first-name', 'C', '--last-name', 'U',
    '--role', 'user', '--dealership', '99999', '--password', 'Passw0rd!');
is($rc, 1, '... an unknown dealership fails');

($rc, $out) = $t->avatarctl('user', 'list', '--database', $db,
                            '--dealership', $A);
is($rc, 0, 'avatarctl user list --dealership');
like($out, qr/cli\@example\.com/, '... lists its users');
unlike($out, qr/u\.b\@example\.com|sa\@example\.com/, '... only them');
($rc, $out) = $t->avatarctl('user', 'list', '--database', $db);
like($out, qr/sa\@example\.com/, 'avatarctl user list: everyone');

my $cli = $t->login('cli@example.com', $gen);
my $old_hash = $t->psql("SELECT password_hash FROM users"
                        . " WHERE email = 'cli\@example.com'");
($rc, $out) = $t->avatarctl('user', 'passwd', '--database', $db,
    '--email', 'Cli@Example.com', '--password', 'N3w!passw');
is($rc, 0, 'avatarctl user passwd') or diag($out);
is($t->psql("SELECT count(*) FROM refresh_tokens r JOIN users u"
            . " ON u.id = r.user_id WHERE u.email = 'cli\@example.com'"
            . " AND r.revoked_at IS NULL"),
   0, '... revokes the refresh tokens');
is($t->get('/api/v1/dealerships/', token => $cli)->{status}, 401,
   '... older access tokens are refused');
isnt($t->psql("SELECT password_hash FROM users"
              . " WHERE email = 'cli\@example.com'"), $old_hash,
     '... a new hash is stored');
ok($t->login('cli@example.com', 'N3w!passw'), '... the new password works');
($rc, $out) = $t->avatarctl('user', 'passwd', '--database', $db,
    '--email', 'nobody@example.com', '--password', 'N3w!passw');
is($rc, 1, 'passwd of an unknown e-mail fails');

$cli = $t->login('cli@example.com', 'N3w!passw');
($rc, $out) = $t->avatarctl('user', 'deactivate', '--database', $db,
                            '--email', 'cli@example.com');
is($rc, 0, 'avatarctl user deactivate') or diag($out);
is($t->get('/api/v1/dealerships/', token => $cli)->{status}, 401,
   '... cuts the account off');
is($t->psql("SELECT is_active FROM users WHERE email = 'cli\@example.com'"),
   'f', '... inactive');
($rc, $out) = $t->avatarctl('user', 'frobnicate', '--database', $db);
is($rc, 2, 'an unknown subcommand is a usage error');

$t->finish;
done_testing;
