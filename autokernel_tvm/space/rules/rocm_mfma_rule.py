# SPDX-License-Identifier: Apache-2.0
"""``rocm.mfma``: placeholder until the MFMA template is wired (see intrin/rocm_mfma.py)."""

NAME = "rocm.mfma"


def apply(sch, block, genome):
    raise NotImplementedError("rocm.mfma template not wired yet")
