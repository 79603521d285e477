#!/usr/bin/env bash
# The two quick-start commands (README "Quick start"):
#   ./run.sh demo   install what is missing, build, run the demo (the main job)
#   ./run.sh test   install what is missing, build, run the whole test suite:
#                   plain build + valgrind, then ASan+UBSan, then the threaded tests
#                   under TSan, then each fuzz target for FUZZ_SECONDS (default 30)
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

# Every Debian package the build, the demo and the tests use.
PACKAGES=(build-essential cmake pkg-config openssl libssl-dev libcmocka-dev
          softhsm2 opensc valgrind clang libclang-rt-dev python3
          nginx mosquitto libcoap3-bin
          swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon
          libtpm2-pkcs11-1 libtpm2-pkcs11-tools libengine-pkcs11-openssl)

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
  echo "== build and test (plain)"
  build build
  (cd build && ctest --output-on-failure -j "$jobs" -LE '^bench$')
  echo "== valgrind memcheck (unit and loopback tests of the plain build)"
  local t
  for t in test_policy_parse test_verify test_originator test_handshake test_invariant; do
    valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
      --errors-for-leak-kinds=definite,indirect "build/tests/$t" >"build/valgrind-$t.log" 2>&1 \
      || { cat "build/valgrind-$t.log"; echo "valgrind: $t failed"; return 1; }
    echo "valgrind: $t clean"
  done
  echo "== build and test (AddressSanitizer + UndefinedBehaviorSanitizer)"
  build build-asan -DM2MTLS_SANITIZE=address,undefined
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j "$jobs" -LE 'bench|nosan')
  echo "== build and test (ThreadSanitizer, threaded tests)"
  build build-tsan -DM2MTLS_SANITIZE=thread
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure -j "$jobs" -L threads -LE nosan)
  echo "== fuzz targets (clang, libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-30} s each)"
  CC=clang BUILD_TARGET=fuzzers build build-fuzz -DM2MTLS_FUZZ=ON -DM2MTLS_FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
  (cd build-fuzz && ctest --output-on-failure -L 'fuzz|fuzzcorpus')
  echo "== all test runs passed"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
