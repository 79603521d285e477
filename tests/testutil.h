/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the CMocka tests. */
#ifndef M2MTLS_TESTS_TESTUTIL_H
#define M2MTLS_TESTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* assert that HAY (may be NULL) contains NEEDLE, printing both when not. */
#define assert_contains(hay, needle) do {                                           \
        const char *h_ = (hay), *n_ = (needle);                                    \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                  \
            fail_msg("expected \"%s\" to contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

#define assert_not_contains(hay, needle) do {                                       \
        const char *h_ = (hay), *n_ = (needle);                                    \
        if (h_ != NULL && strstr(h_, n_) != NULL)                                  \
            fail_msg("expected \"%s\" not to contain \"%s\"", h_, n_);             \
    } while (0)

#define assert_str_eq(a, b) do {                                                    \
        const char *a_ = (a), *b_ = (b);                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                       \
            fail_msg("expected \"%s\", got \"%s\"", b_ ? b_ : "(null)",             \
                     a_ ? a_ : "(null)");                                          \
    } while (0)

#endif
