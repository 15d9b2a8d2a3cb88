#!/bin/bash
# A real Corosync/Pacemaker cluster of NODES (default 3) namespace nodes on
# this one machine, for hvm's cluster tests and demo. Each node is a network,
# mount, UTS and PID namespace (node-init.sh is its PID 1) with its own
# /etc/corosync, /var/lib/pacemaker, /run and /mnt/local, on a cluster network
# of veth pairs to a bridge in a namespace of its own (10.99.0.N exist only
# there); one shared folder, LAB/shared, is /mnt/shared in every node.
# Fencing: fence_hvmlab (poison pill). Never sbd or a watchdog: the nodes
# share one kernel, a watchdog reset would take the whole machine.
#
#   lab.sh up              create the lab and start every node, wait for the cluster
#   lab.sh down            kill every node, delete namespaces and the lab folder
#   lab.sh start N | kill N   (re)start node N | hard-kill it (SIGKILL of its PID 1)
#   lab.sh nx N CMD...     run CMD in node N (HVM_STORE=/mnt/shared)
#   lab.sh wait-online N... | wait-idle   Pacemaker sees nodes N online | no action pending
#
# Settings (environment): HVM_LAB (the lab folder, default /tmp/hvm-cluster-lab),
# NODES, TOKEN (Corosync token in ms, default 1000), HVM (the hvm binary),
# HVM_OCF (the resource agent file, default data/ocf/VirtualMachine beside this script).
set -u
here=$(cd "$(dirname "$0")" && pwd)
LAB=${HVM_LAB:-/tmp/hvm-cluster-lab}
case "$LAB" in /*) ;; *) LAB=$PWD/$LAB ;; esac
ID=hvmlab$(printf %s "$LAB" | md5sum | cut -c1-6)
NODES=${NODES:-3}
[ -f "$LAB/lab.env" ] && . "$LAB/lab.env"

die() { echo "lab.sh: $*" >&2; exit 1; }

net_up() {
    ip netns add "$ID-br" || return 1
    ip -n "$ID-br" link add br0 type bridge
    ip -n "$ID-br" link set br0 up
    ip -n "$ID-br" link set lo up
    for i in $(seq 1 "$NODES"); do
        ip netns add "$ID-n$i" || return 1
        # created inside the bridge namespace: nothing ever appears on the host's
        ip -n "$ID-br" link add "v$i" type veth peer name eth0 netns "$ID-n$i" || return 1
        ip -n "$ID-br" link set "v$i" master br0 up
        ip -n "$ID-n$i" link set lo up
        ip -n "$ID-n$i" addr add "10.99.0.$i/24" dev eth0
        ip -n "$ID-n$i" link set eth0 up
    done
}

node_pid1() { # PID (as the host sees it) of node $1's PID 1: node-init.sh, the child of unshare
    p=$(cat "$LAB/nodes/n$1/outer.pid" 2>/dev/null) || return 1
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
        case "$(tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline")" in
        *"/node-init.sh $LAB $1 ") echo "$c"; return 0 ;;
        esac
    done
    return 1
}

node_dirs() {
    B=$LAB/nodes/n$1
    mkdir -p "$B"/{etc-corosync,var-lib-corosync,var-log-corosync,local}
    [ -d "$B/var-lib-pacemaker" ] || cp -a /var/lib/pacemaker "$B/var-lib-pacemaker"
    [ -d "$B/var-log-pacemaker" ] || cp -a /var/log/pacemaker "$B/var-log-pacemaker"
    cp "$LAB/corosync.conf" "$LAB/authkey" "$B/etc-corosync/"
    chmod 0400 "$B/etc-corosync/authkey"
    # /run is emptied at every start, as a reboot does: a resource agent's
    # state left there would make the node look as if it still ran something
    rm -rf "$B/run"
    mkdir -p "$B"/run/{lock,resource-agents,crm}
    chmod 1777 "$B/run/lock"
    ln -s /dev/shm "$B/run/shm"
}

node_start() {
    i=$1
    node_pid1 "$i" >/dev/null && die "node$i runs already"
    node_dirs "$i"
    rm -f "$LAB/nodes/n$i/outer.pid"
    touch "$LAB/fence/node$i.node"
    # the shell records its own PID, then becomes ip, then unshare (setsid
    # may fork first, so $! would not be it)
    setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$LAB/nodes/n$i/outer.pid" \
        ip netns exec "$ID-n$i" unshare --mount --uts --pid --fork --mount-proc \
        "$here/node-init.sh" "$LAB" "$i" >"$LAB/nodes/n$i/init.log" 2>&1 </dev/null &
    for _ in $(seq 1 50); do [ -s "$LAB/nodes/n$i/outer.pid" ] && break; sleep 0.1; done
}

node_kill() {
    p=$(node_pid1 "$1") || { echo "lab.sh: node$1 is not running" >&2; return 0; }
    kill -9 "$p"
    rm -f "$LAB/fence/node$1.alive"
    # the unshare parent exits once its child is gone
    for _ in $(seq 1 50); do node_pid1 "$1" >/dev/null || break; sleep 0.1; done
    true
}

nx() {
    i=$1; shift
    p=$(node_pid1 "$i") || die "node$i is not running"
    HVM_STORE=/mnt/shared nsenter -t "$p" -n -m -u -p -- "$@"
}

up() {
    [ -e "$LAB/lab.env" ] && die "$LAB holds a lab already (lab.sh down first)"
    for c in corosync pacemakerd crm_mon cibadmin; do
        command -v $c >/dev/null || die "$c is not installed (scripts/install-deps.sh)"
    done
    HVM=${HVM:-$(command -v hvm)}
    [ -x "$HVM" ] || die "no hvm binary (set HVM)"
    ocf=${HVM_OCF:-$here/../../data/ocf/VirtualMachine}
    [ -f "$ocf" ] || die "no resource agent $ocf"
    mkdir -p "$LAB"/{nodes,fence,shared,sbin,ocf/hvm,bin}
    # the nodes run a copy: a rebuild of the binary under a running lab would fail their agents
    cp "$HVM" "$LAB/bin/hvm"
    HVM=$LAB/bin/hvm
    cat >"$LAB/lab.env" <<X
NODES=$NODES
HVM=$HVM
X
    cp "$here/fence_hvmlab" "$LAB/sbin/"
    # the agent calls \$HVM_BINARY, else hvm from PATH: the lab's copy names the build's binary
    sed "s|^HVM_DEFAULT=.*|HVM_DEFAULT=$HVM|" "$ocf" >"$LAB/ocf/hvm/VirtualMachine"
    chmod 0755 "$LAB/ocf/hvm/VirtualMachine" "$LAB/sbin/fence_hvmlab"
    # the store is shared: every node sees this folder (see the agent's validate-all)
    mkdir -p "$LAB/shared"
    echo "hvmlab" >"$LAB/shared/cluster-shared"
    { echo "127.0.0.1 localhost"; for i in $(seq 1 "$NODES"); do echo "10.99.0.$i node$i"; done; } >"$LAB/hosts"
    dd if=/dev/urandom of="$LAB/authkey" bs=256 count=1 status=none
    {
        cat <<X
totem {
    version: 2
    cluster_name: hvmlab
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
    token: ${TOKEN:-1000}
}
logging {
    to_stderr: no
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: no
    timestamp: hires
}
quorum {
    provider: corosync_votequorum
}
nodelist {
X
        for i in $(seq 1 "$NODES"); do
            printf '    node {\n        name: node%s\n        nodeid: %s\n        ring0_addr: 10.99.0.%s\n    }\n' "$i" "$i" "$i"
        done
        echo "}"
    } >"$LAB/corosync.conf"
    net_up || { down; die "could not create the namespaces"; }
    for i in $(seq 1 "$NODES"); do node_start "$i"; done
    wait_online $(seq 1 "$NODES") || { down; die "the cluster did not form"; }
    configure
}

# The lab's cluster-wide settings, once: fencing on (the test agent), stop
# resources without quorum, resources stay where they run (without a
# stickiness they would move back at every change of membership).
configure() {
    nx 1 crm_attribute -t crm_config -n stonith-enabled -v true >/dev/null &&
    nx 1 crm_attribute -t crm_config -n stonith-timeout -v 30s >/dev/null &&
    nx 1 crm_attribute -t crm_config -n no-quorum-policy -v stop >/dev/null &&
    nx 1 crm_attribute -t rsc_defaults -n resource-stickiness -v 100 >/dev/null &&
    nx 1 cibadmin -C -o resources -X "<primitive id=\"lab-fence\" class=\"stonith\" type=\"fence_hvmlab\">
  <instance_attributes id=\"lab-fence-ia\">
    <nvpair id=\"lab-fence-lab\" name=\"lab\" value=\"$LAB\"/>
    <nvpair id=\"lab-fence-hosts\" name=\"pcmk_host_list\" value=\"$(seq -f 'node%g' -s ' ' 1 "$NODES")\"/>
    <nvpair id=\"lab-fence-check\" name=\"pcmk_host_check\" value=\"static-list\"/>
  </instance_attributes>
  <operations><op id=\"lab-fence-mon\" name=\"monitor\" interval=\"60s\"/></operations>
</primitive>" || die "could not configure the cluster"
}

wait_online() { # nodes: until node (first of the list) sees each of them online
    first=$1
    for _ in $(seq 1 900); do
        ok=1
        out=$(nx "$first" crm_mon -1 -X 2>/dev/null) || ok=0
        for n in "$@"; do
            echo "$out" | grep -q "<node name=\"node$n\" id=\"$n\" online=\"true\"" || ok=0
        done
        echo "$out" | grep -q 'with_quorum="true"' || ok=0
        [ $ok = 1 ] && return 0
        sleep 0.2
    done
    return 1
}

wait_idle() { # until the cluster has no pending transition (crm_resource --wait)
    for i in $(seq 1 "$NODES"); do
        node_pid1 "$i" >/dev/null && { nx "$i" crm_resource --wait --timeout=${1:-120} >/dev/null 2>&1; return; }
    done
}

down() {
    for i in $(seq 1 "$NODES"); do node_kill "$i"; done
    # every process of a node died with its PID 1, and with them its mounts
    for i in $(seq 1 "$NODES"); do ip netns del "$ID-n$i" 2>/dev/null; done
    ip netns del "$ID-br" 2>/dev/null
    case "$LAB" in /|/tmp|/work|"$HOME") ;; *) rm -rf "$LAB" ;; esac
    true
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
up) up ;;
down) down ;;
start) node_start "$1" ;;
kill) node_kill "$1" ;;
nx) nx "$@"; exit ;;
pid1) node_pid1 "$1" ;;
wait-online) wait_online "$@" ;;
wait-idle) wait_idle "$@" ;;
*) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 2 ;;
esac
