// SPDX-License-Identifier: Apache-2.0
// A libtorch program using torch.ops.autokernel.{load,call,kernels}: through the dispatcher,
// from TorchScript, and on meta tensors; results compared with at::matmul.
//   test_torch LIB_DIR TMP_DIR
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <autokernel/torch.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include "check.h"
#include "fixtures.h"

using autokernel::ArgumentError;
using autokernel::LibraryError;
using fixtures::K;
using fixtures::M;
using fixtures::N;

namespace {

// torch::jit::compile's resolver knows only `torch`; Python's knows torch.ops. This one maps
// `autokernel.<op>` to the registered autokernel::<op>, as torch.ops.autokernel.<op> in Python.
struct OpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name,
                                                         torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "autokernel") return std::make_shared<torch::jit::BuiltinModule>("autokernel");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override {
    return nullptr;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: test_torch LIB_DIR TMP_DIR\n";
    return 2;
  }
  const std::string lib_path = std::string(argv[1]) + "/kernels.so", tmp = argv[2];
  auto& dispatcher = c10::Dispatcher::singleton();
  auto load =
      dispatcher.findSchemaOrThrow("autokernel::load", "").typed<int64_t(c10::string_view)>();
  auto call = dispatcher.findSchemaOrThrow("autokernel::call", "")
                  .typed<at::Tensor(int64_t, c10::string_view, at::TensorList)>();

  int64_t lib = load.call(lib_path);
  CHECK_TRUE(load.call(lib_path) == lib);  // the same file: the same handle
  std::vector<std::string> names = autokernel::torch_ops::Kernels(lib);
  CHECK_TRUE(names.size() == 2 && names[0] == fixtures::kGemm);

  at::manual_seed(0);
  at::Tensor a = at::randn({M, K}), b = at::randn({K, N}), bt = at::randn({N, K});
  at::Tensor got = call.call(lib, fixtures::kGemm, {a, b});
  CHECK_TRUE(got.sizes() == at::IntArrayRef({M, N}) && got.dtype() == at::kFloat);
  CHECK_TRUE(at::allclose(got, at::matmul(a, b), 1e-4, 1e-4));
  CHECK_TRUE(at::allclose(call.call(lib, fixtures::kGemmNT, {a, bt}), at::matmul(a, bt.t()), 1e-4,
                          1e-4));

  // TorchScript: the same ops from a scripted function.
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  cu->define(std::nullopt, R"JIT(
def run(path: str, kernel: str, a: Tensor, b: Tensor) -> Tensor:
    lib = autokernel.load(path)
    return autokernel.call(lib, kernel, [a, b])
)JIT",
             std::make_shared<OpsResolver>(), nullptr);
  at::Tensor scripted = cu->run_method("run", lib_path, fixtures::kGemm, a, b).toTensor();
  CHECK_TRUE(at::equal(scripted, got));

  // Meta: shape inference from the manifest, shapes still checked.
  at::Tensor meta = call.call(lib, fixtures::kGemm, {a.to(at::kMeta), b.to(at::kMeta)});
  CHECK_TRUE(meta.is_meta() && meta.sizes() == at::IntArrayRef({M, N}));
  CHECK_THROWS(ArgumentError, "argument 'B' has shape (96, 64), expected (64, 96)",
               call.call(lib, fixtures::kGemm, {a.to(at::kMeta), bt.to(at::kMeta)}));
  // a real tensor beside a meta one: refused, as torch's own ops refuse it (not a meta result)
  CHECK_THROWS(ArgumentError, "argument 1 is on cpu and another on meta",
               call.call(lib, fixtures::kGemm, {a.to(at::kMeta), b}));

  // Errors: the runtime's exception types reach a C++ caller of the op.
  const std::string q = "autokernel." + fixtures::kGemm;
  CHECK_THROWS(ArgumentError, q + ": argument 'B' has shape (96, 64), expected (64, 96)",
               call.call(lib, fixtures::kGemm, {a, bt}));
  CHECK_THROWS(ArgumentError, q + ": argument 'A' has dtype float64, expected float32",
               call.call(lib, fixtures::kGemm, {a.to(at::kDouble), b}));
  CHECK_THROWS(ArgumentError, q + ": argument 'B' is not contiguous (strides (1, 64))",
               call.call(lib, fixtures::kGemm, {a, bt.t()}));
  CHECK_THROWS(ArgumentError, "no library with handle 99", call.call(99, fixtures::kGemm, {a, b}));
  CHECK_THROWS(LibraryError, "sha256 mismatch",
               load.call(fixtures::TamperedCopy(lib_path, tmp + "/torch_flip", "k.so", 0.5, "",
                                                "")));
  // Through TorchScript the message survives (wrapped in the interpreter's error).
  CHECK_THROWS_ANY("argument 'B' has shape (96, 64), expected (64, 96)",
               cu->run_method("run", lib_path, fixtures::kGemm, a, bt));
  return check::Done("test_torch");
}
