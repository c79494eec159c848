/*
 * Shared by the fuzz guests: a synchronous-exception hook that counts the
 * exception in `fault_count` and resumes after the faulting instruction
 * (SVC/HVC already return past it), so that a guest can fault in a loop.
 */
#define HAVE_SYNC_HOOK
#include "common.h"

    .globl sync_hook
sync_hook:                  /* x0: ESR_EL1 */
    ldr x1, =fault_count
    ldr x2, [x1]
    add x2, x2, #1
    str x2, [x1]
    lsr x0, x0, #26
    cmp x0, #0x15           /* SVC */
    b.eq 1f
    cmp x0, #0x16           /* HVC */
    b.eq 1f
    mrs x3, elr_el1
    add x3, x3, #4
    msr elr_el1, x3
1:  mov x0, #1
    ret

/* The UART as the guest's own output needs it (random writes may have
   disabled it or turned on loopback): enabled, TX and RX, 8 bits, no FIFO. */
    .globl uart_restore
uart_restore:
    ldr x1, =UART_BASE
    mov w2, #0x60
    str w2, [x1, #0x2c]     /* UARTLCR_H */
    mov w2, #0x301
    str w2, [x1, #0x30]     /* UARTCR */
    mov w2, #0
    str w2, [x1, #0x38]     /* UARTIMSC */
    ret

    .ltorg
    .data
    .balign 8
    .globl fault_count
fault_count:
    .quad 0
    .text
