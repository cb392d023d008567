# The voice API with the embedded defaults (pocketsphinx, the offline
# responder, espeak-ng + LAME): a live spoken turn over the WebSocket with
# real speech (espeak-ng), server-side end of turn, the message order of
# API.md, MP3 and PCM answers, visemes, the VAD socket, the REST routes,
# authentication and dealership isolation on every route, and the record
# of each turn.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for);
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

my $tmp = tempdir(CLEANUP => 1);

# speech: espeak-ng, then 16 kHz mono s16le
sub speak {
    my ($text, $name) = @_;
    my $wav = "$tmp/$name.wav";
    system('espeak-ng', '-w', "$tmp/$name.22k.wav", $text) == 0
        or die "espeak-ng failed (is it installed?)\n";
    system('sox', "$tmp/$name.22k.wav", '-r', '16000', '-c', '1', '-b', '16',
           '-e', 'signed-integer', $wav) == 0 or die "sox failed\n";
    open my $fh, '<:raw', $wav or die;
    local $/;
    my $w = <$fh>;
    close $fh;
    return ($w, substr($w, 44));
}
my ($q_wav, $q_pcm) = speak('What does a vehicle service contract cover?', 'q');

# MP3: every byte belongs to a frame (MPEG-1/2 layer III), one after
# another; returns the number of frames, 0 when not MP3
sub mp3_frames {
    my ($b) = @_;
    my ($off, $n) = (0, 0);
    my @br1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320);
    my @br2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160);
    my %sr = (3 => [44100, 48000, 32000], 2 => [22050, 24000, 16000],
              0 => [11025, 12000, 8000]);
    while ($off + 4 <= length $b) {
        my $h = unpack('N', substr($b, $off, 4));
        return 0 unless ($h >> 21) == 0x7ff;
        my $ver = ($h >> 19) & 3;
        my $layer = ($h >> 17) & 3;
        my $bri = ($h >> 12) & 15;
        my $sri = ($h >> 10) & 3;
        my $pad = ($h >> 9) & 1;
        return 0 if $ver == 1 || $layer != 1 || $bri == 0 || $bri == 15 || $sri == 3;
        my $rate = $sr{$ver}[$sri];
        my $len = $ver == 3 ? int(144000 * $br1[$bri] / $rate) + $pad
                            : int(72000 * $br2[$bri] / $rate) + $pad;
        $off += $len;
        $n++;
    }
    return $off == length $b ? $n : 0;
}

my $t = AvatarTest->new;
my $locations = <<'EOF';
        location @avatar_error { avatar_error; }
        location /api/v1/voice/ws/ { avatar_api; }
        location /api/v1/ {
            avatar_api;
            client_max_body_size 20m;
            error_page 413 429 500 502 503 504 @avatar_error;
        }
EOF
$t->start_api(http => "avatar_voice_end_silence 500;",
              locations => $locations);
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $sa = $t->login('sa@example.com', 'Super!pass1');
my $da_id = $t->make_dealership('Alpha Motors');
my $db_id = $t->make_dealership('Beta Motors');
my $uid = $t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                          role => 'dealership_admin', dealership_id => $da_id,
                          first_name => 'Dana');
my $bid = $t->create_user(email => 'b@beta.com', like => 'sa@example.com',
                          role => 'user', dealership_id => $db_id);
my $nid = $t->create_user(email => 'n@none.com', like => 'sa@example.com',
                          role => 'user');
my $u = $t->login('u@alpha.com', 'Super!pass1');
my $b = $t->login('b@beta.com', 'Super!pass1');
my $n = $t->login('n@none.com', 'Super!pass1');
my $said = $t->psql("SELECT id FROM users WHERE email = 'sa\@example.com'");

is($t->post("/api/v1/rag/$da_id/initialize", token => $u, json => {})->{status},
   201, 'the knowledge base of Alpha is initialised');
my $r = $t->upload($da_id, 'books', $u, ['service-contracts.txt', <<'EOF']);
Vehicle Service Contracts

A vehicle service contract covers the cost of covered repairs after the
factory warranty ends: the engine, the transmission, the air conditioning
and the electrical parts. Present it on every deal, on the menu, with the
monthly payment difference.
EOF
is($r->{status}, 201, 'a document uploaded');
ok(wait_for(sub {
    ($t->get("/api/v1/rag/$da_id/documents", token => $u)->{body} // '')
        =~ /"status":"ready"/ }, 30), '... and ready');

sub live {
    my ($token, $user, %o) = @_;
    my $ws = $t->ws_connect("/api/v1/voice/ws/live/$user",
                            defined $token ? (token => $token) : (), %o);
    return $ws;
}
# the messages up to one of type $until (included), each decoded; binary
# messages as {type => 'binary', bytes}
sub collect {
    my ($ws, $until, $secs) = @_;
    my @m;
    my $deadline = time + ($secs // 30);
    while (time < $deadline) {
        my $f = $ws->recv_message($deadline - time) or last;
        last if $f->{eof} || ($f->{op} // 0) == 8;
        if ($f->{op} == 2) {
            push @m, { type => 'binary', bytes => $f->{data} };
            next;
        }
        my $j = decode_json($f->{data});
        push @m, $j;
        last if $j->{type} eq $until;
    }
    return @m;
}
sub types { join ' ', map { $_->{type} } @_ }
sub squash { my $s = join ' ', @_; $s =~ s/(\b(\w+)(?: \2\b)+)/$2+/g; $s }

# --- authentication and isolation ---

my $ws = live(undef, $uid);
is($ws->{status}, 101, 'a socket without a token is upgraded');
my ($code, $reason) = $ws->close_frame(5);
is($code, 4001, '... then closed 4001');
is($reason, 'Authentication required', '... "Authentication required"');

($code, $reason) = live('not.a.token', $uid)->close_frame(5);
is($code, 4001, 'a bad token: 4001');
($code, $reason) = live($b, $uid)->close_frame(5);
is("$code $reason", '4003 User ID mismatch', "another user's id in the path: 4003 User ID mismatch");
($code, $reason) = live($n, $nid)->close_frame(5);
is("$code $reason", '4003 User not assigned to a dealership',
   'a user of no dealership: 4003');

$ws = live($b, $bid);
$ws->send_text(encode_json({ type => 'init', dealership_id => $da_id }));
my $m = $ws->recv_json(5);
is($m->{type}, 'error', "a user naming another dealership in init gets an error");
is($m->{message}, 'Dealership not found', '... reported like a missing one');
$ws->send_text(encode_json({ type => 'init' }));
is($ws->recv_json(5)->{type}, 'ready', '... its own is fine');
$ws->send_text(encode_json({ type => 'ping' }));
is($ws->recv_json(5)->{type}, 'pong', 'ping: pong');
$ws->send_close(1000);
$ws->close;

$ws = live($sa, $said);
$ws->send_text(encode_json({ type => 'init' }));
$m = $ws->recv_json(5);
is($m->{message}, 'Super admin must specify dealership_id', 'a super admin must name the dealership');
$ws->send_text(encode_json({ type => 'init', dealership_id => $da_id }));
is($ws->recv_json(5)->{type}, 'ready', '... and may name any');
$ws->close;

# --- messages out of order and bad input ---

$ws = live($u, $uid);
$ws->send_text(encode_json({ type => 'start_recording' }));
is($ws->recv_json(5)->{message}, 'Send init first', 'recording before init is refused');
$ws->send_text('[1,2]');
is($ws->recv_json(5)->{message}, 'Messages must be JSON objects', 'a JSON array is refused');
$ws->send_text(encode_json({ type => 'init', mode => 'opera' }));
like($ws->recv_json(5)->{message}, qr/mode must be/, 'an unknown mode is refused');
$ws->send_text(encode_json({ type => 'init', audio_format => 'flac' }));
like($ws->recv_json(5)->{message}, qr/audio_format/, 'an unknown audio format is refused');
$ws->send_text(encode_json({ type => 'init', mode => 'training' }));
is_deeply($ws->recv_json(5), { type => 'ready', message => 'Listening...' }, 'init: ready, "Listening..."');
$ws->send_text(encode_json({ type => 'audio', data => encode_base64("\0" x 640, ''), sample_rate => 8000 }));
like($ws->recv_json(5)->{message}, qr/sample_rate must be 16000/, 'a bad sample rate is refused');
$ws->send_text(encode_json({ type => 'audio', data => '@@not base64@@' }));
like($ws->recv_json(5)->{message}, qr/base64/, 'bad base64 is refused');
$ws->send_text(encode_json({ type => 'audio', data => encode_base64("\0\0\0", '') }));
like($ws->recv_json(5)->{message}, qr/even number/, 'an odd byte count is refused');
$ws->send_text(encode_json({ type => 'dance' }));
is($ws->recv_json(5)->{message}, 'Unknown message type', 'an unknown type is refused');
$ws->send_text(encode_json({ type => 'start_recording' }));
is($ws->recv_json(5)->{type}, 'speaking_started', 'start_recording: speaking_started');
$ws->send_text(encode_json({ type => 'stop_recording' }));
my @m = collect($ws, 'ready', 10);
is(types(@m), 'speaking_stopped error ready', 'stopping without audio: an error, then ready');
is($m[1]{message}, 'No speech was received', '... saying so');

# --- a live turn: binary PCM, the server ends the turn on silence ---

my $t0 = time;
for (my $o = 0; $o < length $q_pcm; $o += 3200) {
    $ws->send_binary(substr($q_pcm, $o, 3200));
}
$ws->send_binary("\0" x 32000);         # one second of silence
@m = collect($ws, 'ready', 60);
my @ty = map { $_->{type} } @m;
diag join " ", map { my $x = {%$_}; delete $x->{data}; delete $x->{visemes}; delete $x->{bytes}; encode_json($x) } grep { $_->{type} ne "audio_chunk" } @m if $ENV{VOICE_DEBUG};
is(squash(grep { $_ ne 'viseme' && $_ ne 'response_text' } @ty),
   'speaking_stopped processing transcript audio_chunk+ response_complete ready',
   'a turn without stop_recording: speaking_stopped, processing, transcript, audio, response_complete, ready');
my ($tr) = grep { $_->{type} eq 'transcript' } @m;
like($tr->{text}, qr/vehicle service/, "the transcript holds the words spoken ($tr->{text})");
ok($tr->{is_final}, '... final');
is($tr->{full_transcript}, $tr->{text}, '... full_transcript');
my @audio = grep { $_->{type} eq 'audio_chunk' } @m;
my $mp3 = join '', map { decode_base64($_->{data}) } @audio;
ok(@audio >= 2, 'the answer comes in several audio chunks (' . scalar(@audio) . ')');
ok(!grep({ !mp3_frames(decode_base64($_->{data})) } @audio), '... each one whole MP3 frames');
my $frames = mp3_frames($mp3);
ok($frames > 20, "... together valid MP3 ($frames frames)");
my @deltas = grep { $_->{type} eq 'response_text' } @m;
ok(@deltas >= 2, 'the text streams as response_text deltas');
my ($done) = grep { $_->{type} eq 'response_complete' } @m;
is($done->{text}, join('', map { $_->{delta} } @deltas), 'response_complete has the whole text');
is($done->{user_text}, $tr->{text}, '... and what the user said');
like($done->{text}, qr/service contract|material/i, '... an answer grounded in the material');
my @vis = grep { $_->{type} eq 'viseme' } @m;
ok(@vis >= 1, 'visemes for lip-sync');
my @vv = map { @{ $_->{visemes} } } @vis;
ok(!grep({ $_->{v} !~ /^(sil|PP|FF|TH|DD|kk|CH|SS|nn|RR|aa|E|I|O|U)$/ } @vv), '... from the viseme set');
ok((grep { $_->{v} eq 'PP' } @vv) > 0, '... with closed lips somewhere');
my $first_audio = (grep { $ty[$_] eq 'audio_chunk' } 0 .. $#ty)[0];
my $complete_at = (grep { $ty[$_] eq 'response_complete' } 0 .. $#ty)[0];
ok($first_audio < $complete_at, 'audio before the turn completes');

# the turn was stored like a chat answer, with its timings
my $sid = $t->psql("SELECT session_id FROM conversations WHERE user_id = $uid");
ok($sid, 'the spoken turn is a conversation');
my $h = $t->get("/api/v1/chat/history?session_id=$sid", token => $u);
my @msgs = @{ ref $h->{json} eq 'ARRAY' ? $h->{json} : $h->{json}{messages} || [] };
is(scalar(@msgs), 2, '... with the question and the answer');
is($t->psql("SELECT count(*) FROM voice_turns WHERE user_id = $uid AND channel = 'live'"
            . " AND transcript_ms IS NOT NULL AND first_token_ms IS NOT NULL"
            . " AND first_audio_ms IS NOT NULL AND audio_in_ms > 2000"
            . " AND audio_out_ms > 0 AND NOT interrupted"), 1,
   'the turn recorded its timings (end of speech to transcript, first token, first audio)');
ok($t->psql("SELECT audio_seconds FROM usage WHERE user_id = $uid") > 3,
   '... and its audio in the usage');
like($t->error_log, qr/voice: turn user=$uid .*transcript=\d+ms first_token=\d+ms first_audio=\d+ms/,
     '... and in the log');

# --- the same by start/stop with base64 "audio" messages, PCM answers ---

$ws->send_text(encode_json({ type => 'init', audio_format => 'pcm_s16le_16000' }));
is($ws->recv_json(5)->{type}, 'mode_changed', 'a repeated init: mode_changed');
$ws->send_text(encode_json({ type => 'start_recording' }));
is($ws->recv_json(5)->{type}, 'speaking_started', 'speaking_started');
for (my $o = 0; $o < length $q_pcm; $o += 6400) {
    $ws->send_text(encode_json({ type => 'audio', sample_rate => 16000,
                                 data => encode_base64(substr($q_pcm, $o, 6400), '') }));
}
$ws->send_text(encode_json({ type => 'stop_recording' }));
@m = collect($ws, 'ready', 60);
@ty = map { $_->{type} } @m;
is(squash(grep { $_ ne 'viseme' && $_ ne 'response_text' } @ty),
   'speaking_stopped processing transcript binary+ response_complete ready',
   'stop_recording: the turn; PCM answers come as binary frames');
my $pcm = join '', map { $_->{bytes} } grep { $_->{type} eq 'binary' } @m;
ok(length($pcm) % 2 == 0 && length($pcm) > 16000, 'the PCM answer is 16-bit and longer than half a second');
is($t->psql("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            . " WHERE c.session_id = '$sid'"), 4, 'the second turn continues the conversation');

# --- audio_complete with a WAV; clear; mode ---

$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@m = collect($ws, 'ready', 60);
is($m[0]{type}, 'processing', 'audio_complete is processed at once');
ok((grep { $_->{type} eq 'response_complete' } @m), '... to the end');
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64('', '') }));
like($ws->recv_json(5)->{message}, qr/base64|not supported/, 'an empty audio_complete is refused');
$ws->send_text(encode_json({ type => 'clear' }));
is($ws->recv_json(5)->{type}, 'cleared', 'clear: cleared');
$ws->send_text(encode_json({ type => 'mode', mode => 'roleplay' }));
is_deeply($ws->recv_json(5), { type => 'mode_changed', mode => 'roleplay' }, 'mode: mode_changed');
$ws->send_text(encode_json({ type => 'interrupt' }));
is($ws->recv_json(5)->{type}, 'interrupted', 'interrupt with nothing playing: interrupted');
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@m = collect($ws, 'ready', 60);
($done) = grep { $_->{type} eq 'response_complete' } @m;
ok($done && length $done->{text}, 'a role-play turn after the switch');
is($t->psql("SELECT mode FROM conversations WHERE user_id = $uid ORDER BY id DESC LIMIT 1"),
   'roleplay', '... in a new role-play conversation');
$ws->send_close(1000);
($code) = $ws->close_frame(5);
is($code, 1000, 'the close handshake');

# --- the VAD socket ---

my $v = $t->ws_connect("/api/v1/voice/ws/vad/client-1");
($code, $reason) = $v->close_frame(5);
is($code, 4001, 'the VAD socket needs a token');
$v = $t->ws_connect("/api/v1/voice/ws/vad/client-1", token => $u);
$v->send_text(encode_json({ type => 'ping' }));
is($v->recv_json(5)->{type}, 'pong', 'vad: ping, pong');
$v->send_text(encode_json({ type => 'audio_frame', sample_rate => 22050,
                            data => encode_base64("\0" x 640, '') }));
like($v->recv_json(5)->{message}, qr/sample_rate must be 8000, 16000 or 32000/, 'vad: a bad sample rate');
my (@ev, $started, $ended);
my $audio = ("\0" x 9600) . $q_pcm . ("\0" x 16000);
for (my $o = 0; $o + 640 <= length $audio; $o += 640) {
    $v->send_text(encode_json({ type => 'audio_frame', sample_rate => 16000,
                                aggressiveness => 2,
                                data => encode_base64(substr($audio, $o, 640), '') }));
    my $e = $v->recv_json(5);
    push @ev, $e;
}
is(scalar(grep { $_->{type} eq 'vad_event' } @ev), scalar(@ev), 'one vad_event per frame');
my @first = @ev[0 .. 9];
ok(!grep({ $_->{is_speech} } @first), 'silence first: no speech');
($started) = grep { $ev[$_]{speech_started} } 0 .. $#ev;
($ended) = grep { $ev[$_]{speech_ended} } 0 .. $#ev;
ok(defined $started && $started >= 15 && $started <= 30, "speech starts with the words (frame $started)");
ok(defined $ended && $ended > $started, "... and ends after them (frame $ended)");
ok($ev[$ended]{duration_ms} > 1500, "... lasting $ev[$ended]{duration_ms} ms");
my @keys = sort keys %{ $ev[0] };
is("@keys", 'confidence duration_ms is_speech speech_ended speech_started type', 'vad_event fields');
$v->send_text(encode_json({ type => 'reset' }));
is($v->recv_json(5)->{type}, 'reset_ack', 'reset: reset_ack');
$v->close;

# --- REST ---

$r = $t->post('/api/v1/voice/stt', json => { audio_base64 => encode_base64($q_wav, '') });
is($r->{status}, 401, 'stt needs a token');
$r = $t->post('/api/v1/voice/stt', token => $u, json => { audio_base64 => encode_base64($q_wav, ''), mime_type => 'audio/wav' });
is($r->{status}, 200, 'stt: 200');
like($r->{json}{transcript}, qr/vehicle service/, "... the transcript ($r->{json}{transcript})");
ok($r->{json}{confidence} > 0 && $r->{json}{confidence} <= 1, '... a confidence');
is(ref $r->{json}{words}, 'ARRAY', '... words');
$r = $t->post('/api/v1/voice/stt', token => $u, json => { audio_base64 => encode_base64($q_pcm, ''), mime_type => 'audio/wav' });
like($r->{json}{transcript} // '', qr/vehicle service/, 'raw PCM is recognised by its bytes, whatever the label');
$r = $t->post('/api/v1/voice/stt', token => $u, json => { audio_base64 => 'not base64!' });
is($r->{status}, 422, 'stt: bad base64 is 422');
is($r->{json}{error}{type}, 'ValidationError', '... a ValidationError');
$r = $t->post('/api/v1/voice/stt', token => $u, json => { audio_base64 => encode_base64("RIFF\x10\0\0\0WAVEjunkjunk", '') });
is($r->{status}, 422, 'stt: a broken WAV is 422');

$r = $t->post('/api/v1/voice/tts', token => $u, json => { text => 'Hello, I am Adam. The APR is 5.9% today.' });
is($r->{status}, 200, 'tts: 200');
ok(mp3_frames(decode_base64($r->{json}{audio_base64})) > 20, '... valid MP3');
is($r->{json}{text}, 'Hello, I am Adam. The APR is 5.9% today.', '... and the text');
$r = $t->post('/api/v1/voice/tts', token => $u, json => { text => '' });
is($r->{status}, 422, 'tts: empty text is 422');
$r = $t->post('/api/v1/voice/tts', token => $u, json => { text => 'x' x 5001 });
is($r->{status}, 422, 'tts: over 5000 characters is 422');
$r = $t->post('/api/v1/voice/tts', token => $u, json => { text => 'Hi', voice_id => '../etc' });
is($r->{status}, 422, 'tts: a bad voice id is 422');

$r = $t->post('/api/v1/voice/chat', token => $u,
              json => { audio_base64 => encode_base64($q_wav, ''), mode => 'training', mime_type => 'audio/wav' });
is($r->{status}, 200, 'voice/chat: 200');
my @k = sort keys %{ $r->{json} };
is("@k", 'confidence response_audio_base64 response_text session_id timestamp user_transcript',
   '... the fields of API.md');
like($r->{json}{user_transcript}, qr/vehicle service/, '... the transcript');
ok(length $r->{json}{response_text}, '... an answer');
ok(mp3_frames(decode_base64($r->{json}{response_audio_base64})) > 20, '... spoken, as MP3');
my $vsid = $r->{json}{session_id};
like($r->{json}{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/, '... a timestamp');
$r = $t->post('/api/v1/voice/chat/fast', token => $u,
              json => { audio_base64 => encode_base64($q_wav, ''), session_id => $vsid });
is($r->{status}, 200, 'voice/chat/fast: 200');
is($r->{json}{session_id}, $vsid, '... in the same session');
my $fast_len = length $r->{json}{response_text};
$r = $t->post('/api/v1/voice/chat', token => $u,
              json => { audio_base64 => encode_base64($q_wav, ''), session_id => $vsid });
ok($fast_len < length($r->{json}{response_text}),
   "... a shorter answer than voice/chat ($fast_len against " . length($r->{json}{response_text}) . ' characters)');
$r = $t->post('/api/v1/voice/chat/fast', token => $b,
              json => { audio_base64 => encode_base64($q_wav, ''), mode => 'training' });
is($r->{status}, 200, 'voice/chat/fast needs no knowledge base (no retrieval)');
$r = $t->post('/api/v1/voice/chat', token => $u, json => { audio_base64 => '%%%' });
is($r->{status}, 422, 'voice/chat: bad base64 is 422');
$r = $t->post('/api/v1/voice/chat', token => $b,
              json => { audio_base64 => encode_base64($q_wav, ''), mode => 'training' });
is($r->{status}, 422, 'voice/chat in training without a knowledge base: 422');
like($r->{json}{error}{message}, qr/RAG not initialized/, '... saying so');
$r = $t->post('/api/v1/voice/chat', token => $b,
              json => { audio_base64 => encode_base64($q_wav, ''), dealership_id => $da_id });
is($r->{status}, 404, "voice/chat naming another dealership: 404");
$r = $t->post('/api/v1/voice/chat', token => $b,
              json => { audio_base64 => encode_base64($q_wav, ''), session_id => $vsid });
is($r->{status}, 404, "voice/chat in another user's session: 404");

$r = $t->del("/api/v1/voice/session/$vsid", token => $b);
is($r->{status}, 404, "DELETE another user's voice session: 404");
$r = $t->del("/api/v1/voice/session/$vsid", token => $u);
is($r->{status}, 200, 'DELETE own voice session: 200');
is($r->{json}{message}, "Session $vsid cleared", '... "Session <id> cleared"');
$r = $t->del("/api/v1/voice/session/$vsid");
is($r->{status}, 401, '... needs a token');

is($t->psql("SELECT count(*) FROM voice_turns WHERE channel = 'rest' AND user_id = $uid"), 3, 'REST turns are recorded too');
is($t->psql("SELECT count(*) FROM voice_turns WHERE user_id = $bid AND dealership_id <> $db_id"), 0,
   "... another dealership's user's turns only under its own dealership");
# --- the turn directives take effect: a longer end silence, a turn cap ---

$t->stop_nginx;
$t->start_nginx(http => 'avatar_voice_end_silence 2000;'
                      . ' avatar_voice_max_turn 6000;',
                locations => $locations);
my $q_ms = int(length($q_pcm) / 32);
ok($q_ms + 2500 < 6000, "the question ($q_ms ms) and 2.5 s of silence fit in a turn");
# messages within $secs, none expected: the types that came
sub quiet {
    my ($ws, $secs) = @_;
    my @got;
    while (my $f = $ws->recv_message($secs)) {
        last if $f->{eof} || ($f->{op} // 0) == 8;
        push @got, $f->{op} == 1 ? decode_json($f->{data})->{type} : 'binary';
        $secs = 0.2;
    }
    return join ' ', @got;
}
$ws = live($u, $uid);
$ws->send_text(encode_json({ type => 'init', mode => 'training' }));
is($ws->recv_json(5)->{type}, 'ready', 'avatar_voice_end_silence 2000: ready');
$ws->send_binary(substr($q_pcm, $_, 3200)) for map { $_ * 3200 } 0 .. int((length($q_pcm) - 1) / 3200);
$ws->send_binary("\0" x 32000);         # 1 s: enough for 500 ms, not 2000
is(quiet($ws, 1.5), '', '... 1 s of silence after speech does not end the turn');
$ws->send_binary("\0" x 48000);         # 1.5 s more
@m = collect($ws, 'ready', 60);
is((types(@m) =~ /^(speaking_stopped processing transcript)/)[0],
   'speaking_stopped processing transcript', '... 2.5 s does');
($tr) = grep { $_->{type} eq 'transcript' } @m;
like($tr->{text} // '', qr/service/, "... a turn of the words spoken ($tr->{text})");
$ws->close;

$ws = live($u, $uid);
$ws->send_text(encode_json({ type => 'init', mode => 'training' }));
is($ws->recv_json(5)->{type}, 'ready', 'avatar_voice_max_turn 6000: ready');
$ws->send_text(encode_json({ type => 'start_recording' }));
is($ws->recv_json(5)->{type}, 'speaking_started', '... recording');
$ws->send_binary("\0" x 3200) for 1 .. 55;   # 5.5 s
is(quiet($ws, 1.5), '', '... 5.5 s of recording go on');
$ws->send_binary("\0" x 3200) for 1 .. 10;   # 6.5 s
@m = collect($ws, 'ready', 20);
is(types(@m), 'speaking_stopped error ready',
   '... at 6 s the server ends the turn by itself');
$ws->close;

ok($t->log_clean_ok, 'no errors or crashes in the log');
unlike($t->error_log, qr/\Q$u\E/, 'no token in the error log');
$t->finish;
done_testing;
