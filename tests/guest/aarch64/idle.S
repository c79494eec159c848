/* The idle benchmark: WFI with nothing to wake it (the host stops it). */
#include "common.h"

    .globl main
main:
    PUTS "idle\n"
1:  wfi
    b 1b
