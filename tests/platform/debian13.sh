#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Debian 13 pass of `./run.sh test`: builds m2mtls with gcc 14 against
# OpenSSL 3.5 inside a Debian 13 (trixie) root and runs the whole ctest suite
# there (and, unless M2MTLS_DEBIAN13_ASAN=0, again under ASan + UBSan).
#
# The root is made once with debootstrap from the Debian registry this
# machine's apt uses, then reused from a cache directory outside the
# repository; its packages are updated only when run.sh's PACKAGES change.
#   first run: debootstrap + packages (a few minutes), then build + tests
#   next runs: mounts + build + tests (the root costs seconds)
# A root whose making was interrupted is never used: debootstrap writes into
# ROOT.partial, which becomes ROOT only when complete; leftovers are removed.
#
# usage: tests/platform/debian13.sh
# environment:
#   M2MTLS_DEBIAN13_ROOT    the root (default /var/cache/m2mtls/debian13)
#   M2MTLS_DEBIAN13_MIRROR  Debian archive URI (default: the one in /etc/apt,
#                           else http://deb.debian.org/debian)
#   M2MTLS_DEBIAN13_ASAN    1 (default): also the ASan + UBSan build; 0: plain only
#   M2MTLS_DEBIAN13_JOBS    build and ctest parallelism (default: nproc)
# Needs root (debootstrap, mount, chroot).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
root=${M2MTLS_DEBIAN13_ROOT:-/var/cache/m2mtls/debian13}
root=${root%/}
asan=${M2MTLS_DEBIAN13_ASAN:-1}
jobs=${M2MTLS_DEBIAN13_JOBS:-$(nproc 2>/dev/null || echo 2)}
suite=trixie

# Packages run.sh installs that only its Debian 12 passes use (valgrind
# memcheck, the clang fuzz build) or that are for the host (debootstrap).
HOST_ONLY="valgrind clang libclang-rt-dev debootstrap"
# Packages the root needs beyond PACKAGES: Debian's nodejs, for
# tests/servers/srv_runtimes.sh (run.sh's install_debian_node gets the host's:
# on Debian 12 it may unpack it into _build-node/, whose node needs Debian 12's
# libraries). Debian 13's links the root's libssl3t64 (libssl.so.3).
ROOT_EXTRA="nodejs"

say() { echo "debian13: $*"; }
die() { echo "debian13: error: $*" >&2; exit 1; }
now() { date +%s; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "must run as root (debootstrap, mount and chroot need it)"
  exec sudo --preserve-env=M2MTLS_DEBIAN13_ROOT,M2MTLS_DEBIAN13_MIRROR,M2MTLS_DEBIAN13_ASAN,M2MTLS_DEBIAN13_JOBS "$0" "$@"
fi
[ -n "$root" ] && [ "$root" != / ] || die "M2MTLS_DEBIAN13_ROOT must not be /"
case "$root/" in "$src"/*) die "the root must be outside the repository ($root)" ;; esac

# ---- mounts ---------------------------------------------------------------

# Mount points under DIR, deepest first.
mounts_under() {
  awk -v d="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' \
    /proc/self/mountinfo | sort -r
}

unmount_all() { # unmount_all DIR: everything mounted under DIR
  local m
  for m in $(mounts_under "$1"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  [ -z "$(mounts_under "$1")" ]
}

# Removes DIR, refusing while anything is still mounted under it (an rm -rf
# through a bind mount of /dev would empty the host's /dev).
remove_tree() {
  [ -e "$1" ] || return 0
  unmount_all "$1" || die "cannot unmount everything under $1; not removing it"
  rm -rf --one-file-system "$1"
}

cleanup() {
  local rc=$?
  unmount_all "$root" || echo "debian13: warning: mounts left under $root:" $(mounts_under "$root") >&2
  exit $rc
}

mount_root() {
  # The root is a mount point of its own: tools that make a private mount
  # namespace inside it (unshare -m, in test_preload) need "/" to be one.
  mount --bind "$root" "$root"
  mount --make-private "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"          # unmounting it never reaches the host's /dev
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
  mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  mkdir -p "$root/m2mtls/src" "$root/m2mtls/build"
  mount --bind "$src" "$root/m2mtls/src"
  mount -o remount,bind,ro "$root/m2mtls/src"
  mount -t tmpfs tmpfs "$root/m2mtls/build"
  # name resolution for apt, and localhost for the tests
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$root/etc/hosts" 2>/dev/null || true
}

in_root() { # in_root COMMAND...: a clean environment inside the root
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TMPDIR=/tmp DEBIAN_FRONTEND=noninteractive "$@"
}

# ---- the root ---------------------------------------------------------------

# The URI of the Debian archive (SUFFIX /debian) or of its security archive
# (/debian-security) in this machine's apt sources.
apt_uri() {
  local suffix=$1 f u
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    for u in $(awk '/^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }
                    /^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' "$f"); do
      case "${u%/}" in *"$suffix") echo "${u%/}"; return 0 ;; esac
    done
  done
  return 1
}

mirror=${M2MTLS_DEBIAN13_MIRROR:-$(apt_uri /debian || echo http://deb.debian.org/debian)}
security=$(apt_uri /debian-security || true)

# run.sh's PACKAGES, less the host-only ones, with their Debian 13 names, and
# ROOT_EXTRA.
root_packages() {
  local p
  for p in $(sed -n '/^PACKAGES=(/,/)/{ s/#.*//; s/PACKAGES=(//; s/)//; p }' "$src/run.sh"); do
    case " $HOST_ONLY " in *" $p "*) continue ;; esac
    case "$p" in
      # Debian 13 names, where they differ from Debian 12's, go here.
      *) echo "$p" ;;
    esac
  done
  printf '%s\n' $ROOT_EXTRA
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  say "installing debootstrap on the host"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

make_root() {
  local partial=$root.partial t0
  t0=$(now)
  remove_tree "$partial"
  ensure_debootstrap
  say "making the Debian 13 root with debootstrap from $mirror (once; cached in $root)"
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase "$suite" "$partial" "$mirror" > "$partial.log" 2>&1 \
    || { tail -20 "$partial.log" >&2; die "debootstrap failed (log: $partial.log)"; }
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -n "$security" ] && echo "deb $security $suite-security main"
  } > "$partial/etc/apt/sources.list"
  # Packages never start services inside the root.
  printf '#!/bin/sh\nexit 101\n' > "$partial/usr/sbin/policy-rc.d"
  chmod 755 "$partial/usr/sbin/policy-rc.d"
  echo "$suite $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$partial/.m2mtls-debootstrap-complete"
  mv "$partial.log" "$partial/var/log/m2mtls-debootstrap.log"
  mv "$partial" "$root"
  say "root made in $(( $(now) - t0 )) s"
}

ensure_root() {
  if [ -d "$root" ] && [ ! -f "$root/.m2mtls-debootstrap-complete" ]; then
    say "$root is incomplete (an interrupted debootstrap?): making it again"
    remove_tree "$root"
  fi
  [ -d "$root" ] || make_root
  remove_tree "$root.partial"
}

# Installs the packages when the list (or the sources) changed since the stamp.
ensure_packages() {
  local want stamp=$root/.m2mtls-packages t0
  want=$( { root_packages | sort -u; cat "$root/etc/apt/sources.list"; } | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "packages up to date (stamp $stamp)"
    return 0
  fi
  t0=$(now)
  say "installing packages in the root: $(root_packages | tr '\n' ' ')"
  rm -f "$stamp"
  in_root apt-get update -qq
  # shellcheck disable=SC2046
  in_root apt-get install -y -qq --no-install-recommends $(root_packages) > "$root/var/log/m2mtls-apt.log" 2>&1 \
    || { tail -30 "$root/var/log/m2mtls-apt.log" >&2; die "apt-get install failed in the root"; }
  in_root apt-get clean
  echo "$want" > "$stamp"
  say "packages installed in $(( $(now) - t0 )) s"
}

# ---- build and test -----------------------------------------------------------

build_and_test() { # build_and_test NAME CTEST-LABEL-EXCLUDE [cmake args...]
  local name=$1 exclude=$2 t0; shift 2
  local dir=/m2mtls/build/$name
  t0=$(now)
  say "build ($name): gcc $(in_root gcc -dumpfullversion), $(in_root openssl version)"
  in_root cmake --no-warn-unused-cli -S /m2mtls/src -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DM2MTLS_WERROR=ON "$@" >/dev/null
  in_root cmake --build "$dir" -j "$jobs"
  say "build ($name) took $(( $(now) - t0 )) s"
  t0=$(now)
  in_root sh -c "cd $dir && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $jobs -LE '$exclude'"
  say "tests ($name) took $(( $(now) - t0 )) s"
}

main() {
  local t0
  t0=$(now)
  mkdir -p "$(dirname "$root")"
  # One run at a time per root (two CI runs must not share mounts or apt).
  exec 9> "$root.lock"
  flock -w 3600 9 || die "another run holds $root.lock"
  # Left over by a run that was killed: unmount before anything else.
  unmount_all "$root" || die "cannot unmount what an earlier run left under $root"
  unmount_all "$root.partial" || die "cannot unmount what an earlier run left under $root.partial"
  ensure_root
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  mount_root
  ensure_packages
  say "root ready in $(( $(now) - t0 )) s"
  build_and_test plain '^bench$'
  if [ "$asan" = 1 ]; then
    build_and_test asan 'bench|nosan' -DM2MTLS_SANITIZE=address,undefined
  fi
  say "all Debian 13 test runs passed in $(( $(now) - t0 )) s"
}

main "$@"
exit
