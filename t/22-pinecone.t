# Pinecone as the knowledge base's vector store, through nginx:
# "avatar_vector_store pinecone host=... index=... key=env:..." against
# tools/mock/pinecone.pl, whose request log shows what reached Pinecone.
# Uploads upsert their chunks into namespace dealership_{id}; queries go
# to Pinecone with the dealership (and topic) filter; another dealership
# never sees them; deleting a document, resetting and deleting a
# dealership delete the vectors; Pinecone failing at query time leaves
# the full-text results (logged), failing at deletion time changes
# nothing for the caller and the vectors left behind are deleted when a
# query meets them.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest qw(start_mock);
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Time::HiRes qw(sleep);

my $KEY = 'pc-integration-key-31f7';

# the mock, alive as long as its stdin is
my ($mock_pid, $mport, $mock_in) = start_mock('pinecone.pl', '--key', $KEY);
ok($mport =~ /^\d+$/, 'the Pinecone mock listens') or BAIL_OUT('no mock');
my $ua = HTTP::Tiny->new(timeout => 10);

sub mock {
    my ($method, $path, $body) = @_;
    my $r = $ua->request($method, "http://127.0.0.1:$mport$path",
                         { content => $body // '' });
    return $r->{content} ? decode_json($r->{content}) : undef;
}
sub requests { @{ mock('GET', '/__requests')->{requests} } }
sub fail_mock { mock('POST', '/__fail', encode_json($_[0])) }
# the requests after the first n
sub since { my @r = requests(); @r[$_[0] .. $#r] }

$ENV{PINECONE_API_KEY} = $KEY;
my $t = AvatarTest->new;
$t->start_api(http => "avatar_vector_store pinecone"
                    . " host=http://127.0.0.1:$mport index=avatar-test"
                    . " key=env:PINECONE_API_KEY;\n"
                    . "avatar_upload_wait 15000;");
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $sa = $t->login('sa@example.com', 'Super!pass1');
my $alpha = $t->make_dealership('Alpha Motors');
my $bravo = $t->make_dealership('Bravo Motors');
$t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                role => 'user', dealership_id => $alpha);
$t->create_user(email => 'u@bravo.com', like => 'sa@example.com',
                role => 'user', dealership_id => $bravo);
my $ua_tok = $t->login('u@alpha.com', 'Super!pass1');
my $ub_tok = $t->login('u@bravo.com', 'Super!pass1');
for my $d ($alpha, $bravo) {
    is($t->post("/api/v1/rag/$d/initialize", token => $sa)->{status}, 201,
       "dealership $d initialized");
}

sub upload {
    my ($id, $topic, $name, $content) = @_;
    return $t->upload($id, $topic, $sa, [$name, $content])->{json}{documents}[0];
}

sub chunk_ids {
    my ($doc) = @_;
    return $t->psql("SELECT coalesce(string_agg(id::text, ',' ORDER BY id),"
                  . " '') FROM document_chunks WHERE document_id = $doc");
}

sub query {
    my ($id, $q, $token, $topics) = @_;
    my $qs = join '', map { sprintf '%%%02X', ord } split //, $q;
    return $t->http('POST', "/api/v1/rag/$id/query?query=$qs", token => $token,
                    defined $topics ? (json => $topics) : ());
}

my $gap = "GAP Protection Basics\n\nGuaranteed asset protection covers the "
        . "difference between the loan balance and the insurer's actual cash "
        . "value settlement after a total loss. " x 20;
my $ofac = "OFAC Screening\n\nEvery customer is checked against the OFAC "
         . "Specially Designated Nationals list before the deal is signed, "
         . "cash buyers included. " x 20;
my $tire = "Tire and Wheel Protection\n\nTire and wheel protection repairs "
         . "tires and wheels damaged by road hazards such as potholes and "
         . "nails. " x 20;

# uploads: chunks upserted, in the dealership's namespace
my $dg = upload($alpha, 'books', 'gap.txt', $gap);
my $do = upload($alpha, 'compliance', 'ofac.txt', $ofac);
my $dt = upload($bravo, 'product_knowledge', 'tire.txt', $tire);
is("$dg->{status} $do->{status} $dt->{status}", 'ready ready ready',
   'three documents ready');

my @up = grep { $_->{path} eq '/vectors/upsert' } requests();
is(scalar @up, 3, 'one upsert per document')
    or diag 'no upserts: does avc_app_new() give the ingestion queue its '
          . 'vector store (avc__ingest_set_store, src/app/app.c)?';
is_deeply([ sort map { $_->{namespace} } @up ],
          [ sort map { "dealership_$_" } $alpha, $alpha, $bravo ],
          '... into namespace dealership_{id}');
ok(!grep({ $_->{api_key} ne $KEY } @up), '... with the Api-Key');
ok(!grep({ $_->{count} < 1 || $_->{count} > 1000 } @up),
   '... in batches of at most 1,000 vectors');
my ($up_gap) = grep { $_->{metadata}[0]{document_id} == $dg->{id} } @up;
is(join(',', sort { $a <=> $b } @{ $up_gap->{ids} }), chunk_ids($dg->{id}),
   '... the ids are the chunk ids');
is_deeply({ map { $_ => $up_gap->{metadata}[0]{$_} }
            qw(dealership_id document_id topic filename position) },
          { dealership_id => $alpha, document_id => $dg->{id},
            topic => 'books', filename => 'gap.txt', position => 0 },
          '... with dealership_id, document_id, topic, filename, position');
my $r = $t->get("/api/v1/rag/$alpha/status", token => $ua_tok);
is($r->{json}{vector_db}, 'pinecone', 'status names the vector store');

# queries through Pinecone
my $before = () = requests();
$r = query($alpha, 'What does GAP cover after a total loss?', $ua_tok);
is($r->{status}, 200, 'a query answers');
is($r->{json}{results}[0]{filename}, 'gap.txt', '... with the right document');
my @q = grep { $_->{path} eq '/query' } since($before);
is(scalar @q, 1, '... asked Pinecone once');
is($q[0]{namespace}, "dealership_$alpha", '... in its namespace');
is($q[0]{filter}{dealership_id}{'$eq'}, $alpha, '... filtered by dealership');
is($q[0]{api_key}, $KEY, '... with the Api-Key');

$before = () = requests();
$r = query($alpha, 'Who is screened against the OFAC list?', $ua_tok,
           ['compliance']);
is($r->{json}{results}[0]{filename}, 'ofac.txt', 'a topic query answers');
ok(@{ $r->{json}{results} // [] }
   && !grep({ ($_->{topic} // '') ne 'compliance' }
            @{ $r->{json}{results} }), '... within its topic');
@q = grep { $_->{path} eq '/query' } since($before);
is_deeply(@q ? $q[0]{filter}{topic} : undef,
          { '$in' => ['compliance'] },
          '... filtered by topic in Pinecone');

$r = query($bravo, 'What does GAP cover after a total loss?', $ub_tok);
is($r->{status}, 200, "another dealership's query answers");
ok(!grep({ $_->{filename} ne 'tire.txt' } @{ $r->{json}{results} }),
   "... never with the first one's documents");
is(query($alpha, 'What does GAP cover?', $ub_tok)->{status}, 404,
   "... nor may it query the first one's knowledge base");

# Pinecone failing at query time: the full-text results answer
fail_mock({ path => '/query', status => 503 });
$r = query($alpha, 'What does GAP cover after a total loss?', $ua_tok);
is($r->{status}, 200, 'with Pinecone failing (503) a query still answers');
is($r->{json}{results}[0]{filename}, 'gap.txt',
   '... from the full-text search');
like($t->error_log, qr/vector search failed, full-text results only/,
     '... and the failure is logged');
fail_mock({});

# deleting a document deletes its vectors
my $ids = chunk_ids($do->{id});
$before = () = requests();
is($t->del("/api/v1/rag/$alpha/documents/$do->{id}", token => $sa)
     ->{status}, 204, 'a document is deleted');
my @del = grep { $_->{path} eq '/vectors/delete' }
          since($before);
is(scalar @del, 1, '... and its vectors, in Pinecone');
is(join(',', sort { $a <=> $b } @{ $del[0]{ids} // [] }), $ids,
   '... by their ids');
is($del[0]{namespace}, "dealership_$alpha", '... in its namespace');

# a deletion Pinecone refuses changes nothing for the caller; the
# vectors left behind go when a query meets them
my $dg2 = upload($alpha, 'books', 'gap-2.txt', $gap . " Second copy.");
$ids = chunk_ids($dg2->{id});
fail_mock({ path => '/vectors/delete', status => 503 });
is($t->del("/api/v1/rag/$alpha/documents/$dg2->{id}", token => $sa)
     ->{status}, 204, 'a document is deleted while Pinecone refuses');
is($t->get("/api/v1/rag/$alpha/documents/$dg2->{id}", token => $sa)
     ->{status}, 404, '... it is gone');
like($t->error_log, qr/could not be deleted from Pinecone/,
     '... the failure is logged');
fail_mock({});
$before = () = requests();
$r = query($alpha, 'What does GAP cover after a total loss?', $ua_tok);
ok(!grep({ $_->{filename} eq 'gap-2.txt' } @{ $r->{json}{results} }),
   '... a query never returns it');
sleep 0.3;
@del = grep { $_->{path} eq '/vectors/delete' && $_->{status} == 200 }
       since($before);
is(join(',', sort { $a <=> $b } map { @{ $_->{ids} // [] } } @del), $ids,
   '... and deletes the vectors it met');

# reset: the namespace
$before = () = requests();
$r = $t->del("/api/v1/rag/$alpha/reset", token => $sa);
is($r->{status}, 200, 'a knowledge base is reset');
@del = grep { $_->{path} eq '/vectors/delete' }
       since($before);
ok(@del == 1 && $del[0]{delete_all}
   && $del[0]{namespace} eq "dealership_$alpha",
   '... its namespace deleted in Pinecone before the answer');
is($t->psql("SELECT count(*) FROM document_chunks"
          . " WHERE dealership_id = $alpha"), 0, '... its chunks gone');

# deleting a dealership: its namespace
$before = () = requests();
is($t->del("/api/v1/dealerships/$bravo", token => $sa)->{status}, 204,
   'a dealership is deleted');
for (1 .. 50) {
    last if grep { $_->{path} eq '/vectors/delete' }
            since($before);
    sleep 0.1;
}
@del = grep { $_->{path} eq '/vectors/delete' }
       since($before);
ok(@del == 1 && $del[0]{delete_all}
   && $del[0]{namespace} eq "dealership_$bravo",
   '... and its namespace in Pinecone');
is(mock('GET', '/__stats')->{namespaces}{"dealership_$bravo"}, undef,
   '... which holds nothing');

$t->finish;
close $mock_in;
waitpid $mock_pid, 0;
done_testing;
