# SPDX-License-Identifier: Apache-2.0
"""``cuda.gemv``: ``A @ B.T`` for at most :data:`MAX_M` rows of A (:data:`ODD_K_MAX_M` on the
tensor cores where B's rows are not 16-byte multiples) (LLM decode: a few tokens
against a weight matrix; the gated MLP's two projections too) as a read of B, whole kernels
written in TIRx: multiplied on the CUDA cores (``math="ffma"``, :mod:`.kernel`) or on the
tensor cores with B's rows as the mma's M side (``math="mma"``, :mod:`.mma`). The tensor-core
families tile M into 64-row blocks and, at M = 1, run latency-bound well below the memory's
bandwidth; this family's genes set how many bytes of B each warp keeps in flight. The grammar
offers it beside ``cuda.wgmma`` for small M; the tuner measures both and the gate checks
whichever wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ...hardware import limits
from ...targets import cuda_sm
from ..base import Family, GenomeError, Kernel, Params
from .kernel import CHUNK_BYTES, WARP, chunk_bytes, gemv_module
from .mma import (
    MMA_ROWS,
    PTX_TYPE,
    QUAD,
    TILE_M,
    gemv_mma_module,
    mma_blocks,
    mma_tiles,
    mma_trips,
    row_classes,
)

#: rows of A a kernel takes: each is a register sum per row of B a lane owns
MAX_M = 16
#: rows of 16-bit A the tensor-core math takes where B's rows are not 16-byte multiples (the
#: tensor-core families copy B into padded rows every call there: H100 2026-12-07, 27 x 3849
#: x 1321 fp16 through the padded wgmma kernel 0.88x cuBLAS): 8 tiles of 8 rows a lane
ODD_K_MAX_M = 64
#: A @ B.T ops (B as [N, K] rows: nn.Linear's weight) and the epilogue each has; the gated MLP's
#: two projections read two rows of B an output
OPS = {"gemm_nt": "", "gemm_bias": "bias", "gemm_bias_relu": "bias_relu",
       "gemm_bias_gelu": "bias_gelu", "gemm_gated_nt": ""}  # fmt: skip
IN_DTYPES = ("float16", "bfloat16", "float32")
#: where the products are summed: "ffma" on the CUDA cores (each element of B converted and
#: multiplied once per row of A: instruction-bound from about 8 rows, H100 2026-12-06) or "mma"
#: on the tensor cores (m16n8k16, 16-bit inputs)
MATHS = ("ffma", "mma")
#: rows of A from which the family's first proposal multiplies on the tensor cores (H100,
#: 2026-12-06 second run, 8 x 4096 x 4096 fp16: mma through a 3-trip cp.async ring 22.5 us,
#: ffma 30.3, the split-K wgmma genome 25.2; at 4 rows ffma led, 53.4 us against 54.8)
MMA_FROM = 8
#: one row of A: the family's first proposal copies B through a 3-trip ring on the CUDA cores,
#: 2 chunks a lane a trip (H100 2026-12-06, session 40, 1 x 4096 x 4096 fp16: 20.4 us against
#: the register path's 23.1 and cuBLAS's 23.0; bf16 21.4 against 23.0; 1 x 11008 a tie, 43.8
#: against 43.7; at 4 rows and on the gated MLP at 4 rows the register path led, 54.0 against
#: 59.5 and 73.6 against 80.6)
RING_ROWS = 1
#: blocks a row's K may be split over (math=mma): for rows of B that give the GPU fewer blocks
#: than it has SMs (H200 2026-12-07, 58 x 1098 x 14942 fp16: 4 classes x 18 blocks, 0.63x
#: cuBLAS through the tuner)
SPLITS = (1, 2, 4, 8)
#: blocks a multiprocessor should get before the first proposal stops splitting K (H100
#: 2026-12-07, session 49, fp16, us, registers unless a ring: 58 x 1098 x 14942, 72 blocks
#: unsplit: 8 splits 44.0-44.3, 4 splits 46.5, unsplit ring of 3 49.7, cuBLAS 35.5; 4 x 300 x
#: 4001, 20 blocks: 8 splits 13.4, 4 14.8, unsplit ring 14.7, cuBLAS 13.0; 30 x 2000 x 9002,
#: 128 blocks: 8 splits 38.7, unsplit 65.5, unsplit ring 38.8; 8 x 1024 x 8192, 64 blocks: a
#: ring of 3 in 4 splits 16.0, unsplit 17.5, registers in 8 splits 16.7, cuBLAS 15.9)
SPLIT_BLOCKS_PER_SM = 4
#: a row's trips (at 4 warps x 2 chunks a lane) under which the first proposal for rows of B
#: not 16-byte multiples and more than 8 rows of A takes 2 warps, 1 chunk a trip and a ring of
#: 4 (a short K: more trips to pipeline). The tuner's winners on the H200, 2026-12-07: 27 x
#: 3849 x 1321 (6 trips) 16.2 us, 1.28x cuBLAS; 22 x 3558 x 1204 (5) 1.04x; 59 x 6711 x 1037
#: (5) 1.51x; the seed before (from registers) took 17.6 us at 27 rows (H200), 17.1 at 22
#: (H100)
SHORT_TRIPS = 8
#: where B's rows are not 16-byte multiples (math=mma), how A reaches the lanes shifted as
#: each class of rows starts: "copy", a small kernel writes the shifted copies first (one
#: launch more); "load", each lane reads A in place in narrower loads (K even: 4 or 8 bytes)
A_SHIFTS = ("copy", "load")
#: 32-bit registers a lane may give to its sums and its chunks of B in flight (an estimate:
#: ptxas for sm_90a took 199 registers a thread, no spills, at 16 rows of A x 4 rows of B x 4
#: chunks, 128 by this count, and 232 at 8 chunks, 192: one block of 128 threads an SM)
REGISTER_BUDGET = 128


@dataclass(frozen=True)
class GemvParams(Params):
    """warps: warps per block (ffma: each its own rows of B; mma: they split the K of the
    block's rows); rows: rows of B (outputs per row of A) a warp computes (mma: 16-row groups
    a block computes); unroll: chunks (16 bytes; narrower where rows of K elements are not
    16-byte multiples, :func:`.kernel.chunk_bytes`) of each of those rows a lane loads before
    it multiplies any; math: CUDA cores ("ffma") or tensor cores ("mma"); stages: 0, a trip's
    chunks loaded into registers (ptxas may issue them in turns, each just before its
    products), else copied by cp.async into a ring of that many trips in shared memory, each
    warp its own, ``stages - 1`` ahead of the one multiplied (copies in flight hold no
    registers; on the tensor cores it won from 8 rows, H100 2026-12-06; on the CUDA cores built
    2026-12-06 without a GPU, no spills); splits: blocks a row's trips are split over (mma;
    their f32 sums added by a second kernel, in split order), where B's rows give the GPU too
    few blocks; a_shift: :data:`A_SHIFTS`."""

    warps: int = 4
    rows: int = 2
    unroll: int = 4
    math: str = "ffma"
    stages: int = 0
    splits: int = 1
    a_shift: str = "copy"

    later_genes = ("splits", "a_shift")

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.warps, self.rows, self.unroll) < 1:
            raise GenomeError("bad-gemv", f"warps, rows, unroll must be positive: {self}")
        if self.math not in MATHS:
            raise GenomeError("bad-gemv", f"math {self.math!r}: one of {MATHS}")
        if self.stages < 0 or self.stages == 1:
            raise GenomeError("bad-gemv", f"stages={self.stages}: 0 (registers) or a ring of 2+")
        if self.splits < 1:
            raise GenomeError("bad-gemv", f"splits={self.splits}: 1 or more")
        if self.a_shift not in A_SHIFTS:
            raise GenomeError("bad-gemv", f"a_shift {self.a_shift!r}: one of {A_SHIFTS}")


class CudaGemv(Family):
    name = "cuda.gemv"
    params = GemvParams
    whole_kernels = True
    tile_genes = ("rows",)
    domain = {"warps": (4, 8, 2), "rows": (2, 1, 4), "unroll": (4, 2, 1, 8), "math": MATHS,
              "stages": (0, 3, 4), "splits": SPLITS, "a_shift": A_SHIFTS}  # fmt: skip
    default = GemvParams()

    def applies(self, workload, target) -> str | None:
        if target.kind.name != "cuda":
            return "needs a CUDA target"
        arch = str(target.attrs.get("arch", ""))
        if not arch.startswith("sm_") or cuda_sm(arch) < 80:
            return f"{arch or 'no arch'}: the bf16 loads and conversions need sm_80 or newer"
        if workload.op not in OPS:
            return f"op {workload.op}: the GEMV kernel implements A @ B.T ({sorted(OPS)})"
        if workload.dtype not in IN_DTYPES:
            return f"inputs {workload.dtype}: the GEMV kernel takes {IN_DTYPES}"
        m, _, k = workload.shape
        odd = chunk_bytes(k, workload.dtype) < CHUNK_BYTES and workload.dtype in PTX_TYPE
        if m > (ODD_K_MAX_M if odd else MAX_M):
            return (
                f"M = {m}: the GEMV kernel takes at most {MAX_M} rows of A (tensor cores "
                f"beyond; {ODD_K_MAX_M} of 16-bit A where rows of B are not 16-byte multiples)"
            )
        if m > MAX_M:  # only the tensor-core math: where it cannot go, nothing can
            try:
                self.check(GemvParams(rows=1, unroll=1, math="mma"), workload, target)
            except GenomeError as err:
                return f"M = {m}: only math=mma takes more than {MAX_M} rows; {err}"
        return None

    def check(self, params: GemvParams, workload, target) -> None:
        m = workload.shape[0]
        b_rows = params.rows * (2 if workload.op == "gemm_gated_nt" else 1)
        width = chunk_bytes(workload.shape[2], workload.dtype)
        if params.math != "mma" and m > MAX_M:
            raise GenomeError(
                "gemv-math", f"math={params.math}: M = {m}: a register sum per row of A, at most "
                f"{MAX_M} (math=mma takes up to {ODD_K_MAX_M})")  # fmt: skip
        if params.splits > 1:
            self._check_splits(params, workload)
        if params.a_shift != "copy":
            self._check_a_shift(params, workload)
        if params.math == "mma":
            if workload.dtype not in PTX_TYPE:
                raise GenomeError("gemv-math", f"math=mma: 16-bit inputs, not {workload.dtype}")
            classes = row_classes(workload.shape[2], workload.dtype)
            if classes > 1 and workload.shape[1] < classes:
                raise GenomeError(
                    "gemv-math",
                    f"math=mma: N = {workload.shape[1]} rows of B, fewer than the {classes} "
                    f"classes of row starts that K = {workload.shape[2]} makes",
                )
            if classes > 1 and workload.op == "gemm_gated_nt" and workload.shape[1] % classes:
                raise GenomeError(
                    "gemv-math",
                    f"math=mma: gated, K = {workload.shape[2]}: the up rows start unlike "
                    f"the gate rows (N = {workload.shape[1]} not a multiple of {classes})",
                )
            # per lane: B rows g and g + 8 of each group, A row g of each 8-row tile, the sums
            tiles = mma_tiles(m)
            chunk = CHUNK_BYTES // 4  # registers of a chunk: 16 bytes whatever K (.mma)
            regs = params.unroll * (2 * b_rows + tiles) * chunk + b_rows * tiles * 4
            what = (f"{params.unroll} x ({2 * b_rows} B + {tiles} A) chunks + "
                    f"{b_rows} x {tiles} x 4 sums")  # fmt: skip
            ring_rows = b_rows * MMA_ROWS + tiles * TILE_M  # a step's rows of B and A
            ring = params.warps * params.stages * params.unroll * ring_rows * QUAD * CHUNK_BYTES
            ring += params.warps * b_rows * tiles * MMA_ROWS * TILE_M * 4  # the warps' sums
        else:
            chunk = -(-width // 4)  # registers of a chunk
            regs = m * b_rows + b_rows * params.unroll * chunk
            what = f"{m} x {b_rows} sums + {b_rows} x {params.unroll} chunks of B"
            # a trip: each of the warp's rows of B, a chunk a lane per unrolled step
            ring = params.warps * params.stages * params.unroll * b_rows * WARP * width
            if params.stages and width < 4:
                raise GenomeError(
                    "gemv-ring",
                    f"stages={params.stages}: K = {workload.shape[2]}: rows of "
                    f"{workload.dtype} align to {width} bytes; cp.async copies 4, 8 or 16",
                )
        budget = limits(target).smem_per_block
        if params.stages and ring > budget:
            raise GenomeError(
                "shared-memory",
                f"a ring of {params.stages} steps for {params.warps} warps takes {ring} "
                f"bytes of shared memory, over {budget}",
            )
        if regs > REGISTER_BUDGET:
            raise GenomeError(
                "registers", f"{what} = {regs} registers a lane, over {REGISTER_BUDGET}"
            )

    def impossible(self, workload, target) -> dict[str, tuple]:
        """The gene values no legal genome takes here (math=mma for 32-bit inputs, splits for
        the gated MLP, a_shift=load where A needs no shift, unrolls whose chunks overflow the
        registers, ...), read off every genome of the domain: 2304 of them, checked in ~20 ms
        by arithmetic, so the rules cannot drift from :meth:`check`."""
        legal = {gene: set() for gene in self.domain}
        for values in itertools.product(*self.domain.values()):
            try:
                self.check(GemvParams(**dict(zip(self.domain, values))), workload, target)
            except GenomeError:
                continue
            for gene, value in zip(self.domain, values):
                legal[gene].add(value)
        if not legal["math"]:  # no legal genome: nothing to weigh (each draw says why)
            return {}
        out = {g: tuple(v for v in vs if v not in legal[g]) for g, vs in self.domain.items()}
        return {gene: values for gene, values in out.items() if values}

    def _check_splits(self, params: GemvParams, workload) -> None:
        if params.math != "mma":
            raise GenomeError("gemv-split", f"splits={params.splits}: the tensor-core math only")
        if workload.op == "gemm_gated_nt":
            raise GenomeError("gemv-split", f"splits={params.splits}: not the gated MLP (its "
                              "reduction would add the gate and up sums apart)")  # fmt: skip
        trips = mma_trips(workload.shape[2], workload.dtype, params.warps, params.unroll)
        per = -(-trips // params.splits)
        if (params.splits - 1) * per >= trips:
            raise GenomeError(
                "gemv-split",
                f"splits={params.splits}: K = {workload.shape[2]} gives {trips} trips of "
                f"{params.warps} warps x {params.unroll} steps: a split would have none",
            )

    def _check_a_shift(self, params: GemvParams, workload) -> None:
        k = workload.shape[2]
        if params.math != "mma":
            raise GenomeError("gemv-a-shift", f"a_shift={params.a_shift}: the tensor-core "
                              "math only (the CUDA cores read A in place)")  # fmt: skip
        if workload.dtype not in PTX_TYPE or row_classes(k, workload.dtype) == 1:
            raise GenomeError("gemv-a-shift", f"a_shift={params.a_shift}: K = {k}: rows of "
                              "B start on 16-byte boundaries, A needs no shift")  # fmt: skip
        if k % 2:
            raise GenomeError(
                "gemv-a-shift",
                f"a_shift={params.a_shift}: K = {k} odd: A's rows align to 2 bytes "
                "(its loads in place take 4 or 8; cp.async no fewer than 4)",
            )

    def seed(self, workload, target) -> GemvParams:
        """From :data:`MMA_FROM` rows of 16-bit A on the tensor cores, one 16-row group of B a
        block, its chunks copied through a ring of 3 trips in shared memory: 2 chunks a lane a
        trip for one 8-row tile of A, 4 for two. H100 2026-12-06, fp16 x 4096 x 4096: 8 rows
        22.5 us (0.93x cuBLAS; bf16 1.01x) where chunks loaded into registers took 32.6 (ptxas
        issued them in turns) and the split-K wgmma genome 25.2; 16 rows 23.8 / 24.2 against
        the wgmma genome's 23.2 (the search measures both). Then the register path, fewer
        chunks where the registers do not hold more (the gated MLP reads two groups a row).
        For :data:`RING_ROWS` row of A (not the gated MLP) the CUDA cores' ring."""
        m, _, k = workload.shape
        if chunk_bytes(k, workload.dtype) < CHUNK_BYTES:
            # rows not 16-byte multiples: from 2 rows of 16-bit A the tensor cores, B still in
            # 16-byte chunks (rows by class, .mma); on the CUDA cores narrower loads, so more
            # of them in flight a lane
            narrow = [GemvParams(rows=4, unroll=8), self.default]
            if m == 1 or workload.dtype not in PTX_TYPE:
                return self.first_legal(narrow, workload, target)
            picks = self._split(self._odd_k_picks(m, k, workload.dtype), workload, target)
            return self.first_legal([*picks, *narrow], workload, target)
        if m <= RING_ROWS and workload.op != "gemm_gated_nt":
            ring = GemvParams(unroll=2, stages=3)
            return self.first_legal([ring, self.default], workload, target)
        if m < MMA_FROM or workload.dtype not in PTX_TYPE:
            return self.default
        unrolls = (2, 4) if mma_tiles(workload.shape[0]) == 1 else (4, 2)
        picks = [GemvParams(rows=1, unroll=u, math="mma", stages=3) for u in unrolls]
        picks += [GemvParams(rows=1, unroll=u, math="mma") for u in (4, 2)]
        return self.first_legal(self._split(picks, workload, target), workload, target)

    @staticmethod
    def _odd_k_picks(m: int, k: int, dtype: str) -> list[GemvParams]:
        """The tensor-core math by class of rows, in order of preference: one 8-row tile of A
        through a ring of 3 trips, more from registers (H100 2026-12-07: 6 x 3735 x 11051
        through the ring 52.4 us, from registers 65.4; 11 x 11275 x 4233, two tiles, from
        registers 55.1, the ring 61.3; unroll 4: 60.1 / 64.0); at a short K
        (:data:`SHORT_TRIPS`) 2 warps, 1 chunk a trip and a ring of 4 first, A read in place
        where its loads are 8 bytes (H100 session 49, 22 x 3558 x 1204: 14.1 us, copied 15.4;
        through the ring at 4-byte loads it lost, 30 x 2000 x 9002 46.0 against 37.5)."""
        tiles = mma_tiles(m)
        genes = [(3, 2), (3, 4), (0, 2)] if tiles == 1 else [(0, 2), (3, 2), (0, 1)]
        picks = [GemvParams(rows=1, unroll=u, math="mma", stages=s) for s, u in genes]
        if tiles == 1 or mma_trips(k, dtype, 4, 2) >= SHORT_TRIPS:
            return picks
        short = GemvParams(warps=2, rows=1, unroll=1, math="mma", stages=4)
        in_place = [short.replace(a_shift="load")] if chunk_bytes(k, dtype) == 8 else []
        return [*in_place, short, *picks]

    @staticmethod
    def _split(picks: list[GemvParams], workload, target) -> list[GemvParams]:
        """``picks`` with the first one's K split in front where the rows of B give fewer
        blocks than the GPU has multiprocessors: the fewest splits that give each
        :data:`SPLIT_BLOCKS_PER_SM` blocks, at most the last of :data:`SPLITS` that leaves each
        split a trip; a ring needs twice its stages of trips a split, else the chunks go
        through registers (the gated MLP cannot split: the unsplit picks follow)."""
        first, (_, n, k) = picks[0], workload.shape
        blocks = mma_blocks(n, k, workload.dtype, first.rows)
        sms = limits(target).sm_count
        if blocks >= sms:
            return picks
        trips = mma_trips(k, workload.dtype, first.warps, first.unroll)
        fits = [s for s in SPLITS if (s - 1) * -(-trips // s) < trips]  # each split a trip
        splits = next((s for s in fits if blocks * s >= SPLIT_BLOCKS_PER_SM * sms), fits[-1])
        stages = first.stages if trips // splits >= 2 * first.stages else 0
        return [first.replace(splits=splits, stages=stages), *picks]

    def candidate(self, params: GemvParams, workload, target) -> Kernel:
        m, n, k = workload.shape
        epilogue = workload.epilogue if workload.epilogue is not None else OPS[workload.op]
        common = dict(
            in_dtype=workload.dtype, out_dtype=workload.out_dtype, epilogue=epilogue,
            warps=params.warps, rows=params.rows, unroll=params.unroll,
            gated=workload.op == "gemm_gated_nt",
        )  # fmt: skip
        if params.math == "mma":
            symbol = f"ak_{workload.name}"
            mod = gemv_mma_module(m, n, k, stages=params.stages, splits=params.splits,
                                  a_shift=params.a_shift, symbol=symbol, **common)  # fmt: skip
        else:
            mod = gemv_module(m, n, k, stages=params.stages, **common)
        return Kernel(mod)

    def from_legacy(self, genome: dict) -> GemvParams:
        raise GenomeError("bad-genome", "cuda.gemv has no library-format-1 genomes")


FAMILY = CudaGemv()
