# SPDX-License-Identifier: Apache-2.0
"""LLaMA-style gated MLP: down(silu(gate(x)) * up(x)), hidden 4096, intermediate 11008, 2048
tokens, no biases (KernelBench format; dtype is chosen by the runner)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.gate = nn.Linear(hidden, intermediate, bias=False)
        self.up = nn.Linear(hidden, intermediate, bias=False)
        self.down = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


def get_inputs():
    return [torch.randn(2048, 4096)]


def get_init_inputs():
    return [4096, 11008]
