# SPDX-License-Identifier: Apache-2.0
"""autokernel-tvm: generative search spaces for TVM MetaSchedule, exported to PyTorch.

Public API: :class:`TuneConfig`, :class:`Tuner`, :class:`Workload`, :func:`export`. The
correctness gate is ``autokernel_tvm.verify.verify``, the PyTorch loader
``autokernel_tvm.torch.load`` (importing it registers ``torch.compile(backend="autokernel")``),
and the Relax / whole-model entry points are in ``autokernel_tvm.relax``.
"""

from .config import TuneConfig
from .export import export
from .tuner import Tuner, TuneResult
from .workloads import Workload

__version__ = "0.1.0"
__all__ = ["TuneConfig", "TuneResult", "Tuner", "Workload", "export"]
