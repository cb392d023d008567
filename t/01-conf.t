# nginx -t accepts the drop-in configuration of conf/ and rejects bad
# avatar_* values, quoting the value.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;

my $t = AvatarTest->new(no_db => 1);
my $dir = $t->dir;
$t->{conninfo} = 'host=127.0.0.1 port=1 dbname=avatar user=avatar';

# conf/ with this checkout's paths, through the same script as make run
open my $fh, '>', "$dir/secret" or die;
print $fh 'k' x 40, "\n";
close $fh;
my ($rc, $out) = $t->run_cmd('sh', "$AvatarTest::TOP/tools/conf.sh",
                             "$dir/dropin", $t->conninfo, "$dir/secret",
                             AvatarTest::free_port(), 1);
is($rc, 0, 'tools/conf.sh writes a configuration') or diag $out;
$out = `@{[ $t->sanitizer_env ]}$AvatarTest::NGINX -p $dir/dropin -c $dir/dropin/nginx.conf -e $dir/dropin/t.log -t 2>&1`;
is($? >> 8, 0, 'nginx -t accepts conf/nginx.conf with paths adjusted')
    or diag $out;

# each bad value is refused, and the message quotes it
my @bad = (
    [ 'avatar_database "host=x nonsense";', qr/"host=x nonsense"/,
      'a connection string that does not parse' ],
    [ "avatar_secret s3cr3t-in-the-config-text;",
      qr/"s3cr3t-in-the-config-text".*never the secret itself/,
      'a secret written in the configuration' ],
    [ "avatar_secret env:AVC_TEST_UNSET_VARIABLE;",
      qr/"env:AVC_TEST_UNSET_VARIABLE".*not set/, 'a secret from an unset variable' ],
    [ "avatar_secret file:$dir/no-such-file;",
      qr/"file:\Q$dir\E\/no-such-file"/, 'a secret file that does not exist' ],
    [ "avatar_cors_origins https://ok.example.com https://bad.example.com/path;",
      qr/invalid origin "https:\/\/bad.example.com\/path"/, 'an origin with a path' ],
    [ "avatar_cors_origins *;", qr/invalid origin "\*"/, 'a wildcard origin' ],
    [ "avatar_db_pool_size 0;", qr/invalid value "0" in "avatar_db_pool_size"/,
      'a pool of zero' ],
    [ "avatar_db_pool_size many;", qr/invalid value "many"/, 'a pool that is not a number' ],
    [ "avatar_db_timeout soon;", qr/invalid value "soon" in "avatar_db_timeout"/,
      'a timeout that is not a time' ],
    [ "avatar_llm gemini;", qr/"gemini".*unknown provider/, 'an unknown provider' ],
    [ "avatar_llm openai colour=red;", qr/"colour=red".*unknown setting/,
      'an unknown provider setting' ],
    [ "avatar_llm openai temperature=9;", qr/"temperature=9".*out of range/,
      'a temperature out of range' ],
    [ "avatar_semantic_cache_threshold 1.5;", qr/"1.5".*out of range/,
      'a similarity threshold out of range' ],
    [ "avatar_cache_zone avatar_cache;", qr/"avatar_cache".*name:size/,
      'a cache zone without a size' ],
    [ "avatar_cache_zone avatar_cache:1k;", qr/"avatar_cache:1k".*at least/,
      'a cache zone too small' ],
    [ "avatar_llm openai key=sk-live-123;", qr/"key=sk-live-123".*never in the configuration/,
      'a provider key written in the configuration' ],
    [ "avatar_llm openai base_url=ftp://x;", qr/"base_url=ftp:\/\/x".*URL/,
      'a base URL that is not http(s)' ],
    [ "avatar_embeddings openai dimensions=-5;", qr/"dimensions=-5"/,
      'a negative dimension' ],
    [ "avatar_thread_pool nosuchpool;", qr/nosuchpool/,
      'a thread pool that is not declared' ],
    [ "avatar_voice_end_silence 50;", qr/"50".*out of range/,
      'an end-of-turn silence under 100 ms' ],
    [ "avatar_voice_max_turn 500.5;", qr/"500.5"/,
      'a longest turn that is not a whole number of ms' ],
    [ "avatar_voice_max_tokens 5000;", qr/"5000".*out of range/,
      'spoken answers over 4000 tokens' ],
    [ "avatar_ws_max_message 10;", qr/avatar_ws_max_message/,
      'a WebSocket message limit under 1k' ],
);
for my $case (@bad) {
    my ($directive, $re, $name) = @$case;
    my $http = $directive;
    # the test's own avatar_* lines must not make duplicates
    my %o = (http => $http);
    if ($directive =~ /^avatar_(database|secret|thread_pool)\b/) {
        my $secret = "$dir/secret";
        my $common = join "\n",
            ($directive =~ /^avatar_database/ ? () : qq{avatar_database "$t->{conninfo}";}),
            ($directive =~ /^avatar_secret/ ? () : "avatar_secret file:$secret;"),
            ($directive =~ /^avatar_thread_pool/ ? () : "avatar_thread_pool avatar;");
        %o = (no_avatar => 1, http => "$common\n$directive");
    }
    my ($code, $msg) = $t->nginx_test(%o);
    isnt($code, 0, "nginx -t refuses $name");
    like($msg, $re, "... and quotes the value") or diag $msg;
}

# avatar_api without a database is refused with a clear message
my ($code, $msg) = $t->nginx_test(no_avatar => 1);
isnt($code, 0, 'avatar_api without avatar_database is refused');
like($msg, qr/"avatar_api" requires "avatar_database"/, '... with the reason');

# a valid provider line with a secret from the environment is accepted
{
    local $ENV{AVC_TEST_KEY} = 'sk-test-123';
    ($code, $msg) = $t->nginx_test(http => 'avatar_llm openai '
        . 'base_url=https://openrouter.ai/api/v1 model=openai/gpt-4o '
        . 'key=env:AVC_TEST_KEY;');
    is($code, 0, 'a provider with an env: key is accepted') or diag $msg;
}

$t->finish;
done_testing;
