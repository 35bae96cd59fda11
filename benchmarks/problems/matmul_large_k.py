# SPDX-License-Identifier: Apache-2.0
"""Large-K matmul: 256 x 524288 @ 524288 x 256.

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
    return [torch.randn(256, 524288), torch.randn(524288, 256)]


def get_init_inputs():
    return []
