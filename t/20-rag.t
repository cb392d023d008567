# The knowledge base: initialize, upload (streamed multipart, type by
# content, limits, duplicates), ingestion to ready with chunks, status,
# documents, delete, reset; roles and dealership isolation; bad input that
# must be refused with nothing stored.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);

my $t = AvatarTest->new;
$t->start_api(http => 'avatar_max_upload_size 3m;',
              server => 'client_max_body_size 100m;');
$t->bootstrap_admin('sa@example.com', 'Super!pass1');
my $sa = $t->login('sa@example.com', 'Super!pass1');
my $da_id = $t->make_dealership('Alpha Motors');
my $db_id = $t->make_dealership('Bravo Motors');
$t->create_user(email => 'da@alpha.com', like => 'sa@example.com',
                role => 'dealership_admin', dealership_id => $da_id);
$t->create_user(email => 'u@alpha.com', like => 'sa@example.com',
                role => 'user', dealership_id => $da_id);
$t->create_user(email => 'da@bravo.com', like => 'sa@example.com',
                role => 'dealership_admin', dealership_id => $db_id);
my $da = $t->login('da@alpha.com', 'Super!pass1');
my $u = $t->login('u@alpha.com', 'Super!pass1');
my $dbr = $t->login('da@bravo.com', 'Super!pass1');

my $data = "$AvatarTest::TOP/t/data";
sub slurp { local (@ARGV, $/) = @_; <> }

sub upload { $t->upload(@_) }

sub docs { $t->psql("SELECT count(*) FROM documents") }

my $gap = "GAP Protection Basics\n\nGuaranteed asset protection covers the "
        . "difference between the loan balance and the insurer's actual cash "
        . "value settlement after a total loss. " x 30;

# before initialisation
my $r = $t->get("/api/v1/rag/$da_id/status", token => $u);
is($r->{status}, 200, 'status answers before initialisation');
is($r->{json}{initialized}, JSON::PP::false, '... not initialized');
$r = upload($da_id, 'books', $da, ['gap.txt', $gap]);
is($r->{status}, 422, 'an upload before initialisation is 422');
like($r->{json}{error}{message}, qr/not initialized/, '... saying so');

# initialize: roles and isolation
$r = $t->post("/api/v1/rag/$da_id/initialize", token => $u);
is($r->{status}, 403, 'a plain user cannot initialize');
$r = $t->post("/api/v1/rag/$da_id/initialize", token => $dbr);
is($r->{status}, 404, "another dealership's admin gets 404");
$r = $t->post("/api/v1/rag/$da_id/initialize", token => $da);
is($r->{status}, 201, 'the dealership admin initializes');
is($r->{json}{message}, "RAG initialized for dealership 'Alpha Motors'",
   '... with the message');
is($r->{json}{rag_config}{chunk_size}, 1000, '... chunk size 1000');
is($r->{json}{rag_config}{chunk_overlap}, 200, '... overlap 200');
is($r->{json}{rag_config}{namespace}, "dealership_$da_id", '... namespace');
$r = $t->post("/api/v1/rag/$da_id/initialize", token => $sa);
is($r->{status}, 422, 'initializing twice is 422');
$r = $t->post("/api/v1/rag/$db_id/initialize", token => $sa);
is($r->{status}, 201, 'the super admin initializes any dealership');

# upload and ingestion
$r = upload($da_id, 'books', $da, ['gap.txt', $gap]);
is($r->{status}, 201, 'a text file is uploaded');
like($r->{json}{message},
     qr/^Successfully uploaded 1 document\(s\) \(\d+ chunks\) to 'books' knowledge base$/,
     '... with the message');
my $doc = $r->{json}{documents}[0];
ok($doc->{id}, '... and the document');
is($doc->{filename}, 'gap.txt', '... its name');
is($doc->{status}, 'ready', '... ingested before the answer');
ok($t->psql("SELECT count(*) FROM document_chunks WHERE document_id = $doc->{id}") > 1,
   '... into several chunks');
is($t->psql("SELECT count(DISTINCT dealership_id) FROM document_chunks"), 1,
   '... of that dealership only');

$r = upload($da_id, 'books', $da, ['gap.txt', $gap]);
is($r->{status}, 201, 'the same file again is accepted');
is($r->{json}{documents}[0]{id}, $doc->{id}, '... as the same document (no-op)');
is(docs(), 1, '... nothing new stored');

my @more = (['guide.docx', slurp("$data/sample.docx")],
            ['guide.pdf', slurp("$data/sample.pdf")]);
$r = upload($da_id, 'compliance', $da, @more);
is($r->{status}, 201, 'a DOCX and a PDF together');
is(scalar @{ $r->{json}{documents} }, 2, '... two documents');
is(join(',', map { $_->{status} } @{ $r->{json}{documents} }), 'ready,ready',
   '... both ready');

# status, documents
$r = $t->get("/api/v1/rag/$da_id/status", token => $u);
is($r->{status}, 200, 'a user reads the status');
is($r->{json}{initialized}, JSON::PP::true, '... initialized');
is($r->{json}{total_documents}, 3, '... three documents');
is($r->{json}{documents_by_topic}{compliance}, 2, '... by topic');
ok($r->{json}{total_chunks} >= 3, '... with their chunks');
is($r->{json}{dealership_name}, 'Alpha Motors', '... and the name');
$r = $t->get("/api/v1/rag/$da_id/status", token => $dbr);
is($r->{status}, 404, "another dealership's status is 404");

$r = $t->get("/api/v1/rag/$da_id/documents?topic=compliance", token => $u);
is($r->{status}, 200, 'documents are listed');
is(scalar @{ $r->{json} }, 2, '... filtered by topic');
ok(exists $r->{json}[0]{chunk_count} && exists $r->{json}[0]{bytes},
   '... with chunk counts and sizes');
$r = $t->get("/api/v1/rag/$da_id/documents/$doc->{id}", token => $u);
is($r->{status}, 200, 'one document');
is($r->{json}{status}, 'ready', '... ready');
is($r->{json}{progress}, 1, '... progress 1');
$r = $t->get("/api/v1/rag/$db_id/documents/$doc->{id}", token => $dbr);
is($r->{status}, 404, "a document through another dealership's path is 404");
$r = $t->get("/api/v1/rag/$da_id/documents", token => $dbr);
is($r->{status}, 404, "another dealership's documents are 404");

# query
sub query {
    my ($id, $q, $token, %o) = @_;
    my $qs = "query=" . join('', map { sprintf('%%%02X', ord) } split //, $q);
    $qs .= "&top_k=$o{top_k}" if $o{top_k};
    return $t->http('POST', "/api/v1/rag/$id/query?$qs", token => $token,
                    exists $o{topics} ? (json => $o{topics}) : ());
}
$r = query($da_id, 'What does GAP cover after a total loss?', $u);
is($r->{status}, 200, 'a user queries the knowledge base');
is($r->{json}{query}, 'What does GAP cover after a total loss?', '... echoing the query');
ok($r->{json}{count} >= 1, '... with results');
is($r->{json}{results}[0]{filename}, 'gap.txt', '... the GAP document first');
ok($r->{json}{results}[0]{score} > 0 && $r->{json}{results}[0]{score} <= 1,
   '... scored between 0 and 1');
ok($r->{json}{results}[0]{content} =~ /asset protection/i, '... with its passage');
is($r->{json}{count}, scalar @{ $r->{json}{results} }, '... count matches');
$r = query($da_id, 'What does GAP cover after a total loss?', $u, top_k => 1);
is($r->{json}{count}, 1, 'top_k limits the results');
$r = query($da_id, 'What does GAP cover after a total loss?', $u,
           topics => ['compliance']);
is($r->{status}, 200, 'a query with a topic filter (a JSON list body)');
ok(!grep({ $_->{topic} ne 'compliance' } @{ $r->{json}{results} }),
   '... keeps results to that topic');
$r = query($da_id, 'What does GAP cover after a total loss?', $u,
           topics => ['books']);
is($r->{json}{results}[0]{topic}, 'books', '... and finds them in that topic');

# the retriever's counters, and re-embedding chunks of another model through
# the worker (one worker here, so one set of counters)
sub metric {
    my ($name) = @_;
    my $m = $t->get('/metrics')->{body} // '';
    return $m =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}
cmp_ok(metric('avatar_rag_queries_total') // 0, '>=', 3,
       '/metrics counts retrievals');
cmp_ok(metric('avatar_rag_vectors') // 0, '>', 0, '... and vectors held');
is(metric('avatar_rag_reembedded_total'), 0, '... none re-embedded yet');
my $nchunks = $t->psql("SELECT count(*) FROM document_chunks"
                       . " WHERE dealership_id = $da_id");
my $model = $t->psql("SELECT embedding_model FROM document_chunks"
                     . " WHERE dealership_id = $da_id LIMIT 1");
$t->psql("UPDATE document_chunks SET embedding_model = 'older-model'"
         . " WHERE dealership_id = $da_id");
$t->psql("UPDATE dealerships SET generation = generation + 1"
         . " WHERE id = $da_id");
$r = query($da_id, 'What does GAP cover after a total loss?', $u);
is($r->{json}{results}[0]{filename}, 'gap.txt',
   'vectors of another model: still found');
ok(AvatarTest::wait_for(sub { (metric('avatar_rag_reembedded_total') // 0) >= $nchunks },
            20), "the worker re-embedded the $nchunks chunks");
is($t->psql("SELECT count(*) FROM document_chunks WHERE dealership_id ="
            . " $da_id AND embedding_model = '$model'"), $nchunks,
   '... all stored with the current model');
$r = query($da_id, 'What does GAP cover after a total loss?', $u);
is($r->{json}{results}[0]{filename}, 'gap.txt', '... and found as before');

# avatarctl reembed: the same at once, without waiting for a retrieval
my $db = $t->conninfo;
my ($rc, $out) = $t->avatarctl('reembed', '--database', $db);
is($rc, 0, 'avatarctl reembed') or diag($out);
like($out, qr/nothing to do, every chunk has a vector of model \Q$model\E/,
     '... with nothing stale, says so');
$t->psql("UPDATE document_chunks SET embedding_model = 'older-model',"
         . " embedding = NULL WHERE dealership_id = $da_id");
my $gen_before = $t->psql("SELECT generation FROM dealerships WHERE id = $da_id");
($rc, $out) = $t->avatarctl('reembed', '--database', $db, '--dealership',
                            $db_id);
is($rc, 0, 'avatarctl reembed --dealership (another one)') or diag($out);
is($t->psql("SELECT count(*) FROM document_chunks WHERE dealership_id ="
            . " $da_id AND embedding_model = '$model'"), 0,
   "... leaves the other dealership's chunks alone");
($rc, $out) = $t->avatarctl('reembed', '--database', $db);
is($rc, 0, 'avatarctl reembed: every dealership') or diag($out);
like($out, qr/^dealership $da_id: $nchunks chunk\(s\) re-embedded$/m,
     "... re-embeds the $nchunks chunks of the one with stale vectors");
like($out, qr/^reembed: $nchunks chunk\(s\) of 1 dealership\(s\)/m,
     '... and sums up');
is($t->psql("SELECT count(*) FROM document_chunks WHERE dealership_id ="
            . " $da_id AND embedding_model = '$model'"
            . " AND length(embedding) > 0"), $nchunks,
   '... every one stored with a vector of the current model');
cmp_ok($t->psql("SELECT generation FROM dealerships WHERE id = $da_id"),
       '>', $gen_before, "... and the dealership's generation moved");
$r = query($da_id, 'What does GAP cover after a total loss?', $u);
is($r->{json}{results}[0]{filename}, 'gap.txt',
   '... so the worker reloads and finds it as before');
($rc, $out) = $t->avatarctl('reembed', '--database', $db, '--dealership',
                            999999);
is($rc, 1, 'avatarctl reembed of no such dealership fails');
like($out, qr/no such dealership/, '... and says why');
$r = query($da_id, 'What does GAP cover?', $u, topics => { a => 1 });
is($r->{status}, 422, 'topics that are not a list: 422');
$r = query($da_id, 'best pizza toppings for a summer barbecue party', $u);
is($r->{status}, 200, 'an unrelated question answers');
is($r->{json}{count}, 0, '... with no results (the relevance floor)');
$r = query($da_id, 'What does GAP cover?', $dbr);
is($r->{status}, 404, "another dealership's knowledge base is 404");
$r = query($db_id, 'What does GAP cover after a total loss?', $dbr);
is($r->{json}{count}, 0, "... and its own holds none of Alpha's material");
$r = $t->http('POST', "/api/v1/rag/$da_id/query", token => $u);
is($r->{status}, 422, 'a query without a question is 422');
$r = query($da_id, 'GAP', $u, top_k => 50);
is($r->{status}, 422, 'top_k over 20 is 422');

# bad input: a clear 4xx and nothing stored
my $before = docs();
my @bad = (
    [ 'a .pdf name on a text file', 422, 'books', ['fake.pdf', 'just some text'] ],
    [ 'a .txt name on a PDF', 422, 'books', ['real.txt', slurp("$data/sample.pdf")] ],
    [ 'a truncated PDF', 422, 'books', ['broken.pdf', slurp("$data/truncated.pdf")] ],
    [ 'a zip that is not a DOCX', 422, 'books', ['fake.docx', slurp("$data/notword.zip")] ],
    [ 'an empty file', 422, 'books', ['empty.txt', ''] ],
    [ 'text that is not UTF-8', 422, 'books', ['latin1.txt', "caf\xe9 cr\xe8me " x 20] ],
    [ 'a file name with ../', 422, 'books', ['../../etc/passwd.txt', 'hello there'] ],
    [ 'an unknown topic', 422, 'astrology', ['gap2.txt', $gap] ],
    [ 'a file over the limit', 413, 'books', ['big.txt', 'x' x (4 * 1024 * 1024)] ],
    [ 'an unsupported type', 422, 'books', ['photo.png', "\x89PNG\r\n\x1a\n" . 'x' x 100] ],
);
for my $case (@bad) {
    my ($name, $code, $topic, $file) = @$case;
    $r = upload($da_id, $topic, $da, $file);
    is($r->{status}, $code, "$name is refused ($code)");
    ok($r->{json} && $r->{json}{error}{message}, '... with a JSON error')
        or diag $r->{body};
}
is(docs(), $before, '... and none of them stored anything');

$r = upload($da_id, 'books', $u, ['gap3.txt', $gap]);
is($r->{status}, 403, 'a plain user cannot upload');
$r = upload($da_id, 'books', $dbr, ['gap3.txt', $gap]);
is($r->{status}, 404, "another dealership's admin cannot upload");
$r = $t->http('POST', "/api/v1/rag/$da_id/upload/books", token => $da,
              json => { files => [] });
is($r->{status}, 422, 'a JSON body instead of multipart is 422');
my $b = 'XyZ';
$r = $t->http('POST', "/api/v1/rag/$da_id/upload/books", token => $da,
              body => "--$b\r\nContent-Disposition: form-data; name=\"files\"; "
                    . "filename=\"cut.txt\"\r\n\r\nno end here",
              headers => { 'Content-Type' => "multipart/form-data; boundary=$b" });
is($r->{status}, 422, 'a multipart body cut short is 422');
is(docs(), $before, '... nothing stored');

# delete and reset
my $gen = $t->psql("SELECT generation FROM dealerships WHERE id = $da_id");
$r = $t->http('DELETE', "/api/v1/rag/$da_id/documents/$doc->{id}", token => $u);
is($r->{status}, 403, 'a plain user cannot delete a document');
$r = $t->http('DELETE', "/api/v1/rag/$db_id/documents/$doc->{id}", token => $dbr);
is($r->{status}, 404, "another dealership cannot delete it");
$r = $t->http('DELETE', "/api/v1/rag/$da_id/documents/$doc->{id}", token => $da);
is($r->{status}, 204, 'the admin deletes a document');
is($t->psql("SELECT count(*) FROM document_chunks WHERE document_id = $doc->{id}"), 0,
   '... its chunks are gone');
ok($t->psql("SELECT generation FROM dealerships WHERE id = $da_id") > $gen,
   '... and the dealership generation moved (caches drop)');
$r = $t->http('DELETE', "/api/v1/rag/$da_id/documents/$doc->{id}", token => $da);
is($r->{status}, 404, 'deleting it again is 404');

$r = $t->http('DELETE', "/api/v1/rag/$da_id/reset", token => $dbr);
is($r->{status}, 404, "another dealership cannot reset");
$r = $t->http('DELETE', "/api/v1/rag/$da_id/reset", token => $da);
is($r->{status}, 200, 'reset answers');
is($r->{json}{message}, "RAG reset for dealership 'Alpha Motors'", '... with the message');
is($t->psql("SELECT count(*) FROM documents WHERE dealership_id = $da_id"), 0,
   '... every document is gone');
is($t->psql("SELECT count(*) FROM document_chunks WHERE dealership_id = $da_id"), 0,
   '... with every chunk');

$t->finish;
done_testing;
