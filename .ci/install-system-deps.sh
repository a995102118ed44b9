#!/usr/bin/env bash
# Install the Debian packages aiida-les needs (CP2K for DFT labels, Open MPI to run it), only when missing.
set -euo pipefail
missing=()
command -v cp2k.psmp >/dev/null 2>&1 || missing+=(cp2k)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "aiida-les needs the Debian packages: ${missing[*]}. Run as root: apt-get install -y ${missing[*]}" >&2
  echo "Continuing without them: DFT labelling and the tests that need CP2K will not run." >&2
  exit 0
fi
echo "Installing Debian packages: ${missing[*]} (apt-get, a few minutes the first time)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
