# SPDX-License-Identifier: Apache-2.0
"""Which genomes are legal for a target and workload, and the choices the generator samples.

A grammar has, per family, a domain (field -> legal values) and checks that look at the genome
together with the workload and target (intrinsic vs dtype, shared-memory budget, divisibility).
``check`` raises :class:`~autokernel_tvm.space.genome.GenomeError` whose ``reason`` is a short key;
the generator counts rejections by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..workloads import Workload
from .genome import Genome, GenomeError, Staging
from .rewrite import GEMM_OPS

#: The structural choices of each family: field -> values the generator may sample.
DOMAINS = {
    "cpu.tile": {
        "structure": ("SSRSRS", "SRSRS", "SSRS", "SSSRSRS"),
        "b_layout": ("plain", "pack"),
        "accumulator": ("local", "global"),
        "epilogue": ("inline", "separate"),
        "vector_lanes": (8, 16, 32),
        "micro": ((0, 0), (4, 1), (4, 2), (8, 1), (8, 2), (2, 4)),
        "unroll": ((0, 16, 64, 512), (0, 8, 32), (64, 256, 1024)),
    },
    "cuda.mma": {
        "intrinsic": ("mma.m16n8k16",),
        "warps": ((2, 2), (2, 4), (4, 2), (4, 4), (1, 4), (4, 1), (2, 1), (1, 2)),
        "stages": (2, 3, 4),
        "smem_layout": ("swizzle", "pad", "plain"),
        "vector_bytes": (16, 8),
        "raster": (0, 8, 16),
        # TVM 0.27: a shared-memory write-back fails StorageRewrite (f16/f32 merge) and explicit
        # unrolling puts the accumulators in local memory (nvcc 13): both stay out of the domain.
        "write_back": ("direct",),
        "unroll": ((0,),),
        "frag_pipeline": (False, True),
    },
    "cuda.wgmma": {
        # N of the wgmma (and block) tile; warps (8, 1) = 2 consumer warpgroups (128-row tile).
        "intrinsic": ("wgmma.m64n256k16", "wgmma.m64n128k16", "wgmma.m64n64k16"),
        "warps": ((8, 1), (4, 1)),
        "stages": (3, 4, 5, 6),
        "raster": (0, 4, 8, 16),
    },
    "rocm.mfma": {
        "intrinsic": ("mfma.16x16x16",),
        "warps": ((1, 1), (2, 2), (1, 2), (2, 1)),
        "unroll": ((0, 16, 64),),
    },
}
TENSOR_CORE_DTYPES = {"mma.m16n8k16": ("float16", "bfloat16"), "mma.m16n8k8": ("float16",)}
TENSOR_CORE_DTYPES.update({i: ("float16", "bfloat16") for i in DOMAINS["cuda.wgmma"]["intrinsic"]})
#: Ops the wgmma sketch implements (either B layout, batched; bias and activation fused into the
#: store; stride-1 conv2d as an implicit GEMM): the keys of ``rules.cuda_wgmma_rule.OPS``.
WGMMA_OPS = ("gemm", "gemm_nt", "batch_gemm", "batch_gemm_nt")
WGMMA_OPS += ("gemm_bias", "gemm_bias_relu", "gemm_bias_gelu", "conv2d_nhwc")
MFMA_DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class Grammar:
    """The legal genomes for one target (``llvm``, ``cuda`` with an sm arch, ``rocm``)."""

    target_kind: str
    arch: str = ""

    @classmethod
    def for_target(cls, target) -> Grammar:
        kind = target.kind.name
        arch = str(target.attrs.get("arch", target.attrs.get("mcpu", "")) or "")
        return cls(kind, arch)

    def families(self, workload: Workload) -> list[str]:
        """Families that can schedule ``workload`` here (empty: use the stock space)."""
        if self.target_kind == "llvm":
            return ["cpu.tile"]
        if self.target_kind == "cuda" and workload.dtype in ("float16", "bfloat16"):
            # Epilogues (bias, activation) run as their own kernel after the mma GEMM: the
            # stock AutoInline fails on the tensorized producer in 0.27.
            # conv2d (implicit GEMM) and non-aligned GEMMs (padded) through sketch proposals.
            # wgmma needs the arch-specific sm_90a target (not plain sm_90).
            wgmma = ["cuda.wgmma"] if self.arch == "sm_90a" and workload.op in WGMMA_OPS else []
            if self.sm >= 80 and (_is_plain_gemm(workload) or workload.op == "conv2d_nhwc"):
                return wgmma + ["cuda.mma"]
            if wgmma:  # batched GEMM: only the wgmma sketch takes the batch dim
                return wgmma
        if self.target_kind == "rocm" and workload.dtype in MFMA_DTYPES:
            if _is_plain_gemm(workload):
                return ["rocm.mfma"]
        return []

    def sketch(self, workload: Workload) -> tuple:
        """The TensorIR rewrites (:mod:`.sketch` proposals) applied to ``workload`` before the
        generative space schedules it; ``()`` for none."""
        from . import rewrite as sketch

        return sketch.propose(workload, "cuda.mma") if "cuda.mma" in self.families(workload) else ()

    @property
    def sm(self) -> int:
        digits = "".join(c for c in self.arch if c.isdigit())
        return int(digits) if self.target_kind == "cuda" and digits else 0

    def check(self, genome: Genome, workload: Workload) -> Genome:
        """Return ``genome`` if legal for ``workload`` here, else raise GenomeError(reason)."""
        if genome.family not in self.families(workload):
            raise GenomeError("family-not-for-target", f"{genome.family} on {self.target_kind}")
        if genome.family == "cpu.tile":
            _check_cpu(genome, workload)
        elif genome.family == "cuda.mma":
            _check_mma(genome, workload, self.sm)
        elif genome.family == "cuda.wgmma":
            _check_wgmma(genome, workload)
        return genome


def _is_plain_gemm(workload: Workload) -> bool:
    return workload.op in GEMM_OPS


def _check_cpu(genome: Genome, workload: Workload) -> None:
    if genome.intrinsic != "none":
        raise GenomeError("intrinsic-on-cpu", genome.intrinsic)
    if not genome.structure.endswith("S"):
        raise GenomeError("cpu-innermost-not-spatial", "the vector loop must be innermost")
    if "R" not in genome.structure:
        raise GenomeError("no-reduction-level", genome.structure)
    if genome.binds[0] != "parallel" or set(genome.binds[1:]) - {"serial"}:
        raise GenomeError("cpu-binds", "outermost spatial level parallel, the rest serial")
    if genome.a.layout == "pack":
        raise GenomeError("pack-without-vector-axis", "A is not indexed by the vector axis")
    if genome.a.scope not in ("global",) or genome.b.scope not in ("global",):
        raise GenomeError("cpu-scope", "CPU operands are read in place or packed in memory")
    lanes = genome.vector_lanes
    last = workload.output.shape[-1]
    if last % lanes:
        raise GenomeError("vector-not-dividing", f"{lanes} lanes do not divide {last}")
    rows, vectors = genome.micro
    if vectors and last % (lanes * vectors):
        raise GenomeError("micro-not-dividing", f"{vectors}x{lanes} does not divide {last}")
    if rows and len(workload.output.shape) >= 2 and workload.output.shape[-2] % rows:
        raise GenomeError("micro-not-dividing", f"{rows} rows do not divide the output")
    if rows * max(vectors, 1) * lanes > 32 * 16:
        raise GenomeError("micro-too-large", f"{rows}x{vectors}x{lanes} exceeds the registers")
    if genome.stages or genome.async_copy or genome.raster or genome.split_k > 1:
        raise GenomeError("gpu-field-on-cpu", "stages/async/raster/split_k are GPU fields")


def _check_mma(genome: Genome, workload: Workload, sm: int) -> None:
    from ..families.cuda_mma.schedule import legal
    from .rewrite import gemm_mnk, propose

    if workload.dtype not in TENSOR_CORE_DTYPES.get(genome.intrinsic, ()):
        raise GenomeError("intrinsic-dtype", f"{genome.intrinsic} has no {workload.dtype}")
    if genome.async_copy and sm < 80:
        raise GenomeError("async-needs-sm80", f"sm_{sm}")
    if genome.stages > 1 and not genome.async_copy:
        raise GenomeError("pipeline-needs-async", "multi-stage pipelines use cp.async")
    m, n, k = gemm_mnk(workload, propose(workload, "cuda.mma"))  # after the sketch rewrites
    reason = legal(m, n, k, **mma_structure(genome, workload))
    if reason:
        raise GenomeError("mma-structure", reason)


def _check_wgmma(genome: Genome, workload: Workload) -> None:
    from ..families.cuda_wgmma import reason

    if workload.dtype not in TENSOR_CORE_DTYPES.get(genome.intrinsic, ()):
        raise GenomeError("intrinsic-dtype", f"{genome.intrinsic} has no {workload.dtype}")
    why = reason(genome, workload)
    if why:
        raise GenomeError("wgmma-structure", why)


def mma_structure(genome: Genome, workload: Workload) -> dict:
    """The structural keywords of :func:`autokernel_tvm.space.cuda_mma.apply_cuda_mma`."""
    from ..families.cuda_mma import structure

    return structure(genome, workload.dtype, workload.op != "gemm")


def default_genome(family: str) -> Genome:
    """A sensible starting genome per family (the generator's first proposal)."""
    if family == "cpu.tile":
        return Genome(
            "cpu.tile",
            "SSRSRS",
            ("parallel", "serial", "serial", "serial"),
            b=Staging("global", 0, 0, "pack"),
            micro=(4, 2),
        )
    if family == "cuda.mma":
        return Genome(
            "cuda.mma",
            "SSSRRSRS",
            ("blockIdx", "warp", "serial", "serial", "serial"),
            intrinsic="mma.m16n8k16",
            warps=(2, 4),
            a=Staging("shared.dyn", 0, 16, "swizzle"),
            b=Staging("shared.dyn", 0, 16, "swizzle"),
            stages=3,
            async_copy=True,
            raster=8,
            unroll=(0,),
        )
    if family == "cuda.wgmma":  # H100: 82% of cuBLAS at 4096^3 fp16 (benchmarks/results)
        return Genome(
            "cuda.wgmma",
            "SSR",
            ("blockIdx", "warp"),
            intrinsic="wgmma.m64n256k16",
            warps=(8, 1),
            a=Staging("shared.dyn", 0, 16, "swizzle"),
            b=Staging("shared.dyn", 0, 16, "swizzle"),
            stages=4,
            async_copy=True,
            raster=8,
            unroll=(0,),
        )
    if family == "rocm.mfma":
        return Genome(
            "rocm.mfma",
            "SSSRRSRS",
            ("blockIdx", "warp", "serial", "serial", "serial"),
            intrinsic="mfma.16x16x16",
            warps=(2, 2),
            a=Staging("shared", 0, 16, "plain"),
            b=Staging("shared", 0, 16, "plain"),
            unroll=(0, 16, 64),
        )
    raise GenomeError("bad-family", family)
