#!/bin/sh
# Writes a runnable nginx.conf from the drop-in templates in conf/, with the
# paths of this checkout: the module from the build directory, the web app
# from html/dist, logs, pid and temporary files under OUTDIR.
#
#   tools/conf.sh OUTDIR CONNINFO SECRET_FILE PORT [WORKERS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?outdir}; db=${2:?conninfo}; secret=${3:?secret file}
port=${4:?port}; workers=${5:-2}
build=${AVC_BUILD:-$top/build}
mkdir -p "$out/logs" "$out/tmp"
out=$(cd "$out" && pwd)

for f in avatar.conf avatar-headers.conf; do
    sed -e "s|/etc/nginx/avatar|$out/avatar|g" \
        -e "s|/var/log/nginx/|$out/logs/|g" "$top/conf/$f" > "$out/$f"
done
sed -e "s|^avatar_database .*|avatar_database \"$db\";|" \
    -e "s|^avatar_secret .*|avatar_secret file:$secret;|" \
    -e "s|^avatar_public_url .*|avatar_public_url http://127.0.0.1:$port;|" \
    -e "s|^avatar_signup .*|avatar_signup ${AVATAR_SIGNUP:-invite};|" \
    "$top/conf/avatar-http.conf" > "$out/avatar-http.conf"

user_line="user $(id -un);"
[ "$(id -u)" = 0 ] && user_line="user root;"
sed -e "s|^load_module .*|load_module $build/ngx_http_avatar_module.so;|" \
    -e "s|^user .*|$user_line|" \
    -e "s|^worker_processes .*|worker_processes $workers;|" \
    -e "s|^pid .*|pid $out/nginx.pid;|" \
    -e "s|^error_log .*|error_log stderr notice;|" \
    -e "s|access_log /var/log/nginx/access.log|access_log $out/logs/access.log|" \
    -e "s|/etc/nginx/avatar|$out/avatar|g" \
    -e "s|listen 80;|listen 127.0.0.1:$port;|" \
    -e "/listen \[::\]:80;/d" \
    -e "s|root /var/www/avatar-adam/html/dist;|root $top/html/dist;|" \
    -e "/^http {/a\\
    client_body_temp_path $out/tmp/body;\\
    proxy_temp_path $out/tmp/proxy;\\
    fastcgi_temp_path $out/tmp/fastcgi;\\
    uwsgi_temp_path $out/tmp/uwsgi;\\
    scgi_temp_path $out/tmp/scgi;" \
    "$top/conf/nginx.conf" > "$out/nginx.conf"
