# Invite and reset mails through nginx and the core's mail queue: to a
# mock Mailgun (form fields and HTTP Basic auth checked by the mock), to a
# local SMTP sink, and a failing provider that must not lose the reset.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(wait_for start_mock);
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);

my $t = AvatarTest->new;
my $dir = $t->dir;

sub lines {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    my @l = <$fh>;
    return @l;
}

sub nlines { my @l = lines(@_); scalar @l }

$t->bootstrap_admin('boss@example.com', 'Adm1n!pass');

# Mailgun
my $log = "$dir/mailgun.jsonl";
my ($mg, $mgport, $mgin) = start_mock('mailgun.pl', '--key', 'key-secret-123',
                                '--domain', 'mg.example.com', '--log', $log);
$ENV{AVC_TEST_MAILGUN_KEY} = 'key-secret-123';
my $mailgun = "avatar_mail mailgun base_url=http://127.0.0.1:$mgport "
            . "domain=mg.example.com key=env:AVC_TEST_MAILGUN_KEY "
            . "\"from=Adam <adam\@mg.example.com>\";";
$t->start_nginx(http => "avatar_public_url https://adam.example.com;\n$mailgun");
my $sa = $t->login('boss@example.com', 'Adm1n!pass');
my $did = $t->make_dealership('Summit Motors');

my $r = $t->post('/api/v1/users/invites', token => $sa,
                 json => { email => 'new.da@example.com',
                           role => 'dealership_admin', dealership_id => $did });
is($r->{status}, 201, 'an invite is created');
ok(wait_for(sub { nlines($log) >= 1 }, 15), 'the invite mail reaches Mailgun');
my @sent = map { decode_json($_) } lines($log);
my ($inv) = grep { ($_->{to} // '') =~ /new\.da\@example\.com/ } @sent;
ok($inv, '... addressed to the invitee') or diag explain \@sent;
like($inv->{from} // '', qr/adam\@mg\.example\.com/,
     '... from the configured sender');
ok($inv->{subject}, '... with a subject');
like(($inv->{html} // '') . ($inv->{text} // ''),
     qr{https://adam\.example\.com/signup\?token=[0-9a-f]+},
     '... and the invitation link on the public URL');
unlike($t->error_log, qr/key-secret-123/, 'the Mailgun key is never logged');

$r = $t->post('/api/v1/auth/password/forgot', json => { email => 'boss@example.com' });
is($r->{status}, 202, 'a reset is asked for');
ok(wait_for(sub { nlines($log) >= 2 }, 15), 'the reset mail reaches Mailgun');
close $mgin;
waitpid $mg, 0;

# Mailgun refusing the key: the mail stays queued with the reason
($mg, $mgport, $mgin) = start_mock('mailgun.pl', '--key', 'another-key');
$t->stop_nginx;
$t->start_nginx(http => "avatar_mail mailgun base_url=http://127.0.0.1:$mgport "
                      . "domain=mg.example.com key=env:AVC_TEST_MAILGUN_KEY;");
$r = $t->post('/api/v1/auth/password/forgot', json => { email => 'boss@example.com' });
is($r->{status}, 202, 'a reset with the mail provider refusing');
ok(wait_for(sub { $t->psql("SELECT count(*) FROM mail_outbox WHERE attempts > 0 "
                         . "AND sent_at IS NULL AND last_error IS NOT NULL") > 0 },
            15), '... the mail stays queued with its error');
is($t->psql("SELECT count(*) FROM password_resets WHERE used_at IS NULL"), 2,
   '... and the reset itself is kept');
close $mgin;
waitpid $mg, 0;

# SMTP sink that fails the first message: the queue retries
my $spool = "$dir/smtp";
mkdir $spool;
my ($sm, $smport, $smin) = start_mock('smtp-sink.pl', '--dir', $spool, '--fail', '1');
$t->stop_nginx;
$t->start_nginx(http => "avatar_public_url https://adam.example.com;\n"
    . "avatar_mail smtp url=smtp://127.0.0.1:$smport "
    . "\"from=Adam <adam\@example.com>\" starttls=off;");
$t->psql("DELETE FROM mail_outbox");
$r = $t->post('/api/v1/auth/password/forgot', json => { email => 'boss@example.com' });
is($r->{status}, 202, 'a reset with an SMTP server that fails once');
ok(wait_for(sub { $t->psql("SELECT count(*) FROM mail_outbox WHERE attempts = 1 "
                         . "AND sent_at IS NULL AND last_error IS NOT NULL") == 1 },
            15), '... the first attempt fails and is recorded');
# bring the retry forward instead of waiting out the 30 s backoff
$t->psql("UPDATE mail_outbox SET next_attempt_at = now()");
ok(wait_for(sub { scalar glob "$spool/*.eml" }, 25), '... the retry delivers it');
my ($eml) = glob "$spool/*.eml";
my $m = $eml ? do { local (@ARGV, $/) = $eml; <> } : '';
like($m, qr/^To:.*boss\@example\.com/mi, '... to the user');
$m =~ s/=\r?\n//g;
$m =~ s/=3D/=/g;
like($m, qr{https://adam\.example\.com/reset-password\?token=[0-9a-f]{64}},
     '... with the reset link');
ok(wait_for(sub { $t->psql("SELECT sent_at IS NOT NULL FROM mail_outbox") eq 't' }, 5),
   '... and the queue marks it sent');
close $smin;
waitpid $sm, 0;

$t->finish;
done_testing;
