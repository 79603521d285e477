/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key reference codec (common/keyref.c): the bytes it writes are the
 * pkcs11-provider format (a vector written out by hand, and OpenSSL's own
 * generic DER reader as a second opinion), long URIs use the right length
 * forms, and every non-canonical or foreign encoding is refused.
 */
#include <stdlib.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>

#include "testutil.h"
#include "keyref.h"

#define DESC_TLV 0x1a, 0x19, 'P', 'K', 'C', 'S', '#', '1', '1', ' ', 'P', 'r', 'o', 'v', 'i', 'd', 'e', 'r', \
                 ' ', 'U', 'R', 'I', ' ', 'v', '1', '.', '0'

/* SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String "pkcs11:token=t" } */
static const unsigned char vector[] = { 0x30, 0x2b, DESC_TLV, 0x0c, 0x0e,
                                        'p', 'k', 'c', 's', '1', '1', ':', 't', 'o', 'k', 'e', 'n', '=', 't' };

static void encode_matches_the_vector(void **state)
{
    unsigned char *der = NULL;
    size_t len = 0;
    assert_true(m2c_keyref_encode("pkcs11:token=t", &der, &len));
    assert_int_equal(len, sizeof vector);
    assert_memory_equal(der, vector, len);
    OPENSSL_free(der);

    char *uri = NULL;
    assert_true(m2c_keyref_decode(vector, sizeof vector, &uri));
    assert_str_eq(uri, "pkcs11:token=t");
    OPENSSL_free(uri);
}

/* What OpenSSL's generic reader sees in our encoding of URI. */
static void openssl_reads(const unsigned char *der, size_t len, const char *uri)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    assert_non_null(seq);
    assert_ptr_equal(p, der + len);
    assert_int_equal(sk_ASN1_TYPE_num(seq), 2);
    const ASN1_TYPE *v = sk_ASN1_TYPE_value(seq, 0), *u = sk_ASN1_TYPE_value(seq, 1);
    assert_int_equal(v->type, V_ASN1_VISIBLESTRING);
    assert_int_equal(u->type, V_ASN1_UTF8STRING);
    assert_int_equal(ASN1_STRING_length(u->value.asn1_string), (int)strlen(uri));
    assert_memory_equal(ASN1_STRING_get0_data(u->value.asn1_string), uri, strlen(uri));
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
}

static void long_uris_round_trip(void **state)
{
    /* the URI and SEQUENCE lengths cross 127 and 255: short, 0x81 and 0x82 forms */
    static const size_t lens[] = { 1, 60, 100, 127, 128, 200, 229, 230, 255, 256, 1000, 60000 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *uri = malloc(lens[i] + 1);
        assert_non_null(uri);
        memcpy(uri, "pkcs11:object=", 14 < lens[i] ? 14 : lens[i]);
        for (size_t j = 14; j < lens[i]; j++)
            uri[j] = (char)('a' + j % 26);
        uri[lens[i]] = '\0';
        unsigned char *der = NULL;
        size_t len = 0;
        char *back = NULL;
        assert_true(m2c_keyref_encode(uri, &der, &len));
        openssl_reads(der, len, uri);
        assert_true(m2c_keyref_decode(der, len, &back));
        assert_str_eq(back, uri);
        OPENSSL_free(back);
        assert_false(m2c_keyref_decode(der, len - 1, &back)); /* truncated */
        assert_null(back);
        OPENSSL_free(der);
        free(uri);
    }
    /* too long for two length octets */
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, 'a', 69999);
    huge[69999] = '\0';
    unsigned char *der = (unsigned char *)"x";
    size_t len = 1;
    assert_false(m2c_keyref_encode(huge, &der, &len));
    assert_null(der);
    free(huge);
}

static void refuses(const unsigned char *der, size_t len, const char *what)
{
    char *uri = (char *)"not touched";
    if (m2c_keyref_decode(der, len, &uri))
        fail_msg("accepted %s", what);
    assert_null(uri);
}

static void non_canonical_and_foreign_encodings_are_refused(void **state)
{
    unsigned char b[sizeof vector + 2];

    refuses(vector, 0, "empty input");
    refuses(vector, 1, "a lone tag");
    /* a byte after the SEQUENCE */
    memcpy(b, vector, sizeof vector);
    b[sizeof vector] = 0;
    refuses(b, sizeof vector + 1, "trailing bytes");
    /* SEQUENCE length in the long form although it is < 128 */
    b[0] = 0x30;
    b[1] = 0x81;
    b[2] = 0x2b;
    memcpy(b + 3, vector + 2, sizeof vector - 2);
    refuses(b, sizeof vector + 1, "a non-minimal length");
    /* indefinite length */
    memcpy(b, vector, sizeof vector);
    b[1] = 0x80;
    b[sizeof vector] = 0;
    b[sizeof vector + 1] = 0;
    refuses(b, sizeof vector + 2, "an indefinite length");

    struct { size_t at; unsigned char value; const char *what; } flips[] = {
        { 0, 0x31, "a SET" },
        { 2, 0x13, "a PrintableString version" },
        { 2, 0x3a, "a constructed version string" },
        { 2, 0x9a, "a context-class version string" },
        { 10, 'X', "another version text" },
        { 29, 0x8c, "a context-class URI" },
        { 29, 0x2c, "a constructed URI" },
        { 29, 0x16, "an IA5String URI" },
        { 35, 0x00, "a NUL inside the URI" },
        { 30, 0x0f, "a URI length past the SEQUENCE" },
        { 30, 0x0d, "a URI shorter than the SEQUENCE" },
        { 1, 0x2a, "a SEQUENCE shorter than its contents" },
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(b, vector, sizeof vector);
        assert_true(flips[i].at < sizeof vector);
        b[flips[i].at] = flips[i].value;
        refuses(b, sizeof vector, flips[i].what);
    }
}

static char *pem_read_text(const char *text, char *why, size_t why_len)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    char *uri = m2c_keyref_pem_read(b, why, why_len);
    BIO_free(b);
    return uri;
}

static void pem_layer(void **state)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char why[256] = "", *text = NULL;
    assert_true(m2c_keyref_pem_write(mem, "pkcs11:token=t"));
    long n = BIO_get_mem_data(mem, &text);
    char *copy = OPENSSL_strndup(text, (size_t)n);
    assert_contains(copy, "-----BEGIN PKCS#11 PROVIDER URI-----\n");
    assert_contains(copy, "-----END PKCS#11 PROVIDER URI-----\n");
    char *uri = pem_read_text(copy, why, sizeof why);
    assert_str_eq(uri, "pkcs11:token=t");
    OPENSSL_free(uri);
    OPENSSL_free(copy);
    BIO_free(mem);

    assert_null(pem_read_text("hello\n", why, sizeof why));
    assert_str_eq(why, "not a PEM file");
    assert_null(pem_read_text("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", why, sizeof why));
    assert_str_eq(why, "PEM label is 'CERTIFICATE', not 'PKCS#11 PROVIDER URI'");
    assert_null(pem_read_text("-----BEGIN PKCS#11 PROVIDER URI-----\nMAA=\n-----END PKCS#11 PROVIDER URI-----\n", why,
                              sizeof why));
    assert_str_eq(why, "not a 'PKCS#11 Provider URI v1.0' structure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_matches_the_vector),
        cmocka_unit_test(long_uris_round_trip),
        cmocka_unit_test(non_canonical_and_foreign_encodings_are_refused),
        cmocka_unit_test(pem_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
