/* SPDX-License-Identifier: Apache-2.0 */
/* Force-included (-include) into every file the preload compiles, its own copy
 * of libm2mtls included: these public functions of libm2mtls get internal
 * names there, and preload/api.c exports functions of the public names that
 * wrap them (the reasons are in api.c). Within the preload, libm2mtls's and
 * the preload's own calls go straight to the internal names. */
#define m2mtls_ctx_install    pl_impl_ctx_install
#define m2mtls_ctx_set_policy pl_impl_ctx_set_policy
#define m2mtls_ssl_set_peer   pl_impl_ssl_set_peer
