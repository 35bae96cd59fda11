# SPDX-License-Identifier: Apache-2.0
"""End to end through the CLI: tune on llvm, verify, export, load in torch (eager and
torch.compile); a killed run resumes from its work dir."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from autokernel_tvm.progress import count_records

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUNE = os.path.join(ROOT, "scripts", "tune.py")


def _env(tmp_path):
    return {**os.environ, "AUTOKERNEL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ROOT}


def _cmd(work, *extra):
    return [sys.executable, TUNE, "--target", "llvm", "--op", "gemm_nt", "--shape", "64,64,32",
            "--work-dir", str(work), "--trials-per-iter", "4", "--no-progress", *extra]  # fmt: skip


@pytest.mark.slow
def test_tune_export_load_call_compile(tmp_path):
    lib_path = tmp_path / "k.so"
    proc = subprocess.run(
        _cmd(tmp_path / "w", "--trials", "8", "--export", str(lib_path)),
        env=_env(tmp_path), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TFLOP/s" in proc.stdout and "verified" in proc.stdout
    report = json.load(open(glob.glob(str(tmp_path / "w" / "*" / "report.json"))[0]))
    assert report["trials"] == 8 and report["space"].startswith("genomes/")
    assert report["space_report"]["winner"]["genome"]["family"] == "cpu.tile"
    assert os.path.exists(os.path.splitext(glob.glob(str(tmp_path / "w/*/report.json"))[0])[0]
                          + ".png")  # fmt: skip
    # the winner goes to the user library, never into the checkout's shipped one
    library = json.load(open(tmp_path / "cache" / "library" / "llvm" / "gemm.json"))
    assert library["entries"][0]["workload"]["op"] == "gemm_nt"
    assert not os.path.exists(os.path.join(ROOT, "schedules", "llvm"))

    import autokernel_tvm.torch as ak

    lib = ak.load(str(lib_path))
    op = getattr(torch.ops.autokernel, lib.names[0])
    a, b = torch.randn(64, 32), torch.randn(64, 32)
    want = (a.double() @ b.double().T).float()
    torch.testing.assert_close(op(a, b), want, rtol=1e-4, atol=1e-4)
    compiled = torch.compile(lambda x, y: op(x, y) * 2.0, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(a, b), want * 2.0, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="'B'"):
        op(a, torch.randn(63, 32))


@pytest.mark.slow
def test_fp8_scaled_gemm_tunes_exports_and_runs_from_torch(tmp_path):
    """fp8 inputs with per-tensor scales (torch._scaled_mm's GEMM) through the whole path on
    the CPU: no CPU family takes fp8 (the report says why), the stock space is tuned, the
    gate passes it, and the exported kernel takes torch's fp8 tensors as they are."""
    lib_path = tmp_path / "k.so"
    cmd = [sys.executable, TUNE, "--target", "llvm", "--op", "gemm_scaled_nt", "--shape",
           "64,48,64", "--dtype", "float8_e4m3fn", "--out-dtype", "bfloat16", "--trials", "4",
           "--trials-per-iter", "4", "--work-dir", str(tmp_path / "w"), "--no-progress",
           "--export", str(lib_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(glob.glob(str(tmp_path / "w" / "*" / "report.json"))[0]))
    assert "cpu.tile: inputs float8_e4m3fn" in report["space_report"]["fallback"]
    assert report["verify"]["passed"]

    import autokernel_tvm.torch as ak

    lib = ak.load(str(lib_path))
    op = getattr(torch.ops.autokernel, lib.names[0])
    a = torch.randn(64, 64).to(torch.float8_e4m3fn)
    b = torch.randn(48, 64).to(torch.float8_e4m3fn)
    scale_a, scale_b = torch.tensor([0.5]), torch.tensor([1.5])
    got = op(a, b, scale_a, scale_b)
    want = (a.double() @ b.double().T) * 0.75
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.double(), want, rtol=2**-7, atol=1e-3)
    with pytest.raises(TypeError, match="'A' has dtype torch.float8_e5m2"):
        op(a.to(torch.float8_e5m2), b, scale_a, scale_b)  # the other fp8 format


@pytest.mark.slow
def test_killed_run_resumes(tmp_path):
    work = tmp_path / "w"
    cmd = _cmd(work, "--trials", "16")
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        dbs = glob.glob(str(work / "*" / "genomes" / "*"))
        if dbs and count_records(dbs[0]) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = count_records(glob.glob(str(work / "*" / "genomes" / "*"))[0])
    assert 4 <= done_before < 16
    again = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    db = glob.glob(str(work / "*" / "genomes" / "*"))
    assert len(db) == 1 and count_records(db[0]) == 16  # resumed: 16 in all, not 16 more
    report = json.load(open(glob.glob(str(work / "*" / "report.json"))[0]))
    assert report["trials"] == 16


def test_bad_arguments_give_clear_errors(tmp_path):
    for args, message in [
        (["--op", "matmul"], "unknown op 'matmul'"),
        (["--shape", "64,64"], "takes shape M,N,K"),
        (["--dtype", "float16", "--allow-tf32"], "tf32 applies to float32 inputs"),
        (["--dtype", "float8_e4m3fn"], "float8_e4m3fn inputs: op gemm_scaled_nt"),
        (["--op", "gemm_scaled_nt", "--dtype", "float16"], "takes inputs"),
        (["--fp8-fast-accum"], "fast_accum applies to float8_e4m3fn or float8_e5m2 inputs"),
    ]:
        cmd = [sys.executable, TUNE, "--target", "llvm", "--work-dir", str(tmp_path), *args]
        proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


def test_build_only_that_builds_nothing_fails_with_the_reason(tmp_path):
    """A code-generation check must be able to fail: a 16-channel conv no wgmma tile divides
    (and no other CUDA family takes fp32) builds nothing: exit 1, one line saying why."""
    cmd = [sys.executable, TUNE, "--target", "cuda", "--op", "conv2d_nhwc", "--shape",
           "2,9,9,8,16,3,3,1,1", "--build-only", "1", "--work-dir", str(tmp_path / "w"),
           "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --build-only: nothing built: no legal genome"), last


def test_problem_dtype_float32_casts_a_float64_model(tmp_path):
    """--dtype float32 casts a float64 problem (the refusal tells the user to): it was read as
    "the model's own dtype", so the same refusal came back."""
    problem = tmp_path / "fp64.py"
    problem.write_text(
        "import torch\nclass Model(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.l = torch.nn.Linear(16, 16).double()\n"
        "    def forward(self, x):\n        return self.l(x)\n"
        "def get_inputs():\n    return [torch.randn(8, 16, dtype=torch.float64)]\n"
        "def get_init_inputs():\n    return []\n"
    )
    base = [sys.executable, TUNE, "--target", "llvm", "--problem", str(problem), "--trials", "1",
            "--no-progress", "--work-dir", str(tmp_path / "w")]  # fmt: skip
    refused = subprocess.run(base, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "float64" in refused.stderr, refused.stderr[-2000:]
    cast = subprocess.run([*base, "--dtype", "float32"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert cast.returncode == 0, cast.stderr[-2000:]
    assert json.loads(cast.stdout[cast.stdout.index("{") :])["dtype"] == "float32"


@pytest.mark.parametrize("forward", ["raise RuntimeError('boom')", "return torch.fft.fft(x).real"])
def test_problem_rejected_at_export_ends_with_one_error_line(tmp_path, forward):
    """A problem whose export fails ends the run while the build workers (started at once, to
    overlap the export) are still starting: the run stops them, so its stderr is the one error
    line -- the pool used to be collected in its own thread, printing "cannot join current
    thread" and a traceback after it."""
    problem = tmp_path / "bad.py"
    problem.write_text(
        "import torch\nclass Model(torch.nn.Module):\n"
        f"    def forward(self, x):\n        {forward}\n"
        "def get_inputs():\n    return [torch.randn(4, 4)]\n"
        "def get_init_inputs():\n    return []\n"
    )
    run = subprocess.run(
        [sys.executable, TUNE, "--problem", str(problem), "--trials", "2", "--no-progress",
         "--work-dir", str(tmp_path / "w")],
        env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --problem: "), run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "cannot join" not in run.stderr, run.stderr[-2000:]
