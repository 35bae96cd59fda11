// SPDX-License-Identifier: Apache-2.0
// Reading the manifest (autokernel_tvm/export.py writes it) into Kernel specs.
#include <fstream>
#include <sstream>

#include "internal.h"

namespace autokernel {
namespace internal {

std::string ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LibraryError(what + " " + path + ": cannot be read (missing or no permission)");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

const Json& Need(const Json& obj, const std::string& key, Json::Kind kind,
                 const std::string& where) {
  const Json* v = obj.Get(key);
  if (v == nullptr || v->kind != kind) {
    throw LibraryError(where + ": manifest field \"" + key + "\" is missing or of the wrong type");
  }
  return *v;
}

std::string OptString(const Json& obj, const std::string& key) {
  const Json* v = obj.Get(key);
  return v != nullptr && v->kind == Json::kString ? v->s : "";
}

namespace {

std::vector<int64_t> Shape(const Json& arr, const std::string& where) {
  std::vector<int64_t> out;
  for (const Json& d : arr.array) {
    if (d.kind != Json::kInt) throw LibraryError(where + ": a shape holds a non-integer");
    out.push_back(d.i);
  }
  return out;
}

DLDataType ParseDType(const std::string& name, const std::string& where) {
  // The dtypes autokernel_tvm.torch.loader maps to torch (TORCH_DTYPES).
  if (name == "float32") return DLDataType{kDLFloat, 32, 1};
  if (name == "float16") return DLDataType{kDLFloat, 16, 1};
  if (name == "bfloat16") return DLDataType{kDLBfloat, 16, 1};
  if (name == "float8_e4m3fn") return DLDataType{kDLFloat8_e4m3fn, 8, 1};
  if (name == "float8_e5m2") return DLDataType{kDLFloat8_e5m2, 8, 1};
  throw LibraryError(where + ": dtype '" + name +
                     "' is not supported; known: ['bfloat16', 'float16', 'float32', "
                     "'float8_e4m3fn', 'float8_e5m2']");
}

TensorSpec ParseTensor(const Json& j, const std::string& where) {
  if (j.kind != Json::kObject) throw LibraryError(where + ": a tensor entry is not an object");
  TensorSpec t;
  t.name = Need(j, "name", Json::kString, where).s;
  t.shape = Shape(Need(j, "shape", Json::kArray, where), where);
  t.dtype = Need(j, "dtype", Json::kString, where).s;
  t.dl_dtype = ParseDType(t.dtype, where);
  return t;
}

}  // namespace

DLDeviceType DeviceTypeOf(const std::string& kind, const std::string& where) {
  // torch/loader.py DEVICE_TYPES; ROCm torch calls HIP "cuda" but DLPack says kDLROCM.
  if (kind == "llvm") return kDLCPU;
  if (kind == "cuda") return kDLCUDA;
  if (kind == "rocm") return kDLROCM;
  throw LibraryError(where + ": target kind '" + kind + "' is not one of llvm, cuda, rocm");
}

Kernel ParseKernel(const Json& j, const std::string& where) {
  if (j.kind != Json::kObject) throw LibraryError(where + ": a kernels[] entry is not an object");
  Kernel k;
  k.name = Need(j, "name", Json::kString, where).s;
  k.qualname = std::string(kNamespace) + "." + k.name;
  k.op = Need(j, "op", Json::kString, where).s;
  k.layout = OptString(j, "layout");
  k.target = Need(j, "target", Json::kString, where).s;
  k.arch = OptString(j, "arch");
  k.precision = OptString(j, "precision");
  k.shape = Shape(Need(j, "shape", Json::kArray, where), where);
  const Json* flops = j.Get("flops");
  k.flops = flops != nullptr && flops->kind == Json::kInt ? flops->i : 0;
  for (const Json& a : Need(j, "inputs", Json::kArray, where).array) {
    k.inputs.push_back(ParseTensor(a, where));
  }
  k.output = ParseTensor(Need(j, "output", Json::kObject, where), where);
  k.device_type = DeviceTypeOf(k.target, where);
  return k;
}

}  // namespace internal
}  // namespace autokernel
