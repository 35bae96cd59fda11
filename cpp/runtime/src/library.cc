// SPDX-License-Identifier: Apache-2.0
// Library::Load (manifest, checksum, embedded manifest, device runtime) and Library::Call.
// The checks and their wording follow autokernel_tvm/torch/loader.py and autokernel_tvm/export.py.
#include <dlfcn.h>
#include <stdlib.h>
#include <tvm/ffi/any.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/c_env_api.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "autokernel/runtime.h"
#include "internal.h"

// Defined in libtvm_runtime.so; its address locates that library (see PromoteTvmRuntime).
extern "C" int TVMBackendParallelLaunch(void*, void*, int);

namespace autokernel {

namespace ffi = tvm::ffi;
using internal::DeviceTypeOf;
using internal::Need;
using internal::OptString;
using internal::ParseKernel;
using internal::ReadFile;

struct Library::Impl {
  std::string path;
  std::string sha256;
  std::string manifest_text;
  std::string target_kind;
  DLDeviceType device_type = kDLCPU;
  std::vector<Kernel> kernels;
  std::map<std::string, ffi::Function> functions;
  std::shared_ptr<void> keep_alive;  // the loaded module (shared per sha256)
};


namespace {

/*!
 * An exported library leaves tvm-ffi's C API (e.g. TVMFFIErrorSetRaisedFromCStrParts) to the
 * global symbol scope, and reaches TVM's thread pool through context symbols that
 * libtvm_runtime.so registers when it loads (without it, parallel kernels segfault:
 * TVM-0.27-NOTES §4). Both are linked into this runtime, but are not global when this runtime is
 * itself dlopen'ed (torch.ops.load_library), so reopen libtvm_runtime.so RTLD_GLOBAL, which makes
 * its dependency libtvm_ffi.so global too (checked: a Python process that never imports tvm
 * runs the parallel test kernel through torch.ops.autokernel). Returns its directory.
 */
std::string PromoteTvmRuntime() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&TVMBackendParallelLaunch), &info) == 0 ||
      info.dli_fname == nullptr) {
    throw LibraryError("cannot locate libtvm_runtime.so in this process (dladdr failed)");
  }
  std::string runtime = info.dli_fname;
  if (dlopen(runtime.c_str(), RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr) {
    throw LibraryError("cannot make " + runtime + " global: " + dlerror());
  }
  size_t slash = runtime.rfind('/');
  return slash == std::string::npos ? "." : runtime.substr(0, slash);
}

/*! Device modules (CUDA, ROCm) register their loaders from a sidecar of libtvm_runtime.so. */
void LoadDeviceRuntime(const std::string& runtime_dir, const std::string& kind,
                       const std::string& path, const std::string& arch) {
  std::string sidecar = runtime_dir + "/libtvm_runtime_" + kind + ".so";
  if (dlopen(sidecar.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
    throw LibraryError(path + ": cannot load a " + kind + " library (" + arch +
                       ") on this machine: the TVM " + kind + " runtime " + sidecar +
                       " did not load (" + dlerror() + "); " + kind +
                       " kernels load only where the " + kind + " driver and runtime are present");
  }
}

int PhysicalCores() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical;
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) cores.emplace(physical, value());
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  return std::max(1u, std::thread::hardware_concurrency());
}

struct LoadedModule {
  void* handle;  // our dlopen of the private copy: reads the embedded manifest
  std::optional<ffi::Module> module;
  std::map<std::string, ffi::Function> functions;
};

std::mutex g_mutex;
// sha256 -> module; never destroyed: a tvm-ffi object must not outlive libtvm_ffi at exit.
auto* g_modules = new std::map<std::string, std::shared_ptr<LoadedModule>>();

void CheckEmbeddedManifest(void* handle, const Json& manifest, const std::string& path) {
  using ManifestFn = const char* (*)();
  auto fn = reinterpret_cast<ManifestFn>(dlsym(handle, "autokernel_manifest"));
  if (fn == nullptr) {
    throw LibraryError(path +
                       ": the library embeds no manifest (no symbol autokernel_manifest), which "
                       "format_version " + std::to_string(kFormatVersion) +
                       " requires: it was exported by an older autokernel-tvm or by another tool; "
                       "re-export it with autokernel_tvm.export");
  }
  Json embedded = Json::Parse(fn(), path + " (embedded manifest)");
  Json body = manifest;
  body.object.erase("sha256");
  std::string field, ours, theirs;
  if (FirstDifference(body, embedded, &field, &ours, &theirs)) {
    throw LibraryError(path + ": manifest field \"" + field + "\" differs from the library: " +
                       ours + " vs " + theirs + "; the manifest " + path +
                       ".json was changed after export (re-export the library)");
  }
}

/*!
 * Why `bytes` cannot be a whole 64-bit little-endian ELF library, or "" (as the Python
 * loader's manifest.elf_problem): dlopen maps the segments the program headers name, and a
 * file cut short has them past its end -- touching those pages is SIGBUS, not an error.
 */
std::string ElfProblem(const std::string& bytes) {
  auto u16 = [&](size_t at) {
    uint16_t v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(v));
    return static_cast<uint64_t>(v);
  };
  auto u64 = [&](size_t at) {
    uint64_t v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(v));
    return v;
  };
  if (bytes.size() < 64 || bytes.compare(0, 4, "\x7f" "ELF") != 0) {
    return "not an ELF shared library";
  }
  if (bytes[4] != 2 || bytes[5] != 1) {
    return "not a 64-bit little-endian ELF library (this loader's format)";
  }
  uint64_t phoff = u64(0x20), shoff = u64(0x28);
  uint64_t phentsize = u16(0x36), phnum = u16(0x38), shentsize = u16(0x3A), shnum = u16(0x3C);
  uint64_t need = std::max(phoff + phnum * phentsize, shoff + shnum * shentsize);
  for (uint64_t i = 0; i < phnum; ++i) {
    uint64_t at = phoff + i * phentsize;
    if (at + 0x28 <= bytes.size()) need = std::max(need, u64(at + 8) + u64(at + 0x20));
  }
  if (bytes.size() < need) {
    return "truncated: the file has " + std::to_string(bytes.size()) +
           " bytes, its ELF headers describe " + std::to_string(need);
  }
  return "";
}

/*!
 * Write `bytes` to a private file named by their sha256, check the manifest it embeds, load it
 * with tvm-ffi, then delete the file (the mapping outlives it). A private copy because dlopen of
 * a path already open returns the old code even when the file was replaced.
 */
std::shared_ptr<LoadedModule> LoadCopy(const std::string& bytes, const std::string& sha,
                                       const Json& manifest, const std::vector<Kernel>& kernels,
                                       const std::string& path,
                                       const std::function<void()>& prepare_runtime) {
  std::string problem = ElfProblem(bytes);
  if (!problem.empty()) throw LibraryError(path + ": " + problem + "; re-export or copy it again");
  const char* tmp = getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/autokernel_libs_XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    throw LibraryError(path + ": cannot create a private directory under " + dir);
  }
  std::string copy = dir + "/" + sha + ".so";
  struct Cleanup {
    std::string file, dir;
    ~Cleanup() {
      unlink(file.c_str());
      rmdir(dir.c_str());
    }
  } cleanup{copy, dir};
  {
    std::ofstream out(copy, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw LibraryError(path + ": cannot write its private copy " + copy);
  }
  auto loaded = std::make_shared<LoadedModule>();
  loaded->handle = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (loaded->handle == nullptr) throw LibraryError(path + ": dlopen failed: " + dlerror());
  try {
    CheckEmbeddedManifest(loaded->handle, manifest, path);
    prepare_runtime();
    try {
      loaded->module = ffi::Module::LoadFromFile(copy);
    } catch (const std::exception& err) {
      throw LibraryError(path + ": TVM cannot load the library: " + err.what());
    }
    for (const Kernel& k : kernels) {
      ffi::Optional<ffi::Function> fn = (*loaded->module)->GetFunction(k.name);
      if (!fn.has_value()) {
        throw LibraryError(path + ": the manifest lists kernel '" + k.name +
                           "', the library lacks it");
      }
      loaded->functions.emplace(k.name, *fn);
    }
  } catch (...) {
    dlclose(loaded->handle);
    throw;
  }
  return loaded;
}

}  // namespace

Library::Library(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::shared_ptr<const Library> Library::Load(const std::string& path, bool verify_checksum) {
  const std::string manifest_path = path + ".json";
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  std::ifstream probe(manifest_path);
  if (!probe) {
    throw LibraryError("no manifest '" + manifest_path +
                       "': libraries are loaded with the manifest that "
                       "autokernel_tvm.export.export "
                       "wrote beside them");
  }
  impl->manifest_text = ReadFile(manifest_path, "manifest");
  Json manifest = Json::Parse(impl->manifest_text, manifest_path);
  const Json* format = manifest.Get("format");
  if (format == nullptr || format->kind != Json::kString || format->s != kFormat) {
    throw LibraryError("'" + manifest_path + "' is not an autokernel-tvm library manifest");
  }
  const Json* version = manifest.Get("format_version");
  if (version == nullptr || version->kind != Json::kInt || version->i != kFormatVersion) {
    throw LibraryError("'" + manifest_path + "' has format_version " +
                       (version == nullptr ? "None" : version->Repr()) +
                       "; this autokernel runtime reads version " +
                       std::to_string(kFormatVersion) +
                       " (the manifest embedded in the library): re-export the library with "
                       "autokernel_tvm.export");
  }
  const std::string& want_sha = Need(manifest, "sha256", Json::kString, manifest_path).s;
  const Json& target = Need(manifest, "target", Json::kObject, manifest_path);
  impl->target_kind = Need(target, "kind", Json::kString, manifest_path).s;
  impl->device_type = DeviceTypeOf(impl->target_kind, manifest_path);
  for (const Json& k : Need(manifest, "kernels", Json::kArray, manifest_path).array) {
    impl->kernels.push_back(ParseKernel(k, manifest_path));
  }

  const std::string bytes = ReadFile(path, "library");
  impl->sha256 = Sha256Hex(bytes);
  if (verify_checksum && impl->sha256 != want_sha) {
    throw LibraryError(path + ": sha256 mismatch: the manifest says " + want_sha +
                       ", the file has " + impl->sha256 +
                       "; the library was changed after export (re-export it, or pass "
                       "verify_checksum=false to load it anyway)");
  }
  const std::string arch = OptString(target, "arch");
  const std::string device_code = OptString(manifest, "device_code");
  // Runs once the embedded manifest has matched, so a refusal here is about the library itself.
  auto prepare_runtime = [&](const std::string& runtime_dir) {
    if (impl->target_kind == "llvm") {
      // TVM's pool defaults to half the hardware threads (autokernel_tvm.targets.use_cores).
      setenv("TVM_NUM_THREADS", std::to_string(PhysicalCores()).c_str(), 0);
      return;
    }
    if (device_code != "binary") {
      throw LibraryError(path + ": the " + impl->target_kind + " device code is '" +
                         device_code +
                         "', compiled at load time by a TVM Python callback that a C++ process "
                         "lacks; re-export the library on a machine with a " +
                         impl->target_kind + " driver so that it embeds a binary");
    }
    LoadDeviceRuntime(runtime_dir, impl->target_kind, path, arch);
  };

  std::lock_guard<std::mutex> lock(g_mutex);
  auto cached = g_modules->find(impl->sha256);
  if (cached != g_modules->end()) {
    CheckEmbeddedManifest(cached->second->handle, manifest, path);
  } else {
    std::string runtime_dir = PromoteTvmRuntime();
    auto loaded = LoadCopy(bytes, impl->sha256, manifest, impl->kernels, path,
                           [&] { prepare_runtime(runtime_dir); });
    cached = g_modules->emplace(impl->sha256, loaded).first;
  }
  for (const Kernel& k : impl->kernels) {
    auto fn = cached->second->functions.find(k.name);
    if (fn == cached->second->functions.end()) {
      throw LibraryError(path + ": the manifest lists kernel '" + k.name +
                         "', the library lacks it");
    }
    impl->functions.emplace(k.name, fn->second);
  }
  impl->keep_alive = cached->second;
  return std::make_shared<const Library>(impl);
}

const std::string& Library::path() const { return impl_->path; }
const std::string& Library::sha256() const { return impl_->sha256; }
const std::string& Library::target_kind() const { return impl_->target_kind; }
DLDeviceType Library::device_type() const { return impl_->device_type; }
const std::string& Library::manifest_text() const { return impl_->manifest_text; }
const std::vector<Kernel>& Library::kernels() const { return impl_->kernels; }

const Kernel& Library::kernel(const std::string& name) const {
  for (const Kernel& k : impl_->kernels) {
    if (k.name == name) return k;
  }
  std::string names;
  for (const Kernel& k : impl_->kernels) names += (names.empty() ? "" : ", ") + k.name;
  throw ArgumentError(impl_->path + ": no kernel '" + name + "'; kernels: [" + names + "]");
}

void Library::Call(const std::string& name, const std::vector<const DLTensor*>& inputs,
                   DLTensor* out, void* stream) const {
  const Kernel& k = kernel(name);
  k.CheckInputs(inputs);
  k.CheckOutput(out, inputs.empty() ? nullptr : inputs[0]);
  std::vector<ffi::AnyView> args;
  args.reserve(inputs.size() + 1);
  for (const DLTensor* t : inputs) args.emplace_back(const_cast<DLTensor*>(t));
  args.emplace_back(out);
  const ffi::Function& fn = impl_->functions.at(name);
  // tvm-ffi launches GPU kernels on the stream set for the device; set it for this call only.
  struct StreamGuard {
    DLDevice device;
    bool active;
    TVMFFIStreamHandle previous = nullptr;
    StreamGuard(DLDevice dev, void* stream) : device(dev), active(stream != nullptr) {
      if (active) TVMFFIEnvSetStream(device.device_type, device.device_id, stream, &previous);
    }
    ~StreamGuard() {
      if (active) TVMFFIEnvSetStream(device.device_type, device.device_id, previous, nullptr);
    }
  } guard(out->device, k.device_type == kDLCPU ? nullptr : stream);
  try {
    ffi::Any result;
    fn.CallPacked(args.data(), static_cast<int32_t>(args.size()), &result);
  } catch (const std::exception& err) {
    throw Error(k.qualname + ": the kernel failed: " + err.what());
  }
}

void Library::Call(const std::string& name, const std::vector<DLManagedTensor*>& inputs,
                   DLManagedTensor* out, void* stream) const {
  std::vector<const DLTensor*> views;
  views.reserve(inputs.size());
  for (DLManagedTensor* t : inputs) views.push_back(t == nullptr ? nullptr : &t->dl_tensor);
  Call(name, views, out == nullptr ? nullptr : &out->dl_tensor, stream);
}

}  // namespace autokernel