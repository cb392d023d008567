# /api/v1/dealerships: every route for every role (super admin,
# dealership admin, user, no token), the refusals of API.md, validation
# (422 with details, nothing written), rag-config merging, deactivation
# and deletion cutting the dealership's users off, and avatarctl
# dealership.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use JSON::PP;
use Test::More;

my $t = AvatarTest->new;
$t->start_api;

my $PW = 'Adm1n!pass';
my $sa_id = $t->bootstrap_admin('sa@example.com', $PW);
my $A = $t->make_dealership('Acme Motors');
my $B = $t->make_dealership('Best Cars');
my $da_id = $t->create_user(email => 'da.a@example.com', like => 'sa@example.com',
                            role => 'dealership_admin', dealership_id => $A);
my $u_id = $t->create_user(email => 'u.a@example.com', like => 'sa@example.com',
                           dealership_id => $A);
$t->create_user(email => 'u.b@example.com', like => 'sa@example.com',
                dealership_id => $B);
$t->create_user(email => 'loner@example.com', like => 'sa@example.com');

my $sa = $t->login('sa@example.com', $PW);
my $da = $t->login('da.a@example.com', $PW);
my $u = $t->login('u.a@example.com', $PW);
my $ub = $t->login('u.b@example.com', $PW);
my $loner = $t->login('loner@example.com', $PW);

sub dealerships_count { $t->psql('SELECT count(*) FROM dealerships') }
sub row {
    $t->psql('SELECT row_to_json(d)::text FROM dealerships d WHERE id = '
             . int($_[0]));
}

sub error_ok {
    my ($r, $status, $type, $name, $msg) = @_;
    is($r->{status}, $status, "$name: $status") or diag($r->{body});
    is($r->{json} && $r->{json}{error} && $r->{json}{error}{type}, $type,
       "$name: $type");
    like($r->{json}{error}{path} // '', qr{^/api/v1/dealerships/},
         "$name: path");
    is($r->{json}{error}{message}, $msg, "$name: message") if defined $msg;
}

sub invalid_ok {
    my ($r, $fields, $name) = @_;
    is($r->{status}, 422, "$name: 422") or diag($r->{body});
    is($r->{json}{error}{type}, 'ValidationError', "$name: ValidationError");
    my @d = @{ $r->{json}{error}{details} || [] };
    ok(@d && !grep({ !($_->{field} && $_->{message} && $_->{type}) } @d),
       "$name: details with field, message and type");
    is(join(',', sort map { $_->{field} } @d), $fields, "$name: names $fields")
        if defined $fields;
}

my $keys = join ',', sort qw(id name address contact_email contact_phone
    is_active rag_config created_at updated_at);

my @routes = (
    [ POST => '/api/v1/dealerships/', { name => 'X' } ],
    [ GET => '/api/v1/dealerships/' ],
    [ GET => "/api/v1/dealerships/$A" ],
    [ PATCH => "/api/v1/dealerships/$A", { name => 'X' } ],
    [ PATCH => "/api/v1/dealerships/$A/rag-config", { chunk_size => 500 } ],
    [ DELETE => "/api/v1/dealerships/$A" ],
);

# -- no token: 401 in both shapes, nothing written ------------------------

my $rowA = row($A);
for my $rt (@routes) {
    my ($m, $p, $body) = @$rt;
    my $r = $t->http($m, $p, defined $body ? (json => $body) : ());
    is($r->{status}, 401, "$m $p without a token: 401");
    is($r->{json}{detail}, 'Not authenticated', '... {"detail"}');
    is($r->{json}{error}{type}, 'AuthenticationError', '... and the error shape');
    is($r->{headers}{'www-authenticate'}, 'Bearer', '... WWW-Authenticate');
}
is(dealerships_count(), 2, 'nothing created without a token');
is(row($A), $rowA, 'nothing changed without a token');

# -- create: super admin only ------------------------------------------------

my %new = (name => 'Carly Autos', address => '1 Main St',
           contact_email => 'info@carly.example', contact_phone => '+1 555 0100');
for my $who ([ DA => $da ], [ U => $u ]) {
    error_ok($t->post('/api/v1/dealerships/', token => $who->[1], json => \%new),
             403, 'AuthorizationError', "$who->[0] creates a dealership");
}
is(dealerships_count(), 2, '... nothing created');
my $r = $t->post('/api/v1/dealerships/', token => $sa, json => \%new);
is($r->{status}, 201, 'SA creates a dealership') or diag($r->{body});
my $C = $r->{json}{id};
is(join(',', sort keys %{ $r->{json} }), $keys, '... a Dealership');
is_deeply([ @{ $r->{json} }{qw(name address contact_email contact_phone)} ],
          [ @new{qw(name address contact_email contact_phone)} ],
          '... with the given fields');
is($r->{json}{is_active}, JSON::PP::true, '... active');
is($r->{json}{rag_config}, undef, '... no rag_config yet');
like($r->{json}{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
     '... created_at in ISO 8601 UTC');
$r = $t->post('/api/v1/dealerships/', token => $sa, json => { name => 'Dana Deals' });
is($r->{status}, 201, 'only the name is required');
is($r->{json}{address}, undef, '... the rest null');
my $D = $r->{json}{id};

my $n = dealerships_count();
error_ok($t->post('/api/v1/dealerships/', token => $sa,
                  json => { name => 'ACME MOTORS' }),
         409, 'ConflictError', 'a taken name in other case');
for my $b (
    [ {}, 'body.name', 'no name' ],
    [ { name => '' }, 'body.name', 'an empty name' ],
    [ { name => '   ' }, 'body.name', 'a blank name' ],
    [ { name => 'x' x 256 }, 'body.name', 'a 256-character name' ],
    [ { name => 5 }, 'body.name', 'a number as name' ],
    [ { name => 'Ok', contact_email => 'nope' }, 'body.contact_email',
      'a bad contact e-mail' ],
    [ { name => 'Ok', contact_phone => 'x' x 65 }, 'body.contact_phone',
      'a long phone' ],
    [ { name => 'Ok', address => [] }, 'body.address', 'an array address' ],
) {
    invalid_ok($t->post('/api/v1/dealerships/', token => $sa, json => $b->[0]),
               $b->[1], "POST /dealerships/ with $b->[2]");
}
invalid_ok($t->post('/api/v1/dealerships/', token => $sa, body => '{"name":',
                    headers => { 'Content-Type' => 'application/json' }),
           'body', 'POST /dealerships/ with malformed JSON');
invalid_ok($t->post('/api/v1/dealerships/', token => $sa, body => '{"name":"Zed"}',
                    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }),
           'body', 'POST /dealerships/ as a form');
is(dealerships_count(), $n, 'no bad request wrote anything');

# -- list and read -------------------------------------------------------------

$r = $t->get('/api/v1/dealerships/', token => $sa);
is(join(',', map { $_->{id} } @{ $r->{json} }), "$A,$B,$C,$D", 'SA lists all');
is(join(',', sort keys %{ $r->{json}[0] }), $keys, '... as Dealership objects');
$r = $t->get('/api/v1/dealerships/?skip=1&limit=2', token => $sa);
is(join(',', map { $_->{id} } @{ $r->{json} }), "$B,$C", '... skip and limit');
for my $who ([ DA => $da ], [ U => $u ]) {
    $r = $t->get('/api/v1/dealerships/', token => $who->[1]);
    is(join(',', map { $_->{id} } @{ $r->{json} }), $A, "$who->[0] lists [own]");
}
$r = $t->get('/api/v1/dealerships/?skip=1', token => $da);
is_deeply($r->{json}, [], '... skipped: []');
$r = $t->get('/api/v1/dealerships/', token => $loner);
is_deeply($r->{json}, [], 'a user of no dealership lists []');
for my $q ('skip=-1', 'limit=0', 'limit=101', 'limit=x') {
    (my $f = $q) =~ s/=.*//;
    invalid_ok($t->get("/api/v1/dealerships/?$q", token => $sa), "query.$f",
               "GET /dealerships/?$q");
}

$r = $t->get("/api/v1/dealerships/$B", token => $sa);
is($r->{json}{name}, 'Best Cars', 'SA reads any dealership');
for my $who ([ DA => $da ], [ U => $u ]) {
    $r = $t->get("/api/v1/dealerships/$A", token => $who->[1]);
    is($r->{json}{id}, $A, "$who->[0] reads its own");
    error_ok($t->get("/api/v1/dealerships/$B", token => $who->[1]), 404,
             'NotFoundError', "$who->[0] reads another",
             "Dealership with ID $B not found");
}
error_ok($t->get('/api/v1/dealerships/777777', token => $sa), 404,
         'NotFoundError', 'a missing dealership',
         'Dealership with ID 777777 not found');
invalid_ok($t->get('/api/v1/dealerships/x1', token => $sa), 'path.id',
           'a non-numeric id');

# -- update ---------------------------------------------------------------------

$r = $t->patch("/api/v1/dealerships/$C", token => $sa,
               json => { name => 'Carly Autos West', address => '2 Side St',
                         contact_phone => '555', rag_config => { x => 1 } });
is($r->{status}, 200, 'SA updates a dealership');
is_deeply([ @{ $r->{json} }{qw(name address contact_email contact_phone)} ],
          [ 'Carly Autos West', '2 Side St', 'info@carly.example', '555' ],
          '... given fields changed, others kept');
is_deeply($r->{json}{rag_config}, { x => 1 }, '... rag_config replaced');
my $rowC = row($C);
error_ok($t->patch("/api/v1/dealerships/$C", token => $sa,
                   json => { name => 'best cars' }),
         409, 'ConflictError', 'a taken name');
invalid_ok($t->patch("/api/v1/dealerships/$C", token => $sa,
                     json => { rag_config => [1], is_active => 1,
                               name => '' }),
           'body.is_active,body.name,body.rag_config', 'three bad fields');
invalid_ok($t->patch("/api/v1/dealerships/$C", token => $sa, body => 'null',
                     headers => { 'Content-Type' => 'application/json' }),
           'body', 'a null body');
error_ok($t->patch('/api/v1/dealerships/777777', token => $sa,
                   json => { name => 'Q' }),
         404, 'NotFoundError', 'PATCH a missing dealership');
is(row($C), $rowC, 'refused updates changed nothing');

$r = $t->patch("/api/v1/dealerships/$A", token => $da,
               json => { name => 'Acme Motors North',
                         contact_email => 'desk@acme.example' });
is($r->{status}, 200, 'DA updates its own dealership');
is($r->{json}{name}, 'Acme Motors North', '... done');
$rowA = row($A);
error_ok($t->patch("/api/v1/dealerships/$A", token => $da,
                   json => { is_active => JSON::PP::false }),
         403, 'AuthorizationError', 'DA sends is_active');
error_ok($t->patch("/api/v1/dealerships/$A", token => $u,
                   json => { name => 'Mine' }),
         403, 'AuthorizationError', 'U updates its own dealership');
is(row($A), $rowA, '... nothing changed');

# deactivation cuts the dealership's users off at once
$r = $t->patch("/api/v1/dealerships/$B", token => $sa,
               json => { is_active => JSON::PP::false });
is($r->{json}{is_active}, JSON::PP::false, 'SA deactivates a dealership');
is($t->get('/api/v1/dealerships/', token => $ub)->{status}, 401,
   '... its users are refused at once');
is($t->psql("SELECT count(*) FROM refresh_tokens r JOIN users u ON u.id ="
            . " r.user_id WHERE u.dealership_id = $B AND r.revoked_at IS NULL"),
   0, '... their refresh tokens are revoked');
isnt($t->psql("SELECT count(*) FROM refresh_tokens r JOIN users u ON u.id ="
              . " r.user_id WHERE u.dealership_id = $A"
              . " AND r.revoked_at IS NULL"), 0,
     '... other dealerships\' tokens are not');
is($t->get('/api/v1/dealerships/', token => $u)->{status}, 200,
   '... other dealerships\' users are not cut off');
$r = $t->patch("/api/v1/dealerships/$B", token => $sa,
               json => { is_active => JSON::PP::true });
is($r->{json}{is_active}, JSON::PP::true, 'SA reactivates it');
is($t->get('/api/v1/dealerships/', token => $ub)->{status}, 200,
   '... its users are back');

# -- rag-config: merged -----------------------------------------------------------

$t->psql(q{UPDATE dealerships SET rag_config = '{"model":"m","chunk_size":1000,"chunk_overlap":200}' WHERE id = } . $A);
$r = $t->patch("/api/v1/dealerships/$A/rag-config", token => $da,
               json => { chunk_size => 800, topics => [ 'books', 'playbooks' ],
                         metadata => { region => 'west' } });
is($r->{status}, 200, 'DA sets its knowledge-base settings') or diag($r->{body});
is_deeply($r->{json}{rag_config},
          { model => 'm', chunk_size => 800, chunk_overlap => 200,
            topics => [ 'books', 'playbooks' ], metadata => { region => 'west' } },
          '... merged into rag_config');
$r = $t->patch("/api/v1/dealerships/$D/rag-config", token => $sa,
               json => { chunk_overlap => 0 });
is_deeply($r->{json}{rag_config}, { chunk_overlap => 0 },
          'SA sets them on a dealership without any');
$r = $t->patch("/api/v1/dealerships/$D/rag-config", token => $sa, json => {});
is_deeply($r->{json}{rag_config}, { chunk_overlap => 0 },
          'an empty object changes nothing');
$rowA = row($A);
for my $b (
    [ { chunk_size => 99 }, 'body.chunk_size', 'chunk_size 99' ],
    [ { chunk_size => 5001 }, 'body.chunk_size', 'chunk_size 5001' ],
    [ { chunk_size => '500' }, 'body.chunk_size', 'chunk_size as a string' ],
    [ { chunk_overlap => -1 }, 'body.chunk_overlap', 'chunk_overlap -1' ],
    [ { chunk_overlap => 1001 }, 'body.chunk_overlap', 'chunk_overlap 1001' ],
    [ { chunk_size => 300, chunk_overlap => 300 }, 'body.chunk_overlap',
      'an overlap as large as the size' ],
    [ { chunk_overlap => 800 }, 'body.chunk_overlap',
      'an overlap as large as the stored size' ],
    [ { topics => 'books' }, 'body.topics', 'topics as a string' ],
    [ { topics => [ 'books', 3 ] }, 'body.topics', 'a number as topic' ],
    [ { topics => [ 'Bad Topic' ] }, 'body.topics', 'a topic with blanks' ],
    [ { metadata => [] }, 'body.metadata', 'metadata as an array' ],
) {
    invalid_ok($t->patch("/api/v1/dealerships/$A/rag-config", token => $da,
                         json => $b->[0]),
               $b->[1], "rag-config with $b->[2]");
}
error_ok($t->patch("/api/v1/dealerships/$A/rag-config", token => $u,
                   json => { chunk_size => 500 }),
         403, 'AuthorizationError', 'U sets rag-config');
error_ok($t->patch('/api/v1/dealerships/777777/rag-config', token => $sa,
                   json => { chunk_size => 500 }),
         404, 'NotFoundError', 'rag-config of a missing dealership');
is(row($A), $rowA, 'refused settings changed nothing');

# -- delete ------------------------------------------------------------------------

$t->psql("INSERT INTO documents (dealership_id, topic, filename, sha256, bytes)"
         . " VALUES ($B, 'books', 'b.txt', sha256('b'), 1)");
$t->psql("INSERT INTO document_chunks (document_id, dealership_id, topic,"
         . " position, content) SELECT id, $B, 'books', 0, 'text'"
         . " FROM documents WHERE dealership_id = $B");
my $rowB = row($B);
for my $who ([ DA => $da ], [ U => $u ]) {
    error_ok($t->del("/api/v1/dealerships/$A", token => $who->[1]), 403,
             'AuthorizationError', "$who->[0] deletes its own dealership");
    error_ok($t->del("/api/v1/dealerships/$B", token => $who->[1]), 403,
             'AuthorizationError', "$who->[0] deletes another");
}
is(row($B), $rowB, '... nothing deleted');
$r = $t->del("/api/v1/dealerships/$B", token => $sa);
is($r->{status}, 204, 'SA deletes a dealership');
is($t->psql("SELECT count(*) FROM dealerships WHERE id = $B"), 0, '... gone');
is($t->psql("SELECT count(*) FROM users WHERE dealership_id = $B"), 0,
   '... with its users');
is($t->psql("SELECT (SELECT count(*) FROM documents WHERE dealership_id = $B)"
            . " + (SELECT count(*) FROM document_chunks"
            . " WHERE dealership_id = $B)"), 0,
   '... its documents and chunks');
is($t->get('/api/v1/dealerships/', token => $ub)->{status}, 401,
   '... its users\' tokens are refused');
is($t->psql("SELECT count(*) FROM users WHERE dealership_id = $A"), 2,
   '... other dealerships keep theirs');
error_ok($t->del("/api/v1/dealerships/$B", token => $sa), 404,
         'NotFoundError', 'deleting it again', "Dealership with ID $B not found");
invalid_ok($t->del('/api/v1/dealerships/zz', token => $sa), 'path.id',
           'DELETE with a bad id');

# -- routing ------------------------------------------------------------------------

is($t->get('/api/v1/dealerships', token => $sa)->{status}, 404,
   '/api/v1/dealerships without the slash is not a route');
is($t->post("/api/v1/dealerships/$A", token => $sa, json => {})->{status}, 405,
   'POST /dealerships/{id} is 405');

# -- avatarctl dealership -----------------------------------------------------------

my $db = $t->conninfo;
my ($rc, $out) = $t->avatarctl('dealership', 'create', '--database', $db,
    '--name', 'Eve Autos', '--address', '5 Road', '--contact-email',
    'eve@example.com', '--contact-phone', '555 0101');
is($rc, 0, 'avatarctl dealership create') or diag($out);
my ($E) = $out =~ /\(id (\d+)\)/;
ok($E, '... prints the id');
is($t->psql("SELECT concat_ws('|', name, address, contact_email, contact_phone)"
            . " FROM dealerships WHERE id = " . ($E // 0)),
   'Eve Autos|5 Road|eve@example.com|555 0101', '... with the fields');
($rc, $out) = $t->avatarctl('dealership', 'create', '--database', $db,
                            '--name', 'EVE AUTOS');
is($rc, 1, '... a taken name fails') or diag($out);
like($out, qr/exists/, '... saying so');
($rc, $out) = $t->avatarctl('dealership', 'create', '--database', $db);
is($rc, 2, '... without --name: a usage error');
($rc, $out) = $t->avatarctl('dealership', 'list', '--database', $db);
is($rc, 0, 'avatarctl dealership list') or diag($out);
like($out, qr/Eve Autos/, '... lists them');
like($out, qr/^\s*$A\s+Acme Motors North\s+yes\s+2\s/m, '... with user counts');

$t->finish;
done_testing;
