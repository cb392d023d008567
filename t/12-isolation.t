# Tenant isolation of /api/v1/users and /api/v1/dealerships: for every
# route that takes an id, a dealership admin and a user of one dealership
# against the other dealership's resources (both ways) get 404 (403 where
# API.md says so), answered exactly like a missing id, and nothing in the
# database changes.  Lists and counts never show another dealership, and
# writes never reach one.
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
my %d = (A => $t->make_dealership('Acme Motors'),
         B => $t->make_dealership('Best Cars'));
$t->psql(q{UPDATE dealerships SET rag_config = '{"chunk_size":1000}'});
my (%id, %tok);
for my $x ('A', 'B') {
    $id{"da$x"} = $t->create_user(email => "da.\L$x\E\@example.com",
                                  like => 'sa@example.com',
                                  role => 'dealership_admin',
                                  dealership_id => $d{$x});
    $id{"u$x"} = $t->create_user(email => "u.\L$x\E\@example.com",
                                 like => 'sa@example.com',
                                 dealership_id => $d{$x});
    $tok{"da$x"} = $t->login("da.\L$x\E\@example.com", $PW);
    $tok{"u$x"} = $t->login("u.\L$x\E\@example.com", $PW);
}
$id{loner} = $t->create_user(email => 'loner@example.com',
                             like => 'sa@example.com');
# a dealership admin that no dealership was given
$id{daNone} = $t->create_user(email => 'da.none@example.com',
                              like => 'sa@example.com',
                              role => 'dealership_admin');
$tok{daNone} = $t->login('da.none@example.com', $PW);

# the whole state an attacker could touch, as one digest
sub state {
    $t->psql('SELECT ' . join ' || ', map {
        "(SELECT coalesce(md5(string_agg(row_to_json(x)::text, ','"
        . " ORDER BY x.id)), '') FROM $_ x)"
    } qw(users dealerships refresh_tokens invites mail_outbox));
}

# the answer for an id that does not exist, with the id made generic
sub generic {
    my ($r, $id) = @_;
    my $b = $r->{body} // '';
    $b =~ s/\b$id\b/N/g;
    return "$r->{status} $b";
}

my $missing = 900000;

# [ method, path (ID = the target), body, expected for a DA, for a U ]
my @user_routes = (
    [ GET => '/api/v1/users/ID', undef, 404, 403 ],
    [ PATCH => '/api/v1/users/ID', { first_name => 'Mallory' }, 404, 403 ],
    [ PATCH => '/api/v1/users/ID', { is_active => JSON::PP::false }, 404, 403 ],
    [ PATCH => '/api/v1/users/ID', { role => 'user' }, 404, 403 ],
    [ PATCH => '/api/v1/users/ID', { email => 'taken@example.com' }, 404, 403 ],
    [ DELETE => '/api/v1/users/ID', undef, 404, 403 ],
    [ PATCH => '/api/v1/users/ID/toggle-active', undef, 404, 403 ],
);
my @dealership_routes = (
    [ GET => '/api/v1/dealerships/ID', undef, 404, 404 ],
    [ PATCH => '/api/v1/dealerships/ID', { name => 'Mallory Motors' }, 404, 403 ],
    [ PATCH => '/api/v1/dealerships/ID', { rag_config => { a => 1 } }, 404, 403 ],
    # API.md: a dealership admin never sets is_active, whichever dealership
    [ PATCH => '/api/v1/dealerships/ID', { is_active => JSON::PP::false }, 403, 403 ],
    [ PATCH => '/api/v1/dealerships/ID/rag-config', { chunk_size => 500 }, 404, 403 ],
    # API.md: deleting is for super admins only
    [ DELETE => '/api/v1/dealerships/ID', undef, 403, 403 ],
);

sub request {
    my ($rt, $target, $token) = @_;
    my ($m, $p, $body) = @$rt;
    $p =~ s/ID/$target/;
    return ($p, $t->http($m, $p, token => $token,
                         defined $body ? (json => $body) : ()));
}

sub matrix {
    my ($actor, $role, $routes, $targets) = @_;
    for my $rt (@$routes) {
        my $want = $role eq 'DA' ? $rt->[3] : $rt->[4];
        for my $target (@$targets) {
            my ($name, $tid) = @$target;
            my $before = state();
            my ($p, $r) = request($rt, $tid, $tok{$actor});
            my $what = "$actor $rt->[0] $p ($name)"
                . ($rt->[2] ? ' ' . encode_json($rt->[2]) : '');
            is($r->{status}, $want, "$what: $want") or diag($r->{body});
            is(state(), $before, "$what: nothing changed");
            next unless $want == 404;
            my (undef, $m) = request($rt, $missing, $tok{$actor});
            is(generic($r, $tid), generic($m, $missing),
               "$what: the same answer as a missing id");
        }
    }
}

# both directions: A's staff against B, B's staff against A
for my $pair ([ 'A', 'B' ], [ 'B', 'A' ]) {
    my ($own, $other) = @$pair;
    my @users = ([ "user of $other", $id{"u$other"} ],
                 [ "admin of $other", $id{"da$other"} ]);
    matrix("da$own", 'DA', \@user_routes,
           [ @users, [ 'super admin', $sa_id ],
             [ 'user of no dealership', $id{loner} ] ]);
    matrix("u$own", 'U', \@user_routes, [ @users ]);
    matrix("da$own", 'DA', \@dealership_routes,
           [ [ "dealership $other", $d{$other} ] ]);
    matrix("u$own", 'U', \@dealership_routes,
           [ [ "dealership $other", $d{$other} ] ]);
}

# a dealership admin without a dealership manages nothing
matrix('daNone', 'DA', \@user_routes,
       [ [ 'user of A', $id{uA} ], [ 'user of no dealership', $id{loner} ] ]);
matrix('daNone', 'DA', \@dealership_routes, [ [ 'dealership A', $d{A} ] ]);

# -- lists and counts ------------------------------------------------------

my %of = (A => [ $id{daA}, $id{uA} ], B => [ $id{daB}, $id{uB} ]);
for my $x ('A', 'B') {
    my $y = $x eq 'A' ? 'B' : 'A';
    for my $q ('', "?dealership_id=$d{$y}", '?role=super_admin',
               '?is_active=true&limit=100', "?dealership_id=$d{$x}") {
        my $r = $t->get("/api/v1/users/$q", token => $tok{"da$x"});
        my @ids = sort map { $_->{id} } @{ $r->{json} || [] };
        my @want = $q =~ /=\Q$d{$y}\E$|super_admin/ ? ()
                 : sort @{ $of{$x} };
        is("@ids", "@want", "DA of $x lists /users/$q: its own only");
        $r = $t->get("/api/v1/users/count$q", token => $tok{"da$x"});
        is($r->{json}{count}, scalar @want, "... and counts the same")
            unless $q =~ /limit/;
    }
    for my $who ("da$x", "u$x") {
        my $r = $t->get('/api/v1/dealerships/', token => $tok{$who});
        is(join(',', map { $_->{id} } @{ $r->{json} }), $d{$x},
           "$who lists only its dealership");
    }
}
for my $p ('/api/v1/users/', '/api/v1/users/count', '/api/v1/dealerships/') {
    my $r = $t->get($p, token => $tok{daNone});
    is_deeply($r->{json}, $p =~ /count/ ? { count => 0 } : [],
              "a DA of no dealership: $p is empty");
}

# a query argument never overrides the path's id
my $r = $t->get("/api/v1/users/$id{uA}?id=$id{uB}", token => $tok{daA});
is($r->{json}{id}, $id{uA}, 'a query id never replaces the path id');

# -- writes that would reach the other dealership ----------------------------

my $before = state();
$r = $t->post('/api/v1/users/', token => $tok{daA},
              json => { email => 'plant@example.com', password => 'Passw0rd!',
                        first_name => 'P', last_name => 'L',
                        dealership_id => $d{B} });
is($r->{status}, 422, 'DA of A creates a user in B: 422');
my $m = $t->post('/api/v1/users/', token => $tok{daA},
                 json => { email => 'plant@example.com',
                           password => 'Passw0rd!', first_name => 'P',
                           last_name => 'L', dealership_id => $missing });
is(generic($r, $d{B}), generic($m, $missing),
   '... the same answer as a missing dealership');
$r = $t->post('/api/v1/users/', token => $tok{daA},
              json => { email => 'root@example.com', password => 'Passw0rd!',
                        first_name => 'R', last_name => 'T',
                        role => 'super_admin' });
is($r->{status}, 403, 'DA of A creates a super admin: 403');
$r = $t->patch("/api/v1/users/$id{uA}", token => $tok{daA},
               json => { dealership_id => $d{B} });
is($r->{status}, 403, 'DA of A moves its user to B: 403');
$r = $t->patch("/api/v1/users/$id{uA}", token => $tok{daA},
               json => { role => 'super_admin' });
is($r->{status}, 403, 'DA of A makes its user a super admin: 403');
$r = $t->patch("/api/v1/users/$id{uA}", token => $tok{daA},
               json => { email => 'U.B@example.com' });
is($r->{status}, 409, 'DA of A takes the address of a user of B: 409');
$r = $t->post('/api/v1/users/invites', token => $tok{daA},
              json => { email => 'plant@example.com', dealership_id => $d{B} });
is($r->{status}, 422, 'DA of A invites someone into B: 422');
$r = $t->post('/api/v1/users/invites', token => $tok{daA},
              json => { email => 'plant@example.com', role => 'super_admin' });
is($r->{status}, 403, 'DA of A invites a super admin: 403');
$r = $t->post('/api/v1/users/invites', token => $tok{daNone},
              json => { email => 'plant@example.com' });
is($r->{status}, 403, 'a DA of no dealership invites: 403');
$r = $t->post('/api/v1/users/', token => $tok{daNone},
              json => { email => 'stray@example.com', password => 'Passw0rd!',
                        first_name => 'S', last_name => 'T' });
is($r->{status}, 403, 'a DA of no dealership creates a user: 403');
is(state(), $before, 'none of these wrote anything');

# the super admin still reaches everything
$r = $t->get("/api/v1/users/$id{uB}", token => scalar $t->login('sa@example.com', $PW));
is($r->{status}, 200, 'the super admin reads any user');

$t->finish;
done_testing;
