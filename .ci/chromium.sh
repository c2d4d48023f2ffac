#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser test (tests/it/web_browser.rs) if missing.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium + chromium-driver from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium chromium-driver >&2
fi
