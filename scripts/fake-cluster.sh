#!/usr/bin/env bash
# Fake cluster nodes on this machine, for the MPI tests: one network namespace per node on a veth
# bridge, each with its own address and hostname, reached by Open MPI through an rsh agent that
# runs the command inside the node the way ssh would (environment not inherited, the user's login
# shell), with a private tmpfs over the staging and cache directories (nothing relies on a shared
# filesystem).
#
# Exit status: 0 done, 1 failed, 2 usage, 77 this machine cannot host fake nodes (not root, no
# CAP_NET_ADMIN, iproute2 missing).
#
# Usage (as root):
#   scripts/fake-cluster.sh up       clear stale state, create the nodes, print KEY=VALUE lines
#                                    (the environment mpirun needs) on stdout, logs on stderr
#   scripts/fake-cluster.sh down     remove everything: processes, namespaces, bridge, hosts lines
#   scripts/fake-cluster.sh env      print the KEY=VALUE lines of the cluster that is up
#   scripts/fake-cluster.sh status   what exists now (namespaces, bridge, hosts lines, processes)
#
# Settings (environment, read by `up`):
#   RUSTMP_FAKE_NODES    number of nodes (default 2): rmpnode1.. at 10.77.0.2..
#   RUSTMP_FAKE_SLOTS    slots per node in the hostfile (default 2)
#   RUSTMP_FAKE_UNREACHABLE  number of extra nodes (default 0), numbered after the others, that
#                        have a namespace, a hostname and a hosts line but no link: the agent
#                        starts commands there, and nothing there reaches mpirun (not in the hostfile)
#   RUSTMP_FAKE_NOEXEC   ','-separated nodes whose private tmpfs is mounted noexec (code staged
#                        there cannot be loaded); read at `up`, and by the agent from mpirun's
#                        environment (so one job can have such a node)
#   RUSTMP_FAKE_PRIVATE  extra ':'-separated directories to hide behind a private tmpfs on the
#                        nodes (always: /tmp/rustmp-<uid>, ~/.cache/rustmp, and $RUSTMP_CACHE_DIR
#                        as mpirun's environment has it)
#   RUSTMP_FAKE_OWNER    the pid that owns the cluster (default: the caller, $PPID); `up` refuses
#                        while another live owner holds it (`down` always works)
#   RUSTMP_FAKE_CLUSTER_DIR  state directory (default /run/rustmp-fake-cluster)
#
# The printed variables: OMPI_MCA_plm_rsh_agent, OMPI_MCA_plm_rsh_no_tree_spawn=1,
# OMPI_MCA_{oob,btl}_tcp_if_include (the bridge subnet), OMPI_MCA_btl=tcp,vader,self,
# OMPI_ALLOW_RUN_AS_ROOT{,_CONFIRM}=1, RUSTMP_FAKE_HOSTFILE, RUSTMP_FAKE_HOSTS (comma-separated),
# RUSTMP_FAKE_UNREACHABLE_HOSTS, RUSTMP_FAKE_NOEXEC (both comma-separated, maybe empty),
# RUSTMP_FAKE_CLUSTER_DIR.
set -euo pipefail

# Every process of this script (subshells included) carries this variable in its environment, so
# that `down` does not take its own pipelines for processes of a job started with the cluster's
# environment.
if [ -z "${RUSTMP_FAKE_CLUSTER_SELF:-}" ]; then
  exec env RUSTMP_FAKE_CLUSTER_SELF=1 bash "$0" "$@"
fi

dir=${RUSTMP_FAKE_CLUSTER_DIR:-/run/rustmp-fake-cluster}
bridge=rmpbr0
net=10.77.0
subnet=$net.0/24
prefix=rmpnode
mark="# rustmp-fake-cluster"

log() { echo "fake-cluster: $*" >&2; }
die() {
  log "$*"
  exit 1
}
# This machine cannot host fake nodes (not root, no CAP_NET_ADMIN, tools missing): exit 77,
# which the tests report as a skip (a failure under CI=true).
cannot() {
  log "cannot run here: $*"
  exit 77
}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    cannot "needs root (it creates network namespaces, a bridge and /etc/hosts lines); run it as root"
  fi
  for tool in ip unshare mount; do
    command -v "$tool" >/dev/null || cannot "needs '$tool' (iproute2/util-linux), not found in PATH"
  done
}

# Rewrites /etc/hosts without our lines, in place (it may be a bind mount: no rename).
drop_hosts_lines() {
  if grep -q -- "$mark" /etc/hosts 2>/dev/null; then
    local kept
    kept=$(grep -v -- "$mark" /etc/hosts || true)
    printf '%s\n' "$kept" >/etc/hosts
  fi
}

# This process and its ancestors (which may have been started with the cluster's environment).
ancestors() {
  local pid=$$
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    echo "$pid"
    pid=$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null || true)
  done
  echo "$BASHPID"
}

# Pids of processes on this host that a fake-cluster mpirun started (mpirun and its local ranks
# carry the agent in their environment), other than ourselves and our ancestors.
agent_pids() {
  local env_file pid mine
  mine=" $(ancestors | tr '\n' ' ') "
  for env_file in /proc/[0-9]*/environ; do
    pid=${env_file#/proc/}
    pid=${pid%/environ}
    case "$mine" in *" $pid "*) continue ;; esac
    # Our own subshells and commands carry RUSTMP_FAKE_CLUSTER_SELF (see the top).
    if tr '\0' '\n' 2>/dev/null <"$env_file" |
      awk -v agent="OMPI_MCA_plm_rsh_agent=$dir/agent" \
        '$0 == agent { found = 1 } /^RUSTMP_FAKE_CLUSTER_SELF=/ { self = 1 } END { exit !(found && !self) }'; then
      echo "$pid"
    fi
  done
}

fake_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix[0-9]" || true; }

down() {
  local pids ns tries left=0
  pids=$(agent_pids)
  if [ -n "$pids" ]; then
    log "killing host processes of a fake-cluster job: $(echo $pids)"
    kill -KILL $pids 2>/dev/null || true
  fi
  for ns in $(fake_namespaces); do
    for tries in $(seq 50); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      kill -KILL $pids 2>/dev/null || true
      sleep 0.1
    done
    if [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ]; then
      log "processes still in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
      left=1
    fi
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^veth-$prefix" || true); do
    ip link del "$link" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  drop_hosts_lines
  rm -rf "$dir"
  if [ -n "$(fake_namespaces)" ] || ip link show "$bridge" >/dev/null 2>&1 || grep -q -- "$mark" /etc/hosts; then
    log "could not remove everything: $(status_text)"
    left=1
  fi
  return $left
}

status_text() {
  echo "namespaces: [$(fake_namespaces | tr '\n' ' ')]" \
    "bridge: $(ip link show "$bridge" >/dev/null 2>&1 && echo yes || echo no)" \
    "hosts lines: $(grep -c -- "$mark" /etc/hosts || true)" \
    "job processes: [$(agent_pids | tr '\n' ' ')]"
}

# Refuses to take the cluster from another live owner (a concurrent test run).
check_owner() {
  local owner
  [ -f "$dir/owner" ] || return 0
  owner=$(cat "$dir/owner")
  if [ -n "$owner" ] && [ "$owner" != "$1" ] && kill -0 "$owner" 2>/dev/null; then
    die "the fake cluster is in use by pid $owner ($(tr '\0' ' ' </proc/"$owner"/cmdline 2>/dev/null | cut -c1-80)); run '$0 down' to take it over"
  fi
}

write_agent() {
  local uid home shell always
  uid=$(id -u)
  home=$(getent passwd "$uid" | cut -d: -f6)
  shell=$(getent passwd "$uid" | cut -d: -f7)
  [ -x "${shell:-}" ] || shell=/bin/sh
  always="/tmp/rustmp-$uid:${home:-/root}/.cache/rustmp${RUSTMP_FAKE_PRIVATE:+:$RUSTMP_FAKE_PRIVATE}"
  mkdir -p -m 0700 "/tmp/rustmp-$uid"
  cat >"$dir/agent" <<EOF
#!/bin/sh
# Open MPI rsh agent for the fake nodes (written by scripts/fake-cluster.sh): agent <node> <command...>
# Runs the command like ssh: inside the node's network namespace, with the node's hostname, a
# private tmpfs over the staging/cache directories, and a fresh environment (env -i) running the
# user's login shell with the words joined by spaces.
set -eu
if [ \$# -lt 2 ]; then echo "usage: \$0 <node> <command...>" >&2; exit 255; fi
host=\$1; shift
if [ ! -e "/run/netns/\$host" ]; then
  echo "ssh: Could not resolve hostname \$host: Name or service not known (not a fake node)" >&2
  exit 255
fi
echo "\$(date +%T) \$host \$*" >>"$dir/agent.log"
private="$always\${RUSTMP_CACHE_DIR:+:\$RUSTMP_CACHE_DIR}"
case ",${RUSTMP_FAKE_NOEXEC:-},\${RUSTMP_FAKE_NOEXEC:-}," in
  *",\$host,"*) options=mode=0700,noexec ;;
  *) options=mode=0700 ;;
esac
exec ip netns exec "\$host" unshare --mount --uts --propagation private /bin/sh -c '
  set -e
  host=\$1; private=\$2; options=\$3; command=\$4
  hostname "\$host"
  old_ifs=\$IFS; IFS=:
  for d in \$private; do
    if [ -n "\$d" ] && [ -d "\$d" ]; then mount -t tmpfs -o "\$options" "rustmp-\$host" "\$d"; fi
  done
  IFS=\$old_ifs
  exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$home" USER="$(id -un)" LOGNAME="$(id -un)" SHELL="$shell" \
    $( [ "$uid" -eq 0 ] && echo "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" ) \
    "$shell" -c "\$command"
' sh "\$host" "\$private" "\$options" "\$*"
EOF
  chmod 0755 "$dir/agent"
}

env_lines() {
  cat <<EOF
OMPI_MCA_plm_rsh_agent=$dir/agent
OMPI_MCA_plm_rsh_no_tree_spawn=1
OMPI_MCA_oob_tcp_if_include=$subnet
OMPI_MCA_btl_tcp_if_include=$subnet
OMPI_MCA_btl=tcp,vader,self
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUSTMP_FAKE_HOSTFILE=$dir/hostfile
RUSTMP_FAKE_HOSTS=$1
RUSTMP_FAKE_UNREACHABLE_HOSTS=$2
RUSTMP_FAKE_NOEXEC=${RUSTMP_FAKE_NOEXEC:-}
RUSTMP_FAKE_CLUSTER_DIR=$dir
EOF
}

up() {
  local owner=${RUSTMP_FAKE_OWNER:-$PPID} nodes=${RUSTMP_FAKE_NODES:-2} slots=${RUSTMP_FAKE_SLOTS:-2}
  local unreachable=${RUSTMP_FAKE_UNREACHABLE:-0} i ns hosts="" cut_off="" names
  case "$nodes$slots$unreachable" in
    *[!0-9]*) die "RUSTMP_FAKE_NODES, RUSTMP_FAKE_SLOTS and RUSTMP_FAKE_UNREACHABLE must be numbers" ;;
  esac
  [ "$nodes" -ge 1 ] && [ $((nodes + unreachable)) -le 200 ] || die "RUSTMP_FAKE_NODES must be 1..200 (with the unreachable ones)"
  check_owner "$owner"
  down || die "stale state could not be cleared"
  # A failure from here on leaves nothing half made.
  trap 'code=$?; if [ "$code" -ne 0 ]; then down || true; fi' EXIT
  mkdir -p -m 0700 "$dir"
  echo "$owner" >"$dir/owner"
  if ! ip link add "$bridge" type bridge; then
    rm -rf "$dir"
    cannot "cannot create the bridge $bridge (CAP_NET_ADMIN missing?)"
  fi
  ip addr add "$net.1/24" dev "$bridge"
  ip link set "$bridge" up
  # Our lines must not be glued to a last line without its newline.
  if [ -s /etc/hosts ] && [ -n "$(tail -c 1 /etc/hosts)" ]; then
    echo >>/etc/hosts
  fi
  for i in $(seq 1 "$nodes"); do
    ns=$prefix$i
    ip netns add "$ns"
    ip link add "veth-$ns" type veth peer name eth0 netns "$ns"
    ip link set "veth-$ns" master "$bridge" up
    ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    printf '%s %s %s\n' "$net.$((i + 1))" "$ns" "$mark" >>/etc/hosts
    printf '%s slots=%s\n' "$ns" "$slots" >>"$dir/hostfile"
    hosts=$hosts${hosts:+,}$ns
  done
  for i in $(seq $((nodes + 1)) $((nodes + unreachable))); do
    ns=$prefix$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    printf '%s %s %s\n' "$net.$((i + 1))" "$ns" "$mark" >>/etc/hosts
    cut_off=$cut_off${cut_off:+,}$ns
  done
  write_agent
  env_lines "$hosts" "$cut_off" >"$dir/env"
  sed 's/^\([A-Z_a-z]*\)=\(.*\)$/export \1='"'"'\2'"'"'/' "$dir/env" >"$dir/env.sh"
  # Each node answers through the agent with its own hostname and an environment of its own.
  for ns in ${hosts//,/ } ${cut_off//,/ }; do
    names=$(FAKE_CLUSTER_LEAK=1 "$dir/agent" "$ns" 'echo $(hostname) ${FAKE_CLUSTER_LEAK:-clean}')
    [ "$names" = "$ns clean" ] || die "node $ns answered '$names' through the agent, not '$ns clean'"
  done
  log "up: nodes $hosts on $bridge ($subnet)${cut_off:+, unreachable $cut_off}, state in $dir (source $dir/env.sh)"
  cat "$dir/env"
  trap - EXIT
}

case "${1:-}" in
  up)
    need_root
    up
    ;;
  down)
    need_root
    down && log "down: nothing left"
    ;;
  env)
    [ -f "$dir/env" ] || die "no fake cluster is up ($dir/env missing)"
    cat "$dir/env"
    ;;
  status)
    need_root
    status_text
    ;;
  *)
    echo "usage: $0 up|down|env|status" >&2
    exit 2
    ;;
esac
