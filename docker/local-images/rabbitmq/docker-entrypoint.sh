#!/usr/bin/env bash
# Entrypoint of the stand-in RabbitMQ image (docker/local-images/rabbitmq). Does for
# docker/compose.yaml what the official image's entrypoint does:
#   - started as root for a `rabbitmq*` command: gives /var/lib/rabbitmq (a fresh volume, the
#     cookie compose installed) to the rabbitmq user and runs itself again as that user;
#   - uses long node names when the hostname has a domain;
#   - runs the server in the foreground: Debian's /usr/sbin/rabbitmq-server would send its output
#     to /var/log/rabbitmq/startup_log instead of the container's log.
set -euo pipefail

if [[ ${1:-} == rabbitmq* ]] && [ "$(id -u)" = 0 ]; then
    if [ "$1" = rabbitmq-server ]; then
        chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    fi
    exec gosu rabbitmq "${BASH_SOURCE[0]}" "$@"
fi

if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
    export RABBITMQ_USE_LONGNAME=true
fi

if [ "${1:-}" = rabbitmq-server ]; then
    shift
    # With this set, the server script execs the Erlang VM instead of waiting for it.
    export RUNNING_UNDER_SYSTEMD=true
    set -- /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
