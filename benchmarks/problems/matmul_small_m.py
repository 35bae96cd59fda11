# SPDX-License-Identifier: Apache-2.0
"""Small-M matmul (decode-like): 16 x 4096 @ 4096 x 4096.

KernelBench format; the dtype (fp16/bf16) is chosen by the runner.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(16, 4096), torch.randn(4096, 4096)]


def get_init_inputs():
    return []
