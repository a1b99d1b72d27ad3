/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xc_cpl.h - the privilege level this process runs at.
 *
 * The one fact the library-OS conversion changes: CS's low two bits are the
 * CPL, 3 on a stock kernel and 0 on a converted one. Shared by the probe and
 * the ARCH_SET_GS test, which must know which rule applies.
 */
#ifndef XC_CPL_H
#define XC_CPL_H

#include <stdint.h>

static inline uint16_t read_cs(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

#endif /* XC_CPL_H */
