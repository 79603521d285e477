# SPDX-License-Identifier: Apache-2.0
# Debian packages with CPack: one package per install component.
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build
#   (cd build && cpack -G DEB)
#
#   libm2mtls1       lib       libm2mtls.so.1 (runtime library, symbol version M2MTLS_1)
#   libm2mtls-dev    dev       headers, libm2mtls.so, libm2mtls.a, m2mtls.pc, CMake package, libm2mtls(3)
#   m2mtls-provider  provider  ossl-modules/m2mtls.so, provider-m2mtls(7)
#   m2mtls-preload   preload   libm2mtls-preload.so
#   m2mtls           tools     the m2mtls command, m2mtls(1), m2mtls-policy(5)
#
# Built with CMAKE_INSTALL_PREFIX=/usr, the libraries land in Debian's
# multiarch directory (GNUInstallDirs) and the provider in OpenSSL's modules
# directory (/usr/lib/<triplet>/ossl-modules). Library dependencies come from
# dpkg-shlibdeps; libm2mtls1 gets a shlibs file and the ldconfig trigger.
set(CPACK_PACKAGE_NAME m2mtls)
set(CPACK_PACKAGE_VENDOR "m2mtls")
set(CPACK_PACKAGE_CONTACT "m2mtls maintainers <security@m2mtls.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "oneM2M TS-0003 certificate-based security associations for OpenSSL 3")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL lib dev provider preload tools)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/m2mtls/m2mtls")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)          # libm2mtls1: shlibs, ldconfig trigger
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=") # 1.x only adds to the ABI
set(CPACK_STRIP_FILES ON)                             # debug information stays in the build tree

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libm2mtls1)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIB_DESCRIPTION "oneM2M TS-0003 security associations for OpenSSL 3 - library
 libm2mtls enforces, on an OpenSSL SSL_CTX, the Certificate-Based Security
 Association Establishment Framework of oneM2M TS-0003: per association the
 peer's certificate name and root of trust from a policy file; connections
 are labelled with the peer's oneM2M identity (CSE-ID / AE-ID).")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libm2mtls-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libssl-dev (>= 3.0)")
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_DEV_DESCRIPTION "oneM2M TS-0003 security associations for OpenSSL 3 - development files
 Headers (<m2mtls/policy.h>, <m2mtls/version.h>), the static library, the
 pkg-config file, the CMake package m2mtls and the libm2mtls(3) manual.")

set(CPACK_DEBIAN_PROVIDER_PACKAGE_NAME m2mtls-provider)
set(CPACK_DEBIAN_PROVIDER_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_PROVIDER_DESCRIPTION "OpenSSL 3 provider for private keys in a PKCS#11 token
 m2mtls.so lets unmodified OpenSSL 3 programs sign with private keys kept in
 a PKCS#11 token (HSM, smart card, TPM through tpm2-pkcs11, SoftHSM), by
 pkcs11: URI or by key reference PEM files (the pkcs11-provider format).")

set(CPACK_DEBIAN_PRELOAD_PACKAGE_NAME m2mtls-preload)
set(CPACK_DEBIAN_PRELOAD_PACKAGE_SECTION net)
set(CPACK_COMPONENT_PRELOAD_DESCRIPTION "oneM2M TS-0003 security associations for unmodified servers
 libm2mtls-preload.so (LD_PRELOAD, M2MTLS_POLICY) puts an m2mtls policy on
 every SSL_CTX of a dynamically linked OpenSSL 3 server; it fails closed.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME m2mtls)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
# The demo runs with the provider and SoftHSM: recommended, not required.
set(CPACK_DEBIAN_TOOLS_PACKAGE_RECOMMENDS "m2mtls-provider (= ${PROJECT_VERSION}-1), softhsm2")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "oneM2M TS-0003 security associations - command line tool
 m2mtls inspects certificates against a policy and says why they are refused,
 checks policies, acts as Entity A or B of an association over TLS and DTLS,
 writes key references for keys in a PKCS#11 token, and runs the framework
 end to end (m2mtls demo).")

include(CPack)
