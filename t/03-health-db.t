# /health follows PostgreSQL: 503 "degraded" while it is down, 200 again
# once it is back, served by the same nginx worker processes.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;
use Time::HiRes qw(sleep time);

my $t = AvatarTest->new;
$t->start_nginx(workers => 2);

my $r = $t->get('/health');
is($r->{status}, 200, 'healthy with PostgreSQL up');
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

$t->stop_pg;
my $t0 = time;
$r = $t->get('/health');
is($r->{status}, 503, 'degraded with PostgreSQL down');
is($r->{json}{status}, 'degraded', '... says degraded');
is_deeply($r->{json}{failing}, ['database'], '... naming the database');
ok(time - $t0 < 5, '... promptly');
$r = $t->get('/health');
is($r->{status}, 503, 'still degraded on the next request');

$t->start_pg;
my $ok;
for (1 .. 100) {
    $r = $t->get('/health');
    if ($r->{status} == 200) { $ok = 1; last }
    sleep 0.1;
}
ok($ok, 'healthy again after PostgreSQL is back');
# every worker gets back: ask enough times to reach both
my $all = 1;
for (1 .. 10) {
    $r = $t->get('/health');
    $all = 0 unless $r->{status} == 200;
}
ok($all, '... on every request');
is_deeply([$t->worker_pids], \@workers, '... with the same worker processes');

$t->finish;
done_testing;
