#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, for tests and demos.
#
#   eval "$(scripts/slurm-local.sh start)"   # install if needed, start, wait for the node
#   sbatch --ntasks=2 jobs/train.sbatch      # ... use it (SLURM_CONF is now exported)
#   scripts/slurm-local.sh status            # exit 0 running, 3 stopped, 1 broken
#   scripts/slurm-local.sh stop              # cancel its jobs, stop its daemons, delete state
#
# start: installs Debian's slurm-wlm and munge when missing (apt-get; needs root), writes
# slurm.conf (and cgroup.conf) into the state directory, starts a private munged (as user
# munge, its own socket in the state directory, key /etc/munge/munge.key), slurmctld and
# slurmd (as root) as background daemons with their PID files in the state directory,
# waits until `sinfo` shows the node idle, and prints on stdout the one line a caller
# needs:  export SLURM_CONF=<state dir>/slurm.conf   (messages go to stderr).
# Already running and healthy: start only prints that line. Stale PID files (dead or
# reused PIDs) are ignored; a half-running cluster is stopped and started afresh.
# stop: cancels the cluster's jobs, then ends only the daemons named by its PID files,
# and deletes the state directory. Neither command touches any other Slurm or munge.
#
# The cluster: node `localhost` (CPUs, sockets, memory from `slurmd -C`), partition
# `debug` (default, no time limit), no accounting (sacct is off; finished jobs stay in
# `scontrol show job` for MinJobAge = 10 min and are appended to jobcomp.log for good),
# requests that can never run are refused at submission (EnforcePartLimits=ALL), jobs
# whose dependency can no longer be met are cancelled (kill_invalid_depend),
# requeued jobs become eligible again after ~10 s instead of 120 s, process tracking by
# cgroup v1 where mounted (kills detached children), else by /proc.
#
# Environment:
#   SLURM_LOCAL_DIR       state directory (default /tmp/dictlearn-slurm): slurm.conf,
#                         *.pid, *.log, jobcomp.log, state/, spool/, munge/
#   SLURM_LOCAL_PORT      slurmctld port (default 6817); slurmd uses the next one
#   SLURM_LOCAL_CPUS      CPUs to advertise (default: the real count; more than the real
#                         count oversubscribes the cores, e.g. 4 on a 2-core machine)
#   SLURM_LOCAL_TIMEOUT   seconds to wait for the node to become idle (default 60)
#   SLURM_LOCAL_PROCTRACK cgroup or linuxproc (default: cgroup where cgroup v1 is mounted)
# Debian's Open MPI talks to Slurm through PMIx only: use `srun --mpi=pmix` (MpiDefault
# is left at none on purpose, like many sites) or mpirun inside the allocation.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/dictlearn-slurm}
PORT=${SLURM_LOCAL_PORT:-6817}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
MARKER=.dictlearn-slurm-local   # only a directory holding it is ever deleted
MUNGE_KEY=/etc/munge/munge.key
PACKAGES=(slurm-wlm munge libpmix-dev)  # libpmix-dev: slurm's mpi/pmix dlopens libpmix.so
DAEMONS=(munged slurmctld slurmd)

say() { echo "slurm-local: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}

pid_file() { # pid_file DAEMON
  case $1 in
    munged) echo "$DIR/munge/munged.pid" ;;
    *) echo "$DIR/$1.pid" ;;
  esac
}

# Whether PID is a live process: a killed daemon stays a zombie until PID 1 reaps it,
# which can take a second or more (or forever, in a container whose init never reaps).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the state follows "pid (comm) "
  case ${stat%% *} in Z | X | x) return 1 ;; esac
}

# PID of DAEMON if its PID file names a live process of that name, else nothing.
daemon_pid() {
  local file pid
  file=$(pid_file "$1")
  [ -r "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
  echo "$pid"
}

node_state() { SLURM_CONF="$DIR/slurm.conf" timeout 10 sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1; }

# 0: all daemons up and the node usable; 3: none running; 1: partly running or unhealthy.
health() {
  local daemon up=0 state
  for daemon in "${DAEMONS[@]}"; do
    daemon_pid "$daemon" >/dev/null && up=$((up + 1))
  done
  [ "$up" -eq 0 ] && return 3
  [ "$up" -eq "${#DAEMONS[@]}" ] || return 1
  state=$(node_state)
  case $state in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "'$1' needs root (it installs packages and runs munged, slurmctld and slurmd); run it with sudo"
    exit 2
  fi
}

install_packages() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq >&2 || die "apt-get update failed"
  local log
  log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed"; }
  rm -f "$log"
}

munge_key() {
  getent passwd munge >/dev/null || die "no user 'munge' (is the munge package installed?)"
  if [ ! -s "$MUNGE_KEY" ]; then
    say "creating $MUNGE_KEY"
    install -d -o munge -g munge -m 0700 "$(dirname "$MUNGE_KEY")"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$MUNGE_KEY" --force
    else
      dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge "$MUNGE_KEY"
  chmod 0400 "$MUNGE_KEY"
}

# Ends DAEMON if its PID file names a live process of that name (TERM, then KILL).
stop_daemon() {
  local pid
  if pid=$(daemon_pid "$1"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      say "$1 ($pid) ignored TERM for 10 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$(pid_file "$1")"
}

# Cancels every job of this cluster and waits (bounded) until they are gone, so that no
# job outlives its slurmd.
cancel_jobs() {
  local jobs
  daemon_pid slurmctld >/dev/null || return 0
  export SLURM_CONF="$DIR/slurm.conf"
  jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
  [ -n "$jobs" ] || return 0
  say "cancelling jobs $(echo "$jobs" | paste -sd " ")"
  # shellcheck disable=SC2086
  timeout 10 scancel $jobs 2>/dev/null || true
  for _ in $(seq 1 30); do
    [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null || true)" ] && return 0
    sleep 1
  done
  say "jobs still listed after 30 s; stopping anyway"
}

stop_all() {
  cancel_jobs
  local daemon
  for daemon in slurmd slurmctld munged; do stop_daemon "$daemon"; done
}

write_config() {
  local hardware cpus cgroup=no
  # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  hardware=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
  [ -n "$hardware" ] || die "slurmd -C printed nothing"
  local overrides=""
  if [ -n "${SLURM_LOCAL_CPUS:-}" ]; then
    cpus=$SLURM_LOCAL_CPUS
    hardware="CPUs=$cpus RealMemory=$(echo "$hardware" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
    overrides="SlurmdParameters=config_overrides"
  fi
  # cgroup v1 (freezer hierarchy mounted): proctrack/cgroup, which also ends detached
  # children of a job. Slurm 22.05's cgroup v2 support needs systemd: use /proc instead.
  if [ -d /sys/fs/cgroup/freezer ] && grep -q ' /sys/fs/cgroup/freezer cgroup ' /proc/mounts; then
    cgroup=yes
  fi
  case ${SLURM_LOCAL_PROCTRACK:-} in
    "") ;;
    cgroup) cgroup=yes ;;
    linuxproc) cgroup=no ;;
    *) die "SLURM_LOCAL_PROCTRACK must be cgroup or linuxproc, not '$SLURM_LOCAL_PROCTRACK'" ;;
  esac
  cat >"$DIR/slurm.conf" <<EOF
# Generated by scripts/slurm-local.sh: a single-node cluster for tests and demos.
ClusterName=dictlearn-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=$([ $cgroup = yes ] && echo proctrack/cgroup || echo proctrack/linuxproc)
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
EnforcePartLimits=ALL
SchedulerParameters=sched_interval=5,bf_interval=5,kill_invalid_depend
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
MailProg=/bin/true
$overrides
NodeName=localhost NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  if [ $cgroup = yes ]; then
    cat >"$DIR/cgroup.conf" <<EOF
# Generated by scripts/slurm-local.sh
CgroupPlugin=cgroup/v1
CgroupAutomount=yes
ConstrainCores=no
ConstrainRAMSpace=no
EOF
  fi
}

start_munged() {
  munge_key
  install -d -o munge -g munge -m 0755 "$DIR/munge"
  # munged refuses to run as root; as user munge it writes its socket, PID, log and seed
  # files into the state directory (a private instance: any system munged is untouched).
  runuser -u munge -- munged --socket="$DIR/munge/munge.socket" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" --key-file="$MUNGE_KEY" ||
    { cat "$DIR/munge/munged.log" >&2 2>/dev/null; die "munged did not start"; }
  wait_for_pid munged
  munge -S "$DIR/munge/munge.socket" -n | unmunge -S "$DIR/munge/munge.socket" >/dev/null ||
    die "munged runs but a credential does not round-trip (see $DIR/munge/munged.log)"
}

wait_for_pid() { # wait_for_pid DAEMON: its PID file names a live process within 10 s
  for _ in $(seq 1 100); do
    daemon_pid "$1" >/dev/null && return 0
    sleep 0.1
  done
  local log="$DIR/$1.log"
  [ "$1" = munged ] && log="$DIR/munge/munged.log"
  tail -n 20 "$log" >&2 2>/dev/null || true
  stop_all
  die "$1 did not start (log: $log)"
}

start() {
  need_root start
  install_packages
  if health; then
    say "already running ($DIR)"
    echo "export SLURM_CONF=$DIR/slurm.conf"
    return 0
  fi
  if [ -d "$DIR" ]; then
    [ -e "$DIR/$MARKER" ] || [ -z "$(ls -A "$DIR")" ] ||
      die "$DIR exists and is not a slurm-local state directory; choose another SLURM_LOCAL_DIR"
    stop_all  # whatever half of a previous cluster is still up
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/state" "$DIR/spool"
  chmod 0755 "$DIR"
  touch "$DIR/$MARKER"
  local socket="$DIR/munge/munge.socket"
  [ ${#socket} -lt 100 ] || die "SLURM_LOCAL_DIR is too long for a unix socket path: $socket"

  write_config
  start_munged
  export SLURM_CONF="$DIR/slurm.conf"
  slurmctld -f "$SLURM_CONF" -i >"$DIR/slurmctld.stdout" 2>&1 || {
    cat "$DIR/slurmctld.stdout" "$DIR/slurmctld.log" >&2 2>/dev/null
    stop_all
    die "slurmctld did not start"
  }
  wait_for_pid slurmctld
  slurmd -f "$SLURM_CONF" >"$DIR/slurmd.stdout" 2>&1 || {
    cat "$DIR/slurmd.stdout" "$DIR/slurmd.log" >&2 2>/dev/null
    stop_all
    die "slurmd did not start"
  }
  wait_for_pid slurmd

  local state="" waited=0
  while [ "$waited" -lt "$TIMEOUT" ]; do
    state=$(node_state)
    [ "$state" = idle ] && break
    sleep 1
    waited=$((waited + 1))
  done
  if [ "$state" != idle ]; then
    say "node localhost is '${state:-not reported}' after ${TIMEOUT} s, not idle; last log lines:"
    tail -n 15 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 2>/dev/null || true
    stop_all
    die "the local cluster did not come up"
  fi
  say "running: node localhost idle after ${waited} s ($DIR)"
  echo "export SLURM_CONF=$DIR/slurm.conf"
}

stop() {
  need_root stop
  if [ ! -d "$DIR" ]; then
    say "not running ($DIR does not exist)"
    return 0
  fi
  [ -e "$DIR/$MARKER" ] || die "$DIR is not a slurm-local state directory; not touching it"
  stop_all
  # The jobs' (empty) cgroups; rmdir leaves any cgroup that still holds a process.
  find /sys/fs/cgroup/*/slurm_localhost -depth -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf "$DIR"
  say "stopped ($DIR removed)"
}

status() {
  local daemon pid rc=0
  health || rc=$?
  for daemon in "${DAEMONS[@]}"; do
    if pid=$(daemon_pid "$daemon"); then
      echo "$daemon: running (pid $pid)"
    else
      echo "$daemon: not running"
    fi
  done
  if [ "$rc" -ne 3 ]; then
    echo "node localhost: $(node_state || true)"
    echo "export SLURM_CONF=$DIR/slurm.conf"
  fi
  case $rc in
    0) echo "status: running ($DIR)" ;;
    3) echo "status: stopped" ;;
    *) echo "status: unhealthy ($DIR; logs there)" ;;
  esac
  return "$rc"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart)
    stop
    start
    ;;
  *) usage ;;
esac
