# SPDX-License-Identifier: Apache-2.0
"""Where an unaligned GEMM's time goes: the cuda.wgmma kernel of an odd shape (its row-padding
copies included, as a user calls it) against the same structure on the K-aligned shape, its
padding copies alone, torch's own padding copy, and cuBLAS, timed in alternation (L2 flushed).

    python benchmarks/gpu/pad_check.py --shape 8205,5921,2949 --structures 256,2,4,1 256,2,4,5,p

Writes ``$OUT/pad_check_<shape>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import tvm  # noqa: E402

from autokernel_tvm import timing  # noqa: E402
from autokernel_tvm.families.cuda_wgmma.geometry import padded, row_pads  # noqa: E402
from autokernel_tvm.families.cuda_wgmma.kernel import wgmma_module  # noqa: E402
from autokernel_tvm.hardware import limits  # noqa: E402
from autokernel_tvm.targets import make_target  # noqa: E402


def build(m, n, k, structure, target, dtype):
    block_n, consumers, stages, raster, *flags = structure
    lim = limits(target)
    st = dict(
        in_dtype=dtype,
        trans_b=True,
        block_n=block_n,
        consumers=consumers,
        stages=stages,
        raster=raster,
        out_dtype=dtype,
        schedule="persistent" if "p" in flags else "tile",
    )
    mod = wgmma_module(m, n, k, symbol="ak_check", smem_limit=lim.smem_per_block,
                       sm_count=lim.sm_count, **st)  # fmt: skip
    return tvm.compile(mod, target=target, tir_pipeline="tirx"), st


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="8205,5921,2949")
    p.add_argument("--dtype", default="float16")
    p.add_argument("--structures", nargs="+", default=["256,2,4,1"])
    args = p.parse_args()
    m, n, k = map(int, args.shape.split(","))
    target = make_target("cuda", "sm_90a")
    dt = getattr(torch, args.dtype)
    a = torch.randn(m, k, device="cuda", dtype=dt)
    b = torch.randn(n, k, device="cuda", dtype=dt)
    k8 = padded(k)
    a8 = torch.nn.functional.pad(a, (0, k8 - k))
    b8 = torch.nn.functional.pad(b, (0, k8 - k))
    c = torch.empty(m, n, device="cuda", dtype=dt)
    ta, tb, tc, ta8, tb8 = (tvm.runtime.from_dlpack(x) for x in (a, b, c, a8, b8))
    fns = {
        "cublas": lambda: a @ b.T,
        "torch_pad_a_b": lambda: (
            torch.nn.functional.pad(a, (0, k8 - k)),
            torch.nn.functional.pad(b, (0, k8 - k)),
        ),
    }
    for text in args.structures:
        s = tuple(int(v) if v.isdigit() else v for v in text.split(","))
        lib, st = build(m, n, k, s, target, args.dtype)
        lib8, _ = build(m, n, k8, s, target, args.dtype)
        fns[f"{text}"] = lambda lib=lib: lib["main"](ta, tb, tc)
        fns[f"{text} K={k8}"] = lambda lib=lib8: lib["main"](ta8, tb8, tc)
        if text == args.structures[0]:
            pads = row_pads(m, n, k, **st)
            fns["pad_a+pad_b"] = lambda lib=lib: (
                lib["ak_check_pad_a"](ta, ta8),
                lib["ak_check_pad_b"](tb, tb8),
            )
            assert set(pads) == {"a", "b"}
        lib["main"](ta, tb, tc)
        err = ((c.double() - a.double() @ b.double().T).norm() / c.double().norm()).item()
        print(text, "rel err", f"{err:.2e}", flush=True)
    lib["ak_check_pad_a"](ta, ta8)
    assert torch.equal(a8, torch.nn.functional.pad(a, (0, k8 - k))), "pad_a differs"
    both = timing.compare(fns, "cuda", rep_ms=200, rounds=5)
    flops = 2.0 * m * n * k
    rows = {name: {"us": sec * 1e6, "tflops": flops / sec / 1e12}
            for name, sec in both.seconds.items()}  # fmt: skip
    for name, r in rows.items():
        print(f"{name:28s} {r['us']:9.1f} us {r['tflops']:7.1f} TFLOP/s(of the GEMM)")
    out = os.environ.get("OUT")
    if out:
        meta = {"gpu": torch.cuda.get_device_name(), "command": " ".join(sys.argv)}
        with open(os.path.join(out, f"pad_check_{m}x{n}x{k}.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
