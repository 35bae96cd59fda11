// SPDX-License-Identifier: Apache-2.0
// autokernel_runtime: load a kernel library exported by autokernel_tvm.export and call its
// kernels on DLPack tensors, without Python.
//
// Read first: Library::Load and Library::Call. Load checks, in this order, and refuses with a
// LibraryError naming the file and the fix:
//   1. the manifest <lib>.so.json: "format" is "autokernel-tvm-library", "format_version" is 2;
//   2. sha256 of the .so equals the manifest's "sha256";
//   3. the manifest without "sha256" equals the copy the library embeds (the C symbol
//      `const char* autokernel_manifest(void)`), naming the first field that differs;
//   4. the device runtime is present (libtvm_runtime_<kind>.so beside libtvm_runtime.so) and the
//      device code is a binary (CUDA source is compiled at load time by a Python callback).
// Call checks the arguments exactly as autokernel_tvm/torch/loader.py does (count, dtype,
// shape, device type, one device, contiguity) and throws ArgumentError with the same wording.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace autokernel {

/*! \brief Base of every error the runtime throws; what() is one line naming the file/argument. */
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/*! \brief The library cannot be loaded: manifest, checksum, embedded manifest, device runtime. */
class LibraryError : public Error {
 public:
  using Error::Error;
};

/*! \brief A call's arguments do not match the kernel (wording equal to the Python loader's). */
class ArgumentError : public Error {
 public:
  using Error::Error;
};

/*! \brief Manifest format this runtime reads. */
inline constexpr const char* kFormat = "autokernel-tvm-library";
inline constexpr int kFormatVersion = 2;
/*! \brief Namespace of the kernels' qualified names (as torch.ops.autokernel.<name>). */
inline constexpr const char* kNamespace = "autokernel";

/*! \brief One tensor a kernel takes or returns. */
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;  // "float32", "float16", "bfloat16", ...
  DLDataType dl_dtype;
};

/*! \brief What one kernel computes and accepts, from its manifest entry. */
struct Kernel {
  std::string name;      // the TVM function name, e.g. "gemm_nt_M4096_N4096_K4096_float16"
  std::string qualname;  // "autokernel.<name>", used in error messages
  std::string op;        // "gemm", "gemm_nt", ...
  std::string layout;    // "A@B", "A@B.T", ...
  std::string target;    // "llvm", "cuda", "rocm"
  std::string arch;      // may be empty
  std::string precision;  // "", "tf32" (fp32 as TF32), "fast_accum" (fp8 running sum)
  std::vector<int64_t> shape;
  int64_t flops = 0;
  std::vector<TensorSpec> inputs;
  TensorSpec output;
  DLDeviceType device_type = kDLCPU;

  /*!
   * \brief Check the inputs of a call (not the output); throws ArgumentError.
   * \param args The input tensors, in the manifest's order.
   * \param check_device False for shape inference on meta tensors (no device to check).
   */
  void CheckInputs(const std::vector<const DLTensor*>& args, bool check_device = true) const;
  /*! \brief Check an output tensor against the manifest's output and the first input's device. */
  void CheckOutput(const DLTensor* out, const DLTensor* first_input) const;
};

/*! \brief An exported kernel library, loaded and checked; share it freely (immutable). */
class Library {
 public:
  /*!
   * \brief Load `path` (a .so written by autokernel_tvm.export; its manifest beside it).
   * \param path The library; the manifest is path + ".json".
   * \param verify_checksum Refuse a library whose sha256 differs from the manifest's (as the
   *        Python loader's verify_checksum). The embedded manifest is compared in any case.
   * \throws LibraryError with the reason and the fix.
   *
   * The library is loaded from a private copy (dlopen of a path already open returns the old
   * code, even if the file was replaced), once per sha256 per process.
   */
  static std::shared_ptr<const Library> Load(const std::string& path, bool verify_checksum = true);

  const std::string& path() const;
  /*! \brief sha256 of the loaded bytes (hex). */
  const std::string& sha256() const;
  /*! \brief The manifest's target kind: "llvm", "cuda" or "rocm". */
  const std::string& target_kind() const;
  /*! \brief DLPack device type of the kernels' tensors. */
  DLDeviceType device_type() const;
  /*! \brief The manifest file's text. */
  const std::string& manifest_text() const;
  const std::vector<Kernel>& kernels() const;
  /*! \brief The kernel named `name`; throws ArgumentError listing the known names. */
  const Kernel& kernel(const std::string& name) const;

  /*!
   * \brief Run kernel `name`: check the arguments, then call it (out is written in place).
   * \param stream For GPU kernels, the stream to launch on (cudaStream_t); nullptr keeps the
   *        stream tvm-ffi has for the device (the default stream unless someone set one).
   * \throws ArgumentError for bad arguments, Error if the kernel itself fails.
   */
  void Call(const std::string& name, const std::vector<const DLTensor*>& inputs, DLTensor* out,
            void* stream = nullptr) const;
  /*! \brief Call on DLManagedTensors (ownership stays with the caller). */
  void Call(const std::string& name, const std::vector<DLManagedTensor*>& inputs,
            DLManagedTensor* out, void* stream = nullptr) const;

  struct Impl;
  explicit Library(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

/*! \brief DLPack dtype name as the manifest writes it ("float32", "bfloat16", "int64", ...). */
std::string DTypeName(DLDataType dtype);
/*! \brief Shape as Python prints a tuple: "(128, 64)", "(5,)", "()". */
std::string ShapeString(const int64_t* shape, int ndim);
/*! \brief Hex sha256 of a byte string. */
std::string Sha256Hex(const std::string& bytes);

}  // namespace autokernel
