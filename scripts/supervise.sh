#!/usr/bin/env bash
# Keep a long-running command running: start it again whenever it exits.
# `make demo` runs the job worker under it, because procrastinate's worker stops
# itself when it loses the database (a PostgreSQL restart), and imports queued
# after that would otherwise wait for someone to notice. TERM or INT stops both.
set -u
child=
trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null; fi; exit 0' INT TERM
while true; do
  "$@" &
  child=$!
  wait "$child" && status=0 || status=$?
  echo "supervise: '$*' exited with status $status; starting it again in 2 s" >&2
  sleep 2
done
