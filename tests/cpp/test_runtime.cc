// SPDX-License-Identifier: Apache-2.0
// autokernel_runtime without torch: load the llvm library from make_library.py, run both GEMMs
// on DLTensors over host memory against a float64 reference, and check every refusal message.
//   test_runtime LIB_DIR TMP_DIR
#include <autokernel/runtime.h>

#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "fixtures.h"

using autokernel::ArgumentError;
using autokernel::Library;
using autokernel::LibraryError;
using fixtures::K;
using fixtures::M;
using fixtures::N;

namespace {

struct HostTensor {
  std::vector<float> data;
  std::vector<int64_t> shape, strides;
  DLTensor t{};

  HostTensor(std::vector<int64_t> s, std::mt19937* rng = nullptr) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.resize(n);
    std::normal_distribution<float> dist;
    for (float& x : data) x = rng ? dist(*rng) : 0.0f;
    t.data = data.data();
    t.device = DLDevice{kDLCPU, 0};
    t.ndim = static_cast<int32_t>(shape.size());
    t.dtype = DLDataType{kDLFloat, 32, 1};
    t.shape = shape.data();
  }
};

// out[m, n] = sum_k A[m, k] * B(k, n), B(k, n) = b[k * N + n] (A@B) or b[n * K + k] (A@B.T).
double MaxRelError(const HostTensor& a, const HostTensor& b, const HostTensor& out, bool nt) {
  double err = 0, scale = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k) {
        want += double(a.data[m * K + k]) * double(nt ? b.data[n * K + k] : b.data[k * N + n]);
      }
      err = std::max(err, std::abs(out.data[m * N + n] - want));
      scale = std::max(scale, std::abs(want));
    }
  }
  return err / scale;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: test_runtime LIB_DIR TMP_DIR\n";
    return 2;
  }
  const std::string lib_path = std::string(argv[1]) + "/kernels.so", tmp = argv[2];
  std::mt19937 rng(0);

  auto lib = Library::Load(lib_path);
  CHECK_TRUE(lib->kernels().size() == 2);
  CHECK_TRUE(lib->target_kind() == "llvm" && lib->device_type() == kDLCPU);
  CHECK_TRUE(lib->sha256().size() == 64);
  const autokernel::Kernel& gemm = lib->kernel(fixtures::kGemm);
  CHECK_TRUE(gemm.op == "gemm" && gemm.inputs.size() == 2 && gemm.output.shape[1] == N);

  // Both kernels, against a float64 reference.
  HostTensor a({M, K}, &rng), b({K, N}, &rng), bt({N, K}, &rng), out({M, N});
  lib->Call(fixtures::kGemm, {&a.t, &b.t}, &out.t);
  double err = MaxRelError(a, b, out, false);
  std::cout << "gemm max rel error " << err << "\n";
  CHECK_TRUE(err < 1e-5);
  lib->Call(fixtures::kGemmNT, {&a.t, &bt.t}, &out.t);
  err = MaxRelError(a, bt, out, true);
  std::cout << "gemm_nt max rel error " << err << "\n";
  CHECK_TRUE(err < 1e-5);
  // DLManagedTensor overload (ownership stays here).
  DLManagedTensor ma{a.t, nullptr, nullptr}, mb{b.t, nullptr, nullptr}, mo{out.t, nullptr, nullptr};
  lib->Call(fixtures::kGemm, std::vector<DLManagedTensor*>{&ma, &mb}, &mo);
  CHECK_TRUE(MaxRelError(a, b, out, false) < 1e-5);
  // Loading again reuses the module.
  CHECK_TRUE(Library::Load(lib_path)->sha256() == lib->sha256());

  // Argument checks: the Python loader's wording.
  const std::string q = "autokernel." + fixtures::kGemm;
  CHECK_THROWS(ArgumentError, q + ": argument 'B' has shape (96, 64), expected (64, 96)",
               lib->Call(fixtures::kGemm, {&a.t, &bt.t}, &out.t));
  CHECK_THROWS(ArgumentError, q + ": takes 2 tensors (A, B), got 1",
               lib->Call(fixtures::kGemm, {&a.t}, &out.t));
  HostTensor a16({M, K});
  a16.t.dtype = DLDataType{kDLFloat, 16, 1};
  CHECK_THROWS(ArgumentError, q + ": argument 'A' has dtype float16, expected float32",
               lib->Call(fixtures::kGemm, {&a16.t, &b.t}, &out.t));
  a16.t.dtype = DLDataType{kDLFloat8_e4m3fn, 8, 1};  // named as the manifest names it
  CHECK_THROWS(ArgumentError, q + ": argument 'A' has dtype float8_e4m3fn, expected float32",
               lib->Call(fixtures::kGemm, {&a16.t, &b.t}, &out.t));
  HostTensor on_gpu({K, N});
  on_gpu.t.device = DLDevice{kDLCUDA, 0};
  CHECK_THROWS(ArgumentError,
               q + ": argument 'B' is on cuda:0, but this kernel was built for llvm",
               lib->Call(fixtures::kGemm, {&a.t, &on_gpu.t}, &out.t));
  HostTensor strided({K, N});
  strided.strides = {1, K};  // a transposed view
  strided.t.strides = strided.strides.data();
  CHECK_THROWS(ArgumentError,
               q + ": argument 'B' is not contiguous (strides (1, 64)); pass .contiguous()",
               lib->Call(fixtures::kGemm, {&a.t, &strided.t}, &out.t));
  HostTensor small_out({M, K});
  CHECK_THROWS(ArgumentError, q + ": output 'out' has shape (128, 64), expected (128, 96)",
               lib->Call(fixtures::kGemm, {&a.t, &b.t}, &small_out.t));
  CHECK_THROWS(ArgumentError, "no kernel 'nope'; kernels: [" + fixtures::kGemm,
               lib->Call("nope", {&a.t, &b.t}, &out.t));

  // Refusals at load time.
  using fixtures::TamperedCopy;
  CHECK_THROWS(LibraryError, "sha256 mismatch: the manifest says",
               Library::Load(TamperedCopy(lib_path, tmp + "/flip", "k.so", 0.5, "", "")));
  CHECK_THROWS(LibraryError,
               "manifest field \"kernels[0].op\" differs from the library: \"gemm_nt\" vs \"gemm\"",
               Library::Load(TamperedCopy(lib_path, tmp + "/op", "k.so", -1, "\"op\": \"gemm\"",
                                          "\"op\": \"gemm_nt\"")));
  CHECK_THROWS(LibraryError,
               "manifest field \"kernels[0].flops\" differs from the library: 1572865 vs 1572864",
               Library::Load(TamperedCopy(lib_path, tmp + "/flops", "k.so", -1,
                                          "\"flops\": 1572864", "\"flops\": 1572865")));
  CHECK_THROWS(LibraryError, "has format_version 1; this autokernel runtime reads version 2",
               Library::Load(TamperedCopy(lib_path, tmp + "/v1", "k.so", -1,
                                          "\"format_version\": 2", "\"format_version\": 1")));
  // A file cut short (checksum off, as a recomputed manifest would pass it): refused by its ELF
  // extent, where dlopen would have died of SIGBUS.
  {
    std::filesystem::create_directories(tmp + "/cut");
    std::string so = fixtures::Read(lib_path);
    fixtures::Write(tmp + "/cut/k.so", so.substr(0, so.size() * 9 / 10));
    fixtures::Write(tmp + "/cut/k.so.json", fixtures::Read(lib_path + ".json"));
    CHECK_THROWS(LibraryError, "truncated: the file has",
                 Library::Load(tmp + "/cut/k.so", /*verify_checksum=*/false));
  }
  CHECK_THROWS(LibraryError, "the library embeds no manifest (no symbol autokernel_manifest)",
               Library::Load(std::string(argv[1]) + "/plain.so"));
  // A CUDA library: without a driver TVM leaves CUDA source, compiled at load by a Python hook.
  const std::string cuda = std::string(argv[1]) + "/cuda.so";
  const bool source_only =
      fixtures::Read(cuda + ".json").find("\"device_code\": \"cuda-source\"") != std::string::npos;
  if (source_only) {
    CHECK_THROWS(LibraryError, "the cuda device code is 'cuda-source', compiled at load time by a "
                               "TVM Python callback that a C++ process lacks",
                 Library::Load(cuda));
  } else {
    CHECK_TRUE(Library::Load(cuda)->device_type() == kDLCUDA);
  }
  CHECK_THROWS(LibraryError, "no manifest '" + tmp + "/none.so.json'",
               Library::Load(tmp + "/none.so"));
  return check::Done("test_runtime");
}
