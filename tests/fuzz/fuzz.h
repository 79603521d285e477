/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz targets: libFuzzer's entry points. Built with clang and
 * -fsanitize=fuzzer when M2MTLS_FUZZ=ON; otherwise linked with fuzz_main.c,
 * a driver that replays corpus files (the regression tests of ctest). */
#ifndef M2MTLS_FUZZ_H
#define M2MTLS_FUZZ_H
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
