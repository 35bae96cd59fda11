# SPDX-License-Identifier: Apache-2.0
"""Hardware limits per GPU architecture: the one table that legality checks and targets read.

Numbers are the vendors' per-block (per-workgroup) limits after opt-in: a CUDA block gets more
than 48 KB of dynamic shared memory once the runtime raises its limit (TVM's CUDA module does that
for dynamic shared memory >= 48 KB, TVM-0.27-NOTES §3); an AMD workgroup has 64 KB of LDS.
A family never writes one of these numbers itself: it asks :func:`limits` for the target's.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes copied on the device before each timed GPU call so that no operand stays in L2 (H100:
#: 50 MB, H200: 60 MB, MI300X: 256 MB of Infinity Cache): candidates and baselines are timed
#: as a model calls them, with their operands in device memory.
L2_FLUSH_BYTES = 256 * 1024 * 1024


class UnknownArchError(ValueError):
    """An architecture this table has no limits for; the message lists the known ones."""


@dataclass(frozen=True)
class Limits:
    """What one block (workgroup) may use on an architecture.

    smem_per_block : bytes of shared memory (LDS) a block can be granted.
    regs_per_block : 32-bit registers of one block (the register file a block can fill).
    regs_per_thread : registers one thread can address.
    max_threads_per_block : threads per block.
    warp_size : threads per warp (wavefront).
    sm_count : multiprocessors (compute units) of the arch's reference part: the grid of a
        persistent kernel. A part with fewer (H100 PCIe: 114 of sm_90's 132) queues the extra
        blocks, correct but slower; the tuner measures that like any other choice.
    """

    smem_per_block: int
    regs_per_block: int
    regs_per_thread: int
    max_threads_per_block: int
    warp_size: int
    sm_count: int

    @property
    def max_warps_per_block(self) -> int:
        return self.max_threads_per_block // self.warp_size


_CUDA = dict(regs_per_block=65536, regs_per_thread=255, max_threads_per_block=1024, warp_size=32)
_AMD = dict(regs_per_block=131072, regs_per_thread=512, max_threads_per_block=1024, warp_size=64)

#: arch -> limits. sm_70/sm_75: V100 (96 KB) / T4 (64 KB), kept so an old GPU gets the stock
#: space with a reason instead of an error; sm_80: A100 (163 KB); sm_86/sm_89: Ampere/Ada
#: parts (99 KB; A40, RTX 4090); sm_90/sm_90a: H100/H200 SXM (227 KB, 132 SMs); gfx90a (MI250X
#: GCD) / gfx942 (MI300X): 64 KB LDS, 512 VGPRs (arch VGPRs + AccVGPRs) per lane, 104 / 304 CUs.
TABLE: dict[str, Limits] = {
    "sm_70": Limits(smem_per_block=98304, sm_count=80, **_CUDA),
    "sm_75": Limits(smem_per_block=65536, sm_count=40, **_CUDA),
    "sm_80": Limits(smem_per_block=166912, sm_count=108, **_CUDA),
    "sm_86": Limits(smem_per_block=101376, sm_count=84, **_CUDA),
    "sm_89": Limits(smem_per_block=101376, sm_count=128, **_CUDA),
    "sm_90": Limits(smem_per_block=232448, sm_count=132, **_CUDA),
    "sm_90a": Limits(smem_per_block=232448, sm_count=132, **_CUDA),
    "gfx90a": Limits(smem_per_block=65536, sm_count=104, **_AMD),
    "gfx942": Limits(smem_per_block=65536, sm_count=304, **_AMD),
}


def limits_for_arch(arch: str) -> Limits:
    """The limits of ``arch`` (``sm_90a``, ``gfx942``...); other sm_XY use the nearest older."""
    if arch in TABLE:
        return TABLE[arch]
    if arch.startswith("sm_") and arch[3:].rstrip("a").isdigit():
        sm = int(arch[3:].rstrip("a"))
        older = [a for a in TABLE if a.startswith("sm_") and int(a[3:].rstrip("a")) <= sm]
        if older:
            return TABLE[max(older, key=lambda a: int(a[3:].rstrip("a")))]
    raise UnknownArchError(f"no hardware limits for arch {arch!r}; known: {sorted(TABLE)}")


def limits(target) -> Limits | None:
    """The limits of a TVM GPU target (from its ``arch``/``mcpu``); None for a CPU target."""
    kind = target.kind.name
    if kind == "llvm":
        return None
    arch = str(target.attrs.get("arch", "") or target.attrs.get("mcpu", "") or "")
    return limits_for_arch(arch)
