# SPDX-License-Identifier: Apache-2.0
"""The one place where options and ``AUTOKERNEL_*`` environment variables are declared.

Read this first: every tunable knob of a run lives in :class:`TuneConfig`, a frozen value that is
passed explicitly into the tuner. Environment variables are read here only (``from_env``), never
deep inside the search.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

#: Environment variables understood by autokernel-tvm (name -> what it sets).
ENV_VARS = {
    "AUTOKERNEL_WORK_DIR": "default work directory for tuning runs",
    "AUTOKERNEL_BUILD_WORKERS": "number of persistent builder processes (default: CPU count)",
    "AUTOKERNEL_CUDA_ARCH": "default CUDA arch when --arch is not given (default sm_90a)",
    "AUTOKERNEL_ROCM_PATH": "ROCm device-library root (default /usr/lib/x86_64-linux-gnu)",
    "AUTOKERNEL_CACHE_DIR": "torch.compile cache and user library (~/.cache/autokernel_tvm)",
    "AUTOKERNEL_STRICT": "1 re-raises candidate failures instead of scoring them as failed",
    "AUTOKERNEL_VERBOSE": "1 shows MetaSchedule's INFO logs on the console",
    "AUTOKERNEL_LIBRARY": "root of the read-only rule library (default: the shipped one)",
    "AUTOKERNEL_RUNNER_TIMEOUT_S": "seconds one candidate may run before it is killed (default 60)",
    "AUTOKERNEL_FAULT": "tests only: inject faults, ACTION@POINT#N[,...] (see fault_point)",
    "AUTOKERNEL_FAULT_COUNTER": "tests only: file prefix counting arrivals at fault points",
    "AUTOKERNEL_RPC_TRACKER": "HOST:PORT of a TVM RPC tracker: measure candidates on its servers",
    "AUTOKERNEL_RPC_KEY": "device key of the RPC servers (with AUTOKERNEL_RPC_TRACKER)",
}

TARGETS = ("llvm", "cuda", "rocm")
SPACES = ("generative", "stock")


class ConfigError(ValueError):
    """An option has an unknown name or an illegal value."""


#: field annotation -> (accepted types, refused subtypes): bools are ints to Python, not here
_KINDS = {
    "int": (int, bool),
    "float": ((int, float), bool),
    "bool": (bool, ()),
    "str": (str, ()),
    "str | None": ((str, type(None)), ()),
}


def _env_number(name: str, kind: type, low: float):
    """The number in environment variable ``name``, at least ``low``, or a ConfigError naming
    the variable."""
    text = os.environ[name]
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}={text!r}: not {what}") from None
    if not value >= low:
        raise ConfigError(f"{name}={text!r}: must be {'> 0' if low > 0 else f'>= {low}'}")
    return value


def _env_flag(name: str) -> bool:
    """``1`` on, ``0`` or unset off; anything else a ConfigError naming the variable."""
    text = os.environ.get(name, "0") or "0"
    if text not in ("0", "1"):
        raise ConfigError(f"{name}={text!r}: 1 (on) or 0 (off)")
    return text == "1"


@dataclass(frozen=True)
class TuneConfig:
    """Everything one tuning run needs, validated on construction.

    Parameters
    ----------
    target : str
        ``llvm``, ``cuda`` or ``rocm``.
    arch : str, optional
        GPU architecture (``sm_90a``, ``sm_80``, ``gfx942``...); defaults per target.
    trials : int
        Total measured candidates (MetaSchedule's ``max_trials_global``).
    hit_trials : int
        The budget where the library holds this very workload, measured on this device, as a
        whole kernel (a rerun; a model's layer tuned before): that genome, its upgrade and the
        next proposals, not ``trials`` of them (0: always ``trials``). The report names the hit.
    time_budget_s : float
        Seconds of proposing and measuring per workload after which the generative search
        proposes no more genomes (0: none): the best measured so far goes to the gate, and the
        report says where the run stopped. A genome being measured is finished first.
    trials_per_iter : int
        Candidates built and measured per batch.
    work_dir : str
        Directory holding the tuning database; a killed run resumes from it.
    space : str
        ``generative`` (this project's design space) or ``stock`` (MetaSchedule's default rules).
    build_workers : int
        Persistent builder processes; 0 means the CPU count.
    build_timeout_s : float
        Per-candidate build timeout.
    seed : int
        Random seed of the search.
    strict : bool
        Re-raise candidate failures (debugging) instead of scoring them as failed.
    runner_number, runner_repeat, runner_min_repeat_ms
        MetaSchedule's ``EvaluatorConfig`` on a CPU: back-to-back calls.
    runner_gpu_calls
        On a GPU, each candidate is timed as this many single calls, each after an L2 flush
        (:meth:`evaluator`).
    retime_within : float
        On a CUDA GPU, the whole kernels measured within this fraction of the fastest (up to
        three) are timed again, in alternation with the L2 flushed, before the gate takes the
        fastest: candidates timed seconds apart, the first of a run on freshly uploaded
        inputs, ranked a kernel 1.4% ahead that alternation put 4% behind (0: off).
    num_cores : int
        CPU threads for llvm kernels and the search (0: physical cores).
    verbose : bool
        Show MetaSchedule's own INFO logs on the console (they always go to ``work_dir``).
    library_dir : str
        Root of the read-only rule library (default: the shipped one, package data built from
        ``schedules/``; ``AUTOKERNEL_LIBRARY``).
    user_library_dir : str
        Root of the user library that runs write their winners to and read besides the shipped
        one (default: ``<cache dir>/library``, see ``AUTOKERNEL_CACHE_DIR``).
    save_library : bool
        Record the verified winning genome in the user library.
    runner_timeout_s : float
        Seconds one candidate may run before its measurement is killed (counted as failed); a
        whole kernel timed in this process that runs past it is recorded as hung and the
        process exits (status 3): the same command resumes past it.
    rpc_tracker, rpc_key, rpc_devices
        Measure on the servers of a TVM RPC tracker (``HOST:PORT``) registered with ``rpc_key``,
        ``rpc_devices`` at once (0: every free one); builds stay local. See
        :mod:`autokernel_tvm.rpc`.
    proposal_model : bool
        Rank the generator's draws with the learned proposal model shipped beside the rule
        library (``<library root>/<target>/ranker.json``), where there is one.
    held_back_genes : bool
        Also draw the gene values the families hold back (:attr:`Family.held_back`: built and
        tested but not yet shown on a GPU to win anywhere).
    allow_tf32 : bool
        A model's fp32 matmuls may be multiplied as TF32 (their workloads get
        ``precision="tf32"``): torch's ``torch.backends.cuda.matmul.allow_tf32``; off, fp32
        keeps fp32 accuracy.
    allow_tf32_conv : bool
        The same for a model's fp32 convolutions: torch's ``torch.backends.cudnn.allow_tf32``
        (on by default in torch, hence the backend's default; ``scripts/tune.py --allow-tf32``
        sets both).
    padded_outputs : bool
        Time a whole kernel that also takes its output as a view of padded rows (C rows that
        are not 16-byte multiples, stored by the TMA: ``autokernel.out_row_pitch``) on such a
        view, as torch's loader calls an exported kernel; off, on plain rows, as a model
        compiled through Relax calls it (its outputs are plain: the kernel copies into them).
        The gate checks both either way.
    """

    target: str = "llvm"
    arch: str | None = None
    trials: int = 64
    hit_trials: int = 4
    time_budget_s: float = 0.0
    trials_per_iter: int = 32
    work_dir: str = "autokernel_work"
    space: str = "generative"
    build_workers: int = 0
    build_timeout_s: float = 120.0
    seed: int = 0
    strict: bool = False
    runner_number: int = 3
    runner_repeat: int = 1
    runner_min_repeat_ms: int = 50
    runner_gpu_calls: int = 50
    retime_within: float = 0.03
    num_cores: int = 0
    verbose: bool = False
    library_dir: str = ""
    user_library_dir: str = ""
    save_library: bool = True
    runner_timeout_s: float = 60.0
    rpc_tracker: str = ""
    rpc_key: str = ""
    rpc_devices: int = 0
    proposal_model: bool = True
    held_back_genes: bool = False
    allow_tf32: bool = False
    allow_tf32_conv: bool = False
    padded_outputs: bool = True
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # a value of the wrong type, named (not a TypeError)
            kinds = _KINDS.get(f.type)
            value = getattr(self, f.name)
            if kinds and not (isinstance(value, kinds[0]) and not isinstance(value, kinds[1])):
                raise ConfigError(f"{f.name} must be {f.type}, got {value!r}")
        if self.target not in TARGETS:
            raise ConfigError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.space not in SPACES:
            raise ConfigError(f"space must be one of {SPACES}, got {self.space!r}")
        if self.trials < 1:
            raise ConfigError(f"trials must be >= 1, got {self.trials}")
        if self.hit_trials < 0:
            raise ConfigError(f"hit_trials must be >= 0 (0: no shortcut), got {self.hit_trials}")
        if not 0 <= self.retime_within < 1:
            raise ConfigError(f"retime_within must be in [0, 1) (0: off), got {self.retime_within}")
        if self.time_budget_s < 0:
            raise ConfigError(f"time_budget_s must be >= 0 (0: none), got {self.time_budget_s}")
        if self.trials_per_iter < 1:
            raise ConfigError(f"trials_per_iter must be >= 1, got {self.trials_per_iter}")
        if self.build_workers < 0:
            raise ConfigError(f"build_workers must be >= 0, got {self.build_workers}")
        if self.rpc_tracker:
            parse_tracker(self.rpc_tracker)  # raises ConfigError naming the bad value
            if not self.rpc_key:
                raise ConfigError("rpc_key is empty: give the servers' key (--rpc-key)")
            if self.rpc_devices < 0:
                raise ConfigError(
                    f"rpc_devices must be >= 0 (0: all free servers), got {self.rpc_devices}"
                )
        elif self.rpc_key or self.rpc_devices:
            raise ConfigError("rpc_key/rpc_devices given without rpc_tracker (HOST:PORT)")

    @classmethod
    def from_dict(cls, values: dict) -> TuneConfig:
        """Build from a dict, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_env(cls, **overrides) -> TuneConfig:
        """Defaults taken from ``AUTOKERNEL_*`` variables, then ``overrides`` on top."""
        values: dict = {}
        if "AUTOKERNEL_WORK_DIR" in os.environ:
            values["work_dir"] = os.environ["AUTOKERNEL_WORK_DIR"]
        if "AUTOKERNEL_BUILD_WORKERS" in os.environ:
            values["build_workers"] = _env_number("AUTOKERNEL_BUILD_WORKERS", int, 0)
        values["strict"] = _env_flag("AUTOKERNEL_STRICT")
        if "AUTOKERNEL_LIBRARY" in os.environ:
            values["library_dir"] = os.environ["AUTOKERNEL_LIBRARY"]  # a missing one: empty
        values["verbose"] = _env_flag("AUTOKERNEL_VERBOSE")
        for name in ("rpc_tracker", "rpc_key"):
            if os.environ.get("AUTOKERNEL_" + name.upper()):
                values[name] = os.environ["AUTOKERNEL_" + name.upper()]
        if "AUTOKERNEL_RUNNER_TIMEOUT_S" in os.environ:
            values["runner_timeout_s"] = _env_number("AUTOKERNEL_RUNNER_TIMEOUT_S", float, 1e-9)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("arch") is None and values.get("target") == "cuda":
            values["arch"] = cuda_arch_from_env()  # None: the target takes this machine's GPU
        return cls.from_dict(values)

    @property
    def tf32(self) -> bool:
        """Whether any fp32 op of a model may run as TF32 (matmuls or convolutions)."""
        return self.allow_tf32 or self.allow_tf32_conv

    def replace(self, **changes) -> TuneConfig:
        return dataclasses.replace(self, **changes)

    @property
    def gpu(self) -> bool:
        """Whether candidates run on a GPU (``cuda``, ``rocm``): timed cold (:meth:`evaluator`)."""
        return self.target != "llvm"

    def evaluator(self) -> dict:
        """``number``, ``repeat``, ``min_repeat_ms`` of a candidate's timing. On a GPU:
        ``runner_gpu_calls`` single calls, each after an L2 flush (``flushed_run_evaluator``):
        back-to-back calls keep an operand that fits in L2 there -- a 64 x 4096 x 4096 decode
        GEMM's 32 MB weight on the H200 -- and tuning ranked such kernels at 12.8 us that took
        21.5 us as a model calls them, with the operand in device memory."""
        if self.gpu:
            return {"number": 1, "repeat": self.runner_gpu_calls, "min_repeat_ms": 0}
        return {
            "number": self.runner_number,
            "repeat": self.runner_repeat,
            "min_repeat_ms": self.runner_min_repeat_ms,
        }


def parse_tracker(tracker: str) -> tuple[str, int]:
    """``(host, port)`` of ``"HOST:PORT"``; raises :class:`ConfigError` naming the bad part."""
    host, sep, port = (tracker or "").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"rpc_tracker must be HOST:PORT (e.g. 127.0.0.1:9190), got {tracker!r}")
    if not 0 < int(port) < 65536:
        raise ConfigError(f"rpc_tracker port must be in 1..65535, got {port}")
    return host, int(port)


def cuda_arch_from_env() -> str | None:
    """``AUTOKERNEL_CUDA_ARCH`` if set (the target falls back to this machine's GPU, then
    sm_90a: :func:`autokernel_tvm.targets.make_target`)."""
    return os.environ.get("AUTOKERNEL_CUDA_ARCH") or None


def rocm_path() -> str:
    return os.environ.get("AUTOKERNEL_ROCM_PATH", os.environ.get("ROCM_PATH", ROCM_DEBIAN_PATH))


def cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "autokernel_tvm")
    return os.environ.get("AUTOKERNEL_CACHE_DIR", default)


ROCM_DEBIAN_PATH = "/usr/lib/x86_64-linux-gnu"
FAULT_ACTIONS = ("kill", "kill-parent", "segv", "hang")


def faults_enabled() -> bool:
    """Whether ``AUTOKERNEL_FAULT`` asks for injected faults (tests only)."""
    return bool(os.environ.get("AUTOKERNEL_FAULT"))


def fault_point(point: str) -> None:
    """Test hook: inject the fault ``AUTOKERNEL_FAULT`` names for ``point``, if any.

    ``AUTOKERNEL_FAULT`` is a comma-separated list of ``ACTION@POINT#N``: at the N-th arrival at
    ``POINT`` (counted across processes in the file ``$AUTOKERNEL_FAULT_COUNTER.POINT``), do
    ``kill`` (SIGKILL this process), ``kill-parent`` (SIGKILL the process that started this
    worker), ``segv`` (SIGSEGV this process) or ``hang`` (sleep for an hour). Points: ``build``
    (the tuner, while its builder workers build a batch), ``worker-build`` (a builder worker,
    per candidate), ``measure`` (the runner worker, per candidate), ``kernel-measure`` (the
    tuner process timing a whole kernel), ``kernel-gate`` (the tuner process, before the gate
    runs a whole kernel), ``compile`` (the tuner process building a module:
    verification, then export). Unset, this does nothing.
    """
    for item in filter(None, os.environ.get("AUTOKERNEL_FAULT", "").split(",")):
        action, _, rest = item.partition("@")
        name, _, nth = rest.partition("#")
        if name != point:
            continue
        if action not in FAULT_ACTIONS:
            raise ConfigError(f"AUTOKERNEL_FAULT: action {action!r} is not one of {FAULT_ACTIONS}")
        counter = os.environ.get("AUTOKERNEL_FAULT_COUNTER")
        if not counter:
            raise ConfigError("AUTOKERNEL_FAULT needs AUTOKERNEL_FAULT_COUNTER (a file prefix)")
        fd = os.open(f"{counter}.{name}", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, b".")  # appends are atomic: the offset after ours is our arrival
            arrival = os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)
        if arrival != int(nth or 1):
            continue
        import signal
        import time

        if action == "hang":
            time.sleep(3600)
        pid = os.getppid() if action == "kill-parent" else os.getpid()
        os.kill(pid, signal.SIGSEGV if action == "segv" else signal.SIGKILL)


def fault_run_evaluator(rt_mod, device, evaluator_config, repeated_args):
    """MetaSchedule's run evaluator behind the ``measure`` fault point (runs in the runner)."""
    from tvm.s_tir.meta_schedule.runner.local_runner import default_run_evaluator

    fault_point("measure")
    return default_run_evaluator(rt_mod, device, evaluator_config, repeated_args)


def flushed_run_evaluator(rt_mod, device, evaluator_config, repeated_args):
    """MetaSchedule's run evaluator for GPU candidates (:meth:`TuneConfig.evaluator`): each
    repeat (one call) after copying ``L2_FLUSH_BYTES`` on the device, behind the ``measure``
    fault point. Runs in the runner (local or an RPC server's session)."""
    from .hardware import L2_FLUSH_BYTES

    fault_point("measure")
    timer = rt_mod.time_evaluator(
        rt_mod.entry_name,
        device,
        number=evaluator_config.number,
        repeat=evaluator_config.repeat,
        min_repeat_ms=evaluator_config.min_repeat_ms,
        cache_flush_bytes=L2_FLUSH_BYTES,
    )
    costs = []
    for args in repeated_args:
        device.sync()
        costs += [float(c) for c in timer(*args).results]
    return costs
