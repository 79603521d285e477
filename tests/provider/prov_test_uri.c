/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7512 pkcs11: URI parser (provider/uri.c compiled in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "provider.h"

static void test_basic(void **state)
{
    m2p_uri *u = m2p_uri_parse("pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;"
                               "model=SoftHSM%20v2;serial=abc123;object=ec;type=private;"
                               "id=%01%02%ff");

    assert_non_null(u);
    assert_string_equal(u->token, "My Token");
    assert_string_equal(u->manufacturer, "SoftHSM project");
    assert_string_equal(u->model, "SoftHSM v2");
    assert_string_equal(u->serial, "abc123");
    assert_string_equal(u->object, "ec");
    assert_int_equal(u->type, (int)CKO_PRIVATE_KEY);
    assert_true(u->has_id);
    assert_int_equal(u->id_len, 3);
    assert_memory_equal(u->id, "\x01\x02\xff", 3);
    assert_false(u->has_slot_id);
    m2p_uri_free(u);
}

static void test_query(void **state)
{
    m2p_uri *u = m2p_uri_parse("pkcs11:slot-id=7;type=cert?pin-value=12%2634&module-name=x");

    assert_non_null(u);
    assert_true(u->has_slot_id);
    assert_int_equal(u->slot_id, 7);
    assert_int_equal(u->type, (int)CKO_CERTIFICATE);
    assert_string_equal(u->pin_value, "12&34");
    assert_null(u->pin_source);
    m2p_uri_free(u);
    u = m2p_uri_parse("pkcs11:object=a?pin-source=file:/etc/pin");
    assert_non_null(u);
    assert_string_equal(u->pin_source, "file:/etc/pin");
    m2p_uri_free(u);
}

static void test_empty_and_types(void **state)
{
    m2p_uri *u = m2p_uri_parse("pkcs11:");

    assert_non_null(u);
    assert_int_equal(u->type, -1);
    assert_null(u->token);
    m2p_uri_free(u);
    u = m2p_uri_parse("PKCS11:type=public;library-version=1;x-vendor=1");
    assert_non_null(u);
    assert_int_equal(u->type, (int)CKO_PUBLIC_KEY);
    m2p_uri_free(u);
}

static void test_rejects(void **state)
{
    assert_null(m2p_uri_parse("file:/tmp/x"));
    assert_null(m2p_uri_parse("pkcs11:token=a;token=b"));
    assert_null(m2p_uri_parse("pkcs11:bogus=1"));
    assert_null(m2p_uri_parse("pkcs11:type=nonsense"));
    assert_null(m2p_uri_parse("pkcs11:id=%0"));
    assert_null(m2p_uri_parse("pkcs11:id=%zz"));
    assert_null(m2p_uri_parse("pkcs11:token"));
    assert_null(m2p_uri_parse("pkcs11:slot-id=abc"));
    assert_null(m2p_uri_parse("pkcs11:object=a%00b"));
    assert_null(m2p_uri_parse("pkcs11:object=a?pin-value=1&pin-source=/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_empty_and_types),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
