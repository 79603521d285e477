/* SPDX-License-Identifier: Apache-2.0 */
/* M2C_HIDDEN: what common/ defines stays inside each library it is linked
 * into (the object library is also compiled with hidden visibility). */
#ifndef M2MTLS_COMMON_HIDDEN_H
#define M2MTLS_COMMON_HIDDEN_H
#if defined(__GNUC__)
#define M2C_HIDDEN __attribute__((visibility("hidden")))
#else
#define M2C_HIDDEN
#endif
#endif
