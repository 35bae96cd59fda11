# SPDX-License-Identifier: Apache-2.0
"""Generated code of the shipped library's genomes (and each family's default) is byte-identical
to what the code before the Family interface generated (hashes in codegen_before.json)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from tvm.s_tir import meta_schedule as ms

from autokernel_tvm.builder import build_module, cuda_source
from autokernel_tvm.families import Kernel, get
from autokernel_tvm.intrin import import_stock_intrinsics, register_all
from autokernel_tvm.space.genome import Genome
from autokernel_tvm.targets import TargetError, make_target
from autokernel_tvm.workloads import Workload

CASES = json.load(open(os.path.join(os.path.dirname(__file__), "codegen_before.json")))["cases"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generated(genome: Genome, workload: Workload, target) -> list[str]:
    """Hashes of the code a genome generates: the kernel's CUDA, or 2 sampled candidates."""
    candidate = get(genome.family).candidate(genome.params, workload, target)
    if isinstance(candidate, Kernel):
        return [_sha(cuda_source(build_module(candidate.mod, target)))]
    out = []
    for i in range(2):
        ctx = ms.TuneContext(
            mod=candidate.mod, target=target, space_generator=candidate.space, rand_state=i + 1
        )
        (sch, *_) = ctx.generate_design_space()
        assert all(p.apply(sch) for p in ctx.space_generator.postprocs)
        if target.kind.name == "cuda":
            out.append(_sha(cuda_source(build_module(sch.mod, target))))
        else:
            out.append(_sha(sch.mod.script()))
    return out


def _id(case: dict) -> str:
    return f"{case['genome']['family']}-{case['workload']['name']}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_generated_code_is_unchanged(case):
    try:
        target = make_target(case["target"], case["arch"])
    except TargetError as err:  # rocm without its toolchain: .ci/rocm-setup.sh installs it
        pytest.skip(str(err))
    import_stock_intrinsics()
    register_all()
    genome = Genome.from_json(case["genome"])
    workload = Workload.from_json(case["workload"])
    assert generated(genome, workload, target) == case["sha256"], genome.describe()
