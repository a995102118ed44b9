#!/usr/bin/env bash
# Bring up the whole production stack: packages, services, profile + daemon. Idempotent; run as root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/install.sh"
bash "$here/services.sh"
bash "$here/profile.sh"
