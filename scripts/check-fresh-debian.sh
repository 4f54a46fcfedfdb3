#!/usr/bin/env bash
# Proves the README's commands on a fresh Debian bookworm: builds a minimal
# bookworm root with debootstrap, adds only what the README asks the reader
# to have (a Rust toolchain with the linker rustup needs, make, Node.js 20),
# clones this repository into it and runs `make test` there (DEMO too, as
# its last part). Nothing the host has installed for the project leaks in:
# Debian packages, the cargo registry, pip's and npm's caches all start
# empty. Not part of `make test` (it needs root, debootstrap and ~20 min);
# run it before changing the setup scripts or the README's install steps.
#
#   sudo scripts/check-fresh-debian.sh [ROOT]    (default .tmp/fresh-debian)
#
# The Rust toolchain and Node.js 20 are copied from the host (rustup's files;
# the host's nodejs package repacked), since their installers' sites are
# not reachable from every machine; Debian bookworm ships Node.js 18 only.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
root=$(realpath -m "${1:-.tmp/fresh-debian}")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "check-fresh-debian: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "check-fresh-debian: apt-get install debootstrap dpkg-repack" >&2; exit 1; }

# A killed earlier run may have left the host's /dev bound inside: never
# work in (or let anyone delete) a root with mounts in it.
if findmnt -rn -o TARGET | grep -q "^$root/"; then
  echo "check-fresh-debian: $root still has mounts (findmnt | grep $root); umount -l them first" >&2
  exit 1
fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
  echo "check-fresh-debian: debootstrap bookworm into $root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -20 "$root.debootstrap.log"; exit 1; }
fi

mounts=(proc sys dev)
cleanup() {
  for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -l "$root/${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/apt/apt.conf.d/99artifact-registry ] && cp /etc/apt/apt.conf.d/99artifact-registry "$root/etc/apt/apt.conf.d/"
echo "deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main" >"$root/etc/apt/sources.list"

# What the README assumes: rustup's toolchain (it needs a C linker, hence
# build-essential and curl in rustup's own instructions), make, Node.js 20.
echo "check-fresh-debian: the README's prerequisites"
# The host's network trust comes along: its added CA certificates (a proxy's,
# on some networks) and the variables that point each tool at them.
trust=()
for var in SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE PIP_CERT REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO; do
  [ -n "${!var:-}" ] && trust+=("$var=${!var}")
done
in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${trust[@]}" "$@"; }
in_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq --no-install-recommends build-essential curl ca-certificates git >/dev/null
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  in_root update-ca-certificates >/dev/null
fi
mkdir -p "$root/root/.cargo"
rm -rf "$root/root/.rustup" "$root/root/.cargo/bin"
cp -a "${RUSTUP_HOME:-$HOME/.rustup}" "$root/root/.rustup"
cp -a "${CARGO_HOME:-$HOME/.cargo}/bin" "$root/root/.cargo/bin"
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ] && dpkg-query -W nodejs >/dev/null 2>&1; then
  debs=$(mktemp -d)
  (cd "$debs" && dpkg-repack nodejs >/dev/null 2>&1)
  cp "$debs"/nodejs_*.deb "$root/tmp/nodejs.deb"
  rm -rf "$debs"
  DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq --no-install-recommends /tmp/nodejs.deb >/dev/null
  # npm updated itself on the host since the package was installed: the
  # repacked package misses its new files.
  cp -a /usr/lib/node_modules/npm/. "$root/usr/lib/node_modules/npm/"
fi
in_root bash -c 'cargo --version && node --version && npm --version && make --version | head -1'

# A clean clone with ../shared beside it, as CI has.
rm -rf "$root/work"
mkdir -p "$root/work"
git clone -q "$repo" "$root/work/main"
[ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/work/shared"

echo "check-fresh-debian: make test in $root/work/main"
in_root bash -c 'cd /work/main && time make test'
