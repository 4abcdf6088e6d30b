#!/usr/bin/env bash
# Install headless Chromium (Debian's chromium) to render the Snakemake report as a user sees it.
# Needs root and a reachable apt mirror. Usage: tests/report/install_chromium.sh
set -euo pipefail
exec "$(dirname "$0")/../apt_install.sh" tests/report/install_chromium.sh chromium fonts-dejavu-core
