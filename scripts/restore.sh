#!/usr/bin/env bash
# Restore a backup of scripts/backup.sh into a NEW database, all or nothing.
#
#   scripts/restore.sh FILE DATABASE
#
# The server comes from DATABASE_URL (its database part is replaced by DATABASE)
# or from the libpq variables, as for backup.sh. An existing DATABASE is refused:
# restore beside the old one, check it, then switch DATABASE_URL over (or rename
# the databases while the registry is stopped). The new database is made from
# template1, which holds PostGIS (scripts/setup-system.sh puts it there), so the
# application role needs CREATEDB only; the dump's own CREATE/COMMENT EXTENSION
# entries, which only a superuser may run, are skipped. The restore is one
# transaction (--single-transaction --exit-on-error): it lands whole or not at
# all. The statistics tally and the history come back as they were dumped; the
# triggers (append-only history, tally) are restored after the data, so they do
# not fire for it.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FILE DATABASE" >&2
  exit 2
fi
file="$1" name="$2"
if [[ ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
  echo "restore: database names are letters, digits and _: $name" >&2
  exit 2
fi
if [[ -f "$file.sha256" ]]; then
  (cd "$(dirname "$file")" && sha256sum --check --quiet "$(basename "$file").sha256")
fi

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" \
  PGUSER="${PGUSER:-landreg}" PGPASSWORD="${PGPASSWORD:-landreg}"
if [[ -n "${DATABASE_URL:-}" ]]; then
  server="${DATABASE_URL%%\?*}"
  server="${server%/*}"
  admin=(--dbname="$server/postgres")
  into=(--dbname="$server/$name")
else
  admin=(--dbname=postgres)
  into=(--dbname="$name")
fi

exists=$(psql "${admin[@]}" -XAtc \
  "SELECT count(*) FROM pg_database WHERE datname = '$name'")
if [[ "$exists" != 0 ]]; then
  echo "restore: database $name exists; restore into a new one" >&2
  exit 1
fi
psql "${admin[@]}" -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\" TEMPLATE template1"

list=$(mktemp)
trap 'rm -f "$list"' EXIT
# PostGIS's own rows of spatial_ref_sys come with the extension; rows someone
# added (a custom CRS) are dumped, but only a superuser may write that table.
custom=$(pg_restore --data-only --table=spatial_ref_sys --file=- "$file" |
  grep -c '^[0-9]' || true)
if [[ "$custom" != 0 ]]; then
  echo "restore: the dump holds $custom custom spatial_ref_sys rows; a superuser" \
    "must add them again (pg_restore --data-only --table=spatial_ref_sys)" >&2
fi
pg_restore --list "$file" |
  grep -Ev ' (EXTENSION|COMMENT) - (EXTENSION )?postgis|TABLE DATA public spatial_ref_sys ' \
    >"$list"
if ! pg_restore "${into[@]}" --no-owner --no-privileges --single-transaction \
  --exit-on-error --use-list="$list" "$file"; then
  psql "${admin[@]}" -Xq -c "DROP DATABASE \"$name\""
  echo "restore: failed; nothing was kept" >&2
  exit 1
fi
# Fresh planner statistics (only the tables the role owns; no notices about
# the catalogues it may not analyse).
psql "${into[@]}" -Xq -c "SET client_min_messages = error" -c "ANALYZE"
echo "restored $file into $name"
