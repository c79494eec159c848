"""Benchmark: the cost of a tracepoint, disabled and enabled, next to an empty call.

Prints ns per call for an empty function, a disabled tracepoint, and an enabled
one logging to /dev/null (log backend), with the disabled/empty ratio (target:
within 2x). Uses the build's generated ``qemu_trace.qemu_api`` module.
"""

from __future__ import annotations

import sys
import timeit

from qemu_api import log, trace
from qemu_trace.qemu_api import trace_qemu_irq_set

N = 1_000_000


def empty(irq: object, n: int, level: int) -> None:
    """Do nothing, with the tracepoint's signature."""


def per_call(stmt: str, number: int = N) -> float:
    env = {"f": empty, "t": trace_qemu_irq_set, "o": object()}
    best = min(timeit.repeat(stmt, globals=env, number=number, repeat=5))
    return best / number * 1e9


def main() -> int:
    trace.trace_reset()
    base = per_call("f(o, 1, 1)")
    disabled = per_call("t(o, 1, 1)")
    log.qemu_set_log_filename("/dev/null")
    trace.trace_enable_events("qemu_irq_set")
    enabled = per_call("t(o, 1, 1)", number=N // 20)
    trace.trace_reset()
    ratio = disabled / base
    print(f"empty function call:      {base:8.1f} ns")
    print(f"disabled tracepoint:      {disabled:8.1f} ns  ({ratio:.2f}x empty)")
    print("  target: a disabled tracepoint within 2x of an empty call")
    print(f"enabled tracepoint (log): {enabled:8.1f} ns  ({enabled / base:.1f}x empty)")
    print(f"backends: {','.join(trace.trace_backends())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
