# The voice sockets' WebSocket layer (RFC 6455) through nginx, with a raw
# client (AvatarTest::WS): the handshake and its refusals (JSON errors),
# Origin checks, the token in the query or as the "bearer.<token>"
# subprotocol (and never in a log), framing rules (masking, reserved bits,
# opcodes, control frames, fragmentation, UTF-8, size limits), the close
# handshake, the idle timeout, a client too slow to read, clients that
# vanish, and nginx shutting down with sockets open.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for);
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $t = AvatarTest->new;
my $port2 = AvatarTest::free_port();    # idle and slow clients
my $port3 = AvatarTest::free_port();    # HTTP/2
my $port4 = AvatarTest::free_port();    # TLS

# a certificate for wss://, when the openssl command is there
my $dir = $t->dir;
my $tls = system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2"
               . " -keyout $dir/tls.key -out $dir/tls.crt >/dev/null 2>&1") == 0;

$t->start_api(
    http => <<"EOF",
avatar_cors_origins https://app.example.com;
avatar_ws_max_message 4k;
limit_req_zone \$binary_remote_addr zone=wslimit:1m rate=1r/m;
limit_req_zone \$avatar_user_id zone=wsuser:1m rate=1r/m;
server {
    listen 127.0.0.1:$port2 sndbuf=32k;
    lingering_timeout 10s;
    location \@avatar_error { avatar_error; }
    location /api/v1/ {
        avatar_api;
        avatar_ws_idle_timeout 1500ms;
        avatar_ws_max_pending 64k;
    }
}
server {
    listen 127.0.0.1:$port3 http2;
    location /api/v1/ { avatar_api; }
}
@{[ $tls ? "server {
    listen 127.0.0.1:$port4 ssl;
    ssl_certificate $dir/tls.crt;
    ssl_certificate_key $dir/tls.key;
    location /api/v1/ { avatar_api; }
}" : '' ]}
EOF
    server => <<"EOF",
        location /api/v1/voice/ws/vad/limited- {
            avatar_api;
            limit_req zone=wslimit nodelay;
            limit_req_status 429;
            error_page 429 \@avatar_error;
        }
        location /api/v1/voice/ws/vad/peruser- {
            avatar_api;
            limit_req zone=wsuser nodelay;
            limit_req_status 429;
            error_page 429 \@avatar_error;
        }
        location = /status { stub_status; }
EOF
);

$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $d = $t->make_dealership('Alpha Motors');
my $uid = $t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                          role => 'user', dealership_id => $d);
my $tok = $t->login('u@alpha.com', 'Super!pass1');

my $vad = '/api/v1/voice/ws/vad/client-1';
my $live = "/api/v1/voice/ws/live/$uid";

sub ws { $t->ws_connect(@_) }

# a socket whose session is authenticated (a ping was answered)
sub open_ws {
    my ($path, %o) = @_;
    my $ws = ws($path // $vad, token => $tok, %o);
    die "no upgrade: $ws->{status}\n" unless ($ws->{status} // 0) == 101;
    $ws->send_text('{"type":"ping"}');
    my $m = $ws->recv_json(10);
    die "no pong\n" unless $m && $m->{type} eq 'pong';
    return $ws;
}

sub refused {
    my ($ws, $status, $type, $re, $name) = @_;
    is($ws->{status}, $status, $name);
    is($ws->{json}{error}{type}, $type, "... a $type in the API's error shape");
    like($ws->{json}{error}{message} // '', $re, '... saying why');
    ok(!$ws->{accept_ok}, '... and no upgrade');
}

# --- the handshake ---

my $ws = ws($vad, token => $tok);
is($ws->{status}, 101, 'a WebSocket handshake is answered with 101');
is($ws->{status_line}, 'HTTP/1.1 101 Switching Protocols', '... with its reason phrase');
ok($ws->{accept_ok}, '... and the Sec-WebSocket-Accept of the key');
is(lc($ws->{headers}{upgrade} // ''), 'websocket', '... Upgrade: websocket');
is(lc($ws->{headers}{connection} // ''), 'upgrade', '... Connection: upgrade');
ok(!exists $ws->{headers}{'sec-websocket-protocol'}, '... no subprotocol when none was offered');
ok(!exists $ws->{headers}{'content-length'} && !exists $ws->{headers}{'transfer-encoding'},
   '... and no body framing');
$ws->send_text('{"type":"ping"}');
my $f = $ws->recv_frame(10);
is($f->{op}, 1, 'a JSON answer comes as a text frame');
is($f->{masked}, 0, '... unmasked');
is_deeply(decode_json($f->{payload}), { type => 'pong' }, '... {"type":"pong"}: the query token authenticated the socket');
$ws->send_close(1000, 'done');
my ($code, $reason) = $ws->close_frame(5);
is($code, 1000, 'close handshake: the client\'s 1000 is echoed');
ok($ws->wait_eof(5), '... then the server closes the connection');

$ws = ws($vad, token => $tok, headers => { 'Sec-WebSocket-Key' => 'dGhlIHNhbXBsZSBub25jZQ==',
                                           Connection => 'keep-alive, Upgrade',
                                           Upgrade => 'WebSocket' });
is($ws->{headers}{'sec-websocket-accept'}, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
   'the accept value of RFC 6455\'s example key; "Connection: keep-alive, Upgrade" and "WebSocket" are fine');
$ws->close;

$ws = ws($vad, token => $tok, headers => { Upgrade => undef });
refused($ws, 426, 'BadRequest', qr/WebSocket/, 'no Upgrade header: 426');
is($ws->{status_line}, 'HTTP/1.1 426 Upgrade Required', '... Upgrade Required');
is($ws->{headers}{upgrade}, 'websocket', '... naming the upgrade it needs');
refused(ws($vad, token => $tok, headers => { Upgrade => 'h2c' }), 426, 'BadRequest',
        qr/WebSocket/, 'an upgrade to something else: 426');
refused(ws($vad, token => $tok, headers => { Connection => 'keep-alive' }), 400, 'BadRequest',
        qr/Connection/, 'Connection without "upgrade": 400');
$ws = ws($vad, token => $tok, headers => { 'Sec-WebSocket-Version' => 8 });
refused($ws, 426, 'BadRequest', qr/version/i, 'Sec-WebSocket-Version 8: 426');
is($ws->{headers}{'sec-websocket-version'}, '13', '... with Sec-WebSocket-Version: 13');
refused(ws($vad, token => $tok, headers => { 'Sec-WebSocket-Version' => undef }), 426,
        'BadRequest', qr/version/i, 'no Sec-WebSocket-Version: 426');
for my $key ('abc', 'AAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAA!==', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==') {
    refused(ws($vad, token => $tok, headers => { 'Sec-WebSocket-Key' => $key }), 400, 'BadRequest',
            qr/Sec-WebSocket-Key/, "Sec-WebSocket-Key '$key' (not 16 bytes of base64): 400");
}
refused(ws($vad, token => $tok, headers => { 'Sec-WebSocket-Key' => undef }), 400, 'BadRequest',
        qr/Sec-WebSocket-Key/, 'no Sec-WebSocket-Key: 400');
$ws = ws($vad, token => $tok, method => 'POST');
refused($ws, 405, 'MethodNotAllowed', qr/Method Not Allowed/, 'POST: 405');
is($ws->{headers}{allow}, 'GET', '... Allow: GET');
refused(ws($vad, token => $tok, method => 'OPTIONS'), 405, 'MethodNotAllowed', qr/Method/, 'OPTIONS: 405');
refused(ws($vad, token => $tok, http => '1.0'), 400, 'BadRequest', qr{HTTP/1\.1},
        'HTTP/1.0: 400');
refused(ws($vad, token => $tok, headers => { 'Content-Length' => 5 }, extra => 'hello'), 400,
        'BadRequest', qr/body/, 'a handshake with a body: 400');
refused(ws('/api/v1/voice/ws/vad/' . ('x' x 200), token => $tok), 404, 'NotFoundError',
        qr/Not Found/, 'an id of 200 characters: 404');
refused(ws('/api/v1/voice/ws/vad/', token => $tok), 404, 'NotFoundError', qr/Not Found/,
        'no id: 404');
is(ws('/api/v1/voice/ws/vad/a/b', token => $tok)->{status}, 404, 'two segments: 404');

SKIP: {
    my $v = `curl -V 2>/dev/null`;
    skip 'curl without HTTP/2', 3 unless $v =~ /\bHTTP2\b/;
    my $out = `curl -s --http2-prior-knowledge -w '\\n%{http_code} %{http_version}' 'http://127.0.0.1:$port3$vad?token=$tok'`;
    my ($body, $status, $version) = $out =~ /^(.*)\n(\d+) (\S+)$/s;
    is("$status $version", '400 2', 'over HTTP/2 a socket path is refused with 400 (nginx has no RFC 8441)');
    my $j = eval { decode_json($body) } || {};
    is($j->{error}{type}, 'BadRequest', '... a JSON error');
    like($j->{error}{message} // '', qr{WebSocket needs HTTP/1\.1}, '... saying WebSocket needs HTTP/1.1');
}

# --- Origin ---

refused(ws($vad, token => $tok, origin => 'https://evil.example.com'), 403, 'AuthorizationError',
        qr/Origin not allowed/, 'an Origin that is not allowed: 403');
refused(ws($vad, token => $tok, origin => 'null'), 403, 'AuthorizationError',
        qr/Origin/, 'Origin "null": 403');
refused(ws($vad, token => $tok, origin => 'https://127.0.0.1:' . $t->port), 403,
        'AuthorizationError', qr/Origin/, 'the server\'s host with another scheme: 403');
for my $o ('https://app.example.com', 'HTTPS://App.Example.COM:443', 'http://127.0.0.1:' . $t->port) {
    $ws = ws($vad, token => $tok, origin => $o);
    is($ws->{status}, 101, "Origin $o is allowed (avatar_cors_origins or the server's own)");
    $ws->send_text('{"type":"ping"}');
    is(($ws->recv_json(10) // {})->{type}, 'pong', '... and the socket works');
    $ws->close;
}

# --- the token ---

$ws = ws($vad, protocol => "bearer.$tok");
is($ws->{status}, 101, 'the token as the subprotocol bearer.<token>');
is($ws->{headers}{'sec-websocket-protocol'}, "bearer.$tok", '... which the 101 echoes exactly');
$ws->send_text('{"type":"ping"}');
is_deeply($ws->recv_json(10), { type => 'pong' }, '... and which authenticates');
$ws->close;

$ws = ws($vad, protocol => "avatar.v1, bearer.$tok");
is($ws->{headers}{'sec-websocket-protocol'}, "bearer.$tok",
   'among other subprotocols the bearer one is chosen');
$ws->close;

$ws = ws($vad);
is($ws->{status}, 101, 'no token: the upgrade happens');
($code, $reason) = $ws->close_frame(10);
is($code, 4001, '... then the socket is closed with 4001');
is($reason, 'Authentication required', '... "Authentication required"');
ok($ws->wait_eof(5), '... and the connection ends');

$ws = ws($vad, token => 'not.a.token');
is(($ws->close_frame(10))[0], 4001, 'a bad token: 4001');

$ws = ws('/api/v1/voice/ws/live/' . ($uid + 1000), token => $tok);
($code, $reason) = $ws->close_frame(10);
is("$code $reason", '4003 User ID mismatch', "the path's user id reaches the core: another user's is 4003");

$ws = ws($live, token => $tok);
$ws->send_text('{"type":"init","mode":"roleplay"}');
is_deeply($ws->recv_json(10), { type => 'ready', message => 'Listening...' },
          'the live socket: init is answered with ready');
$ws->close;

$ws = ws("$vad?token=$tok&lang=en");
$ws->send_text('{"type":"ping"}');
is_deeply($ws->recv_json(10), { type => 'pong' }, 'a token followed by other arguments');
$ws->close;

# --- frames ---

$ws = ws($vad, token => $tok, extra => AvatarTest::WS::frame(1, '{"type":"ping"}'));
is_deeply($ws->recv_json(10), { type => 'pong' }, 'a frame sent together with the handshake is read');
$ws->close;

$ws = open_ws();
$ws->send_frame(1, '{"type"', fin => 0);
$ws->send_frame(0, ':"pi', fin => 0);
$ws->send_ping('between');
$ws->send_frame(0, 'ng"}');
$f = $ws->recv_frame(5);
is($f->{op}, 10, 'a ping between the fragments of a message is answered with a pong');
is($f->{payload}, 'between', '... carrying the ping\'s payload');
is($f->{masked}, 0, '... unmasked');
is_deeply($ws->recv_json(5), { type => 'pong' }, 'the message in three fragments is reassembled: {"type":"pong"}');

my $pad = 'x' x 3500;
my $big = qq({"type":"ping","pad":"$pad"});
my @parts = unpack('(a500)*', $big);
$ws->send_frame($_ == 0 ? 1 : 0, $parts[$_], fin => $_ == $#parts) for 0 .. $#parts;
is_deeply($ws->recv_json(5), { type => 'pong' }, "a message of 3.5 KB in " . @parts . ' fragments');

$ws->send_frame(1, '{"type":"p' . "\xc3", fin => 0);
$ws->send_frame(0, "\xafng\"}");
my $m = $ws->recv_json(5);
is($m->{type}, 'error', 'a UTF-8 character split between fragments is fine (the core answers the unknown type)');

$ws->send_binary("\x00\x01" x 160);
$m = $ws->recv_json(5);
is_deeply($m, { type => 'error', message => 'Send audio frames as JSON text messages' },
          'a binary message reaches the core as binary');

$ws->send_ping('');
$f = $ws->recv_frame(5);
ok($f->{op} == 10 && $f->{payload} eq '', 'an empty ping gets an empty pong');
$ws->send_ping('z' x 125);
$f = $ws->recv_frame(5);
is($f->{payload}, 'z' x 125, 'a ping of 125 bytes gets its payload back');
$ws->send_frame(10, 'unsolicited');
$ws->send_text('{"type":"ping"}');
is_deeply($ws->recv_json(5), { type => 'pong' }, 'an unsolicited pong is ignored');
$ws->send_close;
$f = $ws->recv_frame(5);
ok($f->{op} == 8 && $f->{payload} eq '', 'a close frame without a code is answered with an empty one');
ok($ws->wait_eof(5), '... and the connection ends');

$ws = open_ws();
$ws->send_close(4000, 'see you');
is(($ws->close_frame(5))[0], 4000, 'an application close code is echoed');
ok($ws->wait_eof(5), '... and the connection ends');

sub closes_with {
    my ($code, $name, $send) = @_;
    my $ws = open_ws();
    $send->($ws);
    my ($c) = $ws->close_frame(5);
    is($c, $code, $name);
    ok($ws->wait_eof(5), '... and the connection ends');
}

closes_with(1002, 'an unmasked frame: 1002',
            sub { $_[0]->send_frame(1, '{"type":"ping"}', mask => 0) });
closes_with(1002, 'a reserved bit set: 1002',
            sub { $_[0]->send_frame(1, '{"type":"ping"}', rsv => 0x40) });
closes_with(1002, 'opcode 3: 1002', sub { $_[0]->send_frame(3, 'x') });
closes_with(1002, 'opcode 0xB: 1002', sub { $_[0]->send_frame(0xb, 'x') });
closes_with(1002, 'a ping of 126 bytes: 1002', sub { $_[0]->send_ping('p' x 126) });
closes_with(1002, 'a fragmented ping: 1002', sub { $_[0]->send_frame(9, 'p', fin => 0) });
closes_with(1002, 'a continuation without a message: 1002', sub { $_[0]->send_frame(0, 'x') });
closes_with(1002, 'a new message inside a fragmented one: 1002', sub {
    $_[0]->send_frame(1, '{"type"', fin => 0);
    $_[0]->send_frame(1, '{"type":"ping"}');
});
closes_with(1002, 'close code 1005 (never sent): 1002', sub { $_[0]->send_close(1005) });
closes_with(1002, 'close code 999: 1002', sub { $_[0]->send_close(999) });
closes_with(1002, 'close code 2000 (reserved): 1002', sub { $_[0]->send_close(2000) });
closes_with(1002, 'a close frame of one byte: 1002', sub { $_[0]->send_frame(8, 'x') });
closes_with(1007, 'a close reason that is not UTF-8: 1007',
            sub { $_[0]->send_close(1000, "\xff") });
closes_with(1009, 'a frame over avatar_ws_max_message (4k): 1009',
            sub { $_[0]->send_text('{"type":"ping","pad":"' . ('x' x 5000) . '"}') });
closes_with(1009, 'a fragmented message over it: 1009', sub {
    $_[0]->send_frame(1, 'x' x 2000, fin => 0);
    $_[0]->send_frame(0, 'x' x 2000, fin => 0);
    $_[0]->send_frame(0, 'x' x 2000);
});
closes_with(1009, 'a frame announcing 2^62 bytes: 1009',
            sub { $_[0]->send_raw("\x81\xff" . pack('Q>', 2**62) . "abcd") });
closes_with(1002, 'a frame length with the top bit set: 1002',
            sub { $_[0]->send_raw("\x81\xff" . pack('Q>', 2**63) . "abcd") });
for my $bad (["\xff\xfe", 'invalid bytes'], ["\xc0\xaf", 'an overlong form'],
             ["\xed\xa0\x80", 'a surrogate'], ["\xf4\x90\x80\x80", 'beyond U+10FFFF'],
             ["{\"type\":\"\xe2\x82", 'a truncated sequence']) {
    closes_with(1007, "a text message with $bad->[1]: 1007",
                sub { $_[0]->send_text($bad->[0]) });
}

# after the close frame nothing more is sent, and the client's frames
# are read and dropped
$ws = ws($vad);
($code) = $ws->close_frame(10);
$ws->send_text('{"type":"ping"}');
$ws->send_close(1000);
ok($ws->wait_eof(5), 'after the server closed (4001), the client\'s late frames end nothing badly');

# --- the idle timeout (1.5 s on the second server) ---

$ws = open_ws(undef, port => $port2);
my $alive = 1;
for my $i (1 .. 5) {
    sleep 0.5;
    $ws->send_ping("k$i");
    $f = $ws->recv_frame(2);
    $alive &&= $f && $f->{op} == 10 && $f->{payload} eq "k$i";
}
ok($alive, 'frames from the client keep the socket open past avatar_ws_idle_timeout');
my $t0 = time;
($code, $reason) = $ws->close_frame(5);
my $idle = time - $t0;
is("$code $reason", '1001 idle', 'then, without frames, it is closed with 1001 "idle"');
ok($idle > 1.2 && $idle < 3.5, sprintf('... after about 1.5 s (%.2f s)', $idle));
ok($ws->wait_eof(5), '... and the connection ends');

# --- a client that does not read (64k queue, small socket buffers) ---

$ws = open_ws(undef, port => $port2, rcvbuf => 8192);
my $batch = AvatarTest::WS::frame(9, 'p' x 125) x 256;
my $sent = 0;
for (1 .. 100) {
    last unless $ws->send_raw($batch);
    $sent += length $batch;
}
my ($pongs, $close) = (0);
while (my $fr = $ws->recv_frame(15)) {
    last if $fr->{eof};
    if ($fr->{op} == 10) { $pongs += length $fr->{payload}; next }
    if ($fr->{op} == 8) { $close = $fr; last }
}
is($close && $close->{code}, 1008, 'a client that sends pings but never reads the pongs is closed with 1008');
is($close && $close->{reason}, 'Client too slow', '... "Client too slow"');
ok($pongs > 0 && $pongs < $sent / 4,
   "... after a bounded amount of answers ($pongs bytes of pongs for $sent bytes of pings)");
ok($ws->wait_eof(10), '... and the connection ends');
like($t->error_log, qr/websocket client too slow/, '... noted in the error log');

# --- clients that vanish ---

sub active {
    my $b = $t->get('/status')->{body} // '';
    return $b =~ /Active connections: (\d+)/ ? $1 : -1;
}
ok(wait_for(sub { active() == 1 }, 10), 'no socket is left open so far');
my @socks = map { open_ws() } 1 .. 3;
is(active(), 4, 'three sockets open');
$socks[0]->send_raw(substr(AvatarTest::WS::frame(1, 'x' x 100), 0, 20));
$socks[1]->send_frame(1, '{"type"', fin => 0);
$_->close for @socks;
ok(wait_for(sub { active() == 1 }, 5),
   'clients that hang up (in the middle of a frame, of a message, or between) have their sockets closed');

# --- limits per user: the socket's token keys $avatar_user_id ---

$t->create_user(email => 'v@alpha.com', like => 'sa@example.com',
                role => 'user', dealership_id => $d);
my $tok2 = $t->login('v@alpha.com', 'Super!pass1');
my $p1 = ws('/api/v1/voice/ws/vad/peruser-1', protocol => "bearer.$tok");
is($p1->{status}, 101, 'a socket under a per-user limit (token as subprotocol)');
my $p2 = ws('/api/v1/voice/ws/vad/peruser-2', token => $tok);
refused($p2, 429, 'RateLimitError', qr/Too many/,
        'the same user again (token in the query): 429, keyed on the user');
my $p3 = ws('/api/v1/voice/ws/vad/peruser-3', token => $tok2);
is($p3->{status}, 101, '... another user from the same address is not limited by it');
$_->close for $p1, $p2, $p3;

# --- the token never reaches a log ---

my $lim = ws('/api/v1/voice/ws/vad/limited-1', token => $tok);
is($lim->{status}, 101, 'a socket under limit_req');
my $lim2 = ws('/api/v1/voice/ws/vad/limited-1', token => $tok);
refused($lim2, 429, 'RateLimitError', qr/Too many/, 'the next one within the limit: 429');
$_->close for $lim, $lim2;

open my $fh, '<', $t->dir . '/access.log' or die;
my $access = do { local $/; <$fh> };
close $fh;
ok(index($access, $tok) < 0, 'the token appears nowhere in the access log')
    or diag(join "\n", grep { index($_, $tok) >= 0 } split /\n/, $access);
like($access, qr{"GET /api/v1/voice/ws/vad/client-1\?token=\*{100,} HTTP/1\.1" 101 },
     '... which shows it masked');
like($access, qr{"GET /api/v1/voice/ws/vad/client-1\?token=\*{100,}&lang=en HTTP/1\.1" 101 },
     '... also when other arguments follow');
like($access, qr{\?token=\*{100,} HTTP/2\.0" 400 }, '... also over HTTP/2');
my $elog = $t->error_log;
ok(index($elog, $tok) < 0, 'nor in the error log');
like($elog, qr/limiting requests.*token=\*{100,}/, '... where limit_req logs the request line masked');

# --- over TLS ---

SKIP: {
    skip 'no openssl command', 13 unless $tls;
    my $w = ws($vad, token => $tok, port => $port4, tls => 1,
               origin => "https://127.0.0.1:$port4");
    is($w->{status}, 101, 'over TLS (wss://) the upgrade works; the server\'s https origin is its own');
    ok($w->{accept_ok}, '... with the right accept value');
    $w->send_text('{"type":"ping"}');
    is_deeply($w->recv_json(10), { type => 'pong' }, '... messages');
    $w->send_ping('over tls');
    $f = $w->recv_frame(5);
    is($f && $f->{payload}, 'over tls', '... pings');
    $w->send_close(1000);
    is(($w->close_frame(5))[0], 1000, '... the close handshake');
    ok($w->wait_eof(5), '... ending the connection');
    $w->close;

    $w = ws($vad, port => $port4, tls => 1);
    is(($w->close_frame(10))[0], 4001, 'over TLS, without a token: 4001');
    my $t1 = time;
    $w->send_close(4001);
    ok($w->wait_eof(5), '... the client\'s answering close frame ends the connection');
    ok(time - $t1 < 2, '... at once');
    $w->close;

    $w = open_ws(undef, port => $port4, tls => 1);
    $w->send_frame(1, '{"type":"ping"}', mask => 0);
    is(($w->close_frame(5))[0], 1002, 'over TLS an unmasked frame: 1002');
    ok($w->wait_eof(5), '... and the connection ends');
    $w->close;

    $w = open_ws(undef, port => $port4, tls => 1);
    $w->send_text('{"type":"ping","pad":"' . ('x' x 3000) . '"}');
    is_deeply($w->recv_json(5), { type => 'pong' }, 'over TLS a message of 3 KB');
    $w->close;
    ok(wait_for(sub { active() == 1 }, 5), '... and a TLS client that hangs up is let go');
}

# --- nginx shuts down with a socket open ---

$ws = open_ws();
$t0 = time;
$t->stop_nginx;
ok(time - $t0 < 5, 'nginx stops at once with a socket open');
($code, $reason) = $ws->close_frame(5);
is($code, 1001, '... which it closes with 1001 first');
ok($ws->wait_eof(5), '... and ends');

# --- the directives ---

my ($rc, $out) = $t->nginx_test(http => 'avatar_ws_max_message 0;');
ok($rc && $out =~ /invalid value "0" in "avatar_ws_max_message": too small/,
   'avatar_ws_max_message 0 is refused at nginx -t') or diag $out;
($rc, $out) = $t->nginx_test(http => 'avatar_ws_max_pending lots;');
ok($rc && $out =~ /invalid value "lots" in "avatar_ws_max_pending"/,
   'avatar_ws_max_pending lots is refused') or diag $out;
($rc, $out) = $t->nginx_test(http => 'avatar_ws_idle_timeout 0;');
ok($rc && $out =~ /invalid value "0" in "avatar_ws_idle_timeout": must be more than 0/,
   'avatar_ws_idle_timeout 0 is refused') or diag $out;
($rc, $out) = $t->nginx_test(http => "avatar_ws_max_message 64k;\navatar_ws_max_pending 1m;\n"
                                   . "avatar_ws_idle_timeout 30s;");
is($rc, 0, 'good values pass') or diag $out;

# --- the drop-in configuration of conf/ serves the sockets ---

my $port5 = AvatarTest::free_port();
open my $sfh, '>', "$dir/secret" or die;
print $sfh $t->{secret}, "\n";
close $sfh;
($rc, $out) = $t->run_cmd('sh', "$AvatarTest::TOP/tools/conf.sh", "$dir/real",
                          $t->conninfo, "$dir/secret", $port5, 1);
is($rc, 0, 'conf/ rendered for this checkout') or diag $out;
system('sed', '-i', "s|^error_log .*|error_log $dir/error.log info;|",
       "$dir/real/nginx.conf");
$t->start_nginx(file => "$dir/real/nginx.conf", port => $port5,
                pidfile => "$dir/real/nginx.pid");
$ws = ws($vad, token => $tok, origin => "http://127.0.0.1:$port5");
is($ws->{status}, 101, 'conf/avatar.conf: the socket location upgrades');
$ws->send_text('{"type":"ping"}');
is_deeply($ws->recv_json(10), { type => 'pong' }, '... and the socket works');
$ws->send_close(1000);
is(($ws->close_frame(5))[0], 1000, '... and closes');
ok($ws->wait_eof(5), '... and ends');
ok(wait_for(sub { -s "$dir/real/logs/avatar-api.log" }, 5), '... logged in avatar-api.log');
open $fh, '<', "$dir/real/logs/avatar-api.log" or die;
$access = do { local $/; <$fh> };
close $fh;
like($access, qr{"GET /api/v1/voice/ws/vad/client-1\?token=\*{100,} HTTP/1\.1" 101 },
     '... with the token masked');
ok(index($access, $tok) < 0, '... and nowhere in clear');

$t->finish;
done_testing;
