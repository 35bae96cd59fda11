# SPDX-License-Identifier: Apache-2.0
import json

from autokernel_tvm.space.grammar import default_genome
from autokernel_tvm.space.library import Library, similarity
from autokernel_tvm.workloads import Workload


def test_save_load_and_prior_ranking(tmp_path):
    lib = Library("llvm", "gemm", str(tmp_path))
    fast = default_genome("cpu.tile")
    slow = fast.replace(vector_lanes=8)
    w512 = Workload("gemm", (512, 512, 512))
    lib.record(fast, w512, tflops=0.2, latency_us=1.3e3, trials=64, device="cpu")
    lib.record(slow, w512, tflops=0.1, latency_us=2.6e3, trials=64, device="cpu")
    path = lib.save()
    data = json.load(open(path))
    assert data["version"] == 1 and len(data["entries"]) == 2
    again = Library("llvm", "gemm", str(tmp_path))
    prior = again.prior(Workload("gemm", (1024, 1024, 1024)))
    assert [g for g, _ in prior] == [fast, slow]  # the faster genome first
    assert prior[0][1] > prior[1][1] > 0
    assert again.prior(Workload("conv2d_nhwc", (1, 8, 8, 8, 8, 3, 3, 1, 1))) == []


def test_only_the_best_few_per_workload_are_kept(tmp_path):
    lib = Library("llvm", "gemm", str(tmp_path))
    w = Workload("gemm", (64, 64, 64))
    for lanes, tflops in [(8, 0.1), (16, 0.3), (32, 0.2)]:
        for unroll in [(0, 16, 64, 512), (0, 8, 32)]:
            g = default_genome("cpu.tile").replace(vector_lanes=lanes, unroll=unroll)
            lib.record(g, w, tflops=tflops, latency_us=1.0, trials=8, device="cpu")
    assert len(lib.entries) == 3 and lib.entries[0]["tflops"] == 0.3


def test_similarity_prefers_close_shapes_and_same_op():
    a = Workload("gemm", (512, 512, 512))
    assert similarity(a, a) == 1.0
    assert similarity(a, Workload("gemm", (1024, 512, 512))) > similarity(
        a, Workload("gemm", (4096, 4096, 512))
    )
    assert similarity(a, Workload("gemm_nt", (512, 512, 512))) < 1.0
