/*
 * QEMU's boot-serial-test mini-kernel for aarch64 virt (kernel_aarch64 in
 * tests/qtest/boot-serial-test.c), byte for byte: it prints 'T' forever.
 */
    .text
    .globl _start
_start:
    .byte 0x81, 0x0a, 0x80, 0x52    /* mov     w1, #0x54 */
    .byte 0x02, 0x20, 0xa1, 0xd2    /* mov     x2, #0x9000000 */
    .byte 0x41, 0x00, 0x00, 0x39    /* strb    w1, [x2] */
    .byte 0xfd, 0xff, 0xff, 0x17    /* b       -12 (loop) */
