// SPDX-License-Identifier: Apache-2.0
// TORCH_LIBRARY(autokernel): load / call / kernels (design in autokernel/torch.h).
#include <ATen/DLConvertor.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/library.h>

#include <map>
#include <mutex>
#include <utility>

#include "autokernel/torch.h"

namespace autokernel {
namespace torch_ops {
namespace {

std::mutex g_mutex;
// Never destroyed: libraries hold tvm-ffi objects that must not outlive libtvm_ffi at exit.
auto* g_libraries = new std::vector<std::shared_ptr<const Library>>();
auto* g_handles = new std::map<std::pair<std::string, std::string>, int64_t>();  // path, sha

std::vector<DLTensor> Views(const std::vector<at::Tensor>& args) {
  std::vector<DLTensor> views;
  views.reserve(args.size());
  for (const at::Tensor& t : args) views.push_back(View(t));
  return views;
}

std::vector<const DLTensor*> Pointers(const std::vector<DLTensor>& views) {
  std::vector<const DLTensor*> out;
  out.reserve(views.size());
  for (const DLTensor& v : views) out.push_back(&v);
  return out;
}

at::Tensor NewOutput(const Kernel& k, const at::Tensor& like) {
  return at::empty(k.output.shape, like.options().dtype(ScalarType(k.output.dtype)));
}

at::Tensor CallDevice(int64_t handle, c10::string_view kernel, at::TensorList args) {
  return Call(handle, std::string(kernel), args.vec());
}

// The Autograd key: no derivative is defined here, so a call on tensors that require grad
// would return a result whose backward silently gives them no gradient. Refuse it with the
// way out, as the Python loader's forward-only ops do; otherwise run the device kernel.
at::Tensor CallAutograd(int64_t handle, c10::string_view kernel, at::TensorList args) {
  if (at::GradMode::is_enabled()) {
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i].requires_grad()) {
        throw ArgumentError("autokernel::call is forward-only: argument " + std::to_string(i) +
                            " requires grad (call it under torch.no_grad(), or use "
                            "autokernel_tvm.torch.load, whose GEMM ops have a backward)");
      }
    }
  }
  at::AutoDispatchBelowADInplaceOrView below;
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("autokernel::call", "")
                       .typed<at::Tensor(int64_t, c10::string_view, at::TensorList)>();
  return op.call(handle, kernel, args);
}

at::Tensor CallMeta(int64_t handle, c10::string_view kernel, at::TensorList args) {
  auto lib = Get(handle);
  const Kernel& k = lib->kernel(std::string(kernel));
  std::vector<at::Tensor> tensors = args.vec();
  // The Meta key wins the dispatch whenever one argument is meta; a real tensor beside it would
  // get a meta result (and no kernel run), where torch's own ops refuse the mix.
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].is_meta()) {
      throw ArgumentError("autokernel::call: argument " + std::to_string(i) + " is on " +
                          tensors[i].device().str() +
                          " and another on meta: pass all inputs on one device");
    }
  }
  std::vector<DLTensor> views = Views(tensors);
  k.CheckInputs(Pointers(views), /*check_device=*/false);
  return NewOutput(k, tensors[0]);
}

}  // namespace

DLTensor View(const at::Tensor& t) {
  DLTensor v{};
  v.data = t.is_meta() ? nullptr : t.data_ptr();
  v.device = DLDevice{kDLExtDev, 0};  // meta and other devices: never a kernel's device
  if (t.is_cpu()) {
    v.device = DLDevice{kDLCPU, 0};
  } else if (t.is_cuda()) {
#ifdef USE_ROCM
    v.device = DLDevice{kDLROCM, t.get_device()};  // ROCm torch calls HIP devices "cuda"
#else
    v.device = DLDevice{kDLCUDA, t.get_device()};
#endif
  }
  v.ndim = static_cast<int32_t>(t.dim());
  v.dtype = at::getDLDataType(t);
  v.shape = const_cast<int64_t*>(t.sizes().data());
  v.strides = const_cast<int64_t*>(t.strides().data());
  v.byte_offset = 0;
  return v;
}

at::ScalarType ScalarType(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "float16") return at::kHalf;
  if (dtype == "bfloat16") return at::kBFloat16;
  if (dtype == "float8_e4m3fn") return at::kFloat8_e4m3fn;
  if (dtype == "float8_e5m2") return at::kFloat8_e5m2;
  throw LibraryError("dtype '" + dtype + "' has no torch equivalent");
}

int64_t Load(const std::string& path) {
  std::shared_ptr<const Library> lib = Library::Load(path);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto key = std::make_pair(path, lib->sha256());
  auto it = g_handles->find(key);
  if (it != g_handles->end()) return it->second;
  g_libraries->push_back(lib);
  int64_t handle = static_cast<int64_t>(g_libraries->size()) - 1;
  g_handles->emplace(key, handle);
  return handle;
}

std::shared_ptr<const Library> Get(int64_t handle) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (handle < 0 || handle >= static_cast<int64_t>(g_libraries->size())) {
    throw ArgumentError("autokernel: no library with handle " + std::to_string(handle) +
                        " (handles come from torch.ops.autokernel.load; " +
                        std::to_string(g_libraries->size()) + " loaded)");
  }
  return (*g_libraries)[handle];
}

at::Tensor Call(int64_t handle, const std::string& kernel, const std::vector<at::Tensor>& args) {
  auto lib = Get(handle);
  const Kernel& k = lib->kernel(kernel);
  std::vector<DLTensor> views = Views(args);
  std::vector<const DLTensor*> inputs = Pointers(views);
  k.CheckInputs(inputs);  // before allocating, as the Python loader does
  at::Tensor out = NewOutput(k, args[0]);
  DLTensor out_view = View(out);
  void* stream = nullptr;
  if (!out.is_cpu()) {
    // tvm-ffi launches on the stream set for the device: use torch's current one.
    c10::impl::VirtualGuardImpl guard(out.device().type());
    stream = guard.getStreamNativeHandle(guard.getStream(out.device()));
  }
  lib->Call(kernel, inputs, &out_view, stream);
  return out;
}

std::vector<std::string> Kernels(int64_t handle) {
  std::vector<std::string> names;
  for (const Kernel& k : Get(handle)->kernels()) names.push_back(k.name);
  return names;
}

}  // namespace torch_ops
}  // namespace autokernel

TORCH_LIBRARY(autokernel, m) {
  m.def("load(str path) -> int",
        [](c10::string_view path) { return autokernel::torch_ops::Load(std::string(path)); });
  m.def("kernels(int lib) -> str[]", &autokernel::torch_ops::Kernels);
  m.def("call(int lib, str kernel, Tensor[] args) -> Tensor");
}

TORCH_LIBRARY_IMPL(autokernel, CPU, m) { m.impl("call", &autokernel::torch_ops::CallDevice); }
TORCH_LIBRARY_IMPL(autokernel, CUDA, m) { m.impl("call", &autokernel::torch_ops::CallDevice); }
TORCH_LIBRARY_IMPL(autokernel, Meta, m) { m.impl("call", &autokernel::torch_ops::CallMeta); }
TORCH_LIBRARY_IMPL(autokernel, Autograd, m) {
  m.impl("call", &autokernel::torch_ops::CallAutograd);
}
