#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine, and
# nothing when it is all there already (so `make test` stays quick locally).
# Needs root (or sudo) for apt; the Rust toolchain must already be installed.
set -euo pipefail

# Each part lists its Debian packages in scripts/deps/<part>.debs.
here="$(cd "$(dirname "$0")" && pwd)"
mapfile -t want_debs < <(cat "$here"/deps/*.debs | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in "${want_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || {
  echo "setup: cargo not found; install Rust (https://rustup.rs) and run again" >&2
  exit 1
}
echo "setup: ok ($(redis-server --version | cut -d' ' -f3), $(cargo --version))"
