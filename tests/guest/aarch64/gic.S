/*
 * Interrupts through the GICv2: an SGI, both EL1 timers (TVAL and CVAL,
 * expiry during WFI), PSTATE and priority masking, split EOI/deactivate, and
 * an interrupt-driven PL011 echo of the serial input up to a '.'.
 */
#define HAVE_IRQ_HOOK
#include "common.h"

#define GICD            0x08000000
#define GICD_CTLR       0x000
#define GICD_ISENABLER  0x100
#define GICD_ISPENDR    0x200
#define GICD_ISACTIVER  0x300
#define GICD_IPRIORITYR 0x400
#define GICD_SGIR       0xf00
#define GICC            0x08010000
#define GICC_CTLR       0x00
#define GICC_PMR        0x04
#define GICC_IAR        0x0c
#define GICC_EOIR       0x10
#define GICC_HPPIR      0x18
#define GICC_DIR        0x1000
#define UART_IMSC       0x038
#define UART_MIS        0x040
#define UART_ICR        0x044
#define UART_CR         0x030
#define TICKS           62500       /* 1 ms */

    .data
    .balign 8
irq_count:  .quad 0
last_iar:   .quad 0
eoi_split:  .quad 0
echo_done:  .quad 0
    .text

/* x0 = vector index; x19 is free (callee-saved by vector_common). */
    .globl irq_hook
irq_hook:
    stp x29, x30, [sp, #-16]!
    ldr x1, =GICC
    ldr w2, [x1, #GICC_IAR]
    ldr x3, =last_iar
    str x2, [x3]
    and w4, w2, #0x3ff
    cmp w4, #27                 /* virtual timer: stop it */
    b.ne 1f
    msr cntv_ctl_el0, xzr
1:  cmp w4, #30                 /* physical timer: stop it */
    b.ne 2f
    msr cntp_ctl_el0, xzr
2:  cmp w4, #33                 /* PL011: echo what arrived */
    b.ne 5f
    ldr x5, =UART_BASE
3:  ldr w6, [x5, #UART_FR]
    tbnz w6, #4, 4f             /* RXFE */
    ldr w0, [x5, #UART_DR]
    and w0, w0, #0xff
    cmp w0, #'.'
    b.ne 31f
    ldr x7, =echo_done
    mov x8, #1
    str x8, [x7]
31: bl putc
    ldr x5, =UART_BASE
    b 3b
4:  mov w6, #0x7ff
    str w6, [x5, #UART_ICR]
5:  ldr x3, =irq_count
    ldr x4, [x3]
    add x4, x4, #1
    str x4, [x3]
    ldr x1, =GICC
    ldr x3, =last_iar
    ldr x2, [x3]
    str w2, [x1, #GICC_EOIR]
    ldr x3, =eoi_split
    ldr x4, [x3]
    cbnz x4, 6f                 /* split mode: main deactivates */
6:  mov x0, #1
    ldp x29, x30, [sp], #16
    ret

/* Wait in WFI until irq_count differs from x2 (read before arming). */
wait_irq:
    ldr x1, =irq_count
1:  ldr x3, [x1]
    cmp x3, x2
    b.ne 2f
    wfi
    b 1b
2:  ret

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    PUTS "gic\n"
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1, #GICD_CTLR]
    ldr w2, =0x48000008         /* SGI 3, PPI 27 (vtimer), PPI 30 (ptimer) */
    str w2, [x1, #GICD_ISENABLER]
    mov w2, #(1 << 1)           /* SPI 1 = INTID 33, the PL011 */
    str w2, [x1, #GICD_ISENABLER + 4]
    ldr x1, =GICC
    mov w2, #0xf0
    str w2, [x1, #GICC_PMR]
    mov w2, #1
    str w2, [x1, #GICC_CTLR]
    msr daifclr, #2
    isb

    /* An SGI to itself. */
    ldr x1, =GICD
    ldr w2, =(2 << 24) | 3
    str w2, [x1, #GICD_SGIR]
    isb
    ldr x0, =last_iar
    ldr x0, [x0]
    SHOW "SGI iar", x0

    /* Virtual timer, TVAL, three ticks in WFI. */
    mov x22, #3
1:  ldr x0, =TICKS
    msr cntv_tval_el0, x0
    ldr x2, =irq_count
    ldr x2, [x2]
    mov x0, #1
    msr cntv_ctl_el0, x0
    bl wait_irq
    ldr x0, =last_iar
    ldr x0, [x0]
    SHOW "vtimer iar", x0
    subs x22, x22, #1
    b.ne 1b

    /* Physical timer, CVAL, in WFI. */
    mrs x0, cntpct_el0
    ldr x1, =TICKS
    add x0, x0, x1
    msr cntp_cval_el0, x0
    ldr x2, =irq_count
    ldr x2, [x2]
    mov x0, #1
    msr cntp_ctl_el0, x0
    bl wait_irq
    ldr x0, =last_iar
    ldr x0, [x0]
    SHOW "ptimer iar", x0

    /* PSTATE.I masks: the expired timer stays pending until unmasked. */
    msr daifset, #2
    mov x0, #1
    msr cntv_tval_el0, x0
    msr cntv_ctl_el0, x0
2:  mrs x0, cntv_ctl_el0
    tbz x0, #2, 2b
    ldr x1, =GICC
    ldr w0, [x1, #GICC_HPPIR]
    SHOW "masked hppir", x0
    ldr x1, =irq_count
    ldr x20, [x1]
    msr daifclr, #2
    isb
    ldr x1, =irq_count
    ldr x0, [x1]
    sub x0, x0, x20
    SHOW "taken after unmask", x0

    /* Priority mask: SGI 5 at priority 0xa0 with PMR 0x80 stays pending. */
    ldr x1, =GICD
    mov w2, #(1 << 5)
    str w2, [x1, #GICD_ISENABLER]
    mov w2, #0xa0
    strb w2, [x1, #GICD_IPRIORITYR + 5]
    ldr x1, =GICC
    mov w2, #0x80
    str w2, [x1, #GICC_PMR]
    ldr x1, =GICD
    ldr w2, =(2 << 24) | 5
    str w2, [x1, #GICD_SGIR]
    isb
    ldr x1, =GICC
    ldr w0, [x1, #GICC_HPPIR]
    SHOW "below pmr hppir", x0
    ldr x1, =irq_count
    ldr x20, [x1]
    ldr x1, =GICC
    mov w2, #0xf0
    str w2, [x1, #GICC_PMR]
    isb
    ldr x1, =irq_count
    ldr x0, [x1]
    sub x0, x0, x20
    SHOW "taken after pmr", x0

    /* Split EOI: EOIR drops the priority, DIR deactivates. */
    ldr x1, =GICC
    ldr w2, =(1 << 9) | 1       /* EOImodeNS, enable */
    str w2, [x1, #GICC_CTLR]
    ldr x1, =GICD
    ldr w2, =(2 << 24) | 3
    str w2, [x1, #GICD_SGIR]
    isb
    ldr x1, =GICD
    ldr w0, [x1, #GICD_ISACTIVER]
    SHOW "active after eoir", x0
    ldr x1, =GICC
    mov w2, #3
    str w2, [x1, #GICC_DIR]
    ldr x1, =GICD
    ldr w0, [x1, #GICD_ISACTIVER]
    SHOW "active after dir", x0
    ldr x1, =GICC
    mov w2, #1
    str w2, [x1, #GICC_CTLR]

    /* Interrupt-driven echo of the serial input, up to '.'. */
    PUTS "echo:"
    ldr x1, =UART_BASE
    mov w2, #(1 << 4) | (1 << 6) /* RXIM, RTIM */
    str w2, [x1, #UART_IMSC]
3:  msr daifset, #2
    ldr x1, =echo_done
    ldr x0, [x1]
    cbnz x0, 4f
    wfi
    msr daifclr, #2
    isb
    b 3b
4:  msr daifclr, #2
    bl newline
    PUTS "done\n"
    ldp x29, x30, [sp], #16
    ret
