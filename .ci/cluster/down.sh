#!/usr/bin/env bash
# Stop the daemon of the production profile and the SLURM daemons started by services.sh (by their pid files).
# PostgreSQL, RabbitMQ and munge keep running (other profiles may use them); pass --all to stop them too.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export AIIDA_PATH=${AIIDA_PATH:-$repo/.aiida}
export PATH=${LES_BIN:-$repo/.venv/bin}:$PATH
PROFILE=${LES_PROFILE:-les-prod}
verdi -p "$PROFILE" daemon stop 2>/dev/null || true
for pidfile in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid; do
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill "$(cat "$pidfile")"; fi
done
if [ "${1:-}" = "--all" ]; then
  service rabbitmq-server stop || true
  pg_ctlcluster "${PG_VERSION:-15}" main stop || true
  if [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
fi
echo "cluster/down: stopped"
