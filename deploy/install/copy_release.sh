#!/bin/bash
# copy_release.sh SRC APP: put the release in SRC at APP, keeping APP's virtualenv.
# The release lands in a fresh folder that then replaces the old one, so a module removed from the
# release is gone from the node too (copying over the old tree would leave it importable). The code is
# root's and read-only to the service: a compromised worker cannot rewrite it.
set -euo pipefail
SRC=$1
APP=$2
rm -rf "$APP.new" "$APP.old"
install -d -m 0755 "$APP.new"
tar -C "$SRC" --exclude=./.venv --exclude=./var --exclude=./.git --exclude='__pycache__' \
  --exclude=./.pytest_cache --exclude=./.ruff_cache -cf - . | tar -C "$APP.new" --no-same-owner -xf -
if [ -d "$APP/.venv" ]; then
  mv "$APP/.venv" "$APP.new/.venv"  # same final path, so its scripts' shebangs keep working
fi
if [ -d "$APP" ]; then
  mv "$APP" "$APP.old"
fi
mv "$APP.new" "$APP"
rm -rf "$APP.old"
