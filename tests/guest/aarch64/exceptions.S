/* Synchronous exceptions, PSCI over HVC, an unmapped-address abort and an
   alignment fault. */
#define HAVE_SYNC_HOOK
#include "common.h"

    .globl main
main:
    stp x29, x30, [sp, #-16]!
    PUTS "exceptions\n"
    mrs x0, CurrentEL
    SHOW "CurrentEL", x0
    mrs x0, daif
    SHOW "DAIF", x0
    mrs x0, cntfrq_el0
    SHOW "CNTFRQ", x0

    svc #0x42
    brk #0x7
    .word 0x00000000        /* udf #0 */

    ldr x0, =PSCI_VERSION
    hvc #0
    SHOW "PSCI_VERSION", x0
    ldr x0, =PSCI_FEATURES
    ldr x1, =PSCI_SYSTEM_OFF
    hvc #0
    SHOW "FEATURES(SYSTEM_OFF)", x0
    ldr x0, =PSCI_FEATURES
    ldr x1, =PSCI_MIGRATE
    hvc #0
    SHOW "FEATURES(MIGRATE)", x0
    ldr x0, =PSCI_FEATURES
    ldr x1, =PSCI_FEATURES
    hvc #0
    SHOW "FEATURES(FEATURES)", x0
    ldr x0, =PSCI_MIGRATE
    hvc #0
    SHOW "MIGRATE", x0
    ldr x0, =0x84000006     /* MIGRATE_INFO_TYPE */
    hvc #0
    SHOW "MIGRATE_INFO_TYPE", x0
    ldr x0, =0x84000004     /* AFFINITY_INFO(mpidr 0, level 0) */
    mov x1, #0
    mov x2, #0
    hvc #0
    SHOW "AFFINITY_INFO", x0
    ldr x0, =0xc4000003     /* CPU_ON of itself */
    mov x1, #0
    hvc #0
    SHOW "CPU_ON(self)", x0

    /* An unmapped address: a synchronous external abort. */
    ldr x1, =UNMAPPED
    ldr w2, [x1]
    str w2, [x1, #8]
    b 1f                    /* a store fault is taken at the block's end */
1:  ldr x3, =UNMAPPED + 0x100
    ldr x4, [x3], #8        /* post-index: no writeback on the abort */
    SHOW "X3", x3

    /* An unaligned exclusive load: an alignment fault, whose syndrome and
       fault address the MMU code computes (as for a translation fault). */
    adr x1, main
    add x1, x1, #3
    ldxr x2, [x1]

    /* Drop to EL0 and take an SVC and an abort from there. */
    adr x0, el0_code
    msr elr_el1, x0
    msr spsr_el1, xzr       /* EL0t, interrupts unmasked */
    ldr x0, =EL0_STACK_TOP
    msr sp_el0, x0
    eret
el0_code:
    svc #0x1234
    ldr x1, =UNMAPPED
    ldr w2, [x1]
    svc #0xffff             /* back to EL1: sync_hook resumes main */
after_el0:
    mrs x0, CurrentEL
    SHOW "CurrentEL", x0
    PUTS "done\n"
    ldp x29, x30, [sp], #16
    ret

/* SVC #0xffff from EL0 returns to after_el0 at EL1h. */
    .globl sync_hook
sync_hook:
    and x1, x0, #0xffff
    lsr x2, x0, #26
    cmp x2, #0x15
    b.ne 1f
    mov x3, #0xffff
    cmp x1, x3
    b.ne 1f
    adr x0, after_el0
    msr elr_el1, x0
    mov x0, #0x3c5
    msr spsr_el1, x0
    mov x0, #1
    ret
1:  mov x0, #0
    ret
