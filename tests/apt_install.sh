#!/usr/bin/env bash
# Install Debian packages the tests need, as CI does on a fresh machine: apt_install.sh WHO PKG...
# (WHO: the calling script, named in messages). Idempotent: packages already installed are
# skipped, and nothing is fetched when all are there. Needs root and a reachable apt mirror.
set -euo pipefail

who=$1
shift
packages=("$@")

if [[ $(id -u) -ne 0 ]]; then
    echo "$who: must run as root (apt-get install ${packages[*]})" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "$who: already installed: ${packages[*]}"
    exit 0
fi

echo "$who: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# An empty package index (fresh container) makes install fail with "Unable to locate package".
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    echo "$who: apt-get install failed; retrying after apt-get update" >&2
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$log" 2>&1; then
        echo "$who: apt-get could not install ${missing[*]}:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
fi
echo "$who: installed ${missing[*]}"
