// SPDX-License-Identifier: Apache-2.0
// A JSON value tree for the manifest, parsed by tvm-ffi's parser (tvm/ffi/extra/json.h): the
// runtime links tvm-ffi anyway, so the manifest needs no other JSON library.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace autokernel {

struct Json {
  enum Kind { kNull, kBool, kInt, kFloat, kString, kArray, kObject };
  Kind kind = kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<Json> array;
  std::map<std::string, Json> object;  // sorted by key bytes, as Python's sort_keys=True

  /*! \brief Parse `text`; throws LibraryError "<what>: not valid JSON: <reason>". */
  static Json Parse(const std::string& text, const std::string& what);
  /*! \brief Member `key` of an object, or nullptr (also when this is not an object). */
  const Json* Get(const std::string& key) const;
  /*! \brief Short JSON text of the value, for error messages. */
  std::string Repr() const;
};

/*!
 * \brief The first place where `a` and `b` differ, in key order (depth first), or "" if equal.
 * \param path Set to the field's path, e.g. "kernels[0].op"; `a_repr`/`b_repr` to the values
 *        ("(absent)" for a missing key).
 */
bool FirstDifference(const Json& a, const Json& b, std::string* path, std::string* a_repr,
                     std::string* b_repr);

}  // namespace autokernel
