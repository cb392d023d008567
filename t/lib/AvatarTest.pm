package AvatarTest;

# The integration-test harness: each test file gets its own PostgreSQL
# (tools/pg.sh, migrated by avatarctl) and writes its own nginx.conf for
# Debian's /usr/sbin/nginx loading the module from the build directory.
# When the test ends, nginx is stopped and its error log must hold no
# [alert], [crit] or [emerg] line and no sanitizer report.
#
#   my $t = AvatarTest->new;                 # PostgreSQL + migrations
#   $t->start_nginx(http => '...', server => '...');
#   my $r = $t->get('/health');              # {status, headers, body, json}

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);
use Test::More;
use IPC::Open2;
use Exporter 'import';

our @EXPORT_OK = qw(wait_for start_mock sse_events);

our $TOP = abs_path(dirname(__FILE__) . '/../..');
our $BUILD = $ENV{AVC_BUILD} || "$TOP/build";
our $NGINX = $ENV{AVC_NGINX} || '/usr/sbin/nginx';

my @live;

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub new {
    my ($class, %opt) = @_;
    my $self = bless { %opt }, $class;
    $self->{dir} = tempdir('avatar-test-XXXXXX', TMPDIR => 1,
                           CLEANUP => !$ENV{AVC_KEEP});
    chmod 0755, $self->{dir};
    $self->{secret} = 'test-secret-' . ('x' x 40);
    push @live, $self;
    $self->start_pg unless $opt{no_db};
    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }
sub conninfo { $_[0]{conninfo} }

sub run_cmd {
    my ($self, @cmd) = @_;
    my $out = `@{[ join ' ', map { quotemeta } @cmd ]} 2>&1`;
    return ($? >> 8, $out);
}

sub start_pg {
    my ($self) = @_;
    $self->{pgport} ||= free_port();
    my ($rc, $out) = $self->run_cmd('sh', "$TOP/tools/pg.sh", 'start',
                                    "$self->{dir}/pg", $self->{pgport},
                                    'avatar');
    die "PostgreSQL did not start: $out" if $rc;
    chomp($self->{conninfo} = (split /\n/, $out)[-1]);
    unless ($self->{migrated}++) {
        ($rc, $out) = $self->run_cmd("$BUILD/avatarctl", 'migrate',
                                     '--database', $self->{conninfo},
                                     '--dir', "$TOP/sql");
        die "migrate failed: $out" if $rc;
    }
    return $self;
}

sub stop_pg {
    my ($self) = @_;
    $self->run_cmd('sh', "$TOP/tools/pg.sh", 'stop', "$self->{dir}/pg");
}

# psql as the superuser on the test database; returns the output
sub psql {
    my ($self, $sql) = @_;
    my @cmd = ('/usr/lib/postgresql/15/bin/psql', '-X', '-q', '-tA',
               '-h', "$self->{dir}/pg/run", '-p', $self->{pgport},
               '-U', 'postgres', '-d', 'avatar', '-v', 'ON_ERROR_STOP=1',
               '-c', $sql);
    unshift @cmd, 'runuser', '-u', 'postgres', '--' if $> == 0;
    my ($rc, $out) = $self->run_cmd(@cmd);
    die "psql failed: $out" if $rc;
    chomp $out;
    return $out;
}

sub avatarctl {
    my ($self, @args) = @_;
    return $self->run_cmd("$BUILD/avatarctl", @args);
}

sub sanitizer_env {
    return '' unless $ENV{AVC_SAN};
    my $asan = `gcc -print-file-name=libasan.so`;
    my $ubsan = `gcc -print-file-name=libubsan.so`;
    chomp($asan, $ubsan);
    return "LD_PRELOAD=$asan:$ubsan ASAN_OPTIONS=detect_leaks=0:"
         . "abort_on_error=0:log_path=$_[0]{dir}/asan "
         . "UBSAN_OPTIONS=print_stacktrace=1:log_path=$_[0]{dir}/asan ";
}

# The nginx.conf of a test: the module, a thread pool, one server on a free
# port, the avatar directives unless told otherwise, and the test's own
# http{} and server{} snippets.
sub config_text {
    my ($self, %o) = @_;
    my $dir = $self->{dir};
    my $port = $self->{port} ||= free_port();
    my $secret_file = "$dir/secret";
    open my $fh, '>', $secret_file or die;
    print $fh $self->{secret}, "\n";
    close $fh;
    my $avatar = $o{no_avatar} ? '' : <<"EOF";
    avatar_database "$self->{conninfo}";
    avatar_secret file:$secret_file;
    avatar_thread_pool avatar;
EOF
    my $locations = defined $o{locations} ? $o{locations} : <<"EOF";
        location \@avatar_error { avatar_error; }
        location /api/v1/ {
            avatar_api;
            error_page 413 429 500 502 503 504 \@avatar_error;
        }
        location = /health { avatar_api; }
        location = /metrics { avatar_api; }
        location = /bare { return 200 "ok\\n"; }
EOF
    my $workers = $o{workers} || 1;
    return <<"EOF";
load_module $BUILD/ngx_http_avatar_module.so;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log ${\ ($o{log_level} || 'info')};
thread_pool avatar threads=4;
@{[ $o{main} || "" ]}
events { worker_connections 4096; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp_body;
    proxy_temp_path $dir/tmp_proxy;
    fastcgi_temp_path $dir/tmp_fastcgi;
    uwsgi_temp_path $dir/tmp_uwsgi;
    scgi_temp_path $dir/tmp_scgi;
$avatar
@{[ $o{http} || "" ]}
    server {
        listen 127.0.0.1:$port;
$locations
@{[ $o{server} || "" ]}
    }
}
EOF
}

sub write_config {
    my ($self, %o) = @_;
    my $file = "$self->{dir}/nginx.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh (defined $o{text} ? $o{text} : $self->config_text(%o));
    close $fh;
    return $file;
}

# nginx -t on a configuration: returns (exit code, output)
sub nginx_test {
    my ($self, %o) = @_;
    my $file = $self->write_config(%o);
    my $env = $self->sanitizer_env;
    my $out = `$env$NGINX -p $self->{dir} -c $file -e $self->{dir}/t.log -t 2>&1`;
    my $rc = $? >> 8;
    if (open my $fh, '<', "$self->{dir}/t.log") {
        local $/;
        $out .= <$fh>;
        close $fh;
        unlink "$self->{dir}/t.log";
    }
    return ($rc, $out);
}

# start_nginx(http => ..., server => ...) writes the test's config;
# start_nginx(file => F, port => P) runs a configuration written elsewhere
# (such as tools/conf.sh's, from conf/).
sub start_nginx {
    my ($self, %o) = @_;
    my $file = $o{file} || $self->write_config(%o);
    $self->{port} = $o{port} if $o{port};
    $self->{pidfile} = $o{pidfile};
    my $env = $self->sanitizer_env;
    my $out = `$env$NGINX -p $self->{dir} -c $file -e $self->{dir}/error.log 2>&1`;
    die "nginx did not start: $out\n" . $self->error_log if $?;
    $self->{nginx} = 1;
    $self->wait_port($self->{port});
    # a worker whose core did not start would leave requests hanging
    sleep 0.1;
    die "nginx started with errors:\n" . $self->error_log
        if $self->error_log =~ /\[emerg\]/;
    return $self;
}

sub nginx_pid {
    my ($self) = @_;
    open my $fh, '<', $self->{pidfile} || "$self->{dir}/nginx.pid" or return;
    chomp(my $pid = <$fh>);
    return $pid;
}

sub worker_pids {
    my ($self) = @_;
    my $master = $self->nginx_pid or return ();
    my @pids = split ' ', `pgrep -P $master`;
    return sort @pids;
}

sub stop_nginx {
    my ($self) = @_;
    return unless $self->{nginx};
    my $pid = $self->nginx_pid;
    if ($pid) {
        kill 'QUIT', $pid;
        for (1 .. 100) {
            last unless kill 0, $pid;
            sleep 0.1;
        }
        kill 'KILL', $pid if kill 0, $pid;
    }
    $self->{nginx} = 0;
}

sub wait_port {
    my ($self, $port) = @_;
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        if ($s) { close $s; return 1 }
        sleep 0.05;
    }
    die "nothing listens on port $port";
}

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/error.log" or return '';
    local $/;
    my $log = <$fh>;
    close $fh;
    return $log;
}

# [alert], [crit], [emerg] lines and sanitizer reports, as a list
sub log_problems {
    my ($self) = @_;
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $self->error_log;
    for my $f (glob "$self->{dir}/asan*") {
        open my $fh, '<', $f or next;
        local $/;
        push @bad, "sanitizer: " . <$fh>;
        close $fh;
    }
    push @bad, grep { /(AddressSanitizer|runtime error:|LeakSanitizer)/ }
        split /\n/, $self->error_log;
    return @bad;
}

sub http {
    my ($self, $method, $path, %o) = @_;
    my $ua = HTTP::Tiny->new(timeout => $o{timeout} || 30,
                             keep_alive => 0);
    my %h = %{ $o{headers} || {} };
    $h{Authorization} = "Bearer $o{token}" if $o{token};
    my %req = (headers => \%h);
    if (exists $o{json}) {
        $req{content} = ref $o{json} ? encode_json($o{json}) : $o{json};
        $h{'Content-Type'} ||= 'application/json';
    } elsif (defined $o{body}) {
        $req{content} = $o{body};
    }
    my $port = $o{port} || $self->{port};
    my $res = $ua->request($method, "http://127.0.0.1:$port$path", \%req);
    my $r = { status => $res->{status}, headers => $res->{headers},
              body => $res->{content} };
    if (($res->{headers}{'content-type'} || '') =~ m{application/json}) {
        $r->{json} = eval { decode_json($res->{content}) };
    }
    return $r;
}

sub get  { my $s = shift; $s->http('GET', @_) }
sub post { my $s = shift; $s->http('POST', @_) }

# Check the error log now (also done at the end of every test).
sub log_clean_ok {
    my ($self, $name) = @_;
    my @bad = $self->log_problems;
    ok(!@bad, $name || 'error log has no alert, crit, emerg or sanitizer '
                     . 'report') or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);
}

sub finish {
    my ($self) = @_;
    return if $self->{finished}++;
    my $had_nginx = $self->{nginx} || $self->{port};
    $self->stop_nginx;
    $self->log_clean_ok if $had_nginx;
    $self->stop_pg unless $self->{no_db};
}

# Tests call $t->finish before done_testing; this only stops what a
# failing test left running.
END {
    for my $t (@live) {
        next if $t->{finished};
        $t->stop_nginx;
        $t->stop_pg unless $t->{no_db};
    }
}

# --- Accounts and dealerships for the API tests (t/10-12) ---

sub patch { my $s = shift; $s->http('PATCH', @_) }
sub del   { my $s = shift; $s->http('DELETE', @_) }

# A value as an SQL literal, for the psql helpers below (tests only).
sub sql_quote {
    my ($v) = @_;
    return 'NULL' unless defined $v;
    $v =~ s/'/''/g;
    return "'$v'";
}

# start_nginx with the default locations and the mail outbox in the test's
# directory ($t->dir . '/outbox'), unless the config names one itself.
sub start_api {
    my ($self, %o) = @_;
    my $outbox = "$self->{dir}/outbox";
    mkdir $outbox;
    # the workers (nobody, when the test runs as root) write the outbox
    system('chown', 'nobody', $outbox) if $> == 0;
    my $mail = $self->config_text(%o) =~ /^\s*avatar_mail\b/m ? ''
             : "avatar_mail outbox dir=$outbox;";
    $o{http} = join "\n", grep { length } $mail, $o{http} // '';
    return $self->start_nginx(%o);
}

# The first super admin, by avatarctl bootstrap-admin; returns its id.
sub bootstrap_admin {
    my ($self, $email, $password) = @_;
    my ($rc, $out) = $self->avatarctl('bootstrap-admin', '--database',
                                      $self->{conninfo}, '--email', $email,
                                      '--password', $password);
    die "bootstrap-admin failed: $out" if $rc;
    return 0 + $self->psql('SELECT id FROM users WHERE lower(email) ='
                           . ' lower(' . sql_quote($email) . ')');
}

# POST /api/v1/auth/login: the access token (and, in list context, the
# whole answer); dies when the login fails.
sub login {
    my ($self, $email, $password) = @_;
    my $r = $self->post('/api/v1/auth/login',
                        json => { email => $email, password => $password });
    die "login of $email failed: $r->{status} " . ($r->{body} // '')
        unless $r->{status} == 200 && $r->{json} && $r->{json}{access_token};
    return wantarray ? ($r->{json}{access_token}, $r->{json})
                     : $r->{json}{access_token};
}

# A dealership written straight into the database; returns its id.
sub make_dealership {
    my ($self, $name, %o) = @_;
    my $active = !exists $o{is_active} || $o{is_active} ? 'true' : 'false';
    return 0 + $self->psql('INSERT INTO dealerships (name, is_active)'
                           . ' VALUES (' . sql_quote($name) . ", $active)"
                           . ' RETURNING id');
}

# An account written straight into the database, active and verified,
# with the password of the existing account `like` (an e-mail address), so
# that fixtures cost no bcrypt: create_user(email => ..., like => ...,
# role => 'user', dealership_id => undef, first_name, last_name,
# is_active => 1).  Returns its id (a number, so JSON sends one).
sub create_user {
    my ($self, %o) = @_;
    die "create_user needs email and like" unless $o{email} && $o{like};
    my $active = !exists $o{is_active} || $o{is_active} ? 'true' : 'false';
    return 0 + $self->psql(
        'INSERT INTO users (email, password_hash, first_name, last_name,'
      . ' role, dealership_id, is_active, is_verified) SELECT '
      . join(', ', sql_quote($o{email}), 'password_hash',
             sql_quote($o{first_name} // 'Test'),
             sql_quote($o{last_name} // 'User'),
             sql_quote($o{role} // 'user'),
             defined $o{dealership_id} ? int($o{dealership_id}) : 'NULL',
             $active, 'true')
      . ' FROM users WHERE lower(email) = lower(' . sql_quote($o{like})
      . ') RETURNING id');
}

# --- Shared by the tests of providers, uploads and streams ---

# wait_for(sub { ... }, $secs): poll every 50 ms until the condition holds
# (1) or the time is up (0).
sub wait_for {
    my ($cond, $secs) = @_;
    for (1 .. $secs * 20) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

# start_mock('pinecone.pl', @args): a mock of tools/mock/ on a free port,
# alive while its stdin is open (until the test ends); returns
# ($pid, $port, $stdin).
sub start_mock {
    my ($script, @args) = @_;
    my ($out, $in);
    my $pid = open2($out, $in, 'perl', "$TOP/tools/mock/$script",
                    '--watch-stdin', '--quiet', @args);
    chomp(my $port = <$out> // '');
    die "the mock $script did not start\n" unless $port =~ /^\d+$/;
    return ($pid, $port, $in);
}

# The events of a Server-Sent Events body, in order: [[name, data], ...].
sub sse_events {
    my ($body) = @_;
    my @ev;
    for my $block (split /\n\n/, $body // '') {
        my ($event) = $block =~ /^event: (\S+)$/m;
        my ($data) = $block =~ /^data: (.*)$/m;
        push @ev, [$event, decode_json($data)] if defined $event;
    }
    return @ev;
}

# POST /api/v1/rag/{id}/upload/{topic} with files [[name, content], ...]
# as multipart/form-data; the answer.
sub upload {
    my ($self, $id, $topic, $token, @files) = @_;
    my $b = 'AvAtArBoUnDaRy' . int(rand(1e9));
    my $body = '';
    for my $f (@files) {
        my ($name, $content, $field) = @$f;
        $body .= "--$b\r\nContent-Disposition: form-data; name=\""
               . ($field // 'files') . "\"; filename=\"$name\"\r\n"
               . "Content-Type: application/octet-stream\r\n\r\n"
               . "$content\r\n";
    }
    $body .= "--$b--\r\n";
    return $self->http('POST', "/api/v1/rag/$id/upload/$topic",
                       token => $token, body => $body,
                       headers => { 'Content-Type' =>
                                    "multipart/form-data; boundary=$b" });
}


# --- A WebSocket client (RFC 6455) for the voice sockets ---
#
#   my $ws = $t->ws_connect('/api/v1/voice/ws/vad/c1', token => $tok);
#       options: token (sent as ?token=), protocol (Sec-WebSocket-Protocol),
#       origin, headers => { name => value, or undef to leave it out },
#       method, http => '1.0', extra => bytes sent right after the
#       handshake, rcvbuf => SO_RCVBUF before connecting, port,
#       tls => 1 (through "openssl s_client")
#   $ws->{status}, $ws->{headers}{lc name}, $ws->{json}: the answer;
#   $ws->{accept_ok}: Sec-WebSocket-Accept is right for our key
#   $ws->send_text($s), send_binary($b), send_ping($p), send_close($code,
#       $reason), send_frame($opcode, $payload, fin => 0, mask => 0,
#       rsv => 0x40), send_raw($bytes); AvatarTest::WS::frame(...) encodes
#   $ws->recv_frame($secs): {op, fin, rsv, masked, payload, code, reason},
#       {eof => 1} once the server hung up, undef on timeout
#   $ws->recv_json($secs): the next text message, decoded; control frames
#       skipped (pong payloads kept in $ws->{pongs}); undef after a close
#       frame (kept in $ws->{close}), at EOF or on timeout
#   $ws->close_frame($secs): reads up to the close frame: ($code, $reason)
#   $ws->wait_eof($secs): 1 once the server has hung up

sub ws_connect {
    my ($self, $path, %o) = @_;
    return AvatarTest::WS->connect($o{port} || $self->{port}, $path, %o);
}

package AvatarTest::WS;

use Digest::SHA qw(sha1_base64);
use IO::Select;
use MIME::Base64 qw(encode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use Time::HiRes qw(time);

sub frame {
    my ($op, $payload, %o) = @_;
    $payload //= '';
    my $n = length $payload;
    my $mask = $o{mask} // 1;
    my $b = chr((($o{fin} // 1) ? 0x80 : 0) | ($o{rsv} // 0) | $op);
    my $m = $mask ? 0x80 : 0;
    if ($n < 126) {
        $b .= chr($m | $n);
    } elsif ($n <= 0xffff) {
        $b .= chr($m | 126) . pack('n', $n);
    } else {
        $b .= chr($m | 127) . pack('Q>', $n);
    }
    if ($mask) {
        my $key = pack('N', int(rand(2**32)));
        $b .= $key;
        $payload = $payload ^ substr($key x (int($n / 4) + 1), 0, $n);
    }
    return $b . $payload;
}

sub connect {
    my ($class, $port, $path, %o) = @_;
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $self = bless { buf => '', key => $key, pongs => [] }, $class;
    # a peer that hung up makes writes fail, not kill the test
    $SIG{PIPE} = 'IGNORE';
    if ($o{tls}) {
        $self->{pid} = IPC::Open2::open2(my $rd, my $wr, 'sh', '-c',
            "exec openssl s_client -connect 127.0.0.1:$port -quiet"
          . " -servername localhost 2>/dev/null");
        binmode $_ for $rd, $wr;
        @$self{qw(rd wr)} = ($rd, $wr);
    } else {
        my $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
        setsockopt($s, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf})
            or die "SO_RCVBUF: $!" if $o{rcvbuf};
        $s->connect(pack_sockaddr_in($port, inet_aton("127.0.0.1")))
            or die "connect: $!";
        binmode $s;
        @$self{qw(rd wr)} = ($s, $s);
    }
    if (defined $o{token}) {
        $path .= ($path =~ /\?/ ? '&' : '?') . "token=$o{token}";
    }
    my %h = (Host => "127.0.0.1:$port", Upgrade => 'websocket',
             Connection => 'Upgrade', 'Sec-WebSocket-Key' => $key,
             'Sec-WebSocket-Version' => 13);
    $h{Origin} = $o{origin} if defined $o{origin};
    $h{'Sec-WebSocket-Protocol'} = $o{protocol} if defined $o{protocol};
    while (my ($k, $v) = each %{ $o{headers} || {} }) {
        if (defined $v) { $h{$k} = $v } else { delete $h{$k} }
    }
    my $req = ($o{method} || 'GET') . " $path HTTP/" . ($o{http} || '1.1')
            . "\r\n" . join('', map { "$_: $h{$_}\r\n" } sort keys %h)
            . "\r\n" . ($o{extra} // '');
    $self->send_raw($req);

    my $deadline = time + ($o{timeout} || 10);
    while ($self->{buf} !~ /\r\n\r\n/) {
        last if $self->{eof} || time > $deadline;
        $self->_fill($deadline - time);
    }
    my $end = index($self->{buf}, "\r\n\r\n");
    die "no answer to the handshake\n" if $end < 0;
    my $head = substr($self->{buf}, 0, $end + 4, '');
    my ($status_line, @lines) = split /\r\n/, $head;
    ($self->{status}) = $status_line =~ m{^HTTP/1\.[01] (\d{3})};
    $self->{status_line} = $status_line;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $self->{headers}{lc $k} = $v;
    }
    $self->{accept_ok} = ($self->{headers}{'sec-websocket-accept'} // '')
        eq sha1_base64($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11') . '=';
    if (($self->{status} // 0) != 101) {
        my $len = $self->{headers}{'content-length'} // 0;
        while (length $self->{buf} < $len && !$self->{eof}
               && time < $deadline) {
            $self->_fill($deadline - time);
        }
        $self->{body} = $self->{buf};
        $self->{json} = eval { JSON::PP::decode_json($self->{body}) };
    }
    return $self;
}

sub send_raw {
    my ($self, $bytes) = @_;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($self->{wr}, $bytes, length($bytes) - $off, $off);
        return 0 unless defined $n;
        $off += $n;
    }
    return 1;
}

sub send_frame {
    my ($self, $op, $payload, %o) = @_;
    return $self->send_raw(frame($op, $payload, %o));
}

sub send_text   { $_[0]->send_frame(1, $_[1]) }
sub send_binary { $_[0]->send_frame(2, $_[1]) }
sub send_ping   { $_[0]->send_frame(9, $_[1]) }

sub send_close {
    my ($self, $code, $reason) = @_;
    return $self->send_frame(8, defined $code
                             ? pack('n', $code) . ($reason // '') : '');
}

sub _fill {
    my ($self, $secs) = @_;
    return if $secs <= 0;
    return unless IO::Select->new($self->{rd})->can_read($secs);
    my $n = sysread($self->{rd}, my $chunk, 65536);
    if (!$n) {
        $self->{reset} = 1 unless defined $n;
        $self->{eof} = 1;
        return;
    }
    $self->{buf} .= $chunk;
}

sub _parse {
    my ($self) = @_;
    my $b = \$self->{buf};
    return if length $$b < 2;
    my ($b0, $b1) = unpack('CC', $$b);
    my ($len, $off) = ($b1 & 0x7f, 2);
    if ($len == 126) {
        return if length $$b < 4;
        ($len, $off) = (unpack('n', substr($$b, 2, 2)), 4);
    } elsif ($len == 127) {
        return if length $$b < 10;
        ($len, $off) = (unpack('Q>', substr($$b, 2, 8)), 10);
    }
    my $key = '';
    if ($b1 & 0x80) {
        return if length $$b < $off + 4;
        $key = substr($$b, $off, 4);
        $off += 4;
    }
    return if length $$b < $off + $len;
    my $payload = substr($$b, $off, $len);
    substr($$b, 0, $off + $len) = '';
    $payload ^= substr($key x (int($len / 4) + 1), 0, $len) if length $key;
    my $f = { op => $b0 & 0x0f, fin => $b0 >> 7, rsv => $b0 & 0x70,
              masked => ($b1 & 0x80) ? 1 : 0, payload => $payload };
    if ($f->{op} == 8 && $len >= 2) {
        $f->{code} = unpack('n', $payload);
        $f->{reason} = substr($payload, 2);
    }
    return $f;
}

sub recv_frame {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 5);
    for (;;) {
        my $f = $self->_parse;
        return $f if $f;
        return { eof => 1 } if $self->{eof};
        return undef if time >= $deadline;
        $self->_fill($deadline - time);
    }
}

# the next data message: {op, data}, a close frame, {eof => 1} or undef
sub recv_message {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 5);
    my ($op, $data);
    for (;;) {
        my $f = $self->recv_frame($deadline - time) or return undef;
        return $f if $f->{eof} || $f->{op} == 8;
        if ($f->{op} == 9 || $f->{op} == 10) {
            push @{ $self->{pongs} }, $f->{payload} if $f->{op} == 10;
            next;
        }
        ($op, $data) = ($f->{op}, '') if $f->{op} != 0;
        $data .= $f->{payload};
        return { op => $op, data => $data } if $f->{fin};
    }
}

sub recv_json {
    my ($self, $secs) = @_;
    for (;;) {
        my $m = $self->recv_message($secs) or return undef;
        if ($m->{eof} || ($m->{op} // 0) == 8) {
            $self->{close} = $m unless $m->{eof};
            return undef;
        }
        next unless $m->{op} == 1;
        return JSON::PP::decode_json($m->{data});
    }
}

sub close_frame {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 5);
    for (;;) {
        my $f = $self->recv_frame($deadline - time) or return;
        return if $f->{eof};
        return ($f->{code}, $f->{reason}) if $f->{op} == 8;
    }
}

sub wait_eof {
    my ($self, $secs) = @_;
    my $deadline = time + ($secs // 5);
    until ($self->{eof}) {
        return 0 if time >= $deadline;
        $self->{buf} = '';
        $self->_fill($deadline - time);
    }
    return 1;
}

sub close {
    my ($self) = @_;
    CORE::close($self->{wr});
    CORE::close($self->{rd});
    if ($self->{pid}) {
        kill 'TERM', $self->{pid};
        waitpid($self->{pid}, 0);
        delete $self->{pid};
    }
}

sub DESTROY { $_[0]->close if $_[0]{pid} }

package AvatarTest;


1;
