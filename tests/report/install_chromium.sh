#!/usr/bin/env bash
# Install headless Chromium (Debian's chromium) to render the Snakemake report as a user sees it.
# Idempotent: nothing is fetched when it is there. Needs root and a reachable apt mirror, as
# tests/cluster/install.sh. Usage: tests/report/install_chromium.sh
set -euo pipefail

packages=(chromium fonts-dejavu-core)

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/report/install_chromium.sh: must run as root (apt-get install ${packages[*]})" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "tests/report/install_chromium.sh: already installed: ${packages[*]}"
    exit 0
fi

echo "tests/report/install_chromium.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# An empty package index (fresh container) makes install fail with "Unable to locate package".
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    echo "tests/report/install_chromium.sh: apt-get install failed; retrying after apt-get update" >&2
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$log" 2>&1; then
        echo "tests/report/install_chromium.sh: apt-get could not install ${missing[*]}:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
fi
echo "tests/report/install_chromium.sh: installed ${missing[*]}"
