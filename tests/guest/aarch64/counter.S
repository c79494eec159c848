/*
 * Counts from 0 to COUNT-1 on the serial port, one line each, with a busy
 * delay between lines, then powers off: the live-migration guest (its output
 * must continue on the destination without a lost or repeated byte).
 */
#include "common.h"

#define COUNT 300
#define DELAY 30000

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    mov x20, #0
1:  mov x0, x20
    bl puthex
    bl newline
    ldr x1, =DELAY
2:  subs x1, x1, #1
    b.ne 2b
    add x20, x20, #1
    cmp x20, #COUNT
    b.ne 1b
    ldp x29, x30, [sp], #16
    ret
