#!/usr/bin/env bash
# Install the Debian packages of the production stack when missing: PostgreSQL, RabbitMQ, SLURM (slurmctld + slurmd)
# and munge. Idempotent; needs root.
set -euo pipefail
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing+=(munge)
if [ ${#missing[@]} -eq 0 ]; then
  echo "cluster/install: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cluster/install: need root to install: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "cluster/install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: the packages must not try to start services through systemd/invoke-rc.d during install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
echo "cluster/install: done"
