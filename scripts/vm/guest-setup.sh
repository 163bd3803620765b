#!/bin/sh
# PID 1 inside the netfence VM, after the initramfs switch_root'ed into the
# host's root filesystem (read-only 9p under a tmpfs overlay). Runs under the
# host rootfs's /bin/sh. Mounts what a distribution boot would (pure cgroup2,
# bpffs, ...), then hands over to guest-run.mjs, which runs the requested
# command, and finally powers the VM off. The setup steps use the static
# /bin/busybox (busybox-static): under TCG every exec of a dynamically linked
# tool costs a noticeable fraction of a second.
#
# Kernel command line parameters arrive here as environment variables:
#   nf_modules  the extracted /lib/modules of the Debian kernel (host path)
#   nf_node     the node binary (host path)
#   nf_verbose  1: trace this script
bb=/bin/busybox
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
[ "$nf_verbose" = 1 ] && set -x

off() {
  sync
  $bb poweroff -f 2>/dev/null
  echo o >/proc/sysrq-trigger
  sleep 10
}
fail() {
  echo "netfence-vm guest-setup: $*"
  off
}

$bb mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
read nf_setup_start _ </proc/uptime
export nf_setup_start
$bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
$bb mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || fail "mount /dev"
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=000 devpts /dev/pts || fail "mount /dev/pts"
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
$bb mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run || fail "mount /run"
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || fail "mount /tmp"
$bb mount -t cgroup2 -o nsdelegate,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
$bb mount -t bpf -o mode=0700,nosuid,nodev,noexec bpf /sys/fs/bpf || fail "mount bpffs"
$bb mount -t debugfs -o nosuid,nodev,noexec debugfs /sys/kernel/debug 2>/dev/null
$bb mount -t tracefs -o nosuid,nodev,noexec tracefs /sys/kernel/tracing 2>/dev/null
$bb ln -sfn /proc/self/fd /dev/fd
$bb ln -sfn /proc/self/fd/0 /dev/stdin
$bb ln -sfn /proc/self/fd/1 /dev/stdout
$bb ln -sfn /proc/self/fd/2 /dev/stderr
[ -e /dev/ptmx ] || $bb ln -sfn pts/ptmx /dev/ptmx
$bb mkdir -p /run/netns /run/lock /run/netfence-vm

# The Debian kernel's modules replace whatever /lib/modules the host has.
[ -n "$nf_modules" ] && [ -d "$nf_modules" ] || fail "kernel modules dir '$nf_modules' not found"
$bb mkdir -p /lib/modules
$bb mount --bind "$nf_modules" /lib/modules || fail "bind-mount $nf_modules on /lib/modules"

$bb ip link set lo up || fail "ip link set lo up"
$bb hostname netfence-vm

# The writable share: spec.json from the host, result.json and out/ back.
$bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none nfctl /run/netfence-vm || fail "mount the control share (9p tag nfctl)"

read nf_setup_done _ </proc/uptime
export nf_setup_done
"${nf_node:-node}" "${0%/*}/guest-run.mjs" /run/netfence-vm || echo "netfence-vm guest-setup: guest-run.mjs failed (exit $?)"
$bb umount /run/netfence-vm 2>/dev/null
off
