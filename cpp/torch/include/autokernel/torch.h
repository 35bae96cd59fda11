// SPDX-License-Identifier: Apache-2.0
// autokernel_torch: exported kernels as torch ops, from C++, TorchScript and Python.
//
// Kernel names are known only when a library is loaded, and TORCH_LIBRARY schemas are fixed when
// this library is loaded, so it registers a fixed op set that takes the kernel name as data:
//
//   autokernel::load(str path) -> int                          load + check, returns a handle
//   autokernel::call(int lib, str kernel, Tensor[] args) -> Tensor
//   autokernel::kernels(int lib) -> str[]                      kernel names, manifest order
//
// `call` has CPU and CUDA kernels (check, allocate the output, run on torch's current stream)
// and a Meta kernel that checks shapes/dtypes and returns the manifest's output shape, so
// torch.compile / meta tracing see the right output. Loading the same library file twice returns
// the same handle. Errors are autokernel::LibraryError / ArgumentError (RuntimeError in Python).
// The per-kernel ops of autokernel_tvm.torch.load (torch.ops.autokernel.<name>) are Python-only;
// both live in the "autokernel" namespace (that loader registers fragments of it).
#pragma once

#include <ATen/core/Tensor.h>
#include <autokernel/runtime.h>

#include <memory>
#include <string>
#include <vector>

namespace autokernel {
namespace torch_ops {

/*! \brief Load a library (see Library::Load); returns the handle `call` takes. */
int64_t Load(const std::string& path);
/*! \brief The library behind `handle`; throws ArgumentError for an unknown handle. */
std::shared_ptr<const Library> Get(int64_t handle);
/*! \brief Run kernel `kernel` of library `handle` on `args`; returns a new output tensor. */
at::Tensor Call(int64_t handle, const std::string& kernel, const std::vector<at::Tensor>& args);
/*! \brief Names of the kernels of library `handle`. */
std::vector<std::string> Kernels(int64_t handle);

/*! \brief A non-owning DLTensor view of `t` (valid while `t` lives). */
DLTensor View(const at::Tensor& t);
/*! \brief torch dtype of a manifest dtype name. */
at::ScalarType ScalarType(const std::string& dtype);

}  // namespace torch_ops
}  // namespace autokernel
