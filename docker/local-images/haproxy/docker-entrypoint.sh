#!/bin/sh
# Entrypoint of the stand-in HAProxy image (docker/local-images/haproxy), as the official image's:
# options alone are HAProxy's, and `haproxy …` runs in master-worker mode in the foreground.
set -e
case "$1" in -*) set -- haproxy "$@" ;; esac
if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
