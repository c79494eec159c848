/* The EL1 generic timers without interrupts: counters, TVAL, CVAL, IMASK. */
#include "common.h"

#define TICKS 1250000               /* 20 ms at 62.5 MHz */

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    PUTS "timers\n"
    mrs x0, cntfrq_el0
    SHOW "CNTFRQ", x0
    /* The counters move forward. */
    mrs x20, cntvct_el0
    mrs x21, cntpct_el0
    ldr x0, =100000
1:  subs x0, x0, #1
    b.ne 1b
    mrs x22, cntvct_el0
    mrs x23, cntpct_el0
    cmp x22, x20
    cset x0, hi
    SHOW "CNTVCT moves", x0
    cmp x23, x21
    cset x0, hi
    SHOW "CNTPCT moves", x0

    /* Virtual timer, TVAL: not expired, then expired. */
    msr cntv_ctl_el0, xzr
    ldr x0, =TICKS
    msr cntv_tval_el0, x0
    mov x0, #1                      /* ENABLE */
    msr cntv_ctl_el0, x0
    isb
    mrs x0, cntv_ctl_el0
    SHOW "CNTV_CTL armed", x0
    mrs x1, cntv_cval_el0
    mrs x2, cntvct_el0
    sub x0, x1, x2
    ldr x1, =TICKS
    cmp x0, x1
    cset x0, ls
    SHOW "CVAL-CNT <= TICKS", x0
2:  mrs x0, cntv_ctl_el0
    tbz x0, #2, 2b                  /* wait for ISTATUS */
    SHOW "CNTV_CTL expired", x0
    mrs x0, cntv_tval_el0
    lsr x0, x0, #31
    SHOW "TVAL negative", x0
    mov x0, #3                      /* ENABLE | IMASK */
    msr cntv_ctl_el0, x0
    mrs x0, cntv_ctl_el0
    SHOW "CNTV_CTL masked", x0
    msr cntv_ctl_el0, xzr
    mrs x0, cntv_ctl_el0
    SHOW "CNTV_CTL off", x0

    /* Physical timer, CVAL. */
    msr cntp_ctl_el0, xzr
    mrs x0, cntpct_el0
    ldr x1, =TICKS
    add x0, x0, x1
    msr cntp_cval_el0, x0
    mov x0, #1
    msr cntp_ctl_el0, x0
    isb
    mrs x0, cntp_ctl_el0
    SHOW "CNTP_CTL armed", x0
3:  mrs x0, cntp_ctl_el0
    tbz x0, #2, 3b
    SHOW "CNTP_CTL expired", x0
    /* A CVAL in the past: expired at once; TVAL write of a large value: not. */
    msr cntp_cval_el0, xzr
    mrs x0, cntp_ctl_el0
    SHOW "CNTP_CTL cval=0", x0
    ldr x0, =0x7fffffff
    msr cntp_tval_el0, x0
    mrs x0, cntp_ctl_el0
    SHOW "CNTP_CTL far", x0
    msr cntp_ctl_el0, xzr
    PUTS "done\n"
    ldp x29, x30, [sp], #16
    ret
