# SPDX-License-Identifier: Apache-2.0
"""Linear 4096 -> 4096 on 4096 tokens, then (x - 0.5) * 0.5 -> GELU (erf).

KernelBench format; the dtype (fp16/bf16) is chosen by the runner.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (used by some forwards)


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x):
        return F.gelu((self.fc(x) - 0.5) * 0.5)


def get_inputs():
    return [torch.randn(4096, 4096)]


def get_init_inputs():
    return [4096, 4096]
