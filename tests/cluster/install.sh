#!/usr/bin/env bash
# Install the Debian packages of a one-machine SLURM (controller, node daemon, clients, munge).
# Needs root and a reachable apt mirror. Usage: tests/cluster/install.sh
set -euo pipefail
exec "$(dirname "$0")/../apt_install.sh" tests/cluster/install.sh slurmctld slurmd slurm-client munge
