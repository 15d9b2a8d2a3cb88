#!/bin/bash
# PID 1 of a lab node (scripts/cluster/lab.sh start N): inside the node's
# network, mount, UTS and PID namespaces. Gives the node its own view of the
# files Corosync, Pacemaker and hvm keep per host, starts corosync and
# pacemakerd, then reaps orphans until it is fenced (LAB/fence/nodeN.kill:
# PID 1 exits and the kernel kills every process of the node).
set -e
LAB=$1 i=$2
B=$LAB/nodes/n$i F=$LAB/fence
hostname node$i
mount --make-rprivate /
mount --bind "$B/etc-corosync" /etc/corosync
mount --bind "$B/var-lib-corosync" /var/lib/corosync
mount --bind "$B/var-log-corosync" /var/log/corosync
mount --bind "$B/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$B/var-log-pacemaker" /var/log/pacemaker
mount --bind "$B/run" /run
mount --bind "$LAB/hosts" /etc/hosts
# Corosync's and Pacemaker's shared-memory IPC would meet the other nodes' in one /dev/shm
mount -t tmpfs -o size=256m,mode=1777 tmpfs /dev/shm
# the test fence agent (the fencer looks in /usr/sbin) and ocf:hvm:VirtualMachine,
# from the lab, over the host's folders (read-only overlays, this node only)
mount -t overlay overlay -o "lowerdir=$LAB/sbin:/usr/sbin" /usr/sbin
mount -t overlay overlay -o "lowerdir=$LAB/ocf:/usr/lib/ocf/resource.d" /usr/lib/ocf/resource.d
# the shared storage at /mnt/shared (the same folder in every node), the node's own at /mnt/local
mount -t tmpfs -o size=1m,mode=0755 tmpfs /mnt
mkdir -p /mnt/shared /mnt/local
mount --bind "$LAB/shared" /mnt/shared
mount --bind "$B/local" /mnt/local
set +e
rm -f "$F/node$i.kill"
touch "$F/node$i.alive"
/usr/sbin/corosync -f >/var/log/corosync/stdout.log 2>&1 &
for _ in $(seq 1 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
# the resource agent's own log (it logs to syslog otherwise)
HVM_OCF_LOG=/var/log/pacemaker/hvm-ocf.log \
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none PCMK_debug=no \
    /usr/sbin/pacemakerd >/var/log/pacemaker/stdout.log 2>&1 &
trap 'rm -f "$F/node$i.alive"; exit 0' TERM
while :; do
    if [ -f "$F/node$i.kill" ]; then
        rm -f "$F/node$i.alive"
        exit 1
    fi
    touch "$F/node$i.alive"
    sleep 0.2 &
    wait -n 2>/dev/null
done
