#!/usr/bin/env bash
# Install the system packages the test suite needs: MariaDB server + client, a
# PostgreSQL server and Chromium (the KPI report is checked in a headless browser)
# (Debian/Ubuntu, apt). Idempotent: when everything is already
# there it exits at once without touching apt. Never starts system services: the
# tests start their own throwaway servers (tests/servers.py).
#
#   scripts/install-system-deps.sh          # as root, or with sudo available
#
# PYTHON (default python3) is checked for the venv module too.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

have_mariadb() {
    { command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } >/dev/null 2>&1 &&
        command -v mariadb-install-db >/dev/null 2>&1 &&
        command -v mariadb >/dev/null 2>&1
}

have_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

have_venv() {
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1
}

packages=()
have_mariadb || packages+=(mariadb-server mariadb-client)
have_postgres || packages+=(postgresql)
have_chromium || packages+=(chromium)
if ! have_venv; then
    # Debian splits ensurepip out of python3; only meaningful for the system python.
    packages+=(python3-venv)
fi

if [ ${#packages[@]} -eq 0 ]; then
    echo "system dependencies: all present"
    exit 0
fi

echo "system dependencies: installing ${packages[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found; install these by hand: ${packages[*]}" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "error: need root (or password-less sudo) to apt-get install: ${packages[*]}" >&2
        exit 1
    fi
fi

# Keep package scripts from starting the system mariadb/postgresql services.
# An existing policy-rc.d (Docker images ship one that denies everything) is left alone.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# added by panorama-kpi scripts/install-system-deps.sh\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${packages[@]}" </dev/null

missing=()
have_mariadb || missing+=(mariadb)
have_postgres || missing+=(postgresql)
have_chromium || missing+=(chromium)
have_venv || missing+=("venv module for $PYTHON")
if [ ${#missing[@]} -gt 0 ]; then
    echo "error: still missing after apt-get install: ${missing[*]}" >&2
    exit 1
fi
echo "system dependencies: installed"
