#!/usr/bin/env bash
# Installs the Debian packages of the built-in default corpus (Festival + two voices) and
# libsndfile, when missing and when run as root. Idempotent; a no-op for non-root users, who
# get a clear message instead (the festival corpus tests then skip with that reason).
set -euo pipefail
pkgs=(festival festvox-us-slt-hts festvox-kallpc16k libsndfile1)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: Debian packages missing (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
