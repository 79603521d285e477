/* SPDX-License-Identifier: Apache-2.0 */
/* Policy lifetime (reference counted), look-ups and the keys of their
 * indexes, the public getters. Below the parser (parser.c fills a policy
 * made here, and m2mtls_policy_load is there): nothing here reads a file. */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "internal.h"

const char *m2_peer_id_key(const void *owner, uint32_t v, size_t *len)
{
    const m2mtls_policy *p = owner;
    *len = strlen(p->peers[v].id);
    return p->peers[v].id;
}

const char *m2_peer_name_key(const void *owner, uint32_t v, size_t *len)
{
    const m2mtls_policy *p = owner;
    *len = strlen(p->peers[v].name);
    return p->peers[v].name;
}

const unsigned char *m2_peer_key_id(const m2_peer *peer, size_t *len)
{
    if (peer->name_type != M2_NAME_KEY) {
        *len = 0;
        return NULL;
    }
    /* Stored after the text of the name: its NUL, one length byte, the bytes. */
    const unsigned char *after = (const unsigned char *)peer->name + strlen(peer->name) + 1;
    *len = after[0];
    return after + 1;
}

/* The look-up key of a key identity: the first M2_KEYID_MIN bytes of its id,
 * which every allowed truncation has. */
const char *m2_peer_keyid_key(const void *owner, uint32_t v, size_t *len)
{
    const m2mtls_policy *p = owner;
    size_t n;
    const unsigned char *id = m2_peer_key_id(&p->peers[v], &n);
    *len = M2_KEYID_MIN;
    return (const char *)id;
}

m2mtls_policy *m2_policy_new(const char *path)
{
    m2mtls_policy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    atomic_init(&p->refs, 1);
    p->path = m2_strdup(path);
    p->crls = sk_X509_CRL_new_null();
    p->chain = sk_X509_new_null();
    if (p->path == NULL || p->crls == NULL || p->chain == NULL
        || !m2_index_init(&p->by_id, 64) || !m2_index_init(&p->by_name, 64) || !m2_index_init(&p->by_key, 16)) {
        m2mtls_policy_free(p);
        return NULL;
    }
    return p;
}

int m2mtls_policy_up_ref(m2mtls_policy *p)
{
    if (p == NULL)
        return 0;
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return 1;
}

void m2mtls_policy_free(m2mtls_policy *p)
{
    if (p == NULL)
        return;
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < p->n_anchors; i++) {
        X509_free(p->anchors[i].cert);
        X509_STORE_free(p->anchors[i].store);
    }
    free(p->anchors);
    free(p->peers);
    free(p->pfcs);
    m2_index_free(&p->by_id);
    m2_index_free(&p->by_name);
    m2_index_free(&p->by_key);
    sk_X509_CRL_pop_free(p->crls, X509_CRL_free);
    sk_X509_pop_free(p->chain, X509_free);
    X509_free(p->cert);
    m2_arena_free(&p->arena);
    free(p->key_ref);
    free(p->local_id);
    free(p->sp_id);
    free(p->path);
    free(p);
}

size_t m2mtls_policy_peer_count(const m2mtls_policy *p)
{
    return p != NULL ? p->n_peers : 0;
}

const char *m2mtls_policy_local_id(const m2mtls_policy *p)
{
    return p != NULL ? p->local_id : NULL;
}

uint32_t m2_policy_find_anchor(const m2mtls_policy *p, const char *name)
{
    /* Anchors are few (a handful of roots); a scan is the fastest look-up. */
    for (uint32_t i = 0; i < p->n_anchors; i++)
        if (strcmp(p->anchors[i].name, name) == 0)
            return i;
    return M2_NONE;
}

uint32_t m2_policy_find_peer(const m2mtls_policy *p, const char *id)
{
    return m2_index_get(&p->by_id, p, m2_peer_id_key, id, strlen(id));
}

uint32_t m2_policy_find_name(const m2mtls_policy *p, const char *key, size_t len)
{
    return m2_index_get(&p->by_name, p, m2_peer_name_key, key, len);
}

uint32_t m2_policy_find_key(const m2mtls_policy *p, const unsigned char sha[32])
{
    if (p->n_key_peers == 0)
        return M2_NONE;
    uint32_t i = m2_index_get(&p->by_key, p, m2_peer_keyid_key, (const char *)sha, M2_KEYID_MIN);
    size_t n;
    const unsigned char *id = i != M2_NONE ? m2_peer_key_id(&p->peers[i], &n) : NULL;
    /* The index holds one id per 120-bit prefix (the parser refuses two):
     * the rest of a longer id must match too. */
    return id != NULL && memcmp(id, sha, n) == 0 ? i : M2_NONE;
}

uint32_t m2_policy_find_pfc_for(const m2mtls_policy *p, const char *peer_id, uint32_t from)
{
    size_t n = strlen(peer_id);
    for (uint32_t i = from; i < p->n_pfcs; i++)
        if (strncmp(peer_id, p->pfcs[i].prefix, p->pfcs[i].prefix_len) == 0
            && m2_ae_id_stem(peer_id + p->pfcs[i].prefix_len, n - p->pfcs[i].prefix_len))
            return i;
    return M2_NONE;
}

int m2mtls_policy_peer_address(const m2mtls_policy *p, const char *peer_id, const char **host, unsigned *port,
                               int *dtls)
{
    if (p == NULL || peer_id == NULL)
        return 0;
    uint32_t i = m2_policy_find_peer(p, peer_id);
    if (i == M2_NONE || p->peers[i].at_transport == M2_AT_NONE)
        return 0;
    if (host != NULL)
        *host = p->peers[i].at_host;
    if (port != NULL)
        *port = p->peers[i].at_port;
    if (dtls != NULL)
        *dtls = p->peers[i].at_transport == M2_AT_DTLS;
    return 1;
}
