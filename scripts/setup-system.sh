#!/usr/bin/env bash
# Bring a Debian/Ubuntu machine to the point where the registry can run: system
# packages, a running PostgreSQL with PostGIS on localhost, and the project's role
# and database. Safe to re-run: every step checks before it acts, so a second run
# installs nothing and takes about a second.
set -euo pipefail

DB_NAME=${PGDATABASE:-landreg}
DB_USER=${PGUSER:-landreg}
DB_PASSWORD=${PGPASSWORD:-landreg}
DB_HOST=${PGHOST:-127.0.0.1}
DB_PORT=${PGPORT:-5432}

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=no
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = no ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=yes
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

pg_major() {
  # The newest installed server version, e.g. 15; empty when none is installed.
  ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1
}

# 1. PostgreSQL itself, when the machine has none.
if [ -z "$(pg_major)" ]; then
  apt_install postgresql postgresql-contrib
fi
PG_MAJOR=$(pg_major)

# 2. PostGIS for that server, GDAL/GEOS/PROJ (GeoDjango loads them via ctypes),
#    gettext for the translations and Chromium for the browser tests.
apt_install "postgresql-${PG_MAJOR}-postgis-3" gdal-bin libgdal-dev gettext \
  chromium fonts-noto-cjk

# 3. A running cluster on localhost. Debian's clusters are managed by
#    pg_ctlcluster; --skip-systemctl-redirect lets it work where systemd is absent.
if ! pg_isready -q -h "$DB_HOST" -p "$DB_PORT"; then
  if [ -z "$(pg_lsclusters -h 2>/dev/null | awk -v v="$PG_MAJOR" '$1 == v')" ]; then
    log "creating PostgreSQL ${PG_MAJOR} cluster"
    as_root pg_createcluster "$PG_MAJOR" main
  fi
  log "starting PostgreSQL ${PG_MAJOR}"
  as_root pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
  for _ in $(seq 1 30); do
    pg_isready -q -h "$DB_HOST" -p "$DB_PORT" && break
    sleep 1
  done
  pg_isready -h "$DB_HOST" -p "$DB_PORT"
fi

# 4. Role, database and extension, made as the postgres superuser over the local
#    socket (peer authentication works on a stock install and under trust alike).
#    PostGIS also goes into template1 so that the test database Django creates
#    inherits it: the application role needs CREATEDB, never SUPERUSER.
psql_su() {
  as_root runuser -u postgres -- env PGOPTIONS="-c client_min_messages=warning" \
    psql -X -q -v ON_ERROR_STOP=1 "$@"
}

psql_su -d postgres <<SQL
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '${DB_USER}', '${DB_PASSWORD}')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${DB_USER}') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '${DB_NAME}', '${DB_USER}')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}') \gexec
SQL
psql_su -d template1 -c "CREATE EXTENSION IF NOT EXISTS postgis"
psql_su -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS postgis"
log "PostgreSQL ${PG_MAJOR} with PostGIS ready: ${DB_USER}@${DB_HOST}:${DB_PORT}/${DB_NAME}"
