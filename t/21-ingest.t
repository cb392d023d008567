# Ingestion as a durable queue: with nginx leaving it to other machines
# (avatar_ingest off), uploads stay queued and "avatarctl ingest-worker"
# ingests them; a job whose worker died is taken up again; a file that
# cannot be read fails with its reason; per-file limit as a directive.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;
use JSON::PP;

my $t = AvatarTest->new;
$t->start_api(http => "avatar_ingest off;\navatar_upload_wait 0;\n"
                    . "avatar_max_file_size 20k;");
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $sa = $t->login('sa@example.com', 'Super!pass1');
my $did = $t->make_dealership('Queue Motors');
is($t->post("/api/v1/rag/$did/initialize", token => $sa)->{status}, 201,
   'initialized');

sub upload {
    my ($name, $content) = @_;
    return $t->upload($did, 'playbooks', $sa, [$name, $content]);
}

my $text = "Menu Selling Playbook\n\nPresent every product on the menu, "
         . "starting with the most complete package. " x 40;
my $r = upload('menu.txt', $text);
is($r->{status}, 201, 'an upload is accepted');
is($r->{json}{documents}[0]{status}, 'queued', '... and stays queued');
like($r->{json}{message}, qr/\(0 chunks\)/, '... with no chunks yet');
my $id = $r->{json}{documents}[0]{id};

$r = upload('big.txt', 'x' x 30000);
is($r->{status}, 413, 'avatar_max_file_size refuses a larger file');

my ($rc, $out) = $t->avatarctl('ingest-worker', '--database', $t->conninfo,
                               '--once');
is($rc, 0, 'avatarctl ingest-worker runs') or diag $out;
like($out, qr/1 document\(s\) ingested/, '... and ingests the document');
$r = $t->get("/api/v1/rag/$did/documents/$id", token => $sa);
is($r->{json}{status}, 'ready', 'the document is ready');
ok($r->{json}{chunk_count} > 1, '... with its chunks');

# a worker that died mid-job: its lease expires and the job runs again
$r = upload('objections.txt', "Objection Handling\n\n" . ("Hear, empathize, ask, "
            . "respond. " x 60));
my $id2 = $r->{json}{documents}[0]{id};
$t->psql("UPDATE ingest_jobs SET state = 'running', locked_by = 'dead:1', "
       . "locked_at = now() - interval '11 minutes', attempts = 1 "
       . "WHERE document_id = $id2");
$t->psql("UPDATE documents SET status = 'extracting', progress = 0.1 "
       . "WHERE id = $id2");
($rc, $out) = $t->avatarctl('ingest-worker', '--database', $t->conninfo, '--once');
like($out, qr/1 document\(s\) ingested/, 'a job abandoned by a dead worker is taken up');
is($t->psql("SELECT status FROM documents WHERE id = $id2"), 'ready',
   '... and completed');

# a job still leased to a live worker is left alone
$r = upload('leased.txt', "Leased\n\n" . ("A live worker holds this. " x 30));
my $id3 = $r->{json}{documents}[0]{id};
$t->psql("UPDATE ingest_jobs SET state = 'running', locked_by = 'alive:1', "
       . "locked_at = now() WHERE document_id = $id3");
($rc, $out) = $t->avatarctl('ingest-worker', '--database', $t->conninfo, '--once');
like($out, qr/0 document\(s\) ingested/, 'a job a live worker holds is left alone');

# the queue is durable across nginx restarts: nginx with ingestion on
# picks up what is queued
$t->psql("UPDATE ingest_jobs SET state = 'queued', locked_at = NULL "
       . "WHERE document_id = $id3");
$t->stop_nginx;
$t->start_api(http => "avatar_upload_wait 0;");
my $ready;
for (1 .. 100) {
    $ready = $t->psql("SELECT status FROM documents WHERE id = $id3");
    last if $ready eq 'ready';
    select undef, undef, undef, 0.1;
}
is($ready, 'ready', 'the nginx workers ingest queued documents on their own');

$t->finish;
done_testing;
