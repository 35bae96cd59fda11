# SPDX-License-Identifier: Apache-2.0
"""The object :func:`autokernel_tvm.torch.load` returns: a library's kernels as torch ops."""

from __future__ import annotations


class KernelOp:
    """One kernel as a callable: ``op(*tensors)`` calls ``torch.ops.autokernel.<name>``.

    Binds keyword arguments by the manifest's argument names and raises ``TypeError`` naming the
    op and the expected count before torch's schema parser would raise its ``RuntimeError``.
    Everything else (``.default``, ``.overloads()``...) is the torch op's; ``.op`` is the op.
    """

    def __init__(self, spec, op):
        self.spec = spec
        self.op = op
        self.default = op.default

    def __call__(self, *args, **kwargs):
        return self.op(*self.spec.bind(args, kwargs))

    def __getattr__(self, name: str):
        return getattr(self.__dict__["op"], name)

    def __repr__(self) -> str:
        return f"KernelOp({self.spec.qualname}{self.spec.schema})"


class KernelLibrary:
    """The kernels of one loaded library, as torch ops.

    Access a kernel as ``lib.<name>`` or ``lib["<name>"]`` (a :class:`KernelOp` calling the
    ``torch.ops.autokernel.<name>`` op); ``lib.manifest`` is the manifest, ``lib.names`` the
    kernel names.
    """

    def __init__(self, path: str, manifest: dict, module, ops: dict):
        self.path = path
        self.manifest = manifest
        self.module = module
        self._ops = ops

    @property
    def names(self) -> list[str]:
        return list(self._ops)

    def entry(self, name: str) -> dict:
        """The manifest entry of kernel ``name``."""
        self[name]
        return next(k for k in self.manifest["kernels"] if k["name"] == name)

    def function(self, name: str):
        """The raw TVM function of kernel ``name``: ``fn(*inputs, out)``, no argument checks.

        For measuring the kernel without the custom-op dispatch (tens of µs per call on a CPU).
        """
        self[name]
        return self.module[name]

    def __getitem__(self, name: str):
        if name not in self._ops:
            raise KeyError(f"no kernel {name!r} in {self.path}; kernels: {self.names}")
        return self._ops[name]

    def __getattr__(self, name: str):
        ops = self.__dict__.get("_ops", {})
        if name in ops:
            return ops[name]
        raise AttributeError(
            f"no kernel {name!r} in {self.__dict__.get('path')}; kernels: {list(ops)}"
        )

    def __contains__(self, name: str) -> bool:
        return name in self._ops

    def __iter__(self):
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"KernelLibrary({self.path!r}, kernels={self.names})"
