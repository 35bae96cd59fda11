# SPDX-License-Identifier: Apache-2.0
"""The hardware-limits table: every architecture the families legal-check against has limits,
and the targets carry them."""

import pytest

from autokernel_tvm.hardware import TABLE, UnknownArchError, limits, limits_for_arch
from autokernel_tvm.targets import TargetError, make_target, rocm_toolchain_problem


@pytest.mark.parametrize("arch", ["sm_80", "sm_86", "sm_89", "sm_90a", "gfx90a", "gfx942"])
def test_each_supported_arch_has_limits(arch):
    lim = limits_for_arch(arch)
    assert lim.smem_per_block >= 65536 and lim.max_threads_per_block == 1024
    assert lim.max_warps_per_block == 1024 // lim.warp_size


def test_numbers_that_legality_depends_on():
    assert limits_for_arch("sm_90a").smem_per_block == 232448  # 227 KiB opt-in on Hopper
    assert limits_for_arch("sm_80").smem_per_block == 166912  # 163 KiB on A100
    assert limits_for_arch("sm_86").smem_per_block == limits_for_arch("sm_89").smem_per_block
    assert limits_for_arch("gfx942").warp_size == 64
    assert limits_for_arch("sm_87") == TABLE["sm_86"]  # an unlisted sm_XY: the nearest older


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(UnknownArchError, match="sm_90a"):
        limits_for_arch("gfx1100")
    with pytest.raises(TargetError, match="no hardware limits"):
        make_target("cuda", "sm_60")


def test_targets_carry_the_table():
    target = make_target("cuda", "sm_86")
    assert target.attrs["max_shared_memory_per_block"] == limits(target).smem_per_block == 101376
    assert limits(make_target("llvm")) is None
    if rocm_toolchain_problem() is None:
        assert limits(make_target("rocm", "gfx90a")) == TABLE["gfx90a"]
