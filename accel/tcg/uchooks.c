/*
 * Native filters in front of pyqemu's unicorn hooks (accel/tcg/engine.py).
 *
 * unicorn 2.1.4 calls an MRS/MSR hook for every system-register access the
 * guest makes, and puts a block hook into every translation block translated
 * while the hook exists; adding or removing a block hook therefore means
 * flushing the translation cache. A Python callback on either path costs a
 * microsecond per call: Linux reads SP_EL0 (its "current" pointer) with MRS
 * hundreds of thousands of times per second.
 *
 * These callbacks decide in C:
 *
 * - pyqemu_mrs_hook, pyqemu_msr_hook: call Python only for the system registers pyqemu
 *   models (the generic timer's), so every other MRS/MSR runs in the engine
 *   at the cost of one C call;
 * - pyqemu_block_hook: calls Python only while the engine wants to watch
 *   blocks (an interrupt pending behind PSTATE's masks, -icount counting),
 *   switched by a flag instead of a retranslation. The engine adds it when
 *   first wanted and removes it after a while unwanted (each translated block
 *   pays a call to it, as much as a short block costs).
 *
 * Plain C with no Python API: engine.py loads it with ctypes and registers
 * the functions with uc_hook_add. The layouts below are unicorn 2.1.4's
 * (include/unicorn/arm64.h, include/unicorn/unicorn.h).
 */

#include <stdint.h>

typedef struct uc_arm64_cp_reg {
    uint32_t crn;
    uint32_t crm;
    uint32_t op0;
    uint32_t op1;
    uint32_t op2;
    uint64_t val;
} uc_arm64_cp_reg;

typedef uint32_t (*sysreg_cb)(void *uc, int reg, const uc_arm64_cp_reg *cp,
                              void *user_data);
typedef void (*block_cb)(void *uc, uint64_t address, uint32_t size,
                         void *user_data);

#define PYQEMU_MAX_KEYS 64

/* Shared with engine.py (_HookState there): keep the two in step. */
typedef struct pyqemu_hooks {
    sysreg_cb mrs;      /* Python, for an MRS of a hooked register */
    sysreg_cb msr;      /* Python, for an MSR of a hooked register */
    block_cb block;     /* Python, for each block while watching */
    volatile int32_t watching;
    uint32_t nkeys;
    uint32_t keys[PYQEMU_MAX_KEYS]; /* op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2 */
    volatile uint64_t passed;       /* accesses left to the engine (statistics) */
} pyqemu_hooks;

static int hooked(const pyqemu_hooks *h, const uc_arm64_cp_reg *cp)
{
    uint32_t key = cp->op0 << 14 | cp->op1 << 11 | cp->crn << 7 | cp->crm << 3 | cp->op2;
    for (uint32_t i = 0; i < h->nkeys; i++) {
        if (h->keys[i] == key) {
            return 1;
        }
    }
    return 0;
}

/* Returns nonzero when the access was handled (the engine skips it). */
uint32_t pyqemu_mrs_hook(void *uc, int reg, const uc_arm64_cp_reg *cp, void *user_data)
{
    pyqemu_hooks *h = user_data;
    if (hooked(h, cp)) {
        return h->mrs(uc, reg, cp, user_data);
    }
    h->passed++;
    return 0;
}

uint32_t pyqemu_msr_hook(void *uc, int reg, const uc_arm64_cp_reg *cp, void *user_data)
{
    pyqemu_hooks *h = user_data;
    if (hooked(h, cp)) {
        return h->msr(uc, reg, cp, user_data);
    }
    h->passed++;
    return 0;
}

void pyqemu_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    pyqemu_hooks *h = user_data;
    if (h->watching) {
        h->block(uc, address, size, user_data);
    }
}

uint32_t pyqemu_hooks_abi(void)
{
    return (uint32_t)sizeof(pyqemu_hooks);
}
