/*
 * A guest that faults in a loop: a load from an unmapped address (a
 * synchronous external abort), an undefined instruction, a BRK, an
 * unaligned exclusive load (an alignment fault) and an SVC, each taken to
 * the EL1 vector and resumed after. Prints the round number and the faults
 * counted after every ROUND iterations; runs until the test quits. Prints
 * the PL031's count first, as the hammer does (the test checks it).
 */
#include "faults.h"
#define RTC_BASE 0x09010000
#define ROUND 1024

    .globl main
main:
    PUTS "faultloop\n"
    ldr x1, =RTC_BASE
    ldr w20, [x1]
    SHOW "seed", x20
    mov x22, #0
round:
    mov x25, #ROUND
1:  ldr x1, =UNMAPPED
    ldr w2, [x1]
    .word 0x00000000        /* udf #0 */
    brk #1
    adr x1, main
    add x1, x1, #3
    ldxr x2, [x1]
    svc #7
    subs x25, x25, #1
    b.ne 1b
    add x22, x22, #1
    bl uart_restore
    SHOW "round", x22
    ldr x0, =fault_count
    ldr x23, [x0]
    SHOW "faults", x23
    b round
    .ltorg
