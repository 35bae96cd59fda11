# SPDX-License-Identifier: Apache-2.0
"""benchmarks/gpu/where_time_goes.sh without a GPU: every genome it asks genome_check.py for is
one the grammar takes on its workload (a typo or an illegal gene would cost a device call)."""

import importlib.util
import os
import re
import shlex

import pytest

from autokernel_tvm.space.genome import Genome
from autokernel_tvm.space.grammar import Grammar
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu", "where_time_goes.sh")
spec = importlib.util.spec_from_file_location(
    "genome_check", os.path.join(ROOT, "benchmarks", "gpu", "genome_check.py")
)
genome_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(genome_check)


def checks() -> list[tuple]:
    """(op, shape, dtype, genes) of each ``check`` line, continuation lines joined; the loop
    over ops is expanded."""
    text = open(SCRIPT).read().replace("\\\n", " ")
    loop_ops = re.search(r"for op in ([\w ]+); do", text).group(1).split()
    out = []
    for line in text.splitlines():
        if not line.strip().startswith("check "):
            continue
        op, shape, dtype, *genomes = shlex.split(line.split("#")[0])[1:]
        for one in loop_ops if op == "$op" else [op]:
            out.extend((one, shape, dtype, g) for g in genomes)
    return out


CHECKS = checks()


def test_the_script_asks_for_the_cases_the_note_names():
    ops = {c[0] for c in CHECKS}
    assert {"gemm_nt", "gemm_bias_relu", "gemm_bias_gelu", "gemm_gated_nt"} <= ops
    assert any("store=rows" in c[3] for c in CHECKS) and any("bias_at" in c[3] for c in CHECKS)


@pytest.mark.parametrize("op, shape, dtype, genes", CHECKS, ids=lambda x: str(x))
def test_every_genome_of_the_script_is_legal(op, shape, dtype, genes):
    workload = Workload(op, tuple(int(x) for x in shape.split(",")), dtype, dtype)
    genome = Genome.default("cuda.wgmma").replace(**genome_check.parse_genes(genes))
    Grammar(make_target("cuda", "sm_90a")).check(genome, workload)
