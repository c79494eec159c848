/*
 * The PL011 transmit benchmark: BYTES bytes written to UART0's DR, each after
 * polling FR.TXFF, as a polling driver (and Linux's earlycon) does. The UART
 * runs 8N1 with its FIFOs on at IBRD/FBRD: by default IBRD 1 (1.5 Mbaud from
 * virt's 24 MHz clock); -DIBRD=13 -DFBRD=1 gives 115200 baud (115246).
 * QEMU without a transmit FIFO ignores the rate. Timed with the virtual
 * counter, which follows host time.
 */
#include "common.h"

#ifndef BYTES
#define BYTES 65536
#endif
#ifndef IBRD
#define IBRD 1
#endif
#ifndef FBRD
#define FBRD 0
#endif
#define UART_IBRD      0x024
#define UART_FBRD      0x028
#define UART_LCR_H     0x02c
#define UART_CR        0x030

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    ldr x1, =UART_BASE
    mov w0, #IBRD
    str w0, [x1, #UART_IBRD]
    mov w0, #FBRD
    str w0, [x1, #UART_FBRD]
    mov w0, #0x70               /* 8 bits, FIFOs on */
    str w0, [x1, #UART_LCR_H]
    ldr w0, =0x301              /* UARTEN, TXE, RXE */
    str w0, [x1, #UART_CR]
    ldr x2, =BYTES
    mov w3, #'A'
    isb
    mrs x20, cntvct_el0
1:  ldr w0, [x1, #UART_FR]
    tbnz w0, #5, 1b             /* TXFF */
    str w3, [x1, #UART_DR]
    add w3, w3, #1
    cmp w3, #'Z' + 1
    b.ne 2f
    mov w3, #'A'
2:  subs x2, x2, #1
    b.ne 1b
3:  ldr w0, [x1, #UART_FR]      /* wait until the line is idle */
    tbnz w0, #3, 3b             /* BUSY */
    isb
    mrs x21, cntvct_el0
    mov w0, #'\n'
    bl putc
    sub x0, x21, x20
    SHOW "ticks", x0
    ldr x1, =UART_BASE          /* the line idle before the power goes off */
4:  ldr w0, [x1, #UART_FR]
    tbnz w0, #3, 4b
    ldp x29, x30, [sp], #16
    ret
