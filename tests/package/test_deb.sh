#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The Debian packages (cmake/packaging.cmake): cpack -G DEB builds them from
# this build tree, each holds what it should and depends on what it should;
# they are unpacked into a throw-away root (dpkg -x, no root rights, nothing
# installed on the machine), and from there: `m2mtls demo` runs with the
# packaged provider (found beside the packaged command), a program builds
# against libm2mtls-dev with pkg-config and runs with libm2mtls1, the preload
# module loads, the manual pages render.
# usage: test_deb.sh BUILD-DIR SOURCE-DIR
set -u
build=$1 src=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-deb-XXXXXX") || exit 1
[ -n "${KEEP_T:-}" ] || trap 'rm -rf "$T"' EXIT INT TERM
failures=0 checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
for tool in cpack dpkg-deb dpkg cc pkg-config openssl man; do
  command -v $tool >/dev/null || { echo "$tool not found"; exit 1; }
done

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
[ -n "$version" ] || { echo "no CPACK_PACKAGE_VERSION in $build/CPackConfig.cmake"; exit 1; }
if ! (cd "$build" && cpack -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1); then
  cat "$T/cpack.log"; echo "cpack -G DEB failed"; exit 1
fi
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
lib=usr/lib/$multiarch

deb() { echo "$T/pkg/$1_$version-1_$arch.deb"; }
contains() { # PACKAGE PATH...
  p=$1; shift
  dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | sed 's|^\./||' >"$T/$p.list"
  for f in "$@"; do
    grep -qx "$f" "$T/$p.list" && ok || fail "$p does not contain /$f"
  done
}
field() { dpkg-deb -f "$(deb "$1")" "$2"; }

for p in libm2mtls1 libm2mtls-dev m2mtls-provider m2mtls-preload m2mtls; do
  [ -f "$(deb $p)" ] && ok || { fail "no package $p ($(ls "$T/pkg" | tr '\n' ' '))"; continue; }
done
[ "$failures" -eq 0 ] || exit 1

contains libm2mtls1 "$lib/libm2mtls.so.1" "$lib/libm2mtls.so.$version"
contains libm2mtls-dev usr/include/m2mtls/policy.h usr/include/m2mtls/version.h "$lib/libm2mtls.so" \
  "$lib/libm2mtls.a" "$lib/pkgconfig/m2mtls.pc" "$lib/cmake/m2mtls/m2mtlsConfig.cmake" usr/share/man/man3/libm2mtls.3
contains m2mtls-provider "$lib/ossl-modules/m2mtls.so" usr/share/man/man7/provider-m2mtls.7
contains m2mtls-preload "$lib/libm2mtls-preload.so"
contains m2mtls usr/bin/m2mtls usr/share/man/man1/m2mtls.1 usr/share/man/man5/m2mtls-policy.5
# the runtime library alone in its package (Debian policy 8.2), the headers not in it
grep -q include "$T/libm2mtls1.list" && fail "libm2mtls1 holds headers" || ok

field libm2mtls-dev Depends | grep -q "libm2mtls1 (= $version-1)" && ok || fail "libm2mtls-dev does not depend on libm2mtls1 (= $version-1): $(field libm2mtls-dev Depends)"
for p in libm2mtls1 m2mtls-provider m2mtls; do
  field $p Depends | grep -q "libssl3" && ok || fail "$p does not depend on libssl3: $(field $p Depends)"
done
field m2mtls Recommends | grep -q "m2mtls-provider" && ok || fail "m2mtls does not recommend m2mtls-provider"
dpkg-deb -e "$(deb libm2mtls1)" "$T/ctl"
grep -q "^libm2mtls 1 libm2mtls1" "$T/ctl/shlibs" && ok || fail "libm2mtls1 has no shlibs entry for libm2mtls.so.1"

# ---- unpacked into a throw-away root -----------------------------------------------
R=$T/root
for p in libm2mtls1 libm2mtls-dev m2mtls-provider m2mtls-preload m2mtls; do dpkg -x "$(deb $p)" "$R"; done

"$R/usr/bin/m2mtls" --version >"$T/version.out" 2>&1
grep -qx "m2mtls $version" "$T/version.out" && ok || { fail "m2mtls --version"; cat "$T/version.out"; }

# the demo: the provider is the packaged one, found beside the packaged command
( cd "$T" && env -u M2MTLS_PROVIDER_MODULE OPENSSL_CONF=/dev/null timeout 120 "$R/usr/bin/m2mtls" demo ) \
  >"$T/demo.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok || { fail "m2mtls demo from the unpacked packages: exit $rc"; tail -30 "$T/demo.out"; }
grep -qF "openssl.cnf loads the m2mtls provider ($R/$lib/ossl-modules/m2mtls.so)" "$T/demo.out" && ok \
  || { fail "the demo did not load the packaged provider"; grep -i provider "$T/demo.out"; }

# a program built against libm2mtls-dev, run with libm2mtls1
cat >"$T/policy" <<POLICY
anchor root $src/tests/install/root.pem
peer /CSE-1 dns:cse-1.example.com root
POLICY
pc="$R/$lib/pkgconfig"
if cc -o "$T/consumer" "$src/tests/install/consumer.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs m2mtls) \
     >"$T/cc.log" 2>&1; then ok; else fail "building against libm2mtls-dev"; cat "$T/cc.log"; fi
out=$(LD_LIBRARY_PATH="$R/$lib" "$T/consumer" "$T/policy" 2>&1)
echo "$out" | grep -q "$version: 1 peers, installed 1" && ok || fail "consumer with libm2mtls1: $out"
LD_LIBRARY_PATH="$R/$lib" ldd "$T/consumer" | grep -q "libm2mtls.so.1 => $R/$lib/libm2mtls.so.1" && ok \
  || fail "the consumer does not use the packaged libm2mtls.so.1"

# the preload module loads into an unmodified program (no SSL_CTX made: nothing else happens)
LD_PRELOAD="$R/$lib/libm2mtls-preload.so" openssl version >"$T/preload.out" 2>&1 && ok \
  || { fail "openssl with the packaged preload module"; cat "$T/preload.out"; }

for page in man1/m2mtls.1 man5/m2mtls-policy.5 man3/libm2mtls.3 man7/provider-m2mtls.7; do
  [ -n "$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$R/usr/share/man/$page" 2>/dev/null | head -3)" ] && ok \
    || fail "the packaged $page does not render"
done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
