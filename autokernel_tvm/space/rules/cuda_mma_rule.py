# SPDX-License-Identifier: Apache-2.0
"""``cuda.mma``: placeholder until the tensor-core template is wired (see cuda_mma.py)."""

NAME = "cuda.mma"


def apply(sch, block, genome):
    raise NotImplementedError("cuda.mma template not wired yet")
