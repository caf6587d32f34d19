#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the launcher tests (tests/test_slurm.py) and rehearsals.
#
#   scripts/slurm_local.sh start    # install slurm + munge (Debian, as root) if missing; start munged, slurmctld, slurmd
#   scripts/slurm_local.sh stop     # cancel every job, stop the daemons, remove the state folder
#   scripts/slurm_local.sh env      # print the `export PATH=...` that puts the sacct stand-in first
#
# Everything lives under $SLURM_LOCAL_DIR (default /tmp/gdro-slurm): slurm.conf, state, spool, logs and
# bin/sacct. There is no accounting daemon, so `sacct` is a stand-in that answers from squeue: the
# submitit launcher polls sacct for a job's state, and without it a job that dies without a result hangs
# the sweep forever. Settings that keep the tests fast (docs/scaling.md, "SLURM"):
# AuthInfo=cred_expire=10 (a requeued job would otherwise wait 121 s) and bf_interval/sched_interval=2
# (requeued jobs would otherwise start up to 60 s late).
set -euo pipefail

DIR="${SLURM_LOCAL_DIR:-/tmp/gdro-slurm}"
CONF="$DIR/slurm.conf"

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "slurm_local.sh: slurm is not installed and only root can apt-get install it" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
    local host cpus memory
    host="$(hostname -s)"
    cpus="$(nproc)"
    memory="$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))"
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/bin"
    cat >"$CONF" <<EOF
ClusterName=gdro-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=bf_interval=2,sched_interval=2
ReturnToService=2
JobRequeue=1
MinJobAge=300
KillWait=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # sacct -o JobID,State,NodeList --parsable2 -j ID [-j ID ...], answered from squeue (the states it
    # still remembers: MinJobAge above keeps finished jobs for 5 minutes).
    cat >"$DIR/bin/sacct" <<'EOF'
#!/usr/bin/env bash
ids=()
while [ $# -gt 0 ]; do
    case "$1" in
        -j) ids+=("$2"); shift 2 ;;
        *) shift ;;
    esac
done
echo "JobID|State|NodeList"
for id in "${ids[@]}"; do
    squeue -h -t all -j "$id" -o "%i|%T|%N" 2>/dev/null || true
done
EOF
    chmod +x "$DIR/bin/sacct"
}

start() {
    install_packages
    write_config
    export SLURM_CONF="$CONF"
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
    chmod 0400 /etc/munge/munge.key
    pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
    pgrep -x slurmctld >/dev/null || slurmctld -f "$CONF"
    pgrep -x slurmd >/dev/null || slurmd -f "$CONF"
    for _ in $(seq 1 60); do
        if sinfo -h -o "%T" 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; then
            echo "slurm_local.sh: cluster up (SLURM_CONF=$CONF)"
            return
        fi
        sleep 0.5
    done
    echo "slurm_local.sh: the node did not come up; see $DIR/log/" >&2
    sinfo >&2 || true
    exit 1
}

stop() {
    export SLURM_CONF="$CONF"
    if [ -f "$CONF" ]; then
        scancel --full --quiet --user=root 2>/dev/null || true
    fi
    for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    sleep 1
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF PATH=$DIR/bin:\$PATH" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
