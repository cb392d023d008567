# /api/v1/report: inaccuracy reports and messages to the team from any
# user (stored first, with the dealership from the database, then mailed
# HTML-escaped to mail.recipients in the same transaction), validation
# (422 with details, nothing stored), the review routes for super admins
# and dealership admins with dealership isolation (another dealership's
# report answers like a missing one), and a mail provider that is down
# (the report is kept, its mail waits in the outbox).
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

my $t = AvatarTest->new;
my $outbox = $t->dir . '/outbox';
$t->start_api(http => "avatar_mail outbox dir=$outbox"
                      . ' recipients=team@example.com,lead@example.com;');

my $PW = 'Adm1n!pass';
my $sa_id = $t->bootstrap_admin('sa@example.com', $PW);
my %d = (A => $t->make_dealership('Acme Motors'),
         B => $t->make_dealership('Best Cars'));
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
$tok{sa} = $t->login('sa@example.com', $PW);
$id{daNone} = $t->create_user(email => 'da.none@example.com',
                              like => 'sa@example.com',
                              role => 'dealership_admin');
$tok{daNone} = $t->login('da.none@example.com', $PW);

my $INACC = 'Thank you for your feedback. Your report has been submitted '
          . 'for review.';
my $TEAM = 'Your message has been sent to the team.';

sub stored {
    $t->psql('SELECT (SELECT count(*) FROM reports) || \'/\''
             . ' || (SELECT count(*) FROM mail_outbox)');
}

sub fields_of {
    my ($r) = @_;
    return join ',', sort map { $_->{field} }
        @{ ($r->{json} && $r->{json}{error}{details}) || [] };
}

# the decoded text of the mails in the outbox directory
sub mails {
    my @m;
    for my $f (sort glob "$outbox/*.eml") {
        open my $fh, '<', $f or next;
        local $/;
        my $m = <$fh>;
        close $fh;
        $m =~ s/=\r?\n//g;
        $m =~ s/=([0-9A-F]{2})/chr hex $1/ge;
        push @m, $m;
    }
    return @m;
}

# --- submitting ---

my $r = $t->post('/api/v1/report/inaccuracy',
                 json => { user_input => 'x', avatar_response => 'y' });
is($r->{status}, 401, 'no token: 401');
is($r->{json}{detail}, 'Not authenticated', '... with the old detail')
    or diag $r->{body};

my $evil = '<script>alert("adam")</script> & <b>bold</b>';
$r = $t->post('/api/v1/report/inaccuracy', token => $tok{uA},
              json => { user_input => "What does GAP cover? $evil",
                        avatar_response => 'GAP covers the difference.',
                        conversation_context => [
                            { role => 'user', content => 'Hi Adam' },
                            { role => 'assistant', content => "Hello <i>$evil</i>" } ],
                        user_note => "Wrong about deductibles $evil",
                        session_id => 'sess-123', mode => 'training',
                        dealership_name => 'Evil Corp <img src=x>' });
is($r->{status}, 200, 'an inaccuracy report from a user: 200') or diag $r->{body};
is_deeply($r->{json}, { success => JSON::PP::true, message => $INACC },
          '... with the exact answer of API.md');
is($r->{body}, '{"success":true,"message":"' . $INACC . '"}',
   '... byte for byte');

my $row = decode_json($t->psql(
    'SELECT row_to_json(r)::text FROM reports r ORDER BY id DESC LIMIT 1'));
is($row->{kind}, 'inaccuracy', '... stored as an inaccuracy');
is($row->{user_id}, $id{uA}, '... with the reporter');
is($row->{dealership_id}, $d{A}, "... and the reporter's dealership");
is($row->{session_id}, 'sess-123', '... the session');
is($row->{mode}, 'training', '... the mode');
is($row->{status}, 'open', '... open');
like($row->{fields}{user_input}, qr/^What does GAP cover\? <script>/,
     '... the fields as received');
is(scalar @{ $row->{fields}{conversation_context} }, 2, '... the context');
ok(!exists $row->{fields}{dealership_name},
   "... the client's dealership name is not kept");

is($t->psql("SELECT array_to_string(recipients, ',') || ' ' || kind"
            . ' FROM mail_outbox ORDER BY id DESC LIMIT 1'),
   'team@example.com,lead@example.com report',
   '... a mail is queued to the configured recipients');
ok(wait_for(sub { mails() >= 1 }, 15), '... and sent') or diag $t->error_log;
my ($mail) = mails();
like($mail, qr/^To:.*team\@example\.com.*lead\@example\.com/mi,
     '... to both recipients');
like($mail, qr/Acme Motors/, '... naming the dealership from the database');
unlike($mail, qr/Evil Corp/, "... never the client's dealership name");
like($mail, qr/u\.a\@example\.com/, '... and the reporter');
like($mail, qr/sess-123/, '... and the session');
my ($html) = $mail =~ m{(<!DOCTYPE html>.*</html>)}s;
ok($html, '... with an HTML part');
unlike($html // '', qr/<script>|<b>bold|<i>/, '... where no submitted markup survives');
like($html // '', qr/&lt;script&gt;alert\(&quot;adam&quot;\)&lt;\/script&gt; &amp; &lt;b&gt;/,
     '... every submitted value is escaped');
like($html // '', qr/Adam: Hello &lt;i&gt;/, '... the conversation too');
like($html // '', qr/Wrong about deductibles/, "... and the user's note");

$r = $t->post('/api/v1/report/send-to-team', token => $tok{uB},
              json => { user_question => 'Can we add our own menu?',
                        ai_response => 'I cannot change menus.',
                        conversation_history => [
                            { role => 'user', content => 'menu?' },
                            { role => 'assistant', content => 'no' } ],
                        additional_notes => 'Please call me',
                        session_id => 'sess-b' });
is($r->{status}, 200, 'a message to the team: 200') or diag $r->{body};
is($r->{body}, '{"success":true,"message":"' . $TEAM . '"}',
   '... with the exact answer of API.md');
is($t->psql("SELECT kind || ' ' || dealership_id || ' '"
            . " || (fields->'conversation_history'->1->>'content')"
            . ' FROM reports ORDER BY id DESC LIMIT 1'),
   "send_to_team $d{B} no", "... stored for the user's dealership");
ok(wait_for(sub { mails() >= 2 }, 15), '... and mailed');

$r = $t->post('/api/v1/report/send-to-team', token => $tok{daA},
              json => { user_question => 'q', ai_response => 'a',
                        conversation_history => [] });
is($r->{status}, 200, 'an admin may report too, with an empty history');
$r = $t->post('/api/v1/report/inaccuracy', token => $tok{sa},
              json => { user_input => 'q', avatar_response => 'a' });
is($r->{status}, 200, 'a super admin (no dealership) may report');
is($t->psql('SELECT dealership_id IS NULL FROM reports ORDER BY id DESC LIMIT 1'),
   't', '... stored without a dealership');

# --- validation: 422 with details, nothing stored ---

my $long = 'x' x 20001;
my @bad = (
    [ inaccuracy => {}, 'body.avatar_response,body.user_input', 'an empty object' ],
    [ inaccuracy => { user_input => 5, avatar_response => 'a' },
      'body.user_input', 'a number for a string' ],
    [ inaccuracy => { user_input => $long, avatar_response => 'a' },
      'body.user_input', 'a field over 20000 characters' ],
    [ inaccuracy => { user_input => 'q', avatar_response => 'a',
                      user_note => [ 'x' ] }, 'body.user_note', 'a list for a note' ],
    [ inaccuracy => { user_input => 'q', avatar_response => 'a',
                      conversation_context => { a => 1 } },
      'body.conversation_context', 'an object for the context' ],
    [ inaccuracy => { user_input => 'q', avatar_response => 'a',
                      mode => '<b>' }, 'body.mode', 'a mode that is no word' ],
    [ inaccuracy => { user_input => 'q', avatar_response => 'a',
                      session_id => 'x' x 129 }, 'body.session_id',
      'a session id over 128 characters' ],
    [ inaccuracy => { user_input => 'q', avatar_response => 'a',
                      dealership_name => 7 }, 'body.dealership_name',
      'a number for the dealership name' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a' },
      'body.conversation_history', 'no history' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a',
                          conversation_history => 'hi' },
      'body.conversation_history', 'a string for the history' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a',
                          conversation_history => [ { role => 'user' } ] },
      'body.conversation_history.0.content', 'a turn without content' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a',
                          conversation_history => [ { role => 'user', content => 'ok' },
                                                    'nope' ] },
      'body.conversation_history.1', 'a turn that is not an object' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a',
                          conversation_history => [ { role => 'user',
                                                      content => $long } ] },
      'body.conversation_history.0.content', 'a turn over 20000 characters' ],
    [ 'send-to-team' => { user_question => 'q', ai_response => 'a',
                          conversation_history => [ map { { role => 'user',
                                                            content => 'x' } } 1 .. 101 ] },
      'body.conversation_history', 'more than 100 turns' ],
    [ 'send-to-team' => '{"user_question":', 'body', 'broken JSON' ],
    [ 'send-to-team' => '[1]', 'body', 'a JSON list' ],
);
for my $b (@bad) {
    my ($route, $body, $fields, $name) = @$b;
    my $before = stored();
    $r = $t->post("/api/v1/report/$route", token => $tok{uA}, json => $body);
    is($r->{status}, 422, "$route, $name: 422") or diag $r->{body};
    is($r->{json} && $r->{json}{error}{type}, 'ValidationError',
       "$route, $name: ValidationError");
    is(fields_of($r), $fields, "$route, $name: details name $fields");
    is(stored(), $before, "$route, $name: nothing stored or queued");
}
$r = $t->post('/api/v1/report/inaccuracy', token => $tok{uA},
              body => 'user_input=x', headers => { 'Content-Type' => 'text/plain' });
is($r->{status}, 422, 'a body that is not JSON: 422');
$r = $t->get('/api/v1/report/inaccuracy', token => $tok{uA});
is($r->{status}, 405, 'GET on a POST route: 405');

# --- review ---

my %rep;    # report ids by dealership
for my $x ('A', 'B') {
    $rep{$x} = [ split /\n/, $t->psql("SELECT id FROM reports WHERE"
                                      . " dealership_id = $d{$x} ORDER BY id") ];
}
is(scalar @{ $rep{A} }, 2, 'two reports of A (a user, an admin)');
is(scalar @{ $rep{B} }, 1, 'one report of B');
my $total = $t->psql('SELECT count(*) FROM reports');

$r = $t->get('/api/v1/report/', token => $tok{sa});
is($r->{status}, 200, 'a super admin lists reports');
is(scalar @{ $r->{json} }, $total, '... all of them');
my ($first) = grep { $_->{id} == $rep{A}[0] } @{ $r->{json} };
is($first->{kind}, 'inaccuracy', '... with the kind');
is($first->{status}, 'open', '... the status');
is($first->{dealership_name}, 'Acme Motors', '... the dealership');
is($first->{reporter_email}, 'u.a@example.com', '... the reporter');
is($first->{session_id}, 'sess-123', '... the session');
like($first->{fields}{user_input}, qr/^What does GAP cover/, '... the fields');
like($first->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
     '... ISO 8601 times');
like($first->{mailed_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
     '... and when its mail was sent');
is($first->{mailed_at},
   $t->psql("SELECT to_char(sent_at AT TIME ZONE 'UTC',"
            . " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM mail_outbox"
            . " WHERE id = (SELECT mail_id FROM reports WHERE id = $first->{id})"),
   "... the time of the report's own mail");
ok($r->{json}[0]{id} > $r->{json}[-1]{id}, '... newest first');

$r = $t->get("/api/v1/report/?dealership_id=$d{B}", token => $tok{sa});
is_deeply([ map { $_->{id} } @{ $r->{json} } ], $rep{B},
          'a super admin filters by dealership');
$r = $t->get('/api/v1/report/?kind=send_to_team', token => $tok{sa});
is(scalar(grep { $_->{kind} ne 'send_to_team' } @{ $r->{json} }), 0,
   '... and by kind');
$r = $t->get('/api/v1/report/?limit=1&offset=1', token => $tok{sa});
is(scalar @{ $r->{json} }, 1, '... pages with limit and offset');
$r = $t->get('/api/v1/report/?status=closed', token => $tok{sa});
is($r->{status}, 422, 'an unknown status filter: 422');
is(fields_of($r), 'query.status', '... named');
$r = $t->get('/api/v1/report/?limit=0', token => $tok{sa});
is($r->{status}, 422, 'limit 0: 422');

$r = $t->get('/api/v1/report/', token => $tok{daA});
is($r->{status}, 200, "a dealership admin lists its dealership's reports");
is_deeply([ sort { $a <=> $b } map { $_->{id} } @{ $r->{json} } ], $rep{A},
          '... exactly those of its dealership');
$r = $t->get('/api/v1/report/', token => $tok{daB});
is_deeply([ map { $_->{id} } @{ $r->{json} } ], $rep{B},
          "B's admin sees only B's");
$r = $t->get("/api/v1/report/?dealership_id=$d{A}", token => $tok{daB});
is_deeply($r->{json}, [], "B's admin asking for A's reports gets none");
$r = $t->get('/api/v1/report/', token => $tok{daNone});
is_deeply($r->{json}, [], 'an admin without a dealership sees none');
for my $u ('uA', 'uB') {
    $r = $t->get('/api/v1/report/', token => $tok{$u});
    is($r->{status}, 403, "a user ($u) cannot list reports");
    is($r->{json}{error}{type}, 'AuthorizationError', '... AuthorizationError');
}
$r = $t->get('/api/v1/report/');
is($r->{status}, 401, 'no token: 401');

# PATCH
my $a0 = $rep{A}[0];
sub report_row {
    $t->psql("SELECT row_to_json(r)::text FROM reports r WHERE id = $_[0]");
}
my $generic = sub {
    my ($r, $id) = @_;
    (my $b = $r->{body} // '') =~ s/\b$id\b/N/g;
    return "$r->{status} $b";
};

my $before = report_row($a0);
$r = $t->patch("/api/v1/report/$a0", token => $tok{daB},
               json => { status => 'dismissed', resolution_note => 'mine now' });
is($r->{status}, 404, "B's admin cannot update A's report: 404");
is(report_row($a0), $before, '... nothing changed');
my $m = $t->patch('/api/v1/report/900000', token => $tok{daB},
                  json => { status => 'dismissed' });
is($generic->($r, $a0), $generic->($m, 900000),
   '... the same answer as a missing report');
is($m->{json}{error}{message}, 'Report with ID 900000 not found',
   '... "Report with ID n not found"');
$r = $t->patch("/api/v1/report/$a0", token => $tok{daNone},
               json => { status => 'resolved' });
is($r->{status}, 404, 'an admin without a dealership: 404');
$r = $t->patch("/api/v1/report/$a0", token => $tok{uA},
               json => { status => 'resolved' });
is($r->{status}, 403, 'a user cannot update a report, even its own');
is(report_row($a0), $before, '... nothing changed');

for my $bad ([ { status => 'closed' }, 'body.status', 'an unknown status' ],
             [ {}, 'body.status', 'no status' ],
             [ { status => 'resolved', resolution_note => 'x' x 5001 },
               'body.resolution_note', 'a note over 5000 characters' ]) {
    $r = $t->patch("/api/v1/report/$a0", token => $tok{daA}, json => $bad->[0]);
    is($r->{status}, 422, "$bad->[2]: 422");
    is(fields_of($r), $bad->[1], "... $bad->[1]");
    is(report_row($a0), $before, '... nothing changed');
}
$r = $t->patch('/api/v1/report/abc', token => $tok{daA},
               json => { status => 'resolved' });
is($r->{status}, 422, 'a report id that is no number: 422');
is(fields_of($r), 'path.id', '... path.id');

$r = $t->patch("/api/v1/report/$a0", token => $tok{daA},
               json => { status => 'resolved', resolution_note => 'Fixed the book' });
is($r->{status}, 200, "A's admin resolves A's report") or diag $r->{body};
is($r->{json}{status}, 'resolved', '... resolved');
is($r->{json}{resolved_by}, $id{daA}, '... by that admin');
is($r->{json}{resolution_note}, 'Fixed the book', '... with the note');
is($r->{json}{id}, $a0, '... the report answered');
is($t->psql("SELECT status || ' ' || resolved_by FROM reports WHERE id = $a0"),
   "resolved $id{daA}", '... stored');

$r = $t->patch("/api/v1/report/$rep{B}[0]", token => $tok{sa},
               json => { status => 'dismissed' });
is($r->{status}, 200, "a super admin updates B's report");
is($r->{json}{resolved_by}, $sa_id, '... recorded');
$r = $t->get('/api/v1/report/?status=resolved', token => $tok{sa});
is_deeply([ map { $_->{id} } @{ $r->{json} } ], [ $a0 ], 'filter by status');

$r = $t->patch("/api/v1/report/$a0", token => $tok{daA},
               json => { status => 'open' });
is($r->{status}, 200, 'a report is reopened');
is($r->{json}{resolved_by}, undef, '... no longer resolved by anyone');
is($r->{json}{resolution_note}, 'Fixed the book', '... the note kept');

# --- mail provider down: the report stays, the mail waits ---

my $dead = AvatarTest::free_port();
$ENV{AVC_TEST_MG_KEY} = 'mailgun-key';
$t->stop_nginx;
$t->start_nginx(http => "avatar_mail mailgun base_url=http://127.0.0.1:$dead"
                      . ' domain=mg.example.com key=env:AVC_TEST_MG_KEY'
                      . ' recipients=team@example.com attempts=1;');
$before = $t->psql('SELECT count(*) FROM reports');
$r = $t->post('/api/v1/report/inaccuracy', token => $tok{uA},
              json => { user_input => 'provider down?', avatar_response => 'a' });
is($r->{status}, 200, 'with the mail provider down: 200') or diag $r->{body};
is($r->{json}{message}, $INACC, '... the usual answer');
is($t->psql('SELECT count(*) FROM reports'), $before + 1, '... the report is stored');
my $mid = $t->psql('SELECT id FROM mail_outbox ORDER BY id DESC LIMIT 1');
ok(wait_for(sub { $t->psql("SELECT attempts > 0 AND last_error IS NOT NULL"
                           . " AND sent_at IS NULL FROM mail_outbox WHERE id = $mid")
                  eq 't' }, 20),
   '... its mail failed and waits in the outbox for a retry')
    or diag $t->psql("SELECT row_to_json(o)::text FROM mail_outbox o WHERE id = $mid");
like($t->psql("SELECT body_text FROM mail_outbox WHERE id = $mid"),
     qr/provider down\?/, '... the mail of that report');
$r = $t->get('/api/v1/report/?limit=1', token => $tok{sa});
ok(exists $r->{json}[0]{mailed_at} && !defined $r->{json}[0]{mailed_at},
   '... listed with mailed_at null while it waits')
    or diag explain $r->{json}[0];

# --- no recipients configured: stored, not mailed ---

$t->stop_nginx;
$t->start_api(http => "avatar_mail outbox dir=$outbox;");
$before = stored();
$r = $t->post('/api/v1/report/send-to-team', token => $tok{uB},
              json => { user_question => 'q', ai_response => 'a',
                        conversation_history => [] });
is($r->{status}, 200, 'without recipients: 200');
my ($nr, $nm) = split m{/}, $before;
is(stored(), ($nr + 1) . "/$nm", '... stored, no mail queued');
$r = $t->get('/api/v1/report/?limit=1', token => $tok{sa});
ok(exists $r->{json}[0]{mailed_at} && !defined $r->{json}[0]{mailed_at},
   '... listed with mailed_at null');
like($t->error_log, qr/not mailed: no recipients/, '... and the operator is told');

# --- conf/: a user cannot flood the team's inbox ---

$t->stop_nginx;
{
    my $dir = $t->dir;
    open my $fh, '>', "$dir/secret" or die;
    print $fh $t->{secret}, "\n";
    close $fh;
    my $port = AvatarTest::free_port();
    my ($rc, $out) = $t->run_cmd('sh', "$AvatarTest::TOP/tools/conf.sh",
                                 "$dir/real", $t->conninfo, "$dir/secret", $port, 1);
    is($rc, 0, 'conf/ rendered') or diag $out;
    system('sed', '-i', "s|^error_log .*|error_log $dir/error.log info;|",
           "$dir/real/nginx.conf");
    $t->start_nginx(file => "$dir/real/nginx.conf", port => $port,
                    pidfile => "$dir/real/nginx.pid");
    my @codes;
    for (1 .. 10) {
        $r = $t->post('/api/v1/report/inaccuracy', token => $tok{uA},
                      json => { user_input => "flood $_", avatar_response => 'a' });
        push @codes, $r->{status};
        last if $r->{status} == 429;
    }
    is("@codes", '200 200 200 200 200 200 429',
       'conf/: reports are limited per user (10/min, burst 5)');
    is($r->{json}{error}{type}, 'RateLimitError', '... RateLimitError');
    $r = $t->post('/api/v1/report/send-to-team', token => $tok{uA},
                  json => { user_question => 'q', ai_response => 'a',
                            conversation_history => [] });
    is($r->{status}, 429, '... both kinds share the limit');
    $r = $t->post('/api/v1/report/inaccuracy', token => $tok{uB},
                  json => { user_input => 'q', avatar_response => 'a' });
    is($r->{status}, 200, '... another user is not limited');
    $r = $t->get('/api/v1/report/', token => $tok{daA});
    is($r->{status}, 200, '... nor is reviewing');
}

$t->finish;
done_testing;
