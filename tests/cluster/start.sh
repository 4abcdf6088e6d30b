#!/usr/bin/env bash
# Start a one-machine SLURM (munged, slurmctld, slurmd) whose whole state lives in one directory.
#
# Usage: tests/cluster/start.sh [STATE_DIR]
#   STATE_DIR defaults to $RETINAFLOW_SLURM_DIR, then /tmp/retinaflow-slurm.
#   Then: export SLURM_CONF=STATE_DIR/slurm.conf   (or: source STATE_DIR/env.sh)
#
# Writes into STATE_DIR: slurm.conf, gres.conf, env.sh, gpu/nvidia{0,1} (two null character
# devices that stand in for GPUs), munge/ (socket, pid, log), ctld/ (controller state),
# spool/ (slurmd), log/{slurmctld,slurmd}.log, run/{munged,slurmctld,slurmd}.pid and pids.
# Nothing is written to /etc/slurm: daemons and clients find the config through SLURM_CONF, and
# srun inside jobs (which does not get SLURM_CONF) through the link /run/slurm/conf -> STATE_DIR.
# The node offers Gres=gpu:2, so `sbatch --gpus=1` is scheduled and sees CUDA_VISIBLE_DEVICES.
# Stop with tests/cluster/stop.sh STATE_DIR. Needs root and tests/cluster/install.sh.
#
# Env: SLURM_START_TIMEOUT (seconds to wait for the node to be idle, default 60),
#      SLURMCTLD_PORT / SLURMD_PORT (default 6817 / 6818).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-${RETINAFLOW_SLURM_DIR:-/tmp/retinaflow-slurm}}
timeout=${SLURM_START_TIMEOUT:-60}
ctld_port=${SLURMCTLD_PORT:-6817}
slurmd_port=${SLURMD_PORT:-6818}

die() {
    echo "tests/cluster/start.sh: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it starts munged, slurmctld and slurmd)"
for bin in munged munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$bin" >/dev/null || die "$bin not found: run tests/cluster/install.sh first"
done
id -u slurm >/dev/null 2>&1 || die "user slurm missing: run tests/cluster/install.sh first"
id -u munge >/dev/null 2>&1 || die "user munge missing: run tests/cluster/install.sh first"
[[ -r /etc/munge/munge.key ]] || die "/etc/munge/munge.key missing (created by the munge package)"

mkdir -p "$state"
state=$(cd "$state" && pwd)
export SLURM_CONF=$state/slurm.conf

alive() { # alive PIDFILE NAME: the pid file names a running process called NAME
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$2" ]] || return 1
    [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]] # zombie: exited, not reaped
}

if alive "$state/run/slurmctld.pid" slurmctld || alive "$state/run/slurmd.pid" slurmd \
    || alive "$state/munge/munged.pid" munged; then
    die "a cluster from $state is still running: tests/cluster/stop.sh $state first"
fi

# The daemons drop to users slurm and munge: every parent of the state dir must be traversable.
for user in slurm munge; do
    runuser -u "$user" -- test -x "$state" \
        || die "user $user cannot enter $state (a parent directory is not world-executable);" \
            "pick another state dir, e.g. one under /tmp"
done

# Inside a job, snakemake's slurm-jobstep plugin runs `srun` with every SLURM_* variable removed
# but a few job ids, so SLURM_CONF does not reach it: srun then looks for /etc/slurm/slurm.conf
# and next /run/slurm/conf/slurm.conf (where slurmd's config-less mode keeps its copy). We link
# /run/slurm/conf to the state dir; /etc/slurm/slurm.conf must not exist or it would win.
run_conf=/run/slurm/conf
[[ ! -e /etc/slurm/slurm.conf ]] \
    || die "/etc/slurm/slurm.conf exists: srun inside test jobs would use it instead of $state"
if [[ -L $run_conf ]]; then
    other=$(readlink "$run_conf")
    if [[ $other != "$state" ]] && alive "$other/run/slurmctld.pid" slurmctld; then
        die "another test cluster ($other) is running and owns $run_conf: stop it first" \
            "(tests/cluster/stop.sh $other)"
    fi
elif [[ -e $run_conf ]]; then
    die "$run_conf exists and is not a link left by this script: is a config-less slurmd running?"
fi

host=$(hostname -s)
node_line=$(slurmd -C | head -n 1)
[[ $node_line == "NodeName=$host "* ]] || die "slurmd -C printed '$node_line', expected NodeName=$host"

rm -rf "$state"/{ctld,spool,log,run,munge,gpu}
mkdir -p "$state"/{ctld,spool,log,run,munge,gpu}
chown slurm: "$state"/{ctld,log,run}
chown munge: "$state/munge"
chmod 755 "$state" "$state/munge"
# Fake GPU devices. slurmd accepts only character/block devices in gres.conf File= (a plain
# empty file is rejected and no CUDA_VISIBLE_DEVICES is set): make null devices (1,3 = /dev/null),
# or symlinks to /dev/null where mknod is not allowed.
for i in 0 1; do
    mknod -m 666 "$state/gpu/nvidia$i" c 1 3 2>/dev/null || ln -s /dev/null "$state/gpu/nvidia$i"
done

cat >"$state/slurm.conf" <<CONF
# Written by tests/cluster/start.sh: a one-node SLURM for tests. Not for production.
ClusterName=retinaflow
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket.2
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here (containers, no systemd): track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
# Start batch jobs as soon as they are submitted (default: batched every 3 s).
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs without --mem get 512 MB per CPU instead of the whole node (which serialises them).
DefMemPerCPU=512
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 1 h (no accounting database to ask);
# the plugin's squeue status check and the tests rely on it.
MinJobAge=3600
GresTypes=gpu
$node_line Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

cat >"$state/gres.conf" <<CONF
# Two fake GPUs: null devices, enough for the scheduler to hand out --gpus and for slurmd to
# set CUDA_VISIBLE_DEVICES. Without File= the node drains.
AutoDetect=off
NodeName=$host Name=gpu File=$state/gpu/nvidia[0-1]
CONF

cat >"$state/env.sh" <<CONF
# source this file to talk to the test cluster in $state
export SLURM_CONF=$state/slurm.conf
CONF

show_logs() {
    local f
    echo "----- sinfo -N -o '%N %T %E'" >&2
    sinfo -N -o '%N %T %E' >&2 2>/dev/null || true
    for f in "$state/munge/munged.log" "$state/log/slurmctld.log" "$state/log/slurmd.log"; do
        echo "----- $f (last 25 lines)" >&2
        tail -n 25 "$f" >&2 2>/dev/null || echo "(missing)" >&2
    done
}

fail() {
    echo "tests/cluster/start.sh: $*" >&2
    show_logs
    "$here/stop.sh" "$state" >&2 || true
    exit 1
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

mkdir -p "$(dirname "$run_conf")"
ln -sfn "$state" "$run_conf"

t0=$(date +%s.%N)

runuser -u munge -- /usr/sbin/munged \
    --socket="$state/munge/munge.socket.2" \
    --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed" \
    || fail "munged did not start"
cp "$state/munge/munged.pid" "$state/run/munged.pid"
munge_ok() { munge -n -S "$state/munge/munge.socket.2" | unmunge -S "$state/munge/munge.socket.2"; }
wait_for 10 "munge -n | unmunge" munge_ok

/usr/sbin/slurmctld || fail "slurmctld did not start"
wait_for 15 "slurmctld to answer (scontrol ping)" scontrol ping
/usr/sbin/slurmd || fail "slurmd did not start"

node_idle() { [[ $(sinfo -h -n "$host" -o '%T') == idle ]]; }
wait_for "$timeout" "node $host to be idle in sinfo" node_idle

t1=$(date +%s.%N)
printf '%s\n' "$(cat "$state/run/munged.pid") munged" "$(cat "$state/run/slurmctld.pid") slurmctld" \
    "$(cat "$state/run/slurmd.pid") slurmd" >"$state/pids"
awk -v t0="$t0" -v t1="$t1" -v host="$host" -v conf="$SLURM_CONF" 'BEGIN {
    printf "tests/cluster/start.sh: SLURM up in %.1fs (node %s idle, gpu:2); export SLURM_CONF=%s\n",
        t1 - t0, host, conf }' 
