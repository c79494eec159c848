/*
 * Counts from 0 to COUNT-1 on the serial port, one line each, then powers
 * off: the live-migration guest (its output must continue on the destination
 * without a lost or repeated byte). Between lines it polls the virtual
 * counter for 1/64 s, so a run lasts about five seconds on any host however
 * fast its CPU: the tests that stop, reset or migrate it mid-run are not
 * racing the guest's end.
 */
#include "common.h"

#define COUNT 300

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    mov x20, #0
1:  mov x0, x20
    bl puthex
    bl newline
    mrs x2, cntfrq_el0
    lsr x2, x2, #6
    mrs x1, cntvct_el0
    add x1, x1, x2
2:  mrs x3, cntvct_el0
    cmp x3, x1
    b.lo 2b
    add x20, x20, #1
    cmp x20, #COUNT
    b.ne 1b
    ldp x29, x30, [sp], #16
    ret
