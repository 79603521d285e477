/* SPDX-License-Identifier: Apache-2.0 */
/* The library's own version, for programs that check at run time what they
 * were linked with against what they were compiled with. */
#include "internal.h"

const char *m2mtls_version(void)
{
    return M2MTLS_VERSION_STRING;
}

unsigned long m2mtls_version_number(void)
{
    return M2MTLS_VERSION_NUMBER;
}
