// SPDX-License-Identifier: Apache-2.0
// Load an exported kernel library in C++ and time one kernel against its ATen expression.
//
//   build/autokernel_runner LIB.so [--kernel NAME] [--repeats 100] [--warmup 10] [--seed 0]
//       [--cpu-threads N] [--save-output OUT.f32] [--json OUT.json] [--max-error E]
//
// Inputs are drawn as scripts/bench.py draws them (torch.randn on a CPU generator seeded with
// --seed, in argument order, then cast and moved; an fp8 GEMM's scales torch.rand * 1.5 + 0.5),
// so the Python loader sees the same values. --max-error E: exit 1 where the kernel's normwise
// relative error against the baseline exceeds E (before anything is timed).
// Three things are timed in alternation, one call each per repeat, and the median of the repeats
// is reported: the op as a user calls it (torch.ops.autokernel.call through the dispatcher,
// checks and output allocation included), the kernel alone (autokernel::Library::Call,
// preallocated output), and the ATen baseline (Baseline below). On a GPU each call is bracketed by CUDA
// events on torch's current stream after a 256 MiB L2 flush, as autokernel_tvm.timing (and so
// scripts/bench.py) times it; on the CPU by steady_clock.
// Prints one line "RESULT kernel=... us=... matmul_us=... ratio=... max_rel_error=...".
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

#include "autokernel/torch.h"

namespace {

struct Args {
  std::string library, kernel, save_output, json;
  double max_error = -1;  // < 0: report the error only
  int repeats = 100;
  int warmup = 10;
  int cpu_threads = 0;
  uint64_t seed = 0;
};

const char kUsage[] =
    "usage: autokernel_runner LIB.so [--kernel NAME] [--repeats N] [--warmup N] [--seed S] "
    "[--cpu-threads N] [--save-output OUT.f32] [--json OUT.json] [--max-error E]\n";

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "autokernel_runner: " << why << "\n" << kUsage;
  std::exit(2);
}

/*! ``text`` as a whole non-negative integer, or the usage error naming ``flag``. */
uint64_t Number(const std::string& flag, const std::string& text) {
  size_t used = 0;
  uint64_t n = 0;
  try {
    if (text.empty() || text[0] == '-') throw std::invalid_argument(text);
    n = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) Usage(flag + ": '" + text + "' is not a whole number");
  if (n > 1000000000ULL && flag != "--seed") Usage(flag + ": " + text + " is too large");
  return n;
}

/*! ``text`` as a finite non-negative number, or the usage error naming ``flag``. */
double Fraction(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double x = -1;
  try {
    x = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !std::isfinite(x) || x < 0) {
    Usage(flag + ": '" + text + "' is not a non-negative number");
  }
  return x;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << "Run an exported kernel on random inputs, check it against its ATen "
                   "expression and time both\n(--max-error E: exit 1 when the normwise relative "
                   "error exceeds E).\n" << kUsage;
      std::exit(0);
    }
    if (arg == "--kernel") a.kernel = value();
    else if (arg == "--repeats") a.repeats = static_cast<int>(Number(arg, value()));
    else if (arg == "--warmup") a.warmup = static_cast<int>(Number(arg, value()));
    else if (arg == "--cpu-threads") a.cpu_threads = static_cast<int>(Number(arg, value()));
    else if (arg == "--seed") a.seed = Number(arg, value());
    else if (arg == "--save-output") a.save_output = value();
    else if (arg == "--json") a.json = value();
    else if (arg == "--max-error") a.max_error = Fraction(arg, value());
    else if (!arg.empty() && arg[0] == '-') Usage("unknown option " + arg);
    else if (a.library.empty()) a.library = arg;
    else Usage("one library only, got " + a.library + " and " + arg);
  }
  if (a.library.empty()) Usage("no library given");
  if (a.repeats < 1) Usage("--repeats must be >= 1");
  return a;
}

/*! The ATen expression of the kernel's op (autokernel_tvm/torch/baselines.py), in the kernel's
 * output layout: cuBLAS for the GEMMs, cuDNN on channels-last views for conv2d_nhwc (no copy
 * is timed), cuBLASLt's torch._scaled_mm for the fp8 GEMM. */
std::function<at::Tensor()> Baseline(const autokernel::Kernel& k,
                                     const std::vector<at::Tensor>& in) {
  if (k.op == "gemm" || k.op == "batch_gemm") return [in] { return at::matmul(in[0], in[1]); };
  if (k.op == "gemm_nt") {
    at::Tensor bt = in[1].t();
    return [in, bt] { return at::matmul(in[0], bt); };
  }
  if (k.op == "batch_gemm_nt") {
    at::Tensor bt = in[1].transpose(1, 2);
    return [in, bt] { return at::matmul(in[0], bt); };
  }
  if (k.op == "gemm_tn") {
    at::Tensor at_ = in[0].t();
    return [in, at_] { return at::matmul(at_, in[1]); };
  }
  if (k.op == "batch_gemm_tn") {
    at::Tensor at_ = in[0].transpose(1, 2);
    return [in, at_] { return at::matmul(at_, in[1]); };
  }
  if (k.op.rfind("gemm_bias", 0) == 0) {  // nn.Linear: A @ W.T + bias, then the activation
    std::string act = k.op == "gemm_bias" ? "" : k.op.substr(std::string("gemm_bias_").size());
    if (act.empty() || act == "relu" || act == "gelu") {
      return [in, act] {
        at::Tensor y = at::linear(in[0], in[1], in[2]);
        return act == "relu" ? at::relu(y) : act == "gelu" ? at::gelu(y) : y;
      };
    }
  }
  if (k.op == "gemm_gated_nt") {  // the unrewritten gated MLP: two projections, SiLU, product
    at::Tensor gate = in[1][0].t(), up = in[1][1].t();
    return [in, gate, up] { return at::silu(at::matmul(in[0], gate)) * at::matmul(in[0], up); };
  }
  if (k.op == "conv2d_nhwc" && k.shape.size() == 9) {  // N, H, W, C, K, R, S, stride, pad
    at::Tensor x = in[0].permute({0, 3, 1, 2}), w = in[1].permute({0, 3, 1, 2});
    int64_t stride = k.shape[7], pad = k.shape[8];
    return [x, w, stride, pad] {
      return at::conv2d(x, w, {}, {stride, stride}, {pad, pad}).permute({0, 2, 3, 1});
    };
  }
  if (k.op == "gemm_scaled_nt") {
    at::Tensor b = in[1];
    if (b.is_cuda() && in[0].scalar_type() == at::kFloat8_e5m2 &&
        b.scalar_type() == at::kFloat8_e5m2) {
      b = b.to(at::kFloat8_e4m3fn);  // cuBLASLt has no e5m2 x e5m2 GEMM; converted once, here
    }
    at::Tensor bt = b.t();
    at::ScalarType out = autokernel::torch_ops::ScalarType(k.output.dtype);
    bool fast = k.precision == "fast_accum";
    return [in, bt, out, fast] {
      return at::_scaled_mm(in[0], bt, in[2], in[3], std::nullopt, std::nullopt, out, fast);
    };
  }
  std::cerr << "autokernel_runner: no ATen baseline for op '" << k.op
            << "' (gemm, gemm_nt, gemm_tn, batch_gemm[_nt|_tn], gemm_bias[_relu|_gelu], "
               "gemm_gated_nt, gemm_scaled_nt, conv2d_nhwc; scripts/bench.py times every op)\n";
  std::exit(2);
}

/*! A per-tensor scale input of the fp8 GEMM (the workload's ``scalars``): drawn positive and
 * near 1, as scripts/bench.py draws it. */
bool IsScale(const autokernel::TensorSpec& spec) {
  return spec.name.rfind("scale_", 0) == 0 && spec.dtype == "float32";
}

/*!
 * Per-call seconds of each of `fns`, called in alternation `repeats` times. GPU: events around
 * each call after an L2 flush (`flush`), read after one synchronize; CPU: steady_clock.
 */
std::vector<std::vector<double>> TimeAlternating(const std::vector<std::function<void()>>& fns,
                                                 int repeats, const c10::Device& device,
                                                 at::Tensor flush) {
  std::vector<std::vector<double>> times(fns.size());
  if (device.is_cpu()) {
    for (int r = 0; r < repeats; ++r) {
      for (size_t f = 0; f < fns.size(); ++f) {
        auto start = std::chrono::steady_clock::now();
        fns[f]();
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        times[f].push_back(took.count());
      }
    }
    return times;
  }
  c10::impl::VirtualGuardImpl guard(device.type());
  c10::Stream stream = guard.getStream(device);
  const auto timed = c10::EventFlag::BACKEND_DEFAULT;  // PYTORCH_DEFAULT disables timing
  std::vector<std::unique_ptr<c10::Event>> starts, ends;
  for (int r = 0; r < repeats; ++r) {
    for (const auto& fn : fns) {
      flush.zero_();
      starts.push_back(std::make_unique<c10::Event>(device.type(), timed));
      ends.push_back(std::make_unique<c10::Event>(device.type(), timed));
      starts.back()->record(stream);
      fn();
      ends.back()->record(stream);
    }
  }
  ends.back()->synchronize();
  for (size_t i = 0; i < starts.size(); ++i) {
    times[i % fns.size()].push_back(starts[i]->elapsedTime(*ends[i]) * 1e-3);  // ms -> s
  }
  return times;
}

void Sync(const c10::Device& device) {
  if (!device.is_cpu()) {
    c10::impl::VirtualGuardImpl(device.type()).synchronizeDevice(device.index());
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/*!
 * The warnings scripts/bench.py gives (autokernel_tvm.timing): each series' three consecutive
 * thirds disagree by more than 15% (max - min over min of their medians), and, on the CPU,
 * a 1-minute load average above the cores: timings then are not to be trusted.
 */
std::vector<std::string> TimingWarnings(const std::vector<std::vector<double>>& times,
                                        const std::vector<std::string>& names, bool cpu) {
  std::vector<std::string> warnings;
  for (size_t f = 0; f < times.size(); ++f) {
    const std::vector<double>& t = times[f];
    if (t.size() < 9) continue;  // thirds of fewer than 3 calls say nothing
    std::vector<double> medians;
    for (size_t r = 0; r < 3; ++r) {
      medians.push_back(Median(std::vector<double>(t.begin() + r * t.size() / 3,
                                                   t.begin() + (r + 1) * t.size() / 3)));
    }
    double lo = *std::min_element(medians.begin(), medians.end());
    double hi = *std::max_element(medians.begin(), medians.end());
    if (lo > 0 && (hi - lo) / lo > 0.15) {
      char line[256];
      std::snprintf(line, sizeof(line),
                    "%s: rounds disagree by %.0f%% (> 15%%): something else ran on the machine; "
                    "rerun on a quiet machine",
                    names[f].c_str(), 100 * (hi - lo) / lo);
      warnings.push_back(line);
    }
  }
  double load[1];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpu && getloadavg(load, 1) == 1 && cores > 0 && load[0] > static_cast<double>(cores)) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "the machine is loaded (1-minute load average %.1f on %ld cores): CPU timings "
                  "are unreliable; rerun on a quiet machine",
                  load[0], cores);
    warnings.push_back(line);
  }
  return warnings;
}

double MaxRelError(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kCPU, at::kDouble), w = want.to(at::kCPU, at::kDouble);
  double scale = w.abs().max().item<double>();
  double err = (g - w).abs().max().item<double>();
  return scale > 0 ? err / scale : err;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = ParseArgs(argc, argv);
  if (args.cpu_threads > 0) {
    // As scripts/bench.py --cpu-threads: torch's and TVM's pools (read when TVM's pool starts)
    // spin-wait against each other when both take all cores of a small machine.
    at::set_num_threads(args.cpu_threads);
    setenv("TVM_NUM_THREADS", std::to_string(args.cpu_threads).c_str(), 1);
  }
  try {
    // The registered ops, called as any C++ user of torch.ops.autokernel would.
    auto load_op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("autokernel::load", "")
                       .typed<int64_t(c10::string_view)>();
    auto call_op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("autokernel::call", "")
                       .typed<at::Tensor(int64_t, c10::string_view, at::TensorList)>();
    int64_t handle = load_op.call(args.library);
    auto lib = autokernel::torch_ops::Get(handle);
    const autokernel::Kernel& k =
        lib->kernel(args.kernel.empty() ? lib->kernels().at(0).name : args.kernel);
    // ROCm torch calls HIP devices "cuda" too.
    c10::Device device =
        k.device_type == kDLCPU ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, 0);

    at::Generator gen = at::detail::createCPUGenerator(args.seed);
    std::vector<at::Tensor> inputs;
    for (const autokernel::TensorSpec& spec : k.inputs) {
      at::TensorOptions f32 = at::TensorOptions().dtype(at::kFloat);
      at::Tensor x = IsScale(spec) ? at::rand(spec.shape, gen, f32) * 1.5 + 0.5
                                   : at::randn(spec.shape, gen, f32);
      inputs.push_back(x.to(autokernel::torch_ops::ScalarType(spec.dtype)).to(device));
    }
    if (k.inputs.at(0).dtype == "float32") {
      // An fp32 kernel is compared at its own precision whatever torch's defaults say (cuDNN's
      // allow_tf32 is on by default), as autokernel_tvm.torch.baselines.make_baseline does.
      at::globalContext().setAllowTF32CuBLAS(k.precision == "tf32");
      at::globalContext().setAllowTF32CuDNN(k.precision == "tf32");
    }
    auto baseline = Baseline(k, inputs);
    const c10::string_view name(k.name);
    at::Tensor got = call_op.call(handle, name, inputs);
    at::Tensor want = baseline();
    Sync(device);
    double error = MaxRelError(got, want);
    if (args.max_error >= 0 && !(error <= args.max_error)) {  // NaN fails too
      std::cerr << "autokernel_runner: " << k.name << " disagrees with its ATen baseline: "
                << "max_rel_error " << error << " > --max-error " << args.max_error << "\n";
      return 1;
    }
    if (!args.save_output.empty()) {
      at::Tensor host = got.to(at::kCPU, at::kFloat).contiguous();
      std::ofstream out(args.save_output, std::ios::binary);
      out.write(static_cast<const char*>(host.data_ptr()),
                static_cast<std::streamsize>(host.numel() * sizeof(float)));
      if (!out) throw std::runtime_error("cannot write " + args.save_output);
    }

    // The kernel alone: the runtime call on a preallocated output.
    at::Tensor out = at::empty_like(got);
    DLTensor out_view = autokernel::torch_ops::View(out);
    std::vector<DLTensor> views;
    for (const at::Tensor& t : inputs) views.push_back(autokernel::torch_ops::View(t));
    std::vector<const DLTensor*> ptrs;
    for (const DLTensor& v : views) ptrs.push_back(&v);
    void* stream = nullptr;
    if (!device.is_cpu()) {
      c10::impl::VirtualGuardImpl guard(device.type());
      stream = guard.getStreamNativeHandle(guard.getStream(device));
    }
    std::vector<std::function<void()>> fns = {
        [&] { call_op.call(handle, name, inputs); },
        [&] { lib->Call(k.name, ptrs, &out_view, stream); },
        [&] { baseline(); },
    };
    at::Tensor flush;
    if (!device.is_cpu()) {
      flush = at::empty({256 << 20}, at::TensorOptions(device).dtype(at::kByte));  // 256 MiB
    }
    for (int w = 0; w < args.warmup; ++w) {
      for (auto& fn : fns) fn();
    }
    Sync(device);
    std::vector<std::vector<double>> times = TimeAlternating(fns, args.repeats, device, flush);
    double op_s = Median(times[0]), raw_s = Median(times[1]), base_s = Median(times[2]);
    double flops = static_cast<double>(k.flops);
    char line[1024];
    std::snprintf(line, sizeof(line),
                  "RESULT kernel=%s device=%s us=%.3f kernel_only_us=%.3f matmul_us=%.3f "
                  "tflops=%.4g matmul_tflops=%.4g ratio=%.4f max_rel_error=%.3e repeats=%d",
                  k.name.c_str(), device.str().c_str(), op_s * 1e6, raw_s * 1e6, base_s * 1e6,
                  flops / op_s / 1e12, flops / base_s / 1e12, base_s / op_s, error, args.repeats);
    std::cout << line << std::endl;
    std::vector<std::string> warnings =
        TimingWarnings(times, {"op", "kernel", "baseline"}, device.is_cpu());
    for (const std::string& w : warnings) std::cerr << "warning: " << w << "\n";
    if (!args.json.empty()) {
      std::ofstream js(args.json);
      if (!js) throw std::runtime_error("--json " + args.json + ": cannot write it");
      js << "{\"kernel\": \"" << k.name << "\", \"op\": \"" << k.op << "\", \"device\": \""
         << device.str() << "\", \"latency_us\": " << op_s * 1e6
         << ", \"kernel_only_latency_us\": " << raw_s * 1e6
         << ", \"baseline_latency_us\": " << base_s * 1e6 << ", \"tflops\": " << flops / op_s / 1e12
         << ", \"baseline_tflops\": " << flops / base_s / 1e12 << ", \"ratio\": " << base_s / op_s
         << ", \"max_rel_error\": " << error << ", \"repeats\": " << args.repeats
         << ", \"library_sha256\": \"" << lib->sha256() << "\", \"timing_warnings\": [";
      for (size_t i = 0; i < warnings.size(); ++i) {
        js << (i ? ", " : "") << "\"" << warnings[i] << "\"";  // no quotes or escapes inside
      }
      js << "]}\n";
    }
  } catch (const std::exception& err) {
    std::cerr << "autokernel_runner: " << err.what() << "\n";
    return 1;
  }
  return 0;
}
