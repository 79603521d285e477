#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The ABI of libm2mtls against the committed baseline (abi/libm2mtls.abi),
# with libabigail (Debian: abigail-tools).
#   abi_check.sh check BASELINE LIBRARY HEADER-DIR...   compare; exit 1 when incompatible
#   abi_check.sh dump OUT LIBRARY HEADER-DIR...         write a baseline (refresh)
#   abi_check.sh selftest                               the check on small libraries
# Passes: no change, or only additions (new functions, new enum values: a
# compatible 1.x release; the report says how to refresh the baseline).
# Fails: anything else abidiff reports, i.e. a removed symbol (its
# "incompatible" bit, 8) or a changed function, type or layout (its "change"
# bit, 4, left once additions are filtered out with --no-added-syms), and
# abidiff's own errors (bits 1 and 2).
set -u

need() {
  command -v abidw >/dev/null && command -v abidiff >/dev/null && return 0
  echo "abi_check: abidw/abidiff not found: install the Debian package abigail-tools"
  exit 1
}

# dump OUT LIBRARY HEADER-DIR...: only the types of the public headers, and
# nothing that depends on where the tree was built.
dump() {
  out=$1 lib=$2; shift 2
  if ! readelf -S "$lib" 2>/dev/null | grep -q '\.debug_info'; then
    echo "abi_check: $lib has no debug information: build with CMAKE_BUILD_TYPE=RelWithDebInfo or Debug"
    return 1
  fi
  hd=""
  for d in "$@"; do hd="$hd --headers-dir $d"; done
  # shellcheck disable=SC2086
  abidw $hd --drop-private-types --no-show-locs --no-corpus-path --no-comp-dir-path "$lib" >"$out"
}

# compare BASELINE CURRENT (both abidw XML): 0 compatible, 1 not.
compare() {
  base=$1 cur=$2
  abidiff --no-added-syms "$base" "$cur" >"$cur.diff" 2>&1
  rc=$?
  if [ $((rc & 3)) -ne 0 ]; then
    echo "abi_check: abidiff failed (exit $rc):"; cat "$cur.diff"; return 1
  fi
  if [ $((rc & 12)) -ne 0 ]; then
    echo "abi_check: INCOMPATIBLE ABI change against $base (abidiff exit $rc):"
    cat "$cur.diff"
    return 1
  fi
  abidiff "$base" "$cur" >"$cur.added" 2>&1
  if [ $(($? & 4)) -ne 0 ]; then
    echo "abi_check: compatible additions (when intended, refresh the baseline:"
    echo "  cmake --build BUILD-DIR --target abi-baseline   then commit abi/libm2mtls.abi):"
    cat "$cur.added"
  else
    echo "abi_check: the ABI is the baseline's"
  fi
  return 0
}

selftest() {
  t=$(mktemp -d)
  trap 'rm -rf "$t"' EXIT
  cc=${CC:-cc}
  base='struct s { int a; char *b; };
int f(struct s *x) { return x->a; }
int h(int y) { return y; }
enum e { E0, E1 };
int k(enum e v) { return (int)v; }'
  printf '%s\n' "$base" >"$t/base.c"
  printf '%s\nint added(void) { return 1; }\n' "$base" >"$t/added.c"
  sed 's/enum e { E0, E1 }/enum e { E0, E1, E2 }/' "$t/base.c" >"$t/enum.c"
  sed 's/char \*b; }/char *b; long grown; }/' "$t/base.c" >"$t/grown.c"
  sed 's/int a; char \*b;/char *b; int a;/' "$t/base.c" >"$t/reordered.c"
  sed 's/int h(int y)/int h(long y)/' "$t/base.c" >"$t/param.c"
  grep -v '^int h' "$t/base.c" >"$t/removed.c"
  for v in base added enum grown reordered param removed; do
    $cc -g -shared -fPIC -o "$t/lib$v.so" "$t/$v.c" && dump "$t/$v.abi" "$t/lib$v.so" || return 1
  done
  bad=0
  for v in base added enum; do
    compare "$t/base.abi" "$t/$v.abi" >"$t/$v.log" || { echo "selftest: '$v' refused, must pass"; cat "$t/$v.log"; bad=1; }
  done
  for v in grown reordered param removed; do
    compare "$t/base.abi" "$t/$v.abi" >"$t/$v.log" && { echo "selftest: '$v' passed, must fail"; cat "$t/$v.log"; bad=1; }
  done
  [ $bad -eq 0 ] && echo "selftest: additions pass; grown or reordered struct, changed parameter, removed function fail"
  return $bad
}

need
case "${1:-}" in
  check)
    [ $# -ge 4 ] || { echo "usage: $0 check BASELINE LIBRARY HEADER-DIR..."; exit 2; }
    base=$2 lib=$3; shift 3
    [ -f "$base" ] || { echo "abi_check: no baseline $base (make one: --target abi-baseline)"; exit 1; }
    t=$(mktemp -d)
    trap 'rm -rf "$t"' EXIT
    dump "$t/current.abi" "$lib" "$@" || exit 1
    compare "$base" "$t/current.abi" ;;
  dump)
    [ $# -ge 4 ] || { echo "usage: $0 dump OUT LIBRARY HEADER-DIR..."; exit 2; }
    out=$2 lib=$3; shift 3
    dump "$out" "$lib" "$@" && echo "abi_check: wrote $out" ;;
  selftest) selftest ;;
  *) echo "usage: $0 check|dump|selftest ..."; exit 2 ;;
esac
