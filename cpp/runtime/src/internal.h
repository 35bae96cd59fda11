// SPDX-License-Identifier: Apache-2.0
// Shared by the runtime's sources: manifest parsing (manifest.cc).
#pragma once

#include <string>
#include <vector>

#include "autokernel/runtime.h"
#include "json.h"

namespace autokernel {
namespace internal {

/*! \brief The bytes of a file; LibraryError "<what> <path>: cannot be read". */
std::string ReadFile(const std::string& path, const std::string& what);
/*! \brief Member `key` of `obj`, of `kind`; LibraryError naming `where` otherwise. */
const Json& Need(const Json& obj, const std::string& key, Json::Kind kind,
                 const std::string& where);
/*! \brief Member `key` if it is a string, else "". */
std::string OptString(const Json& obj, const std::string& key);
/*! \brief DLPack device type of a target kind (llvm, cuda, rocm). */
DLDeviceType DeviceTypeOf(const std::string& kind, const std::string& where);
/*! \brief One element of the manifest's "kernels". */
Kernel ParseKernel(const Json& j, const std::string& where);

}  // namespace internal
}  // namespace autokernel
