/*
 * A CPU-bound guest for -icount and the benchmark: rounds of a linear
 * congruential generator; after each round it prints the checksum and, with
 * ROUNDS_SHOW_COUNTER, the virtual counter (reproducible only under -icount).
 */
#include "common.h"

#ifndef ITERATIONS
#define ITERATIONS 200000
#endif
#ifndef ROUNDS
#define ROUNDS 5
#endif

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    mov x20, #ROUNDS
    ldr x21, =0x12345678            /* state */
    ldr x23, =6364136223846793005
    ldr x24, =1442695040888963407
round:
    ldr x22, =ITERATIONS
1:  madd x21, x21, x23, x24
    eor x21, x21, x21, lsr #29
    subs x22, x22, #1
    b.ne 1b
    SHOW "sum", x21
    mrs x0, cntvct_el0
    SHOW "cntvct", x0
    subs x20, x20, #1
    b.ne round
    ldp x29, x30, [sp], #16
    ret
