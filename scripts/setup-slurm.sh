#!/usr/bin/env bash
# A one-node SLURM on this machine, for vsynth's `slurm` integration tests (tests/slurm/) and for
# trying `hydra/launcher=slurm` without a cluster. Debian/Ubuntu, as root; no systemd needed.
#
#   sudo bash scripts/setup-slurm.sh          # install (apt-get) + configure + start; idempotent
#   sudo bash scripts/setup-slurm.sh stop     # stop the daemons it started (or: STOP=1 bash ...)
#
# What it sets up, as on a real cluster: munge (authentication), slurmctld + slurmd (one node,
# partition `debug`), slurmdbd on MariaDB (job accounting: submitit's job watcher calls `sacct`).
# Containers have no usable cgroups: proctrack/linuxproc and task/none track a job's processes.
# The node advertises at least 4 CPUs (SlurmdParameters=config_overrides), so a 2-task job and a
# second job fit on a 2-core machine: SLURM then oversubscribes the real cores.
# Re-running rewrites the same config, restarts daemons only if the config changed, and starts
# only the daemons that are not running.
# Knobs: SLURM_CPUS (default max(nproc, 4)), SLURM_MEM_MB (default 90% of RAM),
#        SLURM_PARTITION (debug).
set -euo pipefail

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_all() {
  for p in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid; do
    if pid_alive "$p"; then echo "stopping $(basename "$p" .pid) (pid $(cat "$p"))"; kill "$(cat "$p")"; fi
  done
  sleep 2
  # mysqld_safe watches mariadbd: a clean shutdown ends both
  if pid_alive /run/mysqld/mysqld.pid; then echo "stopping mariadb"; mariadb-admin shutdown; fi
  if pid_alive /run/munge/munged.pid; then echo "stopping munged"; kill "$(cat /run/munge/munged.pid)"; fi
}

if [ "${1:-}" = stop ] || [ "${STOP:-0}" = 1 ]; then
  stop_all
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-slurm.sh: must run as root (it installs packages and starts system daemons)" >&2
  exit 2
fi

NODE="$(uname -n | cut -d. -f1)"
NPROC="$(nproc)"
CPUS="${SLURM_CPUS:-$(( NPROC > 4 ? NPROC : 4 ))}"
MEM_MB="${SLURM_MEM_MB:-$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)}"
PART="${SLURM_PARTITION:-debug}"
CONF=/etc/slurm/slurm.conf
DBPASS=slurmdbpass

# 1. packages (Debian's: slurm-wlm 22.05 on Debian 12) ----------------------------------------
need=()
for pkg in munge slurmctld slurmd slurm-client slurmdbd mariadb-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "setup-slurm.sh: needs apt-get (Debian/Ubuntu)" >&2; exit 2; }
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# 2. munge ------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || \
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! pid_alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged
  sleep 1
fi
munge -n | unmunge >/dev/null   # fails the script if munge does not work

# 3. slurm.conf -------------------------------------------------------------------------------
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -o root  -g root  -m 0755 /var/spool/slurmd
new_conf="$(cat <<CONF
# one-node cluster written by vsynth's scripts/setup-slurm.sh (rerun it rather than editing this)
ClusterName=local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire seconds before it may start again (SLURM's default: 120)
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SchedulerType=sched/backfill
# look at pending jobs every 5 s (defaults 60 s and 30 s): a requeued job restarts within seconds
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# the node's CPUs/RealMemory below count even where the machine has fewer (oversubscription)
SlurmdParameters=config_overrides
ReturnToService=2
# batch jobs may be requeued (scontrol requeue, preemption, submitit's time-limit requeue)
JobRequeue=1
# keep finished jobs visible to 'scontrol show job' for an hour
MinJobAge=3600
# seconds between SIGTERM and SIGKILL when a job is cancelled, requeued or runs out of time
KillWait=30
SlurmdTimeout=300
InactiveLimit=0
Waittime=0
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=${PART} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
)"
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" > "$CONF"
  conf_changed=1
else
  conf_changed=0
fi

# 4. MariaDB + slurmdbd (job accounting, read by sacct) ----------------------------------------
install -d -o mysql -g mysql -m 0755 /run/mysqld
if ! pid_alive /run/mysqld/mysqld.pid; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  ( setsid /usr/bin/mysqld_safe --user=mysql --pid-file=/run/mysqld/mysqld.pid >/dev/null 2>&1 & )
  for _ in $(seq 1 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DBPASS}';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
printf '%s\n' \
  "AuthType=auth/munge" "DbdHost=localhost" "SlurmUser=slurm" "PidFile=/run/slurmdbd.pid" \
  "LogFile=/var/log/slurm/slurmdbd.log" "DebugLevel=info" "StorageType=accounting_storage/mysql" \
  "StorageHost=localhost" "StorageUser=slurm" "StoragePass=${DBPASS}" "StorageLoc=slurm_acct_db" \
  > /etc/slurm/slurmdbd.conf
chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
if ! pid_alive /run/slurmdbd.pid; then
  /usr/sbin/slurmdbd
  for _ in $(seq 1 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
fi
sacctmgr -n list cluster format=cluster | grep -qw local || sacctmgr -i add cluster local >/dev/null

# 5. slurmctld + slurmd ------------------------------------------------------------------------
if [ "$conf_changed" = 1 ]; then  # e.g. AccountingStorageType changes need a restart, not 'scontrol reconfigure'
  if pid_alive /run/slurmctld.pid; then kill "$(cat /run/slurmctld.pid)"; sleep 3; fi
  if pid_alive /run/slurmd.pid; then kill "$(cat /run/slurmd.pid)"; sleep 2; fi
fi
pid_alive /run/slurmctld.pid || /usr/sbin/slurmctld   # daemonizes, drops to SlurmUser
pid_alive /run/slurmd.pid    || /usr/sbin/slurmd      # daemonizes

# 6. wait for the node, then one real job -------------------------------------------------------
state=""
for _ in $(seq 1 30); do
  state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)"
  case "$state" in idle|mixed|allocated) break ;; esac
  sleep 1
done
case "$state" in
  idle|mixed|allocated) ;;
  *) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true; sleep 2 ;;
esac
sinfo
srun -N1 -n1 -t 1 hostname >/dev/null
echo "SLURM is up: node ${NODE}, ${CPUS} CPUs, ${MEM_MB} MB, partition ${PART}; a test job ran."
echo "Stop it with:  bash $0 stop"
