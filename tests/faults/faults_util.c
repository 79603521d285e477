/* SPDX-License-Identifier: Apache-2.0 */
#include "faults_util.h"
#include "prov_fixture.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_faults(const char *path, const char *text)
{
    char tmp[4200];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fp = fopen(tmp, "w")) == NULL)
        return 0;
    fputs(text, fp);
    if (fclose(fp) != 0)
        return 0;
    return rename(tmp, path) == 0;  /* a new inode: the module sees a new file */
}

int ft_count(const char *path, const char *fn, unsigned long *calls, unsigned long *injected)
{
    FILE *fp = fopen(path, "r");
    char name[64];
    unsigned long c, i;

    *calls = *injected = 0;
    if (fp == NULL)
        return 0;
    while (fscanf(fp, "%63s %lu %lu", name, &c, &i) == 3) {
        if (strcmp(name, fn) == 0) {
            *calls = c;
            *injected = i;
        }
    }
    fclose(fp);
    return 1;
}

int ft_use_fault_module(const char *dir, const char *pinfile, const char *module_path, char *faults,
                        char *counts, char *conf)
{
    char pin[PATH_MAX + 16];
    size_t n = PATH_MAX + 16;

    snprintf(faults, n, "%s/faults", dir);
    snprintf(counts, n, "%s/counts", dir);
    snprintf(conf, n, "%s/faults.cnf", dir);
    snprintf(pin, sizeof(pin), "file:%s", pinfile);
    setenv("M2MTLS_FAULTS", faults, 1);
    setenv("M2MTLS_FAULTS_COUNTS", counts, 1);
    setenv("M2MTLS_FAULTS_MODULE", M2P_SOFTHSM, 1);
    return ft_faults(faults, "") && fx_write_conf(conf, FX_ORDER_LAST, pin, module_path);
}
