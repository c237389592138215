#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian's `chromium` and `chromium-driver`) for
# the dashboard's browser tests. Idempotent: does nothing when both are already there, so CI
# pays for the download once per machine.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "chromium and chromedriver already installed"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive

# A fresh machine may have no package lists yet; an install from stale lists can 404.
if ! apt-cache show chromium-driver >/dev/null 2>&1 || [[ -z "$(ls -A /var/lib/apt/lists 2>/dev/null)" ]]; then
    $SUDO apt-get update -q
fi
if ! $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; then
    # The lists may have gone stale since the last update: refresh once and try again.
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
/usr/bin/chromium --version
/usr/bin/chromedriver --version
