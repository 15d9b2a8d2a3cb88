# Helpers for the cluster tests: a real 3-node Corosync/Pacemaker cluster of
# namespace nodes (scripts/cluster/lab.sh) in $T/lab, the shared store being
# $T/lab/shared (/mnt/shared in the nodes). Source after lib.sh, vmlib.sh, rtlib.sh.
[ "$(id -u)" = 0 ] || skip "the cluster lab needs root (namespaces)"
for c in corosync pacemakerd crm_mon cibadmin crm_resource nsenter; do
    command -v $c >/dev/null || skip "$c is not installed (scripts/install-deps.sh)"
done
LABSH=$TESTS/../scripts/cluster/lab.sh
export HVM_LAB="$T/lab" HVM_STORE="$T/lab/shared"
lab() { bash "$LABSH" "$@"; }
# nx N CMD...: CMD in node N; hvm there is the lab's copy of $HVM
nx() { n=$1; shift; bash "$LABSH" nx "$n" "$@"; }
NHVM=$HVM_LAB/bin/hvm
# every process of a node dies with its PID 1, and its mounts with it
lab_cleanup() {
    if [ "${rc:-0}" != 0 ] && [ -d "$HVM_LAB/nodes" ]; then
        for i in 1 2 3; do nx $i crm_mon -1 --inactive 2>/dev/null | tail -8 && break; done
        cat "$HVM_LAB"/nodes/n*/var-log-pacemaker/hvm-ocf.log 2>/dev/null | sort | tail -30
    fi
    bash "$LABSH" down >/dev/null 2>&1 || true
}
EXTRA_CLEANUP=lab_cleanup
# ha_guest NAME: a counter guest in the shared store, created from node 1
ha_guest() {
    nx 1 "$NHVM" vm create "$1" --memory 256M --firmware bios --new-disk 64M >/dev/null
    nx 1 "$NHVM" vm set "$1" --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
        --cmdline "console=ttyS0 hvm.mode=counter hvm.every=1 hvm.period=0.1" >/dev/null
}
# located NAME [N]: the node that runs the VM (empty: none), as cluster status
# on node N (default 1) says and the owner record confirms (crm_resource
# --locate names a node whose probe is still pending)
located() {
    nx "${2:-1}" "$NHVM" cluster status --json >"$T/.st.json" 2>/dev/null || return 0
    at=$(json_get "$T/.st.json" "([v['owner'] for v in d['vms'] if v['name']=='$1' and v['state']=='Running'] or [''])[0]")
    [ -n "$at" ] && grep -q "^node=$at\$" "$HVM_STORE/vms/$1/cluster-owner" 2>/dev/null && echo "$at"
    return 0
}
# wait_located NAME SECONDS [NOT [N]]: until the VM runs on a node (other than NOT), asking node N
wait_located() {
    i=0
    while :; do
        at=$(located "$1" "${4:-1}")
        [ -n "$at" ] && [ "$at" != "${3:-}" ] && { echo "$at"; return 0; }
        i=$((i + 1)); [ $i -lt $(($2 * 5)) ] || fail "vm-$1 runs on no node${3:+ but $3} after $2 s"
        sleep 0.2
    done
}
