/* SPDX-License-Identifier: Apache-2.0 */
/* The provider's RFC 7512 pkcs11: URI parser (provider/uri.c, compiled in) on
 * arbitrary bytes. The input is a C string (the parser's contract): it is cut
 * at its first NUL. When it parses, the result is checked for the parser's
 * invariants: strings are NUL-free copies no longer than the input, an id has
 * its length, pin-value and pin-source are never both set. */
#include <stdlib.h>
#include <string.h>
#include "provider.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_str(const char *s, size_t max)
{
    if (s != NULL && strlen(s) > max)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = strlen(s);
    m2p_uri *u = m2p_uri_parse(s);
    if (u != NULL) {
        check_str(u->token, n);
        check_str(u->manufacturer, n);
        check_str(u->model, n);
        check_str(u->serial, n);
        check_str(u->slot_description, n);
        check_str(u->slot_manufacturer, n);
        check_str(u->object, n);
        check_str(u->pin_value, n);
        check_str(u->pin_source, n);
        check_str(u->module_path, n);
        if ((u->has_id && u->id == NULL) || (!u->has_id && u->id != NULL) || u->id_len > n)
            abort();
        if (u->pin_value != NULL && u->pin_source != NULL)
            abort();
        if (u->type != -1 && u->type != (int)CKO_PRIVATE_KEY && u->type != (int)CKO_PUBLIC_KEY
            && u->type != (int)CKO_CERTIFICATE && u->type != (int)CKO_SECRET_KEY && u->type != (int)CKO_DATA)
            abort();
    }
    m2p_uri_free(u);
    free(s);
    return 0;
}
