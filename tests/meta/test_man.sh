#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The manual pages render without a warning, and document what the code
# offers, read from the code itself so that a new command, option, policy
# directive, provider key or library function without documentation fails:
# - m2mtls(1): every command of `m2mtls --help`, every --option of each
#   command's --help (and of its sub-commands' --help, e.g. bench sign);
# - m2mtls-policy(5): every directive of the parser's table (a .TP entry) and
#   every keyword it matches (dns:, uri:, as=, at=, uri-prefix:, ...);
# - provider-m2mtls(7): every configuration key the provider reads and every
#   URI attribute it knows;
# - libm2mtls(3): every function libm2mtls.so exports.
# usage: test_man.sh SOURCE-DIR MAN-BUILD-DIR M2MTLS LIBM2MTLS.SO
set -u
src=$1 mandir=$2 m2mtls=$3 lib=$4
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failures=0 checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

# rendered text, one long line per paragraph, no hyphenation: words stay whole
render() { LC_ALL=C.UTF-8 MANWIDTH=1000 man --nh --nj -E ascii -l "$1" 2>/dev/null | col -b; }

for page in m2mtls.1 m2mtls-policy.5 provider-m2mtls.7 libm2mtls.3; do
  p=$mandir/$page
  [ -f "$p" ] || { fail "$page: not built"; continue; }
  w=$(groff -ww -z -man "$p" 2>&1)
  [ -z "$w" ] && ok || fail "$page: groff warnings: $w"
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null)
  [ -z "$w" ] && ok || fail "$page: man --warnings: $w"
  render "$p" >"$T/$page.txt"
  [ -s "$T/$page.txt" ] && ok || fail "$page: renders empty"
done

has() { # PAGE TEXT WHAT: TEXT anywhere in the rendered page
  if grep -qF -- "$2" "$T/$1.txt"; then ok; else fail "$1 does not mention $2 ($3)"; fi
}
has_word() { # PAGE WORD WHAT: WORD, not as a part of a longer name
  if grep -qwF -- "$2" "$T/$1.txt"; then ok; else fail "$1 does not mention $2 ($3)"; fi
}

# ---- m2mtls(1) ----------------------------------------------------------------
"$m2mtls" --help >"$T/help" || fail "m2mtls --help failed"
cmds=$(sed -n '/^commands:/,/^$/p' "$T/help" | sed -n 's/^  \([a-z][a-z0-9-]*\)\( .*\)\{0,1\}$/\1/p')
[ -n "$cmds" ] && ok || fail "no commands found in m2mtls --help"
# the options of a --help text: on its usage lines and at the start of its
# option lines (not inside prose, e.g. a valgrind command line it quotes)
options_of() {
  grep -E '^ *(usage:|m2mtls |\[|-)' "$1" | grep -o -- '--[a-z0-9][a-z0-9.-]*' | sed 's/[.]$//' | sort -u
}
for opt in $(options_of "$T/help"); do has m2mtls.1 "$opt" "m2mtls --help"; done
for c in $cmds; do
  if grep -q "^\.SS \"m2mtls $c[ \"]" "$mandir/m2mtls.1"; then ok; else fail "m2mtls.1 has no section .SS \"m2mtls $c\" (a command of m2mtls --help)"; fi
  "$m2mtls" "$c" --help >"$T/help-$c" 2>&1 || fail "m2mtls $c --help failed"
  for opt in $(options_of "$T/help-$c"); do has m2mtls.1 "$opt" "m2mtls $c --help"; done
  # sub-commands named in the usage lines (m2mtls bench sign, m2mtls policy check)
  subs=$(sed -n "s/^\(usage:\)\{0,1\} *m2mtls $c \([a-z][a-z0-9-]*\).*/\2/p" "$T/help-$c" | sort -u)
  for s in $subs; do
    has_word m2mtls.1 "$s" "a sub-command in m2mtls $c --help"
    if "$m2mtls" "$c" "$s" --help >"$T/help-$c-$s" 2>/dev/null && grep -q '^usage:' "$T/help-$c-$s"; then
      for opt in $(options_of "$T/help-$c-$s"); do has m2mtls.1 "$opt" "m2mtls $c $s --help"; done
    fi
  done
done

# ---- m2mtls-policy(5) ----------------------------------------------------------
directives=$(grep -o '{ "[a-z][a-z0-9-]*", do_[a-z_]* }' "$src/policy/parser.c" | sed 's/{ "\([^"]*\)".*/\1/')
[ -n "$directives" ] && ok || fail "no directive table found in policy/parser.c"
for d in $directives; do
  # a .TP entry whose tag starts with the directive
  if awk -v d="$d" 'prev ~ /^\.TP/ && ($2 == d || $2 == "\"" d "\"") && ($1 == ".B" || $1 == ".BI") { f = 1 } { prev = $0 }
                    END { exit !f }' "$mandir/m2mtls-policy.5" 2>/dev/null \
     || awk -v d="$(printf '%s' "$d" | sed 's/-/\\\\-/g')" 'prev ~ /^\.TP/ && $2 == d { f = 1 } { prev = $0 } END { exit !f }' \
            "$mandir/m2mtls-policy.5"; then ok; else fail "m2mtls-policy.5 has no .TP entry for the directive '$d'"; fi
done
for kw in $(grep -o 'strncmp([a-z_]*, "[a-z-]*[:=]"' "$src/policy/parser.c" | sed 's/.*"\(.*\)"/\1/' | sort -u); do
  has m2mtls-policy.5 "$kw" "a keyword of policy/parser.c"
done

# ---- provider-m2mtls(7) --------------------------------------------------------
for key in $(grep -o 'OSSL_PARAM_construct_utf8_ptr("[a-z0-9-]*"' "$src/provider/init.c" | sed 's/.*"\(.*\)"/\1/'); do
  has_word provider-m2mtls.7 "$key" "a configuration key of provider/init.c"
done
for attr in $(grep -o 'strcmp(name, "[a-z-]*")' "$src/provider/uri.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u); do
  has_word provider-m2mtls.7 "$attr" "a URI attribute of provider/uri.c"
done

# ---- libm2mtls(3) -------------------------------------------------------------
syms=$(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | grep '^m2mtls_')
[ -n "$syms" ] && ok || fail "no m2mtls_ symbols in $lib"
for f in $syms; do has_word libm2mtls.3 "$f" "exported by libm2mtls"; done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
