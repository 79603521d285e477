#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The two quick-start commands (README "Quick start"):
#   ./run.sh demo   install what is missing, build, run the demo (the main job)
#   ./run.sh test   install what is missing, build, run the whole test suite:
#                   plain build (with the ABI check, the man-page check and the
#                   Debian packages installed into a throw-away root) + valgrind,
#                   then ASan+UBSan, then the threaded tests under TSan, then each
#                   fuzz target for FUZZ_SECONDS (default 30), then the suite on Debian 13
#                   (gcc 14, OpenSSL 3.5) in a cached root (tests/platform/debian13.sh;
#                   M2MTLS_DEBIAN13=0 skips it). Test builds treat warnings as
#                   errors (M2MTLS_WERROR).
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

# Every Debian package the build, the demo and the tests use.
PACKAGES=(build-essential cmake pkg-config openssl libssl-dev libcmocka-dev
          abigail-tools man-db groff-base bsdextrautils dpkg-dev
          softhsm2 opensc valgrind clang libclang-rt-dev python3
          nginx mosquitto libcoap3-bin libcoap3-dev
          swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon
          libtpm2-pkcs11-1 libtpm2-pkcs11-tools libengine-pkcs11-openssl
          debootstrap)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Node.js for tests/servers/srv_runtimes.sh must be Debian's nodejs, which links
# the system libssl3: nodesource's builds link their own OpenSSL statically, so
# the preload never sees their TLS contexts. Without any nodejs, Debian's is
# installed (by version: nodesource's apt pin would pick its own). When another
# nodejs package is installed (e.g. nodesource's), it is left alone: Debian's
# nodejs, its libnode and the JavaScript libnode loads from /usr/share/nodejs are
# unpacked into _build-node/root (apt-get download, dpkg -x), their C libraries
# installed; tests/servers/debian-node.sh runs that node.
debian_version() { # PACKAGE: the highest version of PACKAGE from the Debian archive
  apt-cache madison "$1" | awk -F'|' '$3 !~ /nodesource/ { gsub(/ /, "", $2); print $2; exit }'
}
install_debian_node() {
  local node sudo="" ver libnode deps
  node=$(command -v node || true)
  if [ -n "$node" ] && ldd "$node" 2>/dev/null | grep -q 'libssl\.so\.3'; then return 0; fi
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  ver=$(debian_version nodejs)
  [ -n "$ver" ] || { echo "run.sh: no Debian nodejs in the apt sources" >&2; return 1; }
  if ! dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q 'install ok installed'; then
    echo "== installing: Debian's nodejs $ver"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "nodejs=$ver" >/dev/null
    return
  fi
  [ -x "$top/_build-node/root/usr/bin/node" ] && [ "$(cat "$top/_build-node/version" 2>/dev/null)" = "$ver" ] && return 0
  echo "== unpacking Debian's nodejs $ver into _build-node/ (the installed nodejs does not link libssl3)"
  libnode=$(apt-cache show "nodejs=$ver" | sed -n 's/^Depends:.*\(libnode[0-9]*\) (= .*/\1/p' | head -n 1)
  deps=$(apt-cache show "$libnode=$ver" | sed -n 's/^Depends: //p' | head -n 1 | tr ',' '\n' | sed 's/^ *//; s/[ |].*//')
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $(printf '%s\n' $deps | grep '^lib') >/dev/null
  rm -rf "$top/_build-node" && mkdir -p "$top/_build-node/root" && chmod 777 "$top/_build-node"
  (cd "$top/_build-node" && apt-get download -qq "nodejs=$ver" "$libnode=$ver" $(printf '%s\n' $deps | grep '^node-') \
     && for d in ./*.deb; do dpkg -x "$d" root; done) && echo "$ver" >"$top/_build-node/version"
}

build() { # build DIR [cmake args...]  (BUILD_TARGET: one target instead of all)
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
}

cmd_demo() {
  install_missing
  build build
  exec "$top/build/tools/m2mtls" demo "$@"
}

cmd_test() {
  install_missing
  # pkcs11-provider, a baseline of `m2mtls bench` (its smoke tests want its
  # rows): Debian 13's binary package unpacked into /var/cache/m2mtls
  # (nothing installed; see the script)
  tools/bench/get-pkcs11-provider.sh >/dev/null
  install_debian_node
  echo "== build and test (plain; prefix /usr for the Debian packages of test_deb)"
  build build -DM2MTLS_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr
  (cd build && ctest --output-on-failure -j "$jobs" -LE '^bench$')
  echo "== valgrind memcheck (unit and loopback tests of the plain build)"
  local t
  for t in test_policy_parse test_verify test_originator test_handshake test_profile test_params test_invariant test_rpk attack/attack_test attack/attack_resume_test; do
    valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
      --errors-for-leak-kinds=definite,indirect "build/tests/$t" >"build/valgrind-${t##*/}.log" 2>&1 \
      || { cat "build/valgrind-${t##*/}.log"; echo "valgrind: $t failed"; return 1; }
    echo "valgrind: $t clean"
  done
  echo "== build and test (AddressSanitizer + UndefinedBehaviorSanitizer)"
  build build-asan -DM2MTLS_WERROR=ON -DM2MTLS_SANITIZE=address,undefined
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j "$jobs" -LE 'bench|nosan')
  echo "== build and test (ThreadSanitizer, threaded tests)"
  build build-tsan -DM2MTLS_WERROR=ON -DM2MTLS_SANITIZE=thread
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure -j "$jobs" -L threads -LE nosan)
  echo "== fuzz targets (clang, libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-30} s each)"
  CC=clang BUILD_TARGET=fuzzers build build-fuzz -DM2MTLS_WERROR=ON -DM2MTLS_FUZZ=ON -DM2MTLS_FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
  (cd build-fuzz && ctest --output-on-failure -L 'fuzz|fuzzcorpus')
  if [ "${M2MTLS_DEBIAN13:-1}" != 0 ]; then
    echo "== Debian 13 (gcc 14, OpenSSL 3.5): build and test in a cached Debian 13 root"
    "$top/tests/platform/debian13.sh"
  else
    echo "== Debian 13 pass skipped (M2MTLS_DEBIAN13=0)"
  fi
  echo "== all test runs passed"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
