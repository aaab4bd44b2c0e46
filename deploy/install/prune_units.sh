#!/bin/bash
# prune_units.sh RELEASE_UNITS INSTALLED_UNITS [--systemctl]: remove the siliconhealth units (and their
# drop-in folders) that are installed but no longer shipped by the release, so an upgrade does not leave
# a retired service running or starting at the next boot. With --systemctl each is first disabled and
# stopped. Prints the name of every unit removed.
set -euo pipefail
RELEASE=$1
INSTALLED=$2
SYSTEMCTL=${3:-}
[ -d "$RELEASE" ] || { echo "prune_units.sh: no release unit folder $RELEASE" >&2; exit 2; }
shopt -s nullglob
for unit in "$INSTALLED"/siliconhealth*.service "$INSTALLED"/siliconhealth*.timer \
    "$INSTALLED"/siliconhealth*.target "$INSTALLED"/siliconhealth*.socket; do
  name=$(basename "$unit")
  [ -e "$RELEASE/$name" ] && continue
  if [ "$SYSTEMCTL" = "--systemctl" ]; then
    systemctl disable --now "$name" >/dev/null 2>&1 || true
  fi
  rm -f "$unit"
  rm -rf "$unit.d"
  echo "$name"
done
