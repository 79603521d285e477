/* SPDX-License-Identifier: Apache-2.0 */
/* libm2mtls's public API, exported by libm2mtls-preload.so with the same ABI
 * (exports.map), so that a program that links libm2mtls and runs under the
 * preload sees one label: the one the preload's verifier bound.
 *
 * How one label comes about. LD_PRELOAD puts this library before libm2mtls.so
 * in the program's symbol lookup scope, so every call of an m2mtls_* function
 * binds to the preload's copy: the program's own calls, and also libm2mtls.so's
 * calls between its public functions (default visibility: through the PLT).
 * libm2mtls.so is loaded but never entered; its ex_data indexes are never even
 * allocated. The label is stored once, under the preload's indexes, and every
 * getter the program calls reads it there. (Symbol versions do not get in the
 * way: a versioned reference binds to this unversioned definition.) A program
 * that links libm2mtls *statically* keeps a private copy that the dynamic
 * linker cannot redirect: it sees no label under the preload (every check
 * fails closed). Link the shared library.
 *
 * The getters and everything else are exported as libm2mtls defines them.
 * Three functions are wrapped here:
 *   - m2mtls_ctx_install / m2mtls_ctx_set_policy on a context the preload
 *     governs: M2MTLS_POLICY decides for every context of the program (the
 *     operator's policy, reloaded by M2MTLS_RELOAD), so the program's own
 *     policy is not installed; that is logged once, and the call succeeds.
 *   - m2mtls_ssl_set_peer (and the install of a context the preload does not
 *     govern) run as m2mtls's own calls: the OpenSSL functions they call
 *     (callbacks, verify mode) are the ones the preload interposes, and those
 *     let m2mtls's own calls through unchanged. */
#include <stdatomic.h>
#include <syslog.h>
#include "preload.h"
#include "internal.h"

/* The names api_names.h gave libm2mtls's definitions. */
#undef m2mtls_ctx_install
#undef m2mtls_ctx_set_policy
#undef m2mtls_ssl_set_peer

#define EXPORT __attribute__((visibility("default")))

static atomic_flag told = ATOMIC_FLAG_INIT;

static void tell_policy_kept(const m2mtls_policy *p)
{
    if (atomic_flag_test_and_set(&told))
        return;
    const char *own = p != NULL ? m2mtls_policy_local_id(p) : NULL;
    plog(LOG_WARNING, "the program installs its own policy%s%s: not used, M2MTLS_POLICY governs every TLS context "
         "of this program", own != NULL ? " for " : "", own != NULL ? own : "");
}

EXPORT int m2mtls_ctx_install(SSL_CTX *ctx, m2mtls_policy *p)
{
    if (ctx != NULL && p != NULL && m2_ctx_state_get(ctx) != NULL) {
        tell_policy_kept(p);
        return 1;
    }
    pl_enter();
    int ok = pl_impl_ctx_install(ctx, p);
    pl_leave();
    return ok;
}

EXPORT int m2mtls_ctx_set_policy(SSL_CTX *ctx, m2mtls_policy *p)
{
    if (ctx != NULL && p != NULL && m2_ctx_state_get(ctx) != NULL) {
        tell_policy_kept(p);
        return 1;
    }
    return pl_impl_ctx_set_policy(ctx, p); /* its error: not an m2mtls context */
}

EXPORT int m2mtls_ssl_set_peer(SSL *ssl, const char *peer_id)
{
    pl_enter();
    int ok = pl_impl_ssl_set_peer(ssl, peer_id);
    pl_leave();
    return ok;
}

/* Same ABI as the functions of libm2mtls's header. */
_Static_assert(__builtin_types_compatible_p(__typeof__(&m2mtls_ctx_install), __typeof__(&pl_impl_ctx_install)),
               "m2mtls_ctx_install");
_Static_assert(__builtin_types_compatible_p(__typeof__(&m2mtls_ctx_set_policy), __typeof__(&pl_impl_ctx_set_policy)),
               "m2mtls_ctx_set_policy");
_Static_assert(__builtin_types_compatible_p(__typeof__(&m2mtls_ssl_set_peer), __typeof__(&pl_impl_ssl_set_peer)),
               "m2mtls_ssl_set_peer");
