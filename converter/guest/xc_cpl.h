/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xc_cpl.h - the privilege level this process runs at, and what a libOS
 * kernel says of itself in /proc/xc_libos.
 *
 * The one fact the library-OS conversion changes: CS's low two bits are the
 * CPL, 3 on a stock kernel and 0 on a converted one. Shared by the probe and
 * the ARCH_SET_GS test, which must know which rule applies.
 */
#ifndef XC_CPL_H
#define XC_CPL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint16_t read_cs(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

/*
 * Value of `key` in /proc/xc_libos (a libOS kernel's `key value` lines),
 * or -1: no such file (a stock kernel) or no such key.
 */
static inline long long xc_libos_value(const char *key)
{
	char line[128], k[64], v[64];
	long long found = -1;
	FILE *f = fopen("/proc/xc_libos", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* strtoull: entry_table does not fit a signed long long */
		if (sscanf(line, "%63s %63s", k, v) == 2 && !strcmp(k, key))
			found = (long long)strtoull(v, NULL, 0);
	}
	fclose(f);
	return found;
}

#endif /* XC_CPL_H */
