#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a temporary prefix, then builds a program against it
# twice, as users would: with pkg-config and with CMake find_package(m2mtls).
# usage: test_install.sh BUILD-DIR SOURCE-DIR
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
# lib, lib64 or lib/<multiarch> (GNUInstallDirs with the prefix /usr on Debian)
pc=$(find "$tmp/prefix" -name m2mtls.pc | head -n1)
[ -n "$pc" ] || { echo "cmake --install did not install m2mtls.pc"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
test -f "$tmp/prefix/include/m2mtls/policy.h"
test -f "$libdir/pkgconfig/m2mtls.pc"
test -f "$libdir/cmake/m2mtls/m2mtlsConfig.cmake"
test -x "$tmp/prefix/bin/m2mtls"
ls "$libdir"/libm2mtls.so.1* >/dev/null
test -f "$tmp/prefix/include/m2mtls/version.h"
test -f "$libdir/libm2mtls.a"
for page in man1/m2mtls.1 man5/m2mtls-policy.5 man3/libm2mtls.3 man7/provider-m2mtls.7; do
  test -f "$tmp/prefix/share/man/$page" || { echo "cmake --install did not install share/man/$page"; exit 1; }
done

cat > "$tmp/policy" <<POLICY
anchor root $src/tests/install/root.pem
peer /CSE-1 dns:cse-1.example.com root
POLICY

# 1. pkg-config
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -o "$tmp/consumer-pc" "$src/tests/install/consumer.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs m2mtls) -Wl,-rpath,"$libdir"
out=$("$tmp/consumer-pc" "$tmp/policy")
echo "pkg-config consumer: $out"
echo "$out" | grep -q '1 peers, installed 1'

# 2. CMake find_package
mkdir "$tmp/cm"
cp "$src/tests/install/consumer.c" "$tmp/cm/"
cp "$src/tests/install/CMakeLists.txt.in" "$tmp/cm/CMakeLists.txt"
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_INSTALL_RPATH="$libdir" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
out=$("$tmp/cm/build/consumer" "$tmp/policy")
echo "find_package consumer: $out"
echo "$out" | grep -q '1 peers, installed 1'
echo "1 passed, 0 failed"
