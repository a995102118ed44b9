#!/usr/bin/env bash
# Create (or reuse) the PostgreSQL role/database and the AiiDA profile `les-prod` (core.psql_dos + core.rabbitmq) in
# $AIIDA_PATH, register the SLURM computer and the codes (`aiida-les setup --scheduler slurm`), set the concurrency
# limits and (re)start the daemon with several workers. Idempotent. Needs the services of services.sh running.
# Environment: AIIDA_PATH (default <repo>/.aiida), LES_PROFILE (les-prod), LES_DB_NAME (les_prod), LES_DB_USER (les),
#   LES_DB_PASSWORD (les-prod-password), LES_DAEMON_WORKERS (4), LES_WORKER_SLOTS (200), LES_BIN (<repo>/.venv/bin).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export AIIDA_PATH=${AIIDA_PATH:-$repo/.aiida}
LES_BIN=${LES_BIN:-$repo/.venv/bin}
export PATH=$LES_BIN:$PATH
PROFILE=${LES_PROFILE:-les-prod}
DB_NAME=${LES_DB_NAME:-les_prod}
DB_USER=${LES_DB_USER:-les}
DB_PASSWORD=${LES_DB_PASSWORD:-les-prod-password}
WORKERS=${LES_DAEMON_WORKERS:-4}
SLOTS=${LES_WORKER_SLOTS:-200}
mkdir -p "$AIIDA_PATH"

psql_admin() { su postgres -c "psql -qAtX -v ON_ERROR_STOP=1 -c \"$1\""; }
if [ -z "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]; then
  psql_admin "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'"
  echo "cluster/profile: created PostgreSQL role $DB_USER"
fi
if [ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
  psql_admin "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0" \
    || psql_admin "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' TEMPLATE template0"
  echo "cluster/profile: created PostgreSQL database $DB_NAME"
fi

verdi config set warnings.rabbitmq_version False >/dev/null
if ! verdi profile list 2>/dev/null | grep -Eq "(^|[[:space:]*])$PROFILE\$"; then
  verdi profile setup core.psql_dos --non-interactive --no-set-as-default \
    --profile-name "$PROFILE" \
    --email les-prod@localhost --first-name LES --last-name Production --institution aiida-les \
    --database-engine postgresql_psycopg --database-hostname localhost --database-port 5432 \
    --database-name "$DB_NAME" --database-username "$DB_USER" --database-password "$DB_PASSWORD" \
    --repository-uri "file://$AIIDA_PATH/repository/$PROFILE" \
    --broker core.rabbitmq
  echo "cluster/profile: created AiiDA profile $PROFILE in $AIIDA_PATH"
fi

# Concurrency: each worker runs at most SLOTS processes at once (workchains waiting on jobs included);
# WORKERS x SLOTS bounds what the daemon holds; the SLURM partitions bound what runs.
verdi -p "$PROFILE" config set daemon.default_workers "$WORKERS" >/dev/null
verdi -p "$PROFILE" config set daemon.worker_process_slots "$SLOTS" >/dev/null
verdi -p "$PROFILE" config set logging.aiida_loglevel REPORT >/dev/null

aiida-les setup --profile "$PROFILE" --scheduler slurm

# Restart so the workers pick up the limits and the codes; submitted processes survive in the broker and database.
verdi -p "$PROFILE" daemon stop --timeout 60 >/dev/null 2>&1 || true
verdi -p "$PROFILE" daemon start --timeout 60 "$WORKERS"
verdi -p "$PROFILE" status || true
echo "cluster/profile: profile $PROFILE ready: $WORKERS workers x $SLOTS slots"
