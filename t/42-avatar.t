# The avatar routes through nginx: POST /api/v1/avatar/session mints a
# HeyGen LiveAvatar session token against a mock that speaks the real wire
# format (tools/mock/heygen.pl), GET /api/v1/avatar/voices lists the
# voices.  Checked: both need a signed-in caller; the request the provider
# gets (the key header, FULL mode, the avatar, sandbox, the voice only
# when chosen); the answer's shape; every provider failure answered
# 502/504 in the API's error shape with nothing of the provider's leaked;
# a bad voice_id refused before any provider request; a client that goes
# away cancelling the provider request; and the built-in avatar (no
# provider, or heygen without a key) answering 503 with a stable message.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for start_mock);
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

my $KEY = 'la-test-key-0123456789';
my $AVATAR = 'dd73ea75-1218-4ef3-92ce-606d5f7fbc0a';
my $NONE = 'No avatar provider is configured; the web app uses its built-in avatar';
my $SESSION = '/api/v1/avatar/session';
my $VOICES = '/api/v1/avatar/voices';

my $t = AvatarTest->new;
my ($mpid, $mport, $min) = start_mock('heygen.pl', '--key', $KEY);

# a port where nothing listens
my $dead = do {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp') or die;
    my $p = $s->sockport;
    close $s;
    $p;
};

sub start {
    my ($avatar) = @_;
    $t->stop_nginx;
    $t->start_api(main => 'env HEYGEN_API_KEY;',
                  http => $avatar ? "$avatar\n" : '');
}

$ENV{HEYGEN_API_KEY} = $KEY;
start("avatar_avatar heygen base_url=http://127.0.0.1:$mport/"
      . " avatar_id=$AVATAR sandbox=on key=env:HEYGEN_API_KEY timeout=2000"
      . ' "voices=voice-a:Wayne Smith, voice-b ,bad/id:Nope,,voice-c:";');
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $d_id = $t->make_dealership('Alpha Motors');
$t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                role => 'user', dealership_id => $d_id);
my $u = $t->login('u@alpha.com', 'Super!pass1');

sub mock {
    my ($method, $path, $json) = @_;
    return $t->http($method, $path, port => $mport,
                    defined $json ? (json => $json) : ());
}
sub requests { @{ mock('GET', '/_requests')->{json}{requests} } }
sub fail_next { mock('POST', '/_next', $_[0]) }
sub session {
    my (%o) = @_;
    return $t->post($SESSION, token => $u, %o);
}

# an API error in the contract's shape, with nothing of the provider's
sub upstream_error_ok {
    my ($r, $status, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    is($r->{json}{error}{type}, 'UpstreamError', '... UpstreamError');
    is($r->{json}{error}{path}, $SESSION, '... with the path');
    like($r->{json}{error}{message}, $status == 504 ? qr/did not answer in time/
                                                    : qr/could not start a session/,
         '... and a plain message');
    unlike($r->{body}, qr/\Q$KEY\E|Upstream failure|Invalid API key|session_token|eyJ/,
           '... nothing of the key or the provider\'s answer');
}

# authentication first
my $r = $t->post($SESSION, json => {});
is($r->{status}, 401, 'POST /session without a token: 401');
is($r->{json}{detail}, 'Not authenticated', '... the old shape');
is($r->{json}{error}{type}, 'AuthenticationError', '... and the error shape');
is($t->post($SESSION, token => 'not-a-token', json => {})->{status}, 401,
   '... a bad token: 401');
is($t->get($VOICES)->{status}, 401, 'GET /voices without a token: 401');
is(scalar(() = requests()), 0, 'the provider was not asked');

# a session: the request the provider gets, and the answer
$r = session(json => {});
is($r->{status}, 200, 'a session');
my ($req) = requests();
is($req->{path}, '/v1/sessions/token', '... from POST /v1/sessions/token (base_url\'s slash dropped)');
is($req->{headers}{'x-api-key'}, $KEY, '... with the key in X-API-KEY');
like($req->{headers}{'content-type'}, qr{^application/json}, '... a JSON body');
is($req->{body}{mode}, 'FULL', '... mode FULL');
is($req->{body}{avatar_id}, $AVATAR, '... the configured avatar');
ok(JSON::PP::is_bool($req->{body}{is_sandbox}) && $req->{body}{is_sandbox},
   '... is_sandbox true (sandbox=on)');
is_deeply($req->{body}{avatar_persona}, {}, '... an avatar_persona without a voice when none is chosen');
is_deeply([sort keys %{ $r->{json} }], [qw(session_id session_token)],
          'the answer is {session_id, session_token}');
is($r->{json}{session_id}, $req->{data}{session_id}, '... the provider\'s session id');
is($r->{json}{session_token}, $req->{data}{session_token}, '... and token, unwrapped from data');

$r = $t->post($SESSION, token => $u);
is($r->{status}, 200, 'a session with no body at all');

$r = session(json => { voice_id => 'voice-a' });
is($r->{status}, 200, 'a session with a voice');
$req = (requests())[-1];
is_deeply($req->{body}{avatar_persona}, { voice_id => 'voice-a' },
          '... the voice in avatar_persona.voice_id');
is($t->post($SESSION, token => $u, json => { voice_id => undef })->{status}, 200,
   'voice_id null is no voice');
is_deeply((requests())[-1]{body}{avatar_persona}, {}, '... none is sent');

# bad input: 422, and the provider is not asked
my $n = () = requests();
for my $bad (['bad id!', 'string_pattern_mismatch'],
             ['', 'string_too_short'],
             ['v' x 101, 'string_too_long'],
             ['voice"}, "x": {"y', 'string_pattern_mismatch'],
             [42, 'string_type'],
             [['voice-a'], 'string_type'])
{
    my ($v, $type) = @$bad;
    $r = session(json => { voice_id => $v });
    my $shown = ref $v ? 'a list' : length $v > 20 ? 'a 101-character id' : "\"$v\"";
    is($r->{status}, 422, "voice_id $shown: 422");
    is($r->{json}{error}{type}, 'ValidationError', '... ValidationError');
    is($r->{json}{error}{details}[0]{field}, 'body.voice_id', '... about body.voice_id');
    is($r->{json}{error}{details}[0]{type}, $type, "... $type");
}
$r = session(body => '{"voice_id": ', headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 422, 'a body that is not JSON: 422');
$r = session(json => '["voice-a"]');
is($r->{status}, 422, 'a body that is not an object: 422');
is(scalar(() = requests()), $n, 'no bad request reached the provider');

# provider failures
fail_next({ status => 401 });
upstream_error_ok(session(json => {}), 502, 'the provider refuses the key');
fail_next({ status => 500 });
upstream_error_ok(session(json => {}), 502, 'a provider 500');
is(scalar(grep { ($_->{status} // 0) == 500 } requests()), 1, '... not retried');
fail_next({ status => 422 });
upstream_error_ok(session(json => {}), 502, 'a provider 422');
fail_next({ malformed => 1 });
upstream_error_ok(session(json => {}), 502, 'a body that is not JSON');
fail_next({ 'no-data' => 1 });
upstream_error_ok(session(json => {}), 502, 'no data');
fail_next({ missing => 'session_token' });
upstream_error_ok(session(json => {}), 502, 'no session_token');
fail_next({ missing => 'session_id' });
upstream_error_ok(session(json => {}), 502, 'no session_id');
# (a kept-alive connection that dies before any answer is tried once
# more on a new one, by libcurl's design: both die here)
fail_next([{ reset => 1 }, { reset => 1 }]);
upstream_error_ok(session(json => {}), 502, 'a connection reset');
mock('DELETE', '/_next');
fail_next({ slow => 6000 });
my $t0 = time;
upstream_error_ok(session(json => {}), 504, 'slower than timeout=2000');
my $took = time - $t0;
ok($took > 1.5 && $took < 4, sprintf('... answered at the deadline (%.1fs)', $took));
ok(wait_for(sub { (requests())[-1]{outcome} eq "client-closed" }, 3), "... and the provider request was abandoned");
is(session(json => {})->{status}, 200, 'the next session works');

# the client goes away: the provider request is cancelled
fail_next({ slow => 6000 });
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port) or die;
my $body = encode_json({ voice_id => 'voice-gone' });
print $s "POST $SESSION HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $u\r\n"
       . "Content-Type: application/json\r\nContent-Length: " . length($body)
       . "\r\nConnection: close\r\n\r\n$body";
ok(wait_for(sub { grep { ($_->{body}{avatar_persona}{voice_id} // '') eq 'voice-gone' } requests() }, 3),
   'a slow session is under way');
close $s;
ok(wait_for(sub { my ($q) = grep { ($_->{body}{avatar_persona}{voice_id} // '') eq 'voice-gone' } requests();
                  $q && $q->{outcome} eq 'client-closed' }, 3),
   'when the client goes away the provider request is closed');
my ($gone) = grep { ($_->{body}{avatar_persona}{voice_id} // '') eq 'voice-gone' } requests();
ok($gone->{t_end} - $gone->{t_start} < 1.5, '... at once, not at the deadline');

# voices: the configured list
$r = $t->get($VOICES, token => $u);
is($r->{status}, 200, 'voices');
is_deeply($r->{json}{voices},
          [ { voice_id => 'voice-a', name => 'Wayne Smith' },
            { voice_id => 'voice-b', name => 'voice-b' },
            { voice_id => 'voice-c', name => 'voice-c' } ],
          '... the configured ones, "id:Name" or the id as its name; a bad entry left out');
is($r->{json}{provider}, 'heygen', '... of heygen');
like($t->error_log, qr/avatar\.voices: an entry is not/, '... the bad entry is logged');
unlike($t->error_log, qr/\Q$KEY\E/, 'the key never reaches the error log');

# a provider that cannot be reached: 502
start("avatar_avatar heygen base_url=http://127.0.0.1:$dead avatar_id=$AVATAR"
      . ' key=env:HEYGEN_API_KEY timeout=3000;');
upstream_error_ok(session(json => {}), 502, 'nothing listens at base_url');
$r = $t->get($VOICES, token => $u);
is_deeply($r->{json}{voices}, [], 'heygen without avatar_voices: no voices listed');

# the key is wrong: the provider echoes it, we do not
$ENV{HEYGEN_API_KEY} = 'la-wrong-key-9876543210';
start("avatar_avatar heygen base_url=http://127.0.0.1:$mport avatar_id=$AVATAR"
      . ' sandbox=off key=env:HEYGEN_API_KEY;');
mock('DELETE', '/_requests');
upstream_error_ok(session(json => {}), 502, 'a wrong key');
$req = (requests())[-1];
is($req->{status}, 401, '... refused by the provider');
ok(JSON::PP::is_bool($req->{body}{is_sandbox}) && !$req->{body}{is_sandbox},
   '... is_sandbox false (sandbox=off)');
unlike($r->{body} // '', qr/la-wrong-key/, '... not in the answer');
unlike($t->error_log, qr/la-wrong-key-9876543210/, '... nor in the error log');
like($t->error_log, qr/avatar: session token: status 401/, '... which has the cause');

# the built-in avatar: 503 with a message the web app shows
my @builtin = ({ voice_id => 'en-us', name => 'English (US)' },
               { voice_id => 'en-gb', name => 'English (UK)' });
for my $conf (['no avatar_avatar', ''],
              ['avatar_avatar builtin', 'avatar_avatar builtin;'],
              ['heygen without a key', "avatar_avatar heygen base_url=http://127.0.0.1:$mport avatar_id=$AVATAR;"])
{
    my ($name, $directive) = @$conf;
    start($directive);
    mock('DELETE', '/_requests');
    $r = session(json => { voice_id => 'voice-a' });
    is($r->{status}, 503, "$name: a session is 503");
    is($r->{json}{error}{type}, 'ServiceUnavailable', '... ServiceUnavailable');
    is($r->{json}{error}{message}, $NONE, '... with the stable message');
    is($r->{json}{error}{path}, $SESSION, '... and the path');
    is(session(json => { voice_id => 'no good' })->{status}, 422, '... bad input is still 422');
    is($t->post($SESSION, json => {})->{status}, 401, '... and no token 401');
    $r = $t->get($VOICES, token => $u);
    is($r->{status}, 200, '... voices');
    is_deeply($r->{json}{voices}, \@builtin, '... the espeak voices of the built-in avatar');
    is($r->{json}{provider}, 'builtin', '... marked builtin');
    is(scalar(() = requests()), 0, '... and the provider was never asked');
}
like($t->error_log, qr/heygen is not usable \(avatar\.key is not set\)/,
     'heygen without a key is logged');

close $min;
waitpid $mpid, 0;
$t->finish;
done_testing;
