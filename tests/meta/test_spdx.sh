#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every source file of the repository carries the licence line
# "SPDX-License-Identifier: Apache-2.0" in its first three lines (after a #!
# line, in the file's comment syntax). Source files: C, headers, CMake, shell,
# Python, JavaScript, linker maps, *.in templates, configuration examples,
# manual pages, and any file starting with #!. Data (certificates, fuzz
# seeds, ABI baselines) and Markdown are not sources.
# usage: test_spdx.sh SOURCE-DIR
set -eu
src=$1
cd "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard)
else # a tarball, or a git worktree whose repository is out of sight (the Debian 13
     # root mounts only the tree): every file but the build trees .gitignore names
     # (build*/, and _build*/: run.sh unpacks Debian's nodejs into _build-node/)
  files=$(find . \( -path './build*' -o -path './_build*' \) -prune -o -type f -print | sed 's|^\./||')
fi

is_source() {
  case "$1" in
    tests/fuzz/corpus/*) return 1 ;;
    *.c|*.h|*.cc|*.cpp|*.sh|*.bash|*.py|*.js|*.mjs|*.ts|*.pl|*.cmake|*.in|*.map) return 0 ;;
    CMakeLists.txt|*/CMakeLists.txt) return 0 ;;
    *.cnf|*.conf|*.policy|*.supp) return 0 ;;
    man/*.[1-8]) return 0 ;;
  esac
  head -c 2 "$1" 2>/dev/null | grep -q '^#!'
}

checked=0 missing=0
for f in $files; do
  [ -f "$f" ] || continue
  is_source "$f" || continue
  checked=$((checked + 1))
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    echo "$f: no 'SPDX-License-Identifier: Apache-2.0' line in its first 3 lines"
    missing=$((missing + 1))
  fi
done
[ -f LICENSE ] && grep -q 'Apache License' LICENSE && grep -q 'Version 2.0, January 2004' LICENSE \
  || { echo "LICENSE: not the Apache License 2.0 text"; missing=$((missing + 1)); }
echo "$checked source files checked, $missing without the licence line"
[ "$missing" -eq 0 ]
