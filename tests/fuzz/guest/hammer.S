/*
 * Random MMIO accesses from the CPU: loads and stores of 1, 2, 4 and 8
 * bytes, aligned three times in four, at random offsets of the PL011, the
 * PL031, the PL061, the GIC's distributor and CPU interface and unmapped
 * holes, from a xorshift64 generator seeded by the PL031's count (the test
 * chooses it with -rtc base=). Faults (unmapped addresses, unaligned device
 * accesses) are counted and skipped. Prints the seed, then after each round
 * of ROUND accesses the round number and the faults so far; runs until the
 * test quits the emulator.
 */
#include "faults.h"
#define RTC_BASE 0x09010000
#define ROUND 4096

    .globl main
main:
    PUTS "hammer\n"
    ldr x1, =RTC_BASE
    ldr w20, [x1]           /* RTCDR: the seed */
    SHOW "seed", x20
    ldr x1, =0x9E3779B97F4A7C15
    mul x21, x20, x1
    orr x21, x21, #1        /* never 0 */
    mov x22, #0             /* rounds done */
    adr x24, regions
round:
    mov x25, #ROUND
1:  eor x21, x21, x21, lsl #13
    eor x21, x21, x21, lsr #7
    eor x21, x21, x21, lsl #17
    ubfx x0, x21, #8, #3    /* region */
    ldr x1, [x24, x0, lsl #3]
    ubfx x2, x21, #16, #12  /* offset */
    ubfx x3, x21, #32, #3   /* operation: load or store, size */
    and x4, x3, #3          /* log2 of the size */
    ubfx x5, x21, #40, #2
    cmp x5, #3
    b.eq 2f                 /* one in four may be unaligned */
    lsr x2, x2, x4
    lsl x2, x2, x4
2:  add x1, x1, x2
    ror x7, x21, #23        /* the value stored */
    adr x6, 5f
    add x6, x6, x3, lsl #3
    br x6
5:  ldrb w8, [x1]
    b 6f
    ldrh w8, [x1]
    b 6f
    ldr w8, [x1]
    b 6f
    ldr x8, [x1]
    b 6f
    strb w7, [x1]
    b 6f
    strh w7, [x1]
    b 6f
    str w7, [x1]
    b 6f
    str x7, [x1]
    b 6f
6:  subs x25, x25, #1
    b.ne 1b
    add x22, x22, #1
    bl uart_restore
    SHOW "round", x22
    ldr x0, =fault_count
    ldr x23, [x0]
    SHOW "faults", x23
    b round

    .balign 8
regions:
    .quad 0x09000000        /* PL011 */
    .quad 0x09010000        /* PL031 */
    .quad 0x09030000        /* PL061 */
    .quad 0x08000000        /* GIC distributor */
    .quad 0x08010000        /* GIC CPU interface */
    .quad 0x08011000        /* GIC CPU interface, second page */
    .quad 0x09020000        /* a hole on pyqemu's virt */
    .quad UNMAPPED
    .ltorg
