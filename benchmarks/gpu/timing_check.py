# SPDX-License-Identifier: Apache-2.0
"""Check autokernel_tvm.timing.compare on a GPU: alternation, L2 flush, agreement with itself.

    python benchmarks/gpu/timing_check.py        # writes $OUT/timing_check.json if OUT is set

Times cuBLAS fp16 GEMMs against themselves (the ratio must be ~1), a GEMM against one twice
its size (~0.5), a memory-bound copy that fits in L2 (the flush must make it pay for
DRAM: its timing must be above a warm-L2 back-to-back timing), and a 20 us decode GEMM against
itself under each way of flushing, with and without a lead of GPU sleep before each call, beside
torch.compile's kernel for it (its rounds must agree). Imports the package (so TVM as well).
Prints a table; exit 1 if a check fails.
"""

from __future__ import annotations

import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from autokernel_tvm import timing  # noqa: E402


def main() -> int:
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 0)
    rows, ok = [], True

    def check(name, got, low, high, extra=""):
        nonlocal ok
        passed = low <= got <= high
        ok &= passed
        rows.append({"check": name, "value": got, "range": [low, high], "passed": passed})
        print(f"{name:44s} {got:8.3f}  [{low}, {high}]  {'ok' if passed else 'FAIL'} {extra}")

    print(
        f"{props.name}: L2 {l2 / 2**20:.0f} MiB, "
        f"flush buffer {timing.L2_FLUSH_BYTES / 2**20:.0f} MiB"
    )
    check("flush buffer / L2 size", timing.L2_FLUSH_BYTES / max(l2, 1), 2.0, 1e9)
    a = torch.randn(4096, 4096, device=dev, dtype=torch.float16)
    b = torch.randn(4096, 4096, device=dev, dtype=torch.float16)
    a2 = torch.randn(8192, 4096, device=dev, dtype=torch.float16)
    same = timing.compare({"x": lambda: a @ b, "y": lambda: a @ b}, dev, warn=False)
    check("gemm vs itself (ratio)", same.ratio("x", "y"), 0.95, 1.05, f"{same.seconds}")
    double = timing.compare({"small": lambda: a @ b, "big": lambda: a2 @ b}, dev, warn=False)
    check("gemm vs twice the work (ratio)", double.ratio("big", "small"), 0.42, 0.58)
    n = max(l2 // 8, 1 << 20)  # src + dst = a quarter of L2: stays in L2 without the flush
    src, dst = torch.randn(n // 4, device=dev), torch.empty(n // 4, device=dev)
    flushed = timing.compare({"copy": lambda: dst.copy_(src)}, dev, warn=False).seconds["copy"]
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(True), torch.cuda.Event(True)
    start.record()
    for _ in range(1000):
        dst.copy_(src)
    stop.record()
    torch.cuda.synchronize()
    warm = start.elapsed_time(stop) / 1000 / 1e3
    check("L2-sized copy: flushed / warm back-to-back", flushed / warm, 1.0, 1e3)
    # A 20 us GEMM (decode, 64 rows) against itself under each flush: the write flush leaves
    # the L2 full of dirty lines that the call then writes back (a guess at why such rows
    # disagreed by up to 250% between rounds on 2026-12-04); the read flush leaves clean ones.
    x = torch.randn(64, 4096, device=dev, dtype=torch.float16)
    # A lead of GPU sleep after the flush keeps the CPU's launch out of the timed interval,
    # should a call's launch (torch.compile's Python wrapper) take longer than the flush runs.
    compiled = torch.compile(lambda u, v: u @ v, mode="max-autotune-no-cudagraphs")
    for flush, lead in [(f, 0.0) for f in timing.FLUSHES] + [("write", 100.0)]:
        how = f"{flush} flush" + (f" + {lead:.0f} us lead" if lead else "")
        fns = {"x": lambda: x @ b, "y": lambda: x @ b, "c": lambda: compiled(x, b)}
        small = timing.compare(fns, dev, warn=False, flush=flush, lead_us=lead)
        us = small.seconds["x"] * 1e6
        check(f"decode gemm vs itself, {how} (ratio)", small.ratio("x", "y"), 0.9, 1.1)
        check(f"decode gemm, {how}: round spread", small.spread("x"), 0.0,
              timing.DISAGREE, f"{us:.1f} us")  # fmt: skip
        check(f"decode torch.compile, {how}: round spread", small.spread("c"), 0.0,
              timing.DISAGREE, f"{small.seconds['c'] * 1e6:.1f} us")  # fmt: skip
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "timing_check.json"), "w") as f:
            json.dump({"device": props.name, "l2_bytes": l2, "rows": rows}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
