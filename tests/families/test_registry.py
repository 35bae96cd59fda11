# SPDX-License-Identifier: Apache-2.0
"""The Family interface, for every registered family: typed frozen parameters whose fields are
exactly the domain's genes, a legal default, JSON round trips, a registry that rejects
duplicates and names the known families, and -- the point of a parameter -- every field changes
the generated code (two values of each field give different code)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm import families
from autokernel_tvm.builder import build_module, cuda_source
from autokernel_tvm.families import GenomeError, Kernel, all_families, get
from autokernel_tvm.targets import TargetError, make_target
from autokernel_tvm.workloads import Workload

FAMILIES = all_families()
#: (target kind, arch, workload) on which each family's fields are compared.
SETUP = {
    "cpu.tile": ("llvm", None, Workload("gemm_bias_relu", (128, 256, 64))),
    "cuda.gemv": ("cuda", "sm_90a", Workload("gemm_nt", (4, 4096, 4096), "float16", "float16")),
    "cuda.mma": ("cuda", "sm_90a", Workload("gemm", (1024, 1024, 1024), "float16")),
    "cuda.wgmma": ("cuda", "sm_90a", Workload("gemm_nt", (2048, 4096, 1024), "float16", "float16")),
    "rocm.mfma": ("rocm", "gfx942", Workload("gemm", (1024, 1024, 1024), "float16")),
}
#: genes legal away from their default only on a workload of their own: split-K needs a grid
#: that leaves SMs idle (16 tiles of 128 x 256), pad=lines rows that are not whole lines,
#: bias_at=start a bias and a 16-bit C, epilogue_math=fast a GELU (or SiLU, ...) into a 16-bit C
FIELD_WORKLOADS = {
    # rows of B 4 halves past 16-byte boundaries (K = 1204): A read shifted
    ("cuda.gemv", "a_shift"): Workload("gemm_nt", (8, 1000, 1204), "float16", "float16"),
    ("cuda.wgmma", "splits"): Workload("gemm_nt", (1024, 512, 8192), "float16"),
    ("cuda.wgmma", "pad"): Workload("gemm_nt", (2048, 4096, 1000), "float16"),  # K: 2000-B rows
    ("cuda.wgmma", "reduction"): Workload("gemm_nt", (1024, 512, 8192), "float16"),
    ("cuda.wgmma", "bias_at"): Workload("gemm_bias_relu", (2048, 4096, 1024), "float16", "float16"),
    ("cuda.wgmma", "epilogue_math"): Workload(
        "gemm_bias_gelu", (2048, 4096, 1024), "float16", "float16"
    ),
    ("cuda.wgmma", "accum"): Workload(
        "gemm_scaled_nt", (2048, 4096, 1024), "float8_e4m3fn", "bfloat16", precision="fast_accum"
    ),
    # a 32-wide image: 128 pixels are 4 whole rows, so both operand orders take block_n=128
    ("cuda.wgmma", "operands"): Workload(
        "conv2d_nhwc", (8, 32, 32, 64, 128, 3, 3, 1, 1), "float16", "float16"
    ),
}
#: genes compared from another base than the family's default (ping-pong needs persistence,
#: a cluster reduction a split)
FIELD_BASES = {
    ("cuda.wgmma", "arrangement"): {"schedule": "persistent"},
    ("cuda.wgmma", "reduction"): {"splits": 2},
    ("cuda.wgmma", "accum"): {"block_n": 128},  # two accumulator sets fit a thread
    ("cuda.wgmma", "multicast"): {"cluster": 2},  # the operand a cluster pair shares
    ("cuda.wgmma", "k_atoms"): {"block_n": 128, "stages": 3},  # two rows a stage: fits smem
    ("cuda.wgmma", "operands"): {"block_n": 128, "store": "tma", "raster": 1},
    ("cuda.gemv", "stages"): {"math": "mma"},  # the cp.async ring serves the tensor cores
    ("cuda.gemv", "splits"): {"math": "mma"},  # a split K: the tensor-core math only
    ("cuda.gemv", "a_shift"): {"math": "mma"},  # A shifted as the rows of B start: mma only
}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_params_are_the_genes(family):
    fields = [f.name for f in dataclasses.fields(family.params)]
    assert fields == list(family.domain), "every field is a gene and every gene a field"
    assert isinstance(family.default, family.params)
    for field, values in family.domain.items():
        assert getattr(family.default, field) in values, field
        for value in values:
            params = family.default.replace(**{field: value})
            assert family.params.from_json(params.to_json()) == params
    with pytest.raises(dataclasses.FrozenInstanceError):
        family.default.stages = 1  # noqa: B018  (frozen)


def test_registry_names_every_family_once_and_lists_them_on_a_miss():
    names = [f.name for f in FAMILIES]
    assert sorted(names) == ["cpu.tile", "cuda.gemv", "cuda.mma", "cuda.wgmma", "rocm.mfma"]
    assert len(families.MODULES) == len(names)
    with pytest.raises(GenomeError, match="known families"):
        get("cuda.tcgen05")


def _target(family_name):
    kind, arch, workload = SETUP[family_name]
    try:
        return make_target(kind, arch), workload
    except TargetError as err:  # rocm without its toolchain: .ci/rocm-setup.sh installs it
        pytest.skip(str(err))


def _code(family, params, workload, target) -> str:
    """What the parameters generate: the kernel's CUDA, or 2 seeded design-space samples."""
    candidate = family.candidate(params, workload, target)
    if isinstance(candidate, Kernel):
        return cuda_source(build_module(candidate.mod, target))
    out = []
    for seed in (1, 2):
        ctx = ms.TuneContext(
            mod=candidate.mod, target=target, space_generator=candidate.space, rand_state=seed
        )
        (sch, *_) = ctx.generate_design_space()
        assert all(p.apply(sch) for p in ctx.space_generator.postprocs)
        if target.kind.name == "cuda":
            out.append(cuda_source(build_module(sch.mod, target)))
        else:
            out.append(sch.mod.script())
    return hashlib.sha256("\n".join(out).encode()).hexdigest()


CASES = [(f.name, field) for f in FAMILIES for field in f.domain]


@pytest.mark.parametrize("name, field", CASES, ids=[f"{n}.{f}" for n, f in CASES])
def test_every_field_changes_the_generated_code(name, field):
    family = get(name)
    target, workload = _target(name)
    workload = FIELD_WORKLOADS.get((name, field), workload)
    from autokernel_tvm.intrin import import_stock_intrinsics, register_all

    import_stock_intrinsics()
    register_all()
    base = family.default.replace(**FIELD_BASES.get((name, field), {}))
    family.check(base, workload, target)
    for value in family.domain[field]:  # the first other value legal on this workload
        other = base.replace(**{field: value})
        if other == base:
            continue
        try:
            family.check(other, workload, target)
        except GenomeError:
            continue
        break
    else:
        pytest.fail(f"{name}.{field}: no second legal value to compare on {workload.name}")
    assert _code(family, base, workload, target) != _code(family, other, workload, target), (
        f"{name}.{field}={getattr(other, field)!r} generates the same code as "
        f"{getattr(base, field)!r}: a field that changes nothing must not be a gene"
    )
