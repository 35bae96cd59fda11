# SPDX-License-Identifier: Apache-2.0
"""Rectangular matmul: 8192 x 2048 @ 2048 x 4096.

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
    return [torch.randn(8192, 2048), torch.randn(2048, 4096)]


def get_init_inputs():
    return []
