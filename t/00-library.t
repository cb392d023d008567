# The shared library's ABI surface: SONAME, only avc_* exported, exactly
# the functions the public headers declare, and a pkg-config file.
use strict;
use warnings;
use lib 't/lib';
use AvatarTest;
use Test::More;

my $b = $AvatarTest::BUILD;
my $so = "$b/libavatarcore.so.0";
ok(-e $so, 'libavatarcore.so.0 is built');
ok(-e "$b/libavatarcore.a", 'libavatarcore.a is built');
ok(-e "$b/avatarcore.pc", 'avatarcore.pc is built');

my $dyn = `readelf -d $so`;
like($dyn, qr/\(SONAME\)\s+Library soname: \[libavatarcore\.so\.0\]/,
     'SONAME is libavatarcore.so.0');

my @exported = sort map { (split)[2] }
    grep { /^\S+\s+[TDBRVW]\s/ } split /\n/, `nm -D --defined-only $so`;
ok(@exported > 20, 'it exports functions');
my @foreign = grep { !/^avc_/ } @exported;
is_deeply(\@foreign, [], 'every exported symbol starts with avc_')
    or diag "@foreign";

my %declared;
for my $h (glob "$AvatarTest::TOP/libavatarcore/include/avatarcore/*.h") {
    open my $fh, '<', $h or die;
    local $/;
    my $src = <$fh>;
    $src =~ s{/\*.*?\*/}{}gs;
    while ($src =~ /AVC_API\s+[^;(]*?\**\b(avc_\w+)\s*\(/g) {
        $declared{$1} = 1;
    }
}
my %have = map { $_ => 1 } @exported;
my @missing = grep { !$have{$_} } sort keys %declared;
my @undeclared = grep { !$declared{$_} } @exported;
is_deeply(\@missing, [], 'every declared function is exported')
    or diag "@missing";
is_deeply(\@undeclared, [], 'every exported function is declared')
    or diag "@undeclared";

# a C program outside the tree builds against the installed-style flags
my $dir = AvatarTest->new(no_db => 1)->dir;
open my $fh, '>', "$dir/user.c" or die;
print $fh <<'C';
#include <avatarcore/core.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    return strcmp(avc_version(), AVC_VERSION_STRING) == 0
        && avc_version_num() == AVC_VERSION_NUM ? 0 : 1;
}
C
close $fh;
my $inc = "$AvatarTest::TOP/libavatarcore/include";
my $out = `cc -Wall -I$inc -o $dir/user $dir/user.c -L$b -lavatarcore -Wl,-rpath,$b 2>&1`;
is($?, 0, 'a program links the shared library') or diag $out;
my $env = AvatarTest->can('sanitizer_env')->({ dir => $dir });
is(system("$env$dir/user"), 0, '... and sees the version it was built with');

done_testing;
