# GET /api/v1/analytics/summary on conversations, messages, usage and
# reports written with psql: every figure for a super admin (all, or one
# dealership), a dealership admin (its own; another dealership is a 404
# like a missing one) and a user (its own usage only); the time range
# (ISO 8601 dates and datetimes with offsets, a date as the end meaning
# that whole day, 30 days by default) and its 422s.
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
my %id = (
    daA => $t->create_user(email => 'da.a@example.com', like => 'sa@example.com',
                           role => 'dealership_admin', dealership_id => $d{A}),
    daB => $t->create_user(email => 'da.b@example.com', like => 'sa@example.com',
                           role => 'dealership_admin', dealership_id => $d{B}),
    u1 => $t->create_user(email => 'u1@example.com', like => 'sa@example.com',
                          dealership_id => $d{A}),
    u2 => $t->create_user(email => 'u2@example.com', like => 'sa@example.com',
                          dealership_id => $d{A}),
    uB => $t->create_user(email => 'ub@example.com', like => 'sa@example.com',
                          dealership_id => $d{B}),
);
my %tok = (sa => scalar $t->login('sa@example.com', $PW));
my %email = (daA => 'da.a', daB => 'da.b', u1 => 'u1', u2 => 'u2', uB => 'ub');
$tok{$_} = $t->login("$email{$_}\@example.com", $PW) for keys %email;
$id{daNone} = $t->create_user(email => 'da.none@example.com',
                              like => 'sa@example.com',
                              role => 'dealership_admin');
$tok{daNone} = $t->login('da.none@example.com', $PW);

# --- fixtures ---

sub q_ { AvatarTest::sql_quote($_[0]) }

sub conversation {
    my ($sid, $user, $dealership, $started) = @_;
    return 0 + $t->psql("INSERT INTO conversations (session_id, user_id,"
        . " dealership_id, started_at, last_at) VALUES (" . q_($sid)
        . ", $user, $dealership, $started, $started) RETURNING id");
}

sub message {
    my ($conv, $dealership, $role, $content, $at, $sources) = @_;
    $t->psql("INSERT INTO messages (conversation_id, dealership_id, role,"
        . " content, sources, created_at) VALUES ($conv, $dealership, "
        . q_($role) . ', ' . q_($content) . ', '
        . (defined $sources ? q_(encode_json($sources)) . '::jsonb' : 'NULL')
        . ", $at)");
}

sub ts { "'$_[0]'::timestamptz" }
sub src { [ map { { topic => $_, filename => "$_.pdf", relevance => '0.80' } } @_ ] }

my $A = $d{A};
my $B = $d{B};

my $a1 = conversation('a1', $id{u1}, $A, ts('2024-03-05 10:00:00Z'));
message($a1, $A, 'user', 'What is GAP insurance?', ts('2024-03-05 10:00:00Z'));
message($a1, $A, 'assistant', 'GAP covers the gap.', ts('2024-03-05 10:00:10Z'),
        src('product_knowledge', 'product_knowledge', 'compliance'));
message($a1, $A, 'user', "  what is   gap insurance ", ts('2024-03-05 10:01:00Z'));
message($a1, $A, 'assistant', 'As I said.', ts('2024-03-05 10:01:10Z'),
        src('product_knowledge'));
my $a2 = conversation('a2', $id{u2}, $A, ts('2024-03-10 09:00:00Z'));
message($a2, $A, 'user', 'How do I handle a payment objection?',
        ts('2024-03-10 09:00:00Z'));
message($a2, $A, 'assistant', 'Acknowledge it first.', ts('2024-03-10 09:00:05Z'),
        [ @{ src('objection_handling') }, 'not an object', { filename => 'x' } ]);
# before the range
my $a3 = conversation('a3', $id{u1}, $A, ts('2024-02-10 10:00:00Z'));
message($a3, $A, 'user', 'An old question', ts('2024-02-10 10:00:00Z'));
# the last half hour of the range's last day
my $a4 = conversation('a4', $id{u1}, $A, ts('2024-03-31 23:30:00Z'));
message($a4, $A, 'user', 'What is GAP insurance ?', ts('2024-03-31 23:30:00Z'));
# just after the range
my $a5 = conversation('a5', $id{u2}, $A, ts('2024-04-01 00:00:00Z'));
message($a5, $A, 'user', 'An April question', ts('2024-04-01 00:00:00Z'));
# dealership B
my $b1 = conversation('b1', $id{uB}, $B, ts('2024-03-07 12:00:00Z'));
message($b1, $B, 'user', 'Secret question of B', ts('2024-03-07 12:00:00Z'));
message($b1, $B, 'assistant', 'Secret answer', ts('2024-03-07 12:00:09Z'),
        src('books'));
# yesterday, for the default range
my $r1 = conversation('recent', $id{u2}, $A, 'now() - interval \'1 day\'');
message($r1, $A, 'user', 'A recent question', 'now() - interval \'1 day\'');

$t->psql("INSERT INTO usage (day, user_id, dealership_id, prompt_tokens,"
    . " completion_tokens, audio_seconds, requests) VALUES"
    . " ('2024-03-05', $id{u1}, $A, 100, 50, 90, 2),"
    . " ('2024-03-10', $id{u2}, $A, 200, 100, 30, 1),"
    . " ('2024-03-31', $id{daA}, $A, 0, 0, 0, 0),"
    . " ('2024-02-01', $id{u1}, $A, 999, 999, 999, 9),"
    . " ('2024-04-01', $id{u1}, $A, 999, 999, 999, 9),"
    . " ('2024-03-07', $id{uB}, $B, 1000, 500, 600, 5)");
$t->psql("INSERT INTO reports (kind, user_id, dealership_id, fields, status,"
    . " created_at) VALUES"
    . " ('inaccuracy', $id{u1}, $A, '{}', 'open', '2024-03-06Z'),"
    . " ('send_to_team', $id{u2}, $A, '{}', 'resolved', '2024-03-11Z'),"
    . " ('inaccuracy', $id{u1}, $A, '{}', 'open', '2024-01-01Z'),"
    . " ('inaccuracy', $id{uB}, $B, '{}', 'dismissed', '2024-03-08Z')");

my $MARCH = 'from=2024-03-01&to=2024-03-31';

sub summary {
    my ($who, $qs) = @_;
    return $t->get("/api/v1/analytics/summary" . (defined $qs ? "?$qs" : ''),
                   token => $tok{$who});
}

sub fields_of {
    my ($r) = @_;
    return join ',', sort map { $_->{field} }
        @{ ($r->{json} && $r->{json}{error}{details}) || [] };
}

# --- a dealership admin: its own dealership ---

my $r = summary('daA', $MARCH);
is($r->{status}, 200, "a dealership admin: its dealership's summary")
    or diag $r->{body};
my $s = $r->{json};
is($s->{from}, '2024-03-01T00:00:00.000000Z', 'from as ISO 8601 UTC');
is($s->{to}, '2024-04-01T00:00:00.000000Z', 'a date as the end: that whole day');
is($s->{scope}, 'dealership', 'scope dealership');
is($s->{dealership_id}, $A, '... its own');
is($s->{user_id}, undef, '... not one user');
is($s->{sessions}, 3, 'sessions started in the range');
is($s->{messages}, 7, 'messages in the range');
is($s->{user_messages}, 4, "... the trainees' own");
is_deeply($s->{tokens}, { prompt => 300, completion => 150, total => 450 },
          'tokens from usage');
is($s->{voice_minutes}, 2, 'voice minutes from usage (120 s)');
is($s->{requests}, 3, 'requests from usage');
is($s->{active_users}, 2, 'active users (an idle usage row is not activity)');
is(scalar @{ $s->{top_questions} }, 2, 'two distinct questions');
like(lc $s->{top_questions}[0]{question}, qr/^what is gap insurance/,
     '... GAP first, however it was typed');
is($s->{top_questions}[0]{count}, 3, '... asked three times');
is_deeply($s->{top_questions}[1], { question => 'How do I handle a payment objection?',
                                    count => 1 }, '... then the objection');
is_deeply($s->{top_topics}, [ { topic => 'product_knowledge', count => 2 },
                              { topic => 'compliance', count => 1 },
                              { topic => 'objection_handling', count => 1 } ],
          'topics cited, once per answer');
is_deeply($s->{reports}, { open => 1, resolved => 1, dismissed => 0, total => 2,
                           inaccuracy => 1, send_to_team => 1 },
          'reports in the range by status and kind');
unlike($r->{body}, qr/Secret|books|April|old question/i,
       "nothing of B's, nor from outside the range");

$r = summary('daA', "$MARCH&dealership_id=$A");
is_deeply($r->{json}, $s, '... the same when it names its dealership');

$r = summary('daA', "$MARCH&top=1");
is(scalar @{ $r->{json}{top_questions} }, 1, 'top=1: one question');
is(scalar @{ $r->{json}{top_topics} }, 1, '... one topic');

# --- isolation ---

sub generic {
    my ($r, $id) = @_;
    (my $b = $r->{body} // '') =~ s/\b$id\b/N/g;
    return "$r->{status} $b";
}
for my $pair ([ 'daA', $B ], [ 'daB', $A ], [ 'u1', $B ], [ 'uB', $A ]) {
    my ($who, $other) = @$pair;
    $r = summary($who, "$MARCH&dealership_id=$other");
    is($r->{status}, 404, "$who asking for another dealership: 404");
    is($r->{json}{error}{type}, 'NotFoundError', '... NotFoundError');
    my $m = summary($who, "$MARCH&dealership_id=900000");
    is(generic($r, $other), generic($m, 900000), '... like a missing one');
}
$r = summary('daB', $MARCH);
is($r->{json}{dealership_id}, $B, "B's admin: B");
is($r->{json}{sessions}, 1, '... B\'s session');
is_deeply($r->{json}{tokens}, { prompt => 1000, completion => 500, total => 1500 },
          "... B's tokens");
is_deeply($r->{json}{top_topics}, [ { topic => 'books', count => 1 } ], "... B's topics");
is($r->{json}{reports}{total}, 1, "... B's reports");
unlike($r->{body}, qr/GAP|objection/i, "... nothing of A's");
$r = summary('daNone', $MARCH);
is($r->{status}, 403, 'an admin without a dealership: 403');

# --- a super admin ---

$r = summary('sa', $MARCH);
is($r->{status}, 200, 'a super admin: everything');
$s = $r->{json};
is($s->{scope}, 'all', 'scope all');
is($s->{dealership_id}, undef, '... no dealership');
is($s->{sessions}, 4, 'sessions of both dealerships');
is($s->{messages}, 9, 'messages of both');
is($s->{user_messages}, 5, '... user messages');
is_deeply($s->{tokens}, { prompt => 1300, completion => 650, total => 1950 }, 'tokens');
is($s->{voice_minutes}, 12, 'voice minutes (720 s)');
is($s->{active_users}, 3, 'active users');
is($s->{reports}{total}, 3, 'reports');
$r = summary('sa', "$MARCH&dealership_id=$B");
is($r->{json}{scope}, 'dealership', 'a super admin names one dealership');
is($r->{json}{sessions}, 1, '... its figures only');
is($r->{json}{messages}, 2, '... its messages');
$r = summary('sa', "$MARCH&dealership_id=900000");
is($r->{status}, 404, 'a missing dealership: 404');
is($r->{json}{error}{message}, 'Dealership with ID 900000 not found', '... named');

# --- a user: its own usage ---

$r = summary('u1', $MARCH);
is($r->{status}, 200, 'a user: its own summary');
$s = $r->{json};
is($s->{scope}, 'user', 'scope user');
is($s->{user_id}, $id{u1}, '... itself');
is($s->{sessions}, 2, 'its sessions');
is($s->{messages}, 5, 'its messages');
is($s->{user_messages}, 3, '... its questions');
is_deeply($s->{tokens}, { prompt => 100, completion => 50, total => 150 }, 'its tokens');
is($s->{voice_minutes}, 1.5, 'its voice minutes');
is($s->{active_users}, 1, 'one active user: itself');
is(scalar @{ $s->{top_questions} }, 1, 'only its questions');
is($s->{top_questions}[0]{count}, 3, '... GAP three times');
is_deeply($s->{reports}, { open => 1, resolved => 0, dismissed => 0, total => 1,
                           inaccuracy => 1, send_to_team => 0 }, 'its reports');
unlike($r->{body}, qr/objection/i, "nothing of a colleague's");
$r = summary('u1', "$MARCH&dealership_id=$A");
is($r->{json}{scope}, 'user', 'naming its own dealership does not widen it');
is($r->{json}{messages}, 5, '... still its own messages');

# --- the range ---

$r = summary('daA', 'from=2024-03-05T10:00:30Z&to=2024-03-05T10:05:00Z');
is($r->{json}{messages}, 2, 'datetimes: the messages between them');
is($r->{json}{sessions}, 0, '... the session started before');
$r = summary('daA', 'from=2024-03-05T12:00:30%2B02:00&to=2024-03-05T12:05:00%2B02:00');
is($r->{json}{messages}, 2, 'offsets are applied');
is($r->{json}{from}, '2024-03-05T10:00:30.000000Z', '... and answered in UTC');
$r = summary('daA', 'from=2024-03-05T12:00:30+02:00&to=2024-03-05T07:05:00-03:00');
is($r->{json}{messages}, 2, "a '+' the query turned into a space is read as '+'");
$r = summary('daA', 'from=2024-03-05T10:00:30.5Z&to=2024-03-05T10:01:00.000001Z');
is($r->{json}{messages}, 1, 'fractions of seconds');
$r = summary('daA', 'from=2024-03-31');
is($r->{status}, 200, 'from alone: up to now');
is($r->{json}{messages}, 3, '... the last day of March, April, yesterday');

$r = summary('daA');
is($r->{status}, 200, 'no range: the last 30 days');
is($r->{json}{messages}, 1, "... yesterday's message only");
is($r->{json}{sessions}, 1, '... its session');
is_deeply($r->{json}{top_questions}, [ { question => 'A recent question', count => 1 } ],
          '... its question');
my ($f, $to) = ($r->{json}{from}, $r->{json}{to});
like($to, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, '... to is now');
is($t->psql("SELECT round(extract(epoch FROM '$to'::timestamptz"
            . " - '$f'::timestamptz) / 86400)"), 30, '... from is 30 days earlier');

for my $bad ([ 'from=2024-13-01', 'query.from', 'a 13th month' ],
             [ 'from=2024-02-30', 'query.from', 'February 30' ],
             [ 'to=yesterday', 'query.to', 'a word' ],
             [ 'from=2024-03-01T25:00:00Z', 'query.from', 'hour 25' ],
             [ 'from=2024-03-01T10:00:00Zjunk', 'query.from', 'trailing junk' ],
             [ 'from=1969-12-31', 'query.from', 'before 1970' ],
             [ 'from=20240301', 'query.from', 'no dashes' ],
             [ 'from=2024-03-10&to=2024-03-01', 'query.from', 'from after to' ],
             [ 'from=2024-03-01T10:00:00Z&to=2024-03-01T10:00:00Z', 'query.from',
               'an empty range' ],
             [ 'top=0', 'query.top', 'top 0' ],
             [ 'dealership_id=abc', 'query.dealership_id', 'a dealership id that is no number' ]) {
    $r = summary('daA', $bad->[0]);
    is($r->{status}, 422, "$bad->[2]: 422") or diag $r->{body};
    is($r->{json}{error}{type}, 'ValidationError', '... ValidationError');
    is(fields_of($r), $bad->[1], "... $bad->[1]");
}

$r = $t->get('/api/v1/analytics/summary');
is($r->{status}, 401, 'no token: 401');
$r = $t->post('/api/v1/analytics/summary', token => $tok{sa}, json => {});
is($r->{status}, 405, 'POST: 405');
$r = $t->get('/api/v1/analytics/', token => $tok{sa});
is($r->{status}, 404, 'an unknown analytics path: 404');

$t->finish;
done_testing;
