/*
 * An idle guest: it arms the virtual timer SECONDS ahead (CVAL), waits for
 * its interrupt (PPI 27 through the GICv2) in WFI with IRQs unmasked, and
 * says when it woke. The benchmark (SECONDS=10) measures the host CPU time
 * the emulator uses meanwhile; the guest test (SECONDS=1) checks the output.
 */
#define HAVE_IRQ_HOOK
#include "common.h"

#define GICD            0x08000000
#define GICD_CTLR       0x000
#define GICD_ISENABLER  0x100
#define GICC            0x08010000
#define GICC_CTLR       0x00
#define GICC_PMR        0x04
#define GICC_IAR        0x0c
#define GICC_EOIR       0x10
#define HZ              62500000    /* CNTFRQ on virt */

#ifndef SECONDS
#define SECONDS 10
#endif

    .data
    .balign 8
woken: .quad 0
    .text

    .globl irq_hook
irq_hook:
    ldr x1, =GICC
    ldr w2, [x1, #GICC_IAR]
    and w3, w2, #0x3ff
    cmp w3, #27                     /* the virtual timer: stop it */
    b.ne 1f
    msr cntv_ctl_el0, xzr
    ldr x4, =woken
    mov x5, #1
    str x5, [x4]
1:  str w2, [x1, #GICC_EOIR]
    mov x0, #1
    ret

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1, #GICD_CTLR]
    mov w2, #(1 << 27)              /* PPI 27, the virtual timer */
    str w2, [x1, #GICD_ISENABLER]
    ldr x1, =GICC
    mov w2, #0xf0
    str w2, [x1, #GICC_PMR]
    mov w2, #1
    str w2, [x1, #GICC_CTLR]
    ldr x0, =(SECONDS * HZ)
    SHOW "idle: waiting in WFI for the virtual timer, ticks", x0
    isb
    mrs x20, cntvct_el0
    ldr x0, =(SECONDS * HZ)
    add x21, x20, x0                /* the deadline */
    msr cntv_cval_el0, x21
    mov x0, #1                      /* ENABLE */
    msr cntv_ctl_el0, x0
    msr daifclr, #2
    ldr x22, =woken
1:  wfi
    ldr x0, [x22]
    cbz x0, 1b
    msr daifset, #2
    isb
    mrs x23, cntvct_el0
    cmp x23, x21
    cset x0, hs
    SHOW "woke at or after the deadline", x0
    ldp x29, x30, [sp], #16
    ret
