#!/bin/sh
# make run: the whole product on one machine, no keys, no setup.
#
# Reads settings from the environment and from ./.env (the existing app's
# variable names), starts a private PostgreSQL under $AVATAR_VAR (unless
# DATABASE_URL names one), migrates, creates the super admin, writes an
# nginx.conf from conf/ and runs Debian's nginx with the module in the
# foreground.  Ctrl-C stops nginx and PostgreSQL; data stays in $AVATAR_VAR.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# .env: KEY=value lines; the environment wins over the file
if [ -f .env ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue ;; esac
        key=${line%%=*}
        val=${line#*=}
        case "$key" in *[!A-Za-z0-9_]*|'') continue ;; esac
        val=$(printf '%s' "$val" | sed -e 's/^"\(.*\)"$/\1/' \
                                       -e "s/^'\(.*\)'$/\1/")
        eval "isset=\${$key+x}"
        [ -n "$isset" ] || export "$key=$val"
    done < .env
fi

AVATAR_VAR=${AVATAR_VAR:-$top/var}
PORT=${PORT:-8080}
PGPORT=${AVATAR_PG_PORT:-$((PORT + 20000))}
BUILD=${AVC_BUILD:-$top/build}
mkdir -p "$AVATAR_VAR"
AVATAR_VAR=$(cd "$AVATAR_VAR" && pwd)
NGX="$AVATAR_VAR/nginx"
mkdir -p "$NGX/logs" "$NGX/tmp" "$AVATAR_VAR/outbox"

say() { printf 'avatar: %s\n' "$*"; }

# PostgreSQL
own_pg=0
if [ -n "${DATABASE_URL:-}" ]; then
    DB="$DATABASE_URL"
    say "using the database of DATABASE_URL"
else
    DB=$(sh tools/pg.sh start "$AVATAR_VAR/pg" "$PGPORT" avatar)
    own_pg=1
    say "PostgreSQL on 127.0.0.1:$PGPORT, data in $AVATAR_VAR/pg"
fi

cleanup() {
    trap - INT TERM EXIT
    if [ -f "$NGX/nginx.pid" ]; then
        kill -QUIT "$(cat "$NGX/nginx.pid")" 2>/dev/null || true
        i=0
        while [ -f "$NGX/nginx.pid" ] && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
    fi
    [ $own_pg = 1 ] && sh tools/pg.sh stop "$AVATAR_VAR/pg"
    say "stopped"
}
trap cleanup INT TERM EXIT

"$BUILD/avatarctl" migrate --database "$DB" --dir "$top/sql"

# the super admin: printed once, when first created
"$BUILD/avatarctl" bootstrap-admin --database "$DB" \
    --email "${AVATAR_ADMIN_EMAIL:-admin@avatar.local}"

# the signing key: SECRET_KEY, or one generated once and kept
secret="$AVATAR_VAR/secret"
if [ -n "${SECRET_KEY:-}" ]; then
    (umask 077; printf '%s\n' "$SECRET_KEY" > "$secret")
elif [ ! -s "$secret" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n=/+' \
        > "$secret")
fi

# providers: a cloud provider where its key is set, else the embedded one
prov="$NGX/avatar-providers.conf"
: > "$prov"
# one nginx token "key=value" (the whole token quoted)
kv() { printf '"%s=%s"' "$1" "$(printf '%s' "$2" | sed 's/[\\"]/\\&/g')"; }
if [ -n "${OPENROUTER_API_KEY:-}" ]; then
    echo "avatar_llm openrouter" \
        "$(kv base_url "${OPENROUTER_BASE_URL:-https://openrouter.ai/api/v1}")" \
        "$(kv model "${OPENROUTER_MODEL:-openai/gpt-4o}")" \
        "key=env:OPENROUTER_API_KEY;" >> "$prov"
elif [ -n "${OPENAI_API_KEY:-}" ]; then
    echo "avatar_llm openai" \
        "$(kv base_url "${OPENAI_BASE_URL:-https://api.openai.com/v1}")" \
        "$(kv model "${OPENAI_MODEL:-gpt-4o}")" \
        "key=env:OPENAI_API_KEY;" >> "$prov"
fi
if [ -n "${OPENAI_API_KEY:-}" ]; then
    echo "avatar_embeddings openai" \
        "$(kv base_url "${OPENAI_BASE_URL:-https://api.openai.com/v1}")" \
        "$(kv model "${EMBEDDING_MODEL:-text-embedding-3-small}")" \
        "key=env:OPENAI_API_KEY;" >> "$prov"
    echo "avatar_stt openai" \
        "$(kv base_url "${OPENAI_BASE_URL:-https://api.openai.com/v1}")" \
        "key=env:OPENAI_API_KEY;" >> "$prov"
fi
if [ -n "${PINECONE_API_KEY:-}" ] && [ -n "${PINECONE_HOST:-}" ]; then
    echo "avatar_vector_store pinecone $(kv host "$PINECONE_HOST")" \
        "$(kv index "${PINECONE_INDEX_NAME:-avatar}")" \
        "key=env:PINECONE_API_KEY;" >> "$prov"
fi
if [ -n "${ELEVENLABS_API_KEY:-}" ]; then
    echo "avatar_tts elevenlabs" \
        "$(kv base_url "${ELEVENLABS_BASE_URL:-https://api.elevenlabs.io}")" \
        "$(kv voice "${ELEVENLABS_VOICE_ID:-21m00Tcm4TlvDq8ikWAM}")" \
        "key=env:ELEVENLABS_API_KEY;" >> "$prov"
fi
if [ -n "${HEYGEN_API_KEY:-}" ] && [ -n "${HEYGEN_AVATAR_ID:-}" ]; then
    echo "avatar_avatar heygen" \
        "$(kv base_url "${HEYGEN_API_URL:-https://api.liveavatar.com}")" \
        "$(kv avatar_id "$HEYGEN_AVATAR_ID")" \
        "sandbox=${HEYGEN_SANDBOX:-off}" \
        "key=env:HEYGEN_API_KEY;" >> "$prov"
elif [ -n "${HEYGEN_API_KEY:-}" ]; then
    echo "HEYGEN_API_KEY is set without HEYGEN_AVATAR_ID: the built-in" \
         "avatar is used" >&2
fi
mail_extra=""
[ -n "${MAIL_FROM:-}" ] && mail_extra="$mail_extra $(kv from "$MAIL_FROM")"
[ -n "${REPORT_RECIPIENT_EMAIL:-}" ] && \
    mail_extra="$mail_extra $(kv recipients "$REPORT_RECIPIENT_EMAIL")"
if [ -n "${MAILGUN_API_KEY:-}" ] && [ -n "${MAILGUN_DOMAIN:-}" ]; then
    echo "avatar_mail mailgun" \
        "$(kv base_url "${MAILGUN_BASE_URL:-https://api.mailgun.net}")" \
        "$(kv domain "$MAILGUN_DOMAIN") key=env:MAILGUN_API_KEY$mail_extra;" \
        >> "$prov"
else
    echo "avatar_mail outbox $(kv dir "$AVATAR_VAR/outbox")$mail_extra;" \
        >> "$prov"
fi
if [ -n "${BACKEND_CORS_ORIGINS:-}" ]; then
    # a JSON list or a comma-separated list of origins
    origins=$(printf '%s' "$BACKEND_CORS_ORIGINS" | tr -d '[]" ' | tr ',' ' ')
    [ -n "$origins" ] && echo "avatar_cors_origins $origins;" >> "$prov"
fi

# nginx.conf from the templates in conf/, with this checkout's paths
AVC_BUILD="$BUILD" sh tools/conf.sh "$NGX" "$DB" "$secret" "$PORT" \
    "${AVATAR_WORKERS:-2}"
echo "include $prov;" >> "$NGX/avatar-http.conf"

/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" -e stderr -t -q
say "open http://127.0.0.1:$PORT/ (API http://127.0.0.1:$PORT/api/v1/)"
say "admin: ${AVATAR_ADMIN_EMAIL:-admin@avatar.local}; Ctrl-C stops"

/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" -e stderr \
    -g 'daemon off; master_process on;' &
ngx_pid=$!
# wait for nginx; a signal runs cleanup through the trap
wait $ngx_pid || true
