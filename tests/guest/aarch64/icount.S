/*
 * A CPU-bound guest for -icount and the benchmark: rounds of a linear
 * congruential generator; after each round it prints the checksum and the
 * virtual counter. Then TICKS interrupts of the virtual timer (through the
 * GICv2) arrive while it computes; each prints the counter it arrived at.
 * Under -icount all of it repeats from run to run.
 */
#define HAVE_IRQ_HOOK
#include "common.h"

#define GICD            0x08000000
#define GICC            0x08010000
#define TICKS           5
#define PERIOD          2000        /* counter ticks: 32 us */

    .data
    .balign 8
ticks_seen: .quad 0
    .text

    .globl irq_hook
irq_hook:
    stp x29, x30, [sp, #-16]!
    ldr x1, =GICC
    ldr w20, [x1, #0x0c]            /* IAR */
    mrs x0, cntvct_el0
    SHOW "tick cntvct", x0
    ldr x0, =PERIOD                 /* next tick */
    msr cntv_tval_el0, x0
    ldr x1, =ticks_seen
    ldr x0, [x1]
    add x0, x0, #1
    str x0, [x1]
    cmp x0, #TICKS
    b.ne 1f
    msr cntv_ctl_el0, xzr
1:  ldr x1, =GICC
    str w20, [x1, #0x10]            /* EOIR */
    mov x0, #1
    ldp x29, x30, [sp], #16
    ret

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

    /* Timer interrupts while computing. */
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1]                    /* GICD_CTLR */
    mov w2, #(1 << 27)
    str w2, [x1, #0x100]            /* enable PPI 27, the virtual timer */
    ldr x1, =GICC
    mov w2, #0xf0
    str w2, [x1, #0x04]             /* PMR */
    mov w2, #1
    str w2, [x1]                    /* GICC_CTLR */
    ldr x0, =PERIOD
    msr cntv_tval_el0, x0
    mov x0, #1
    msr cntv_ctl_el0, x0
    msr daifclr, #2
2:  madd x21, x21, x23, x24
    ldr x1, =ticks_seen
    ldr x0, [x1]
    cmp x0, #TICKS
    b.ne 2b
    msr daifset, #2
    SHOW "sum", x21
    ldp x29, x30, [sp], #16
    ret
