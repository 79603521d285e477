/* SPDX-License-Identifier: Apache-2.0 */
/* The names of PKCS#11 return values ("CKR_PIN_INCORRECT"): one table for
 * the provider's errors, the m2mtls command and the fault-injecting test
 * module. Internal to m2mtls: hidden in every library it is linked into. */
#ifndef M2MTLS_COMMON_CKR_H
#define M2MTLS_COMMON_CKR_H
#include "pkcs11.h"

#include "hidden.h"

/* "CKR_PIN_INCORRECT"; an unknown code as "CKR_0x%08lX" (in a thread-local
 * buffer, valid until this thread's next call). Never NULL. */
M2C_HIDDEN const char *m2c_ckr_name(CK_RV rv);
/* The code named NAME ("CKR_PIN_INCORRECT"): 1 and *RV, or 0 when unknown. */
M2C_HIDDEN int m2c_ckr_value(const char *name, CK_RV *rv);
#endif
