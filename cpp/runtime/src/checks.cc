// SPDX-License-Identifier: Apache-2.0
// Argument checks of a call, worded as autokernel_tvm/torch/loader.py's KernelSpec.check.
#include <algorithm>

#include "internal.h"

namespace autokernel {
namespace {

std::string DeviceString(DLDevice dev) {
  switch (dev.device_type) {
    case kDLCPU:
      return "cpu";
    case kDLCUDA:
      return "cuda:" + std::to_string(dev.device_id);
    case kDLCUDAHost:
      return "cuda_host";
    case kDLROCM:
      return "rocm:" + std::to_string(dev.device_id);
    default:
      return "device_type " + std::to_string(static_cast<int>(dev.device_type)) + ":" +
             std::to_string(dev.device_id);
  }
}

std::string DeviceTypeName(DLDeviceType type) {
  return type == kDLCPU ? "cpu" : type == kDLCUDA ? "cuda" : type == kDLROCM ? "rocm" : "other";
}

bool SameDType(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

// torch's is_contiguous(): row-major strides, ignoring dimensions of size 1.
bool IsContiguous(const DLTensor* t) {
  if (t->strides == nullptr) return true;
  int64_t expected = 1;
  for (int d = t->ndim - 1; d >= 0; --d) {
    if (t->shape[d] == 0) return true;
    if (t->shape[d] != 1 && t->strides[d] != expected) return false;
    expected *= t->shape[d];
  }
  return true;
}

void CheckTensor(const Kernel& k, const DLTensor* arg, const TensorSpec& spec, bool check_device,
                 const std::string& role) {
  std::string where = k.qualname + ": " + role + " '" + spec.name + "'";
  if (arg == nullptr) throw ArgumentError(where + " is a null tensor");
  if (!SameDType(arg->dtype, spec.dl_dtype)) {
    throw ArgumentError(where + " has dtype " + DTypeName(arg->dtype) + ", expected " + spec.dtype);
  }
  if (arg->ndim != static_cast<int>(spec.shape.size()) ||
      !std::equal(spec.shape.begin(), spec.shape.end(), arg->shape)) {
    throw ArgumentError(where + " has shape " + ShapeString(arg->shape, arg->ndim) + ", expected " +
                        ShapeString(spec.shape.data(), static_cast<int>(spec.shape.size())));
  }
  if (check_device && arg->device.device_type != k.device_type) {
    throw ArgumentError(where + " is on " + DeviceString(arg->device) +
                        ", but this kernel was built for " + k.target + " (" +
                        (k.arch.empty() ? "None" : k.arch) + "): expected a " +
                        DeviceTypeName(k.device_type) + " tensor");
  }
}

void CheckContiguous(const Kernel& k, const DLTensor* arg, const std::string& name,
                     const std::string& role) {
  if (IsContiguous(arg)) return;
  std::string where = k.qualname + ": " + role + " '" + name + "'";
  throw ArgumentError(where + " is not contiguous (strides " +
                      ShapeString(arg->strides, arg->ndim) +
                      "); pass .contiguous()");
}

}  // namespace

std::string DTypeName(DLDataType dtype) {
  std::string base;
  switch (dtype.code) {
    case kDLFloat:
      base = "float";
      break;
    case kDLBfloat:
      base = "bfloat";
      break;
    case kDLInt:
      base = "int";
      break;
    case kDLUInt:
      base = "uint";
      break;
    case kDLBool:
      return "bool";
    case kDLFloat8_e4m3fn:
      return "float8_e4m3fn";
    case kDLFloat8_e5m2:
      return "float8_e5m2";
    default:
      base = "code" + std::to_string(dtype.code) + "_";
  }
  std::string name = base + std::to_string(dtype.bits);
  return dtype.lanes == 1 ? name : name + "x" + std::to_string(dtype.lanes);
}

std::string ShapeString(const int64_t* shape, int ndim) {
  std::string out = "(";
  for (int d = 0; d < ndim; ++d) out += (d ? ", " : "") + std::to_string(shape[d]);
  return out + (ndim == 1 ? ",)" : ")");
}

void Kernel::CheckInputs(const std::vector<const DLTensor*>& args, bool check_device) const {
  if (args.size() != inputs.size()) {
    std::string names;
    for (const TensorSpec& t : inputs) names += (names.empty() ? "" : ", ") + t.name;
    throw ArgumentError(qualname + ": takes " + std::to_string(inputs.size()) + " tensors (" +
                        names + "), got " + std::to_string(args.size()));
  }
  const DLTensor* first = nullptr;
  for (size_t i = 0; i < args.size(); ++i) {
    CheckTensor(*this, args[i], inputs[i], check_device, "argument");
    if (check_device && first != nullptr &&
        (args[i]->device.device_type != first->device.device_type ||
         args[i]->device.device_id != first->device.device_id)) {
      throw ArgumentError(qualname + ": argument '" + inputs[i].name + "' is on " +
                          DeviceString(args[i]->device) + " but '" + inputs[0].name + "' is on " +
                          DeviceString(first->device));
    }
    if (first == nullptr) first = args[i];
    CheckContiguous(*this, args[i], inputs[i].name, "argument");
  }
}

void Kernel::CheckOutput(const DLTensor* out, const DLTensor* first_input) const {
  CheckTensor(*this, out, output, true, "output");
  if (first_input != nullptr && (out->device.device_type != first_input->device.device_type ||
                                 out->device.device_id != first_input->device.device_id)) {
    throw ArgumentError(qualname + ": output '" + output.name + "' is on " +
                        DeviceString(out->device) + " but '" + inputs[0].name + "' is on " +
                        DeviceString(first_input->device));
  }
  CheckContiguous(*this, out, output.name, "output");
}

}  // namespace autokernel
