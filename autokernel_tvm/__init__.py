# SPDX-License-Identifier: Apache-2.0
"""autokernel-tvm: generative search spaces for TVM MetaSchedule, exported to PyTorch.

Public API: :class:`TuneConfig`, :class:`Tuner`, :class:`Workload`, :func:`verify`,
:func:`export`. The PyTorch loader is ``autokernel_tvm.torch.load``; the Relax / whole-model
entry points are in ``autokernel_tvm.relax``.
"""

from .config import TuneConfig
from .export import export
from .tuner import Tuner, TuneResult
from .verify import verify
from .workloads import Workload

__version__ = "0.1.0"
__all__ = ["TuneConfig", "TuneResult", "Tuner", "Workload", "export", "verify"]
