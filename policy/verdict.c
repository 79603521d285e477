/* SPDX-License-Identifier: Apache-2.0 */
/* The verdict record (m2mtls_verdict): what it owns and its release, the
 * class of a refusal, whether a key identity made it. Below everything that
 * fills or reads verdicts (verifier.c, keypeer.c, session_label.c,
 * connection.c, ...): it uses nothing of the policy. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int m2_verdict_by_key(const m2mtls_verdict *v)
{
    return v != NULL && v->cert_name != NULL && strncmp(v->cert_name, "key:", 4) == 0;
}

void m2mtls_verdict_clear(m2mtls_verdict *v)
{
    if (v == NULL)
        return;
    free(v->peer_id);
    free(v->local_id);
    free(v->cert_name);
    free(v->anchor);
    free(v->reason);
    sk_X509_pop_free(v->chain, X509_free);
    memset(v, 0, sizeof *v);
}

m2mtls_reject_code m2mtls_verdict_code(const m2mtls_verdict *v)
{
    return v != NULL && !v->accepted ? v->code : M2MTLS_REJECT_NONE;
}
