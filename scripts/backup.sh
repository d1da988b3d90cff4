#!/usr/bin/env bash
# Back up the registry's database: one consistent pg_dump in the custom format.
#
#   scripts/backup.sh [FILE]
#
# FILE defaults to var/backups/landreg-<UTC time>.dump; a FILE.sha256 is written
# beside it. The server and database come from DATABASE_URL, else from the libpq
# variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE; the app's defaults).
# pg_dump reads one snapshot, so the backup is consistent while the registry keeps
# working. The dump holds owners' personal data: it is written readable by its
# owner only. Owners and grants are left out, so any role may restore it.
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" \
  PGUSER="${PGUSER:-landreg}" PGPASSWORD="${PGPASSWORD:-landreg}" \
  PGDATABASE="${PGDATABASE:-landreg}"
target=()
if [[ -n "${DATABASE_URL:-}" ]]; then
  target=(--dbname="$DATABASE_URL")
fi

file="${1:-var/backups/landreg-$(date -u +%Y%m%dT%H%M%SZ).dump}"
mkdir -p "$(dirname "$file")"
umask 077
partial="$file.partial"
trap 'rm -f "$partial"' EXIT

pg_dump "${target[@]}" --format=custom --compress=6 --no-owner --no-privileges \
  --file="$partial"
# A dump that pg_restore cannot read is no backup: check its table of contents.
pg_restore --list "$partial" >/dev/null
mv "$partial" "$file"
(cd "$(dirname "$file")" && sha256sum "$(basename "$file")" >"$(basename "$file").sha256")
echo "$file"
