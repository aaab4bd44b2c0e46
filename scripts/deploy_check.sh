#!/usr/bin/env bash
# `make deploy-check`: run deploy/install/install.sh for one tier (rural-clinic by default) in a clean
# Debian 12 chroot made with debootstrap, then check that the node serves its login page through nginx
# (TLS), that its worker carries out a task, and that `ledger verify` passes. Slow (minutes), needs root
# and the network (Debian mirror, PyPI or this machine's pip configuration); not part of `make test`.
#
# Two runs of the installer: the first with the network installs everything (--no-start); the second,
# in a network namespace of its own (so ports 80/443/8000/3333 cannot clash with this machine's), must
# need nothing from the network (that is the idempotency check) and starts the services without systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
TIER=${DEPLOY_CHECK_TIER:-rural-clinic}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=$SRC/var/deploy-check
BASE=$WORK/bookworm-minbase.tar
ROOTFS=$WORK/rootfs
started=$(date +%s)
step() { printf '\n[deploy-check %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

[ "$(id -u)" = 0 ] || { echo "deploy-check needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

mounts=()
cleanup() {
  # Stop what runs inside the chroot (found by its root directory), then unmount in reverse order.
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$ROOTFS" ] && kill -9 "${proc#/proc/}" 2>/dev/null || true
  done
  for (( i=${#mounts[@]}-1; i>=0; i-- )); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
  [ "${DEPLOY_CHECK_KEEP:-0}" = 1 ] || rm -rf "$ROOTFS"
}
trap cleanup EXIT
bind() { mkdir -p "$ROOTFS$2"; mount --bind "$1" "$ROOTFS$2"; mounts+=("$ROOTFS$2"); [ "${3:-}" != ro ] || mount -o remount,bind,ro "$ROOTFS$2"; }

mkdir -p "$WORK"
if [ ! -s "$BASE" ]; then
  step "debootstrap bookworm (minbase) from $MIRROR"
  rm -rf "$WORK/base-build"
  debootstrap --variant=minbase bookworm "$WORK/base-build" "$MIRROR" >"$WORK/debootstrap.log"
  tar -C "$WORK/base-build" -cf "$BASE" .
  rm -rf "$WORK/base-build"
fi
step "fresh root file system from the debootstrap image"
[ ! -e "$ROOTFS" ] || { cleanup; rm -rf "$ROOTFS"; }
mkdir -p "$ROOTFS"
tar -C "$ROOTFS" -xf "$BASE"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mount -t proc proc "$ROOTFS/proc"; mounts+=("$ROOTFS/proc")
mount -t sysfs sys "$ROOTFS/sys"; mounts+=("$ROOTFS/sys")
bind /dev /dev
# As on a booted system: a tmpfs /dev/shm for everyone (Celery's prefork pool needs POSIX semaphores).
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOTFS/dev/shm"; mounts+=("$ROOTFS/dev/shm")
# This machine's pip configuration (local wheel folders and indexes) goes in with the folders it names.
for dir in /opt/wheels /opt/pypi /opt/pypi-more; do [ -d "$dir" ] && bind "$dir" "$dir" ro; done
for conf in /etc/pip.conf /etc/xdg/pip /root/.config/pip; do
  [ -e "$conf" ] && { mkdir -p "$ROOTFS$(dirname "$conf")"; cp -a "$conf" "$ROOTFS$conf"; }
done
# Local certificate authorities of this machine (an egress proxy's, say): the chroot's ca-certificates
# package adds them to its bundle when the installer installs it, as it would on a site with a proxy.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi
step "copy the project into the chroot"
mkdir -p "$ROOTFS/root/siliconhealth"
tar -C "$SRC" --exclude=./.venv --exclude=./var --exclude=./.git --exclude='__pycache__' \
  --exclude=./.pytest_cache --exclude=./.ruff_cache -cf - . | tar -C "$ROOTFS/root/siliconhealth" -xf -

in_chroot() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 PIP_DEFAULT_TIMEOUT=180 "$@"; }

step "install.sh $TIER (first run: packages, venv, configuration)"
in_chroot /root/siliconhealth/deploy/install/install.sh "$TIER" --host clinic.local --no-systemd --no-start

cat > "$ROOTFS/root/check.sh" <<'EOF'
#!/bin/bash
# Inside the chroot, in its own network namespace: start the node again through the installer, check it.
set -euo pipefail
TIER=$1
fail() { echo "DEPLOY CHECK FAILED: $*" >&2; tail -n 40 /var/log/siliconhealth/*.log >&2 || true; exit 1; }
/root/siliconhealth/deploy/install/install.sh "$TIER" --host clinic.local --no-systemd \
  || fail "the second (offline, idempotent) install run failed"
echo "-- login page through nginx (TLS)"
page=$(curl -sS --fail --cacert /etc/siliconhealth/tls/cert.pem --resolve clinic.local:443:127.0.0.1 \
  https://clinic.local/accounts/login/) || fail "no login page over https"
grep -q 'name="password"' <<<"$page" || fail "the login page has no password field"
redirect=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: clinic.local' http://127.0.0.1/accounts/login/)
[ "$redirect" = "301 https://clinic.local/accounts/login/" ] || fail "port 80 answered $redirect"
curl -sS --fail -k -o /dev/null -D - --resolve clinic.local:443:127.0.0.1 https://clinic.local/accounts/login/ \
  | grep -qi '^strict-transport-security:' || fail "no HSTS header"
echo "-- a record written through the worker, and the ledger verified"
runuser -u siliconhealth -- env -C /opt/siliconhealth sh -c \
  'set -a; . /etc/siliconhealth/siliconhealth.env; set +a; exec .venv/bin/python deploy/install/smoke.py --timeout 180' \
  || fail "the worker did not carry out the watermark task, or the ledger does not verify"
echo "-- ledger verify"
siliconhealth-manage ledger verify || fail "ledger verify"
echo "-- health probe (web, worker, Stratum server)"
runuser -u siliconhealth -- env -C /opt/siliconhealth sh -c \
  'set -a; . /etc/siliconhealth/siliconhealth.env; set +a; exec .venv/bin/python deploy/install/probe.py all' \
  || fail "health probe"
python3 /opt/siliconhealth/deploy/install/run_units.py status
echo "DEPLOY CHECK PASSED"
EOF
chmod +x "$ROOTFS/root/check.sh"

step "second run offline in its own network namespace, services started, checks"
unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 /root/check.sh "$TIER"
status=$?
step "done (status $status)"
exit $status
