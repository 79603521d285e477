#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs Debian's node unpacked in ROOT by ./run.sh (_build-node/root) on a
# machine whose installed Node.js is another build (nodesource's links its own
# OpenSSL). Debian's libnode is in ROOT/usr/lib; the JavaScript it loads from
# the absolute path /usr/share/nodejs (acorn, cjs-module-lexer, undici) comes
# from ROOT/usr/share, overlaid on /usr/share in a private mount namespace of
# this process only (as root; otherwise in a user namespace).
# usage: debian-node.sh ROOT NODE-ARGS...      (the environment passes through)
root=${1:?usage: debian-node.sh ROOT NODE-ARGS...}
shift
[ -x "$root/usr/bin/node" ] || { echo "debian-node.sh: no $root/usr/bin/node (./run.sh test unpacks it)" >&2; exit 2; }
if [ "$(id -u)" -eq 0 ]; then ns="unshare --mount"; else ns="unshare --user --map-root-user --mount"; fi
multiarch=$(ls -d "$root"/usr/lib/*-linux-gnu 2>/dev/null | head -n 1)
# shellcheck disable=SC2016
exec $ns sh -c 'r=$1; shift; mount -t overlay overlay -o "lowerdir=$r/usr/share:/usr/share" /usr/share || exit 2
    LD_LIBRARY_PATH=$0${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$r/usr/bin/node" "$@"' \
    "$multiarch" "$root" "$@"
