# SPDX-License-Identifier: Apache-2.0
"""Linear 8192 -> 8192 on 1024 tokens, then x * 2.0 -> LeakyReLU(0.1).

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
        return F.leaky_relu(self.fc(x) * 2.0, 0.1)


def get_inputs():
    return [torch.randn(1024, 8192)]


def get_init_inputs():
    return [8192, 8192]
