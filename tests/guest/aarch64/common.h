/*
 * Bare-metal test guests for QEMU's virt and pyqemu's: start-up, PL011 output,
 * the EL1 vector table, PSCI power-off. Each guest defines `main` (and may
 * define `sync_hook`, `irq_hook`, `fiq_hook` after defining HAVE_SYNC_HOOK,
 * ...: called from the vectors, with the ESR in x0 for sync_hook; they return
 * 0 to fall back to the default report).
 *
 * Link at 0x40080000: QEMU puts its device tree at the start of RAM.
 */
#define UART_BASE      0x09000000
#define UART_DR        0x000
#define UART_FR        0x018
#define UNMAPPED       0x09100000   /* nothing there on virt */
#define PSCI_VERSION   0x84000000
#define PSCI_CPU_OFF   0x84000002
#define PSCI_SYSTEM_OFF 0x84000008
#define PSCI_SYSTEM_RESET 0x84000009
#define PSCI_FEATURES  0x8400000a
#define PSCI_MIGRATE   0x84000005
#define STACK_TOP      0x40200000
#define EL0_STACK_TOP  0x40180000

/* Save the caller-saved registers a vector handler clobbers. */
.macro SAVE_REGS
    sub sp, sp, #256
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x30, [sp, #144]
.endm

.macro RESTORE_REGS
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x30, [sp, #144]
    add sp, sp, #256
.endm

/* A vector entry: save, call handler(kind) where kind is the entry index. */
.macro VECTOR kind
    .balign 0x80
    SAVE_REGS
    mov x0, #\kind
    bl vector_common
    RESTORE_REGS
    eret
.endm

/* Print a string literal. */
.macro PUTS str
    adr x0, 9998f
    bl puts
    b 9999f
9998: .asciz "\str"
    .balign 4
9999:
.endm

/* Print a label and the value of register \reg in hex, then a newline. */
.macro SHOW label, reg
    mov x19, \reg
    PUTS "\label="
    mov x0, x19
    bl puthex
    bl newline
.endm

    .text
    .globl _start
_start:
    ldr x0, =STACK_TOP
    mov sp, x0
    ldr x0, =vectors
    msr vbar_el1, x0
    isb
    bl main
    bl poweroff

    .globl poweroff
poweroff:
    ldr x0, =PSCI_SYSTEM_OFF
    hvc #0
1:  b 1b

    .globl putc
putc:                       /* w0: the character */
    ldr x1, =UART_BASE
1:  ldr w2, [x1, #UART_FR]
    tbnz w2, #5, 1b         /* TXFF */
    str w0, [x1, #UART_DR]
    ret

    .globl puts
puts:                       /* x0: NUL-terminated string */
    mov x3, x0
    mov x4, x30
1:  ldrb w0, [x3], #1
    cbz w0, 2f
    bl putc
    b 1b
2:  mov x30, x4
    ret

    .globl newline
newline:
    mov x4, x30
    mov w0, #'\n'
    bl putc
    mov x30, x4
    ret

    .globl puthex
puthex:                     /* x0: value, printed as 16 hex digits */
    mov x5, x0
    mov x6, #60
    mov x4, x30
1:  lsr x0, x5, x6
    and x0, x0, #0xf
    cmp x0, #10
    add x7, x0, #'0'
    add x8, x0, #('a' - 10)
    csel x0, x7, x8, lt
    bl putc
    subs x6, x6, #4
    b.ge 1b
    mov x30, x4
    ret

/* x0: vector index (0-15). Reports the exception unless a hook handles it. */
vector_common:
    stp x19, x30, [sp, #-16]!
    mov x19, x0
    and x1, x0, #3
    cbnz x1, 2f             /* not synchronous */
    mrs x0, esr_el1
    bl sync_hook
    cbnz x0, 9f
    PUTS "SYNC vector="
    mov x0, x19
    bl puthex
    PUTS " ESR="
    mrs x0, esr_el1
    bl puthex
    PUTS " ELR-start="
    mrs x0, elr_el1
    ldr x1, =_start
    sub x0, x0, x1
    bl puthex
    PUTS " FAR="
    mrs x0, far_el1
    bl puthex
    PUTS " SPSR="
    mrs x0, spsr_el1
    bl puthex
    bl newline
    /* Skip the faulting instruction, unless it was SVC/HVC (ELR past it). */
    mrs x0, esr_el1
    lsr x0, x0, #26
    cmp x0, #0x15
    b.eq 9f
    cmp x0, #0x16
    b.eq 9f
    mrs x0, elr_el1
    add x0, x0, #4
    msr elr_el1, x0
    b 9f
2:  cmp x1, #1
    b.ne 3f
    mov x0, x19
    bl irq_hook
    cbnz x0, 9f
    PUTS "IRQ vector="
    mov x0, x19
    bl puthex
    bl newline
    b 9f
3:  cmp x1, #2
    b.ne 4f
    mov x0, x19
    bl fiq_hook
    cbnz x0, 9f
    PUTS "FIQ\n"
    b 9f
4:  PUTS "SERROR\n"
9:  ldp x19, x30, [sp], #16
    ret

#ifndef HAVE_SYNC_HOOK
sync_hook:
#endif
#ifndef HAVE_IRQ_HOOK
irq_hook:
#endif
#ifndef HAVE_FIQ_HOOK
fiq_hook:
#endif
    mov x0, #0
    ret

    .balign 0x800
vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15
    .ltorg
