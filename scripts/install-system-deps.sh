#!/usr/bin/env bash
# Installs the Debian packages the browser and Redis tests need (chromium, chromium-driver,
# redis-server) when they are missing. Needs root (or passwordless sudo); says what is
# missing otherwise.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "missing system packages: ${missing[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
