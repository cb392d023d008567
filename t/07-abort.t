# Clients that go away while the core works on their request (during
# bcrypt on the thread pool, during the per-account delay, during a
# query) cancel it cleanly: no worker dies, nothing leaks into later
# requests, and the database connections come back.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

my $t = AvatarTest->new;
$t->start_nginx(workers => 2);
my ($rc, $out) = $t->avatarctl('bootstrap-admin', '--database', $t->conninfo,
                               '--email', 'a@example.com',
                               '--password', 'Abort!pass1');
is($rc, 0, 'a user') or diag $out;
my @workers = $t->worker_pids;

sub hit_and_run {
    my ($path, $body, $wait) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port) or die $!;
    print $s "POST $path HTTP/1.1\r\nHost: x\r\n"
           . "Content-Type: application/json\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
    sleep $wait;
    close $s;
}

# during bcrypt: the thread still reads the request's state after the
# client left
my $login = encode_json({ email => 'a@example.com', password => 'Abort!pass1' });
hit_and_run('/api/v1/auth/login', $login, 0.01 * ($_ % 5)) for 1 .. 40;
my $nobody = encode_json({ email => 'nobody@example.com', password => 'X!abc1234' });
hit_and_run('/api/v1/auth/login', $nobody, 0.02) for 1 .. 20;

# during the per-account delay
for (1 .. 6) {
    $t->post('/api/v1/auth/login', json => { email => 'a@example.com',
                                             password => 'Wrong!pass1' });
}
hit_and_run('/api/v1/auth/login', $login, 0.05) for 1 .. 10;

# during a signup (bcrypt, then a transaction)
$t->stop_nginx;
$t->start_nginx(workers => 2, http => 'avatar_signup open;');
@workers = $t->worker_pids;
for my $i (1 .. 20) {
    my $b = encode_json({ email => "s$i\@example.com", password => 'Sign!up123',
                          first_name => 'S', last_name => 'U' });
    hit_and_run('/api/v1/auth/signup', $b, 0.01 * ($i % 4));
}
sleep 1.5;   # let the abandoned work finish

is_deeply([$t->worker_pids], \@workers, 'no worker died');
my $r = $t->post('/api/v1/auth/login', json => { email => 'a@example.com',
                                                 password => 'Abort!pass1' });
ok($r->{status} == 200 || $r->{status} == 401, 'logins still answer');
$r = $t->get('/health');
is($r->{status}, 200, 'the database pool is healthy');
unlike($t->error_log, qr/exited on signal/, 'no worker crashed');
is($t->psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'avatar' "
            . "AND state = 'idle in transaction'"), 0,
   'no transaction was left open');

$t->finish;
done_testing;
