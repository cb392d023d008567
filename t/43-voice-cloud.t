# A live spoken turn with the cloud providers, each a mock speaking its
# wire format: OpenAI-compatible transcription (tools/mock/openai-audio.pl),
# a streaming OpenAI-compatible model (openai-chat.pl, paced), ElevenLabs
# streaming speech (elevenlabs.pl).  The order of the messages, audio
# that starts while the model is still answering, barge-in that closes
# the providers' connections at once and keeps in history only what was
# heard, and provider failures reported to the client.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for start_mock);
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

my $tmp = tempdir(CLEANUP => 1);
system('espeak-ng', '-w', "$tmp/q22.wav", 'What does a service contract cover?') == 0
    or die "espeak-ng failed\n";
system('sox', "$tmp/q22.wav", '-r', '16000', '-c', '1', '-b', '16', "$tmp/q.wav") == 0
    or die "sox failed\n";
system('espeak-ng', '-w', "$tmp/a22.wav", 'A service contract covers repairs after the warranty.') == 0
    or die;
system('lame', '--quiet', '-t', '-b', '64', "$tmp/a22.wav", "$tmp/a.mp3") == 0
    or die "lame failed (is it installed?)\n";
my $q_wav = do { local $/; open my $fh, '<:raw', "$tmp/q.wav" or die; <$fh> };

my $answer = 'A service contract covers repairs. It starts after the factory'
           . ' warranty ends. GAP pays what the insurer does not. Tire and'
           . ' wheel covers road hazards. Offer all of them on the menu.';
my ($spid, $sport, $sin) = start_mock('openai-audio.pl', '--key', 'sk-stt',
                                      '--text', 'What does a service contract cover?');
my ($lpid, $lport, $lin) = start_mock('openai-chat.pl', '--key', 'sk-llm',
                                      '--text', $answer,
                                      '--tokens', scalar(split ' ', $answer),
                                      '--tps', '8');
my ($epid, $eport, $ein) = start_mock('elevenlabs.pl', '--key', 'xi-key',
                                      '--mp3', "$tmp/a.mp3", '--chunk', '2000',
                                      '--chunk-ms', '40');

$ENV{STT_KEY} = 'sk-stt';
$ENV{LLM_KEY} = 'sk-llm';
$ENV{XI_KEY} = 'xi-key';
my $t = AvatarTest->new;
$t->start_api(main => "env STT_KEY;\nenv LLM_KEY;\nenv XI_KEY;",
              http => join("\n",
    "avatar_stt openai base_url=http://127.0.0.1:$sport/v1 key=env:STT_KEY;",
    "avatar_llm openai base_url=http://127.0.0.1:$lport/v1 model=gpt-test key=env:LLM_KEY;",
    "avatar_tts elevenlabs base_url=http://127.0.0.1:$eport voice=voice-adam"
    . " key=env:XI_KEY first_byte_timeout=3000 timeout=8000;"),
              locations => <<'EOF');
        location @avatar_error { avatar_error; }
        location /api/v1/voice/ws/ { avatar_api; }
        location = /metrics { avatar_api; }
        location /api/v1/ {
            avatar_api;
            client_max_body_size 20m;
            error_page 413 429 500 502 503 504 @avatar_error;
        }
EOF
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $d = $t->make_dealership('Alpha Motors');
my $uid = $t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                          role => 'user', dealership_id => $d);
my $u = $t->login('u@alpha.com', 'Super!pass1');
# role-play needs no knowledge base: the turns below are role-play

sub mock {
    my ($port, $method, $path, $json) = @_;
    return $t->http($method, $path, port => $port,
                    defined $json ? (json => $json) : ());
}
sub reqs { @{ mock($_[0], 'GET', '/_requests')->{json}{requests} || [] } }
sub forget { mock($_, 'DELETE', '/_requests') for $sport, $lport, $eport }

sub collect {
    my ($ws, $until, $secs) = @_;
    my @m;
    my $deadline = time + ($secs // 30);
    while (time < $deadline) {
        my $f = $ws->recv_message($deadline - time) or last;
        last if $f->{eof} || ($f->{op} // 0) == 8;
        my $j = $f->{op} == 2 ? { type => 'binary', bytes => $f->{data} }
                              : decode_json($f->{data});
        $j->{at} = time;
        push @m, $j;
        last if $j->{type} eq $until;
    }
    return @m;
}
sub squash { my $s = join ' ', @_; $s =~ s/(\b(\w+)(?: \2\b)+)/$2+/g; $s }

my $ws = $t->ws_connect("/api/v1/voice/ws/live/$uid", protocol => "bearer.$u");
is($ws->{status}, 101, 'the token as the bearer.<token> subprotocol');
is($ws->{headers}{'sec-websocket-protocol'}, "bearer.$u", '... echoed');
$ws->send_text(encode_json({ type => 'init', mode => 'roleplay' }));
is($ws->recv_json(5)->{type}, 'ready', 'ready');

# --- a whole turn ---

forget();
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
my @m = collect($ws, 'ready', 30);
my @ty = map { $_->{type} } @m;
is(squash(grep { !/^(viseme|response_text|audio_chunk)$/ } @ty),
   'processing transcript response_complete ready', 'processing, transcript, ..., response_complete, ready');
is((grep { $_->{type} eq 'transcript' } @m)[0]{text}, 'What does a service contract cover?',
   'the transcript of the cloud recogniser');
my @s = reqs($sport);
is(scalar(@s), 1, 'one transcription request');
is($s[0]{headers}{authorization}, 'Bearer sk-stt', '... with the key');
is($s[0]{fields}{model}, 'whisper-1', '... model whisper-1');
is($s[0]{files}[0]{wav}{rate}, 16000, '... the WAV as the client sent it');
my ($first_audio) = grep { $m[$_]{type} eq 'audio_chunk' } 0 .. $#m;
my ($last_delta) = reverse grep { $m[$_]{type} eq 'response_text' } 0 .. $#m;
ok(defined $first_audio && $first_audio < $last_delta,
   'the first audio arrives before the model has finished its answer');
my $l = (reqs($lport))[-1];
ok($l && $l->{body}{stream}, 'the model was asked to stream');
like($l->{body}{messages}[0]{content}, qr/spoken/i, '... with the spoken style in the prompt');
ok($l->{body}{max_tokens} <= 200, "... and a short answer ($l->{body}{max_tokens} tokens)");
my @e = reqs($eport);
ok(@e >= 3, 'one ElevenLabs request per sentence (' . scalar(@e) . ')');
is($e[0]{headers}{'xi-api-key'}, 'xi-key', '... with xi-api-key');
is($e[0]{voice_id}, 'voice-adam', '... the voice');
like($e[0]{output_format}, qr/^mp3_/, '... MP3');
is($e[0]{body}{text}, 'A service contract covers repairs.', '... the first sentence alone');
my ($done) = grep { $_->{type} eq 'response_complete' } @m;
is($done->{text} =~ s/^\s+//r, $answer, 'response_complete: the whole answer');
my @vis = grep { $_->{type} eq 'viseme' } @m;
ok(@vis >= 3, 'visemes from text timing for each sentence');

# --- barge-in ---

forget();
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
my ($got_audio, @before);
my $deadline = time + 20;
while (time < $deadline) {
    my $j = $ws->recv_json(10) or last;
    push @before, $j;
    last if $j->{type} eq 'audio_chunk';
}
ok(@before && $before[-1]{type} eq 'audio_chunk', 'an answer starts playing');
my $t0 = time;
$ws->send_text(encode_json({ type => 'interrupt' }));
my ($llm_closed, $tts_closed);
while (time < $t0 + 3) {
    $llm_closed //= time if grep { ($_->{outcome} // '') eq 'client-closed' } reqs($lport);
    $tts_closed //= time if grep { ($_->{outcome} // '') eq 'client-closed' } reqs($eport);
    last if $llm_closed && $tts_closed;
}
ok($llm_closed && $llm_closed - $t0 < 0.1,
   sprintf('interrupt: the model connection is closed (seen after %.0f ms)', 1000 * (($llm_closed // 99) - $t0)));
ok($tts_closed && $tts_closed - $t0 < 0.1,
   sprintf('... and the ElevenLabs stream (seen after %.0f ms)', 1000 * (($tts_closed // 99) - $t0)));
@m = collect($ws, 'ready', 10);
my @after = map { $_->{type} } @m;
is($after[0] // '', 'interrupted', 'the client gets "interrupted"') or diag "@after";
is(scalar(grep { $_ eq 'audio_chunk' } @after[1 .. $#after]), 0, '... and no audio after it');
is($after[-1], 'ready', '... then ready');
ok(!grep({ $_ eq 'response_complete' } @after), '... no response_complete for a cut answer');
sleep 0.3;
my $last = $t->psql("SELECT content FROM messages WHERE role = 'assistant' ORDER BY id DESC LIMIT 1");
is($last, 'A service contract covers repairs.', 'history keeps only the sentence that was heard');
is($t->psql("SELECT interrupted FROM voice_turns ORDER BY id DESC LIMIT 1"), 't', 'the turn is recorded as interrupted');
is($t->get('/metrics')->{status}, 200, 'the worker is fine');

# --- barge-in by speaking over the answer ---

my $q_pcm = substr($q_wav, 44);
forget();
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@before = ();
$deadline = time + 20;
while (time < $deadline) {
    my $j = $ws->recv_json(10) or last;
    push @before, $j;
    last if $j->{type} eq 'audio_chunk';
}
ok(@before && $before[-1]{type} eq 'audio_chunk', 'another answer starts playing');
# the trainee talks: speech as binary PCM, then silence ending the turn
for (my $o = 0; $o < length $q_pcm; $o += 3200) {
    $ws->send_binary(substr($q_pcm, $o, 3200));
}
$ws->send_binary("\0" x 32000);
# the cut turn may be stored (its "ready") before the speech has ended or
# after: read on until the new turn has completed
@m = ();
$deadline = time + 30;
while (time < $deadline) {
    my @more = collect($ws, 'ready', $deadline - time) or last;
    push @m, @more;
    last if grep { $_->{type} eq 'response_complete' } @more;
}
my @types = map { $_->{type} } @m;
my ($int_at) = grep { $types[$_] eq 'interrupted' } 0 .. $#types;
ok(defined $int_at, 'speech over the answer interrupts it (server-side barge-in)')
    or diag squash(@types);
my ($proc_at) = grep { $types[$_] eq 'processing' } 0 .. $#types;
ok(defined $proc_at && defined $int_at && $proc_at > $int_at
   && grep({ $_ eq 'response_complete' } @types[$proc_at .. $#types]),
   '... and what was said becomes the next turn') or diag squash(@types);
ok(grep({ ($_->{outcome} // '') eq 'client-closed' } reqs($lport)),
   '... the cut answer\'s model request was closed');

# --- failures ---

mock($sport, 'POST', '/_next', { status => 500, times => 5 });
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@m = collect($ws, 'ready', 20);
is(squash(map { $_->{type} } @m), 'processing error ready', 'a recogniser failing: error, then ready');
like($m[1]{message}, qr/speech recognition|transcri/i, '... saying what failed');
unlike($m[1]{message}, qr/sk-stt|127\.0\.0\.1/, '... without provider detail');

mock($eport, 'POST', '/_next', { status => 401, times => 20 });
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@m = collect($ws, 'ready', 20);
my ($err) = grep { $_->{type} eq 'error' } @m;
ok($err, 'the speech service failing: an error') or diag squash(map { $_->{type} } @m);
is($m[-1]{type}, 'ready', '... then ready');
is(scalar(grep { $_->{type} eq 'audio_chunk' } @m), 0, '... and no audio');
mock($eport, 'DELETE', '/_next');

mock($lport, 'POST', '/_next', { status => 500, times => 9 });
$ws->send_text(encode_json({ type => 'audio_complete', data => encode_base64($q_wav, '') }));
@m = collect($ws, 'ready', 20);
($err) = grep { $_->{type} eq 'error' } @m;
ok($err, 'the model failing: an error');
is($m[-1]{type}, 'ready', '... then ready');
mock($lport, 'DELETE', '/_next');

$ws->send_close(1000);
$ws->close;
ok(wait_for(sub { ($t->get('/metrics')->{body} // '') !~ /^avatar_llm_active [1-9]/m }, 5),
   'nothing left running');
ok($t->log_clean_ok, 'no errors or crashes in the log');
unlike($t->error_log, qr/sk-stt|sk-llm|xi-key/, 'no key in the error log');
$t->finish;
done_testing;
