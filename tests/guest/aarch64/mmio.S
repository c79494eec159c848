/*
 * The MMIO benchmark: LOADS loads of the PL011's flag register in a tight
 * loop, timed with the virtual counter, which follows host time.
 */
#include "common.h"

#ifndef LOADS
#define LOADS 200000
#endif

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    ldr x1, =UART_BASE
    ldr x2, =LOADS
    isb
    mrs x20, cntvct_el0
1:  ldr w0, [x1, #UART_FR]
    subs x2, x2, #1
    b.ne 1b
    isb
    mrs x21, cntvct_el0
    sub x0, x21, x20
    SHOW "ticks", x0
    ldp x29, x30, [sp], #16
    ret
