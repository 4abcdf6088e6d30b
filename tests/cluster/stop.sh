#!/usr/bin/env bash
# Stop the test SLURM started by tests/cluster/start.sh, by the pids in its state dir.
# Usage: tests/cluster/stop.sh [STATE_DIR]   (default: $RETINAFLOW_SLURM_DIR, then /tmp/retinaflow-slurm)
# Cancels the cluster's jobs, then stops slurmd, slurmctld and munged in that order, waiting for
# each to exit (SIGKILL after 15 s). Safe to call twice, or when start.sh failed half-way.
# The state dir (config, logs) is kept for inspection.
set -uo pipefail

state=${1:-${RETINAFLOW_SLURM_DIR:-/tmp/retinaflow-slurm}}
if [[ ! -d $state ]]; then
    echo "tests/cluster/stop.sh: no state dir $state, nothing to stop"
    exit 0
fi
state=$(cd "$state" && pwd)
export SLURM_CONF=$state/slurm.conf

running_pid() { # running_pid PIDFILE NAME: print the pid if it names a live process called NAME
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$2" ]] || return 1
    # An exited daemon whose parent (pid 1 in a container) does not reap it is a zombie: gone.
    [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    echo "$pid"
}

stop_daemon() { # stop_daemon PIDFILE NAME
    local pid i
    pid=$(running_pid "$1" "$2") || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        running_pid "$1" "$2" >/dev/null || break
        sleep 0.1
    done
    if running_pid "$1" "$2" >/dev/null; then
        echo "tests/cluster/stop.sh: $2 ($pid) ignored SIGTERM for 15s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$1"
    echo "tests/cluster/stop.sh: stopped $2 ($pid)"
}

# Jobs first, while the controller still answers: their slurmstepd processes outlive slurmd.
if running_pid "$state/run/slurmctld.pid" slurmctld >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
fi

stop_daemon "$state/run/slurmd.pid" slurmd
stop_daemon "$state/run/slurmctld.pid" slurmctld
# munged writes its pid file inside munge/; start.sh copies it to run/
stop_daemon "$state/munge/munged.pid" munged
rm -f "$state/run/munged.pid" "$state/pids"
# start.sh linked /run/slurm/conf to the state dir for srun inside jobs; drop the link if ours.
if [[ -L /run/slurm/conf && $(readlink /run/slurm/conf) == "$state" ]]; then
    rm -f /run/slurm/conf
fi
exit 0
