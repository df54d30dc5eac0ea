#!/usr/bin/env bash
# Installs the Debian packages uuidgate needs to build, test and demo, when
# any is missing. Uses sudo when not run as root.
set -euo pipefail

PACKAGES=(
  gcc pkg-config meson ninja-build
  libevent-dev libssl-dev libpq-dev libpg-query-dev libprotobuf-c-dev
  postgresql postgresql-contrib postgresql-client
  python3 python3-psycopg python3-pytest python3-asyncpg python3-prometheus-client
  openssl pgbouncer procps iproute2
  clang libclang-rt-14-dev python3-pytest-timeout python3-yaml binutils systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "uuidgate: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "uuidgate: run as root or install sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# A fresh postgresql package starts a system cluster; uuidgate's tests and demo
# run their own private clusters and leave that one alone.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
