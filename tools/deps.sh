#!/bin/sh
# Installs the Debian packages Avatar Adam needs, only those missing.
# Usage: tools/deps.sh build|run|test
# As root it runs apt-get non-interactively; otherwise it prints the exact
# command to run and fails.
set -eu

build="gcc make pkg-config nginx-core nginx-dev libcurl4-openssl-dev
libjansson-dev libpq-dev libcrypt-dev libssl-dev zlib1g-dev libpcre2-dev
libpcre3-dev libzip-dev libxml2-dev poppler-utils nodejs npm
libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us libespeak-ng-dev
espeak-ng-data libmp3lame-dev libavformat-dev libavcodec-dev
libswresample-dev libavutil-dev"
run="postgresql-15 postgresql-client-15 openssl"
test="perl wrk valgrind curl espeak-ng sox lame chromium"

case "${1:-build}" in
    build) want="$build" ;;
    run) want="$build $run" ;;
    test) want="$build $run $test" ;;
    *) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# node and npm may come from outside Debian's packages: accept what works
case "$missing" in
    *nodejs*|*npm*)
        if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
        then
            missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
        fi ;;
esac
[ -z "$(echo "$missing" | tr -d ' ')" ] && exit 0

echo "missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "run as root: apt-get update && DEBIAN_FRONTEND=noninteractive" \
         "apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
