/* SPDX-License-Identifier: Apache-2.0 */
/* A string arena (one allocation per MiB, not per string: a policy with a
 * million peers is two million strings) and an open-addressing hash index
 * over values whose keys live in the arena. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

#define CHUNK_SIZE (1u << 20)

struct m2_arena_chunk {
    m2_arena_chunk *next;
    size_t size;
    char data[];
};

const char *m2_arena_strndup(m2_arena *a, const char *s, size_t n)
{
    if (a->head == NULL || a->used + n + 1 > a->head->size) {
        size_t size = n + 1 > CHUNK_SIZE ? n + 1 : CHUNK_SIZE;
        m2_arena_chunk *c = malloc(sizeof *c + size);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->size = size;
        a->head = c;
        a->used = 0;
        a->bytes += size;
    }
    char *d = a->head->data + a->used;
    memcpy(d, s, n);
    d[n] = '\0';
    a->used += n + 1;
    return d;
}

void m2_arena_free(m2_arena *a)
{
    m2_arena_chunk *c = a->head;
    while (c != NULL) {
        m2_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}

/* 64-bit multiply-mix hash, seeded per index so that lookups of names taken
 * from peer certificates cannot be steered into long probe runs. */
uint64_t m2_hash(uint64_t seed, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w ^ ((uint64_t)len << 56)) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

int m2_index_init(m2_index *ix, uint32_t expected)
{
    uint32_t size = 16;
    while (size < 2u * expected && size < (1u << 31))
        size <<= 1;
    ix->slots = calloc(size, sizeof *ix->slots);
    if (ix->slots == NULL)
        return 0;
    ix->mask = size - 1;
    ix->count = 0;
    uint64_t seed = (uint64_t)(uintptr_t)ix ^ (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
    ix->seed = m2_hash(seed, &seed, sizeof seed);
    return 1;
}

void m2_index_free(m2_index *ix)
{
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}

static int index_grow(m2_index *ix, const void *owner, m2_index_key_fn key)
{
    uint32_t size = (ix->mask + 1) * 2;
    uint32_t *slots = calloc(size, sizeof *slots);
    if (slots == NULL)
        return 0;
    for (uint32_t i = 0; i <= ix->mask; i++) {
        if (ix->slots[i] == 0)
            continue;
        size_t len;
        const char *k = key(owner, ix->slots[i] - 1, &len);
        uint32_t s = (uint32_t)m2_hash(ix->seed, k, len) & (size - 1);
        while (slots[s] != 0)
            s = (s + 1) & (size - 1);
        slots[s] = ix->slots[i];
    }
    free(ix->slots);
    ix->slots = slots;
    ix->mask = size - 1;
    return 1;
}

/* The slot holding key K, or the empty slot where it would go. */
static uint32_t probe(const m2_index *ix, const void *owner, m2_index_key_fn key, const char *k, size_t klen)
{
    uint32_t s = (uint32_t)m2_hash(ix->seed, k, klen) & ix->mask;
    while (ix->slots[s] != 0) {
        size_t len;
        const char *have = key(owner, ix->slots[s] - 1, &len);
        if (len == klen && memcmp(have, k, len) == 0)
            break;
        s = (s + 1) & ix->mask;
    }
    return s;
}

uint32_t m2_index_get(const m2_index *ix, const void *owner, m2_index_key_fn key,
                      const char *k, size_t klen)
{
    if (ix->slots == NULL)
        return M2_NONE;
    return ix->slots[probe(ix, owner, key, k, klen)] - 1; /* empty slot: 0 - 1 == M2_NONE */
}

uint32_t m2_index_put(m2_index *ix, const void *owner, m2_index_key_fn key,
                      uint32_t value, int *oom)
{
    if ((ix->count + 1) * 2 > ix->mask + 1 && !index_grow(ix, owner, key)) {
        *oom = 1;
        return M2_NONE;
    }
    size_t klen;
    const char *k = key(owner, value, &klen);
    uint32_t s = probe(ix, owner, key, k, klen);
    if (ix->slots[s] != 0)
        return ix->slots[s] - 1;
    ix->slots[s] = value + 1;
    ix->count++;
    return M2_NONE;
}
