#!/usr/bin/env bash
# Install (or update) a SiliconHealth node on Debian 12 / Raspberry Pi OS (64-bit). Run once as root:
#
#   deploy/install/install.sh TIER [--host NAME] [--tls-cert FILE --tls-key FILE] [--no-systemd] [--no-start]
#
# TIER: regional-hospital, urban-health-centre, rural-clinic or mobile-health-point.
# Safe to run again: it keeps the node's key, secret, certificate, database and settings, and updates
# the code, the packages and the service units. --no-systemd is for a container or chroot without
# systemd: the services are started from their unit files by deploy/install/run_units.py instead.
# --no-start installs and enables everything but starts nothing.
set -euo pipefail

APP=/opt/siliconhealth
HOME_DIR=/var/lib/siliconhealth
CONF=/etc/siliconhealth
ENV_FILE=$CONF/siliconhealth.env
SERVICE_USER=siliconhealth
SRC=$(cd "$(dirname "$0")/../.." && pwd)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

TIER_ARG="" HOST="" TLS_CERT="" TLS_KEY="" SYSTEMD=1 START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --host) HOST=${2:?--host needs a name}; shift 2 ;;
    --tls-cert) TLS_CERT=${2:?--tls-cert needs a file}; shift 2 ;;
    --tls-key) TLS_KEY=${2:?--tls-key needs a file}; shift 2 ;;
    --no-systemd) SYSTEMD=0; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$TIER_ARG" ] || die "one tier only"; TIER_ARG=$1; shift ;;
  esac
done
[ -n "$TIER_ARG" ] || usage
[ "$(id -u)" = 0 ] || die "run as root (sudo $0 $TIER_ARG)"
{ [ -z "$TLS_CERT" ] && [ -z "$TLS_KEY" ]; } || { [ -f "$TLS_CERT" ] && [ -f "$TLS_KEY" ]; } \
  || die "--tls-cert and --tls-key go together and must be readable files"
HOST=${HOST:-$(hostname -f 2>/dev/null || hostname)}
[[ "$HOST" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]] || die "--host $HOST is not a host name"

say "system packages"
export DEBIAN_FRONTEND=noninteractive
packages=(python3 python3-venv python3-pip ca-certificates openssl curl nginx sqlite3 tzdata)
# python3 is needed to read the profile, so the profile decides the extra packages after this step.
missing() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done; }
if [ -n "$(missing "${packages[@]}")" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
TIER=$(python3 "$SRC/siliconhealth/tiers.py" resolve "$TIER_ARG") || die "unknown tier $TIER_ARG"
profile() { python3 "$SRC/siliconhealth/tiers.py" show "$TIER" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
DATABASE=$(profile database)
BROKER=$(profile broker)
extra=()
[ "$DATABASE" = postgresql ] && extra+=(postgresql)
[ "$BROKER" = redis ] && extra+=(redis-server)
if [ ${#extra[@]} -gt 0 ] && [ -n "$(missing "${extra[@]}")" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${extra[@]}" >/dev/null
fi
echo "tier $TIER: database $DATABASE, broker $BROKER"

say "system user $SERVICE_USER and directories"
getent group "$SERVICE_USER" >/dev/null || groupadd --system "$SERVICE_USER"
getent passwd "$SERVICE_USER" >/dev/null || useradd --system --gid "$SERVICE_USER" --home-dir "$HOME_DIR" \
  --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$HOME_DIR"
install -d -o root -g "$SERVICE_USER" -m 0750 "$CONF" "$CONF/tls"
install -d -o root -g root -m 0755 "$APP"

say "application code in $APP"
if [ "$SRC" != "$APP" ]; then
  bash "$SRC/deploy/install/copy_release.sh" "$SRC" "$APP"  # removed files go; the venv stays
fi
# The application's pins only: the development tools (requirements-dev.txt) have no place on a node.
stamp="$APP/.venv/.installed-$(sha256sum "$APP/requirements.txt" | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  [ -x "$APP/.venv/bin/python" ] || python3 -m venv "$APP/.venv"
  "$APP/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$APP/requirements.txt"
  rm -f "$APP"/.venv/.installed-*
  touch "$stamp"
fi

say "configuration in $CONF"
if [ ! -s "$CONF/secret_key" ]; then
  (umask 027; python3 -c 'import secrets; print(secrets.token_urlsafe(64))' > "$CONF/secret_key")
fi
chown root:"$SERVICE_USER" "$CONF/secret_key"; chmod 0640 "$CONF/secret_key"
if [ ! -e "$ENV_FILE" ]; then
  database_url=""
  [ "$DATABASE" = postgresql ] && database_url="postgresql://$SERVICE_USER@/siliconhealth?host=/var/run/postgresql"
  cat > "$ENV_FILE" <<EOF
# SiliconHealth node settings (read by the services and by siliconhealth-manage).
# Any value of deploy/profiles/ can be overridden here; see $APP/deploy/README.md for the names.
SILICONHEALTH_TIER=$TIER
SILICONHEALTH_HOME=$HOME_DIR
SILICONHEALTH_PRODUCTION=1
SECRET_KEY_FILE=$CONF/secret_key
ALLOWED_HOSTS=$HOST,localhost,127.0.0.1
CSRF_TRUSTED_ORIGINS=https://$HOST
${database_url:+DATABASE_URL=$database_url}
EOF
else
  # A re-run with another tier switches the tier and keeps everything else the operator set.
  sed -i "s/^SILICONHEALTH_TIER=.*/SILICONHEALTH_TIER=$TIER/" "$ENV_FILE"
fi
chown root:"$SERVICE_USER" "$ENV_FILE"; chmod 0640 "$ENV_FILE"

say "TLS certificate"
if [ -n "$TLS_CERT" ]; then
  install -o root -g root -m 0644 "$TLS_CERT" "$CONF/tls/cert.pem"
  install -o root -g root -m 0600 "$TLS_KEY" "$CONF/tls/key.pem"
elif [ ! -s "$CONF/tls/cert.pem" ]; then
  # Self-signed for ten years: browsers warn once; give your own with --tls-cert/--tls-key later.
  (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST,DNS:localhost,IP:127.0.0.1" \
    -keyout "$CONF/tls/key.pem" -out "$CONF/tls/cert.pem" 2>/dev/null)
  chmod 0644 "$CONF/tls/cert.pem"
fi
openssl x509 -noout -subject -enddate -in "$CONF/tls/cert.pem"

if [ "$DATABASE" = postgresql ]; then
  say "PostgreSQL database"
  if ! pg_isready -q; then
    if [ "$SYSTEMD" = 1 ]; then systemctl enable --now postgresql; else pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -1)" main start; fi
    for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
  fi
  runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='$SERVICE_USER'" | grep -q 1 \
    || runuser -u postgres -- createuser "$SERVICE_USER"
  runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='siliconhealth'" | grep -q 1 \
    || runuser -u postgres -- createdb -O "$SERVICE_USER" siliconhealth
fi
if [ "$BROKER" = redis ] && [ "$SYSTEMD" = 0 ] && ! redis-cli ping >/dev/null 2>&1; then
  redis-server /etc/redis/redis.conf --daemonize yes
fi

say "database migrations, static files, node key"
manage() { runuser -u "$SERVICE_USER" -- env -C "$APP" bash -c \
  'set -a; . "$0"; set +a; exec .venv/bin/python manage.py "$@"' "$ENV_FILE" "$@"; }
manage migrate --noinput -v 0
manage collectstatic --noinput -v 0
manage node info
manage check --deploy --fail-level WARNING
cat > /usr/local/bin/siliconhealth-manage <<EOF
#!/bin/sh
# Run a SiliconHealth management command as the service user, with the node's settings.
exec runuser -u $SERVICE_USER -- env -C $APP sh -c 'set -a; . $ENV_FILE; set +a; exec .venv/bin/python manage.py "\$@"' manage "\$@"
EOF
chmod 0755 /usr/local/bin/siliconhealth-manage

say "nginx (TLS on 443, port 80 redirects)"
install -m 0644 "$APP/deploy/nginx/siliconhealth.conf" /etc/nginx/sites-available/siliconhealth
ln -sf /etc/nginx/sites-available/siliconhealth /etc/nginx/sites-enabled/siliconhealth
rm -f /etc/nginx/sites-enabled/default
nginx -t -q

say "service units"
# Units an earlier release shipped and this one does not are stopped and removed first.
if [ "$SYSTEMD" = 1 ]; then PRUNE_FLAG=--systemctl; else PRUNE_FLAG=; fi
"$APP/deploy/install/prune_units.sh" "$APP/deploy/systemd" /etc/systemd/system $PRUNE_FLAG
install -m 0644 "$APP"/deploy/systemd/siliconhealth* /etc/systemd/system/
(set -a; . "$ENV_FILE"; set +a; python3 "$APP/siliconhealth/tiers.py" dropins /etc/systemd/system)
units=(siliconhealth-web siliconhealth-worker siliconhealth-beat siliconhealth-stratum)
if [ "$SYSTEMD" = 1 ]; then
  systemctl daemon-reload
  systemd-analyze verify /etc/systemd/system/siliconhealth*.service /etc/systemd/system/siliconhealth.target
  if [ "$START" = 1 ]; then
    systemctl enable --now nginx siliconhealth.target siliconhealth-healthcheck.timer siliconhealth-backup.timer
    systemctl reload nginx
    systemctl restart "${units[@]/%/.service}"
  else
    systemctl enable nginx siliconhealth.target siliconhealth-healthcheck.timer siliconhealth-backup.timer
  fi
elif [ "$START" = 1 ]; then
  if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then nginx -s reload; else nginx; fi
  python3 "$APP/deploy/install/run_units.py" stop
  python3 "$APP/deploy/install/run_units.py" start
fi

say "done"
cat <<EOF
SiliconHealth ($TIER) is installed: https://$HOST/
Create the first administrator:
  siliconhealth-manage users add ADMIN_NAME --role admin --password-stdin
Check the ledger at any time:
  siliconhealth-manage ledger verify
EOF
