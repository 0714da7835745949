#!/usr/bin/env bash
# Entrypoint of the stand-in PostgreSQL image (docker/local-images/postgres). Does for
# docker/compose.yaml what the official image's entrypoint does, for `postgres …` commands:
#   - POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (read while still root), POSTGRES_USER
#     (default postgres), POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS;
#   - as root: makes PGDATA (mode 0700) and the socket directory, gives them to postgres and runs
#     itself again as postgres (gosu);
#   - on an empty PGDATA only: initdb with POSTGRES_USER as the superuser and its password;
#     `host all all all <password_encryption>` appended to pg_hba.conf; a server on the socket
#     only (listen_addresses '') with the command's own options; POSTGRES_DB created; every file
#     of /docker-entrypoint-initdb.d in name order (*.sh run when executable, else sourced — so
#     they see POSTGRES_USER, POSTGRES_DB, PGDATA —, *.sql through psql); that server stopped;
#   - then execs the command (the real server, on every address).
set -Eeo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) exec "$@" ;; esac
done

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set" >&2
        exit 1
    fi
    POSTGRES_PASSWORD="$(<"$POSTGRES_PASSWORD_FILE")"
fi
unset POSTGRES_PASSWORD_FILE
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    chmod 3775 /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

psql_init() {
    PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "docker-entrypoint.sh: $PGDATA holds a database; no initialisation"
else
    if [ -z "$POSTGRES_PASSWORD" ]; then
        echo "error: the database is not initialised and POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is empty" >&2
        exit 1
    fi
    ls /docker-entrypoint-initdb.d/ >/dev/null
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-}
    shift   # "postgres": what is left are the server's options
    auth="$(postgres -C password_encryption "$@")"
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

    export PGPASSWORD="$POSTGRES_PASSWORD"
    NOTIFY_SOCKET='' PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
        -o "$(printf '%q ' "$@" -c "listen_addresses=" -p "${PGPORT:-5432}")" -w start
    if [ -z "$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")" ]; then
        psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    echo "docker-entrypoint.sh: running $f"; "$f"
                else
                    echo "docker-entrypoint.sh: sourcing $f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql) echo "docker-entrypoint.sh: running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
            *) if [ -e "$f" ]; then echo "docker-entrypoint.sh: ignoring $f"; fi ;;
        esac
    done
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD
    echo "docker-entrypoint.sh: initialisation done"
    set -- postgres "$@"
fi

exec "$@"
