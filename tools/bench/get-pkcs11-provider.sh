#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Fetches pkcs11-provider (Debian 13 "trixie", binary package 1.0-3, which
# loads with OpenSSL 3.0) for the baselines of `m2mtls bench sign|handshake`,
# without changing the system: a private apt configuration (its own sources
# list naming the trixie suite of the Debian mirror this machine already
# uses, its own state and cache directories) downloads the .deb, and
# `dpkg -x` unpacks it into a cache directory outside the repository. Nothing
# is installed; the system stays on its release.
#
# usage: get-pkcs11-provider.sh [CACHE-DIR]
#   CACHE-DIR  default $M2MTLS_PKCS11_PROVIDER_CACHE, else /var/cache/m2mtls/pkcs11-provider
#   Leaves CACHE-DIR/pkcs11.so (the module), CACHE-DIR/VERSION and the unpacked
#   package. Does nothing when CACHE-DIR/pkcs11.so is there already.
#   PKCS11_PROVIDER_SUITE=trixie  the suite to take it from.
set -eu
cache=${1:-${M2MTLS_PKCS11_PROVIDER_CACHE:-/var/cache/m2mtls/pkcs11-provider}}
suite=${PKCS11_PROVIDER_SUITE:-trixie}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

if [ -e "$cache/pkcs11.so" ]; then
    echo "pkcs11-provider: $cache/pkcs11.so ($(cat "$cache/VERSION" 2>/dev/null || echo '?'))"
    exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { echo "get-pkcs11-provider: needs apt-get and dpkg (Debian)" >&2; exit 1; }
[ -r "$keyring" ] || { echo "get-pkcs11-provider: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

# The Debian mirror of the system's own sources (its main suite, not -security).
mirror=$(apt-get indextargets --format '$(REPO_URI) $(CODENAME) $(SUITE)' 'Origin: Debian' 'Created-By: Packages' 2>/dev/null \
         | awk '$2 !~ /-/ && $1 !~ /security/ { print $1; exit }')
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian/

work=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-pkcs11-provider-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/etc/sources.list.d" "$work/etc/preferences.d" "$work/state/lists/partial" \
         "$work/cache/archives/partial" "$work/deb" "$work/root"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/etc/sources.list"
arch=$(dpkg --print-architecture)
# Everything apt reads or writes is under $work: the system's sources, lists,
# package state and preferences are neither used nor touched.
set -- -o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=$work/etc/sources.list.d" \
       -o "Dir::Etc::Preferences=$work/etc/preferences" -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d" \
       -o "Dir::State=$work/state" -o "Dir::State::status=/dev/null" -o "Dir::Cache=$work/cache" \
       -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o "APT::Sandbox::User=root" \
       -o "Acquire::Languages=none"
echo "pkcs11-provider: apt-get update ($mirror $suite, private state in $work)"
apt-get "$@" -qq update
(cd "$work/deb" && apt-get "$@" -qq download pkcs11-provider)
deb=$(ls "$work"/deb/pkcs11-provider_*.deb)
version=$(dpkg-deb -f "$deb" Version)
dpkg -x "$deb" "$work/root"
so=$(cd "$work/root" && find . -path '*/ossl-modules/pkcs11.so' | head -n 1)
[ -n "$so" ] || { echo "get-pkcs11-provider: no ossl-modules/pkcs11.so in $deb" >&2; exit 1; }
mkdir -p "$(dirname "$cache")"
rm -rf "$cache.new"
mv "$work/root" "$cache.new"
ln -s "${so#./}" "$cache.new/pkcs11.so"
echo "pkcs11-provider $version ($suite, $arch)" >"$cache.new/VERSION"
rm -rf "$cache"
mv "$cache.new" "$cache"
echo "pkcs11-provider: $cache/pkcs11.so ($(cat "$cache/VERSION"))"
