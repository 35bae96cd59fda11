// SPDX-License-Identifier: Apache-2.0
#include "json.h"

#include <tvm/ffi/any.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/map.h>
#include <tvm/ffi/extra/json.h>
#include <tvm/ffi/string.h>

#include <cstdio>
#include <utility>

#include "autokernel/runtime.h"

namespace autokernel {
namespace {

namespace ffi = tvm::ffi;

Json FromAny(const ffi::Any& value) {
  Json out;
  switch (value.type_index()) {
    case ffi::TypeIndex::kTVMFFINone:
      break;
    case ffi::TypeIndex::kTVMFFIBool:
      out.kind = Json::kBool;
      out.b = value.cast<bool>();
      break;
    case ffi::TypeIndex::kTVMFFIInt:
      out.kind = Json::kInt;
      out.i = value.cast<int64_t>();
      break;
    case ffi::TypeIndex::kTVMFFIFloat:
      out.kind = Json::kFloat;
      out.f = value.cast<double>();
      break;
    case ffi::TypeIndex::kTVMFFISmallStr:
    case ffi::TypeIndex::kTVMFFIStr:
      out.kind = Json::kString;
      out.s = std::string(value.cast<ffi::String>());
      break;
    case ffi::TypeIndex::kTVMFFIArray:
      out.kind = Json::kArray;
      for (const ffi::Any& item : value.cast<ffi::Array<ffi::Any>>()) {
        out.array.push_back(FromAny(item));
      }
      break;
    case ffi::TypeIndex::kTVMFFIMap:
      out.kind = Json::kObject;
      for (const auto& kv : value.cast<ffi::Map<ffi::Any, ffi::Any>>()) {
        out.object.emplace(std::string(kv.first.cast<ffi::String>()), FromAny(kv.second));
      }
      break;
    default:
      throw LibraryError("JSON value of unsupported type " + value.GetTypeKey());
  }
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Json Json::Parse(const std::string& text, const std::string& what) {
  ffi::String error;
  ffi::Any value;
  try {
    value = ffi::json::Parse(ffi::String(text), &error);
  } catch (const std::exception& err) {
    throw LibraryError(what + ": not valid JSON: " + err.what());
  }
  if (!error.empty()) throw LibraryError(what + ": not valid JSON: " + std::string(error));
  return FromAny(value);
}

const Json* Json::Get(const std::string& key) const {
  if (kind != kObject) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &it->second;
}

std::string Json::Repr() const {
  char buf[32];
  switch (kind) {
    case kNull:
      return "null";
    case kBool:
      return b ? "true" : "false";
    case kInt:
      return std::to_string(i);
    case kFloat:
      std::snprintf(buf, sizeof(buf), "%.17g", f);
      return buf;
    case kString:
      return Quote(s);
    case kArray:
      return "[... " + std::to_string(array.size()) + " items]";
    case kObject:
      return "{... " + std::to_string(object.size()) + " keys}";
  }
  return "?";
}

bool FirstDifference(const Json& a, const Json& b, std::string* path, std::string* a_repr,
                     std::string* b_repr) {
  auto differ = [&](const std::string& a_text, const std::string& b_text) {
    *a_repr = a_text;
    *b_repr = b_text;
    return true;
  };
  if (a.kind != b.kind) return differ(a.Repr(), b.Repr());
  switch (a.kind) {
    case Json::kNull:
      return false;
    case Json::kBool:
      return a.b != b.b && differ(a.Repr(), b.Repr());
    case Json::kInt:
      return a.i != b.i && differ(a.Repr(), b.Repr());
    case Json::kFloat:
      return a.f != b.f && differ(a.Repr(), b.Repr());
    case Json::kString:
      return a.s != b.s && differ(a.Repr(), b.Repr());
    case Json::kArray: {
      size_t n = std::max(a.array.size(), b.array.size());
      for (size_t k = 0; k < n; ++k) {
        std::string sub = *path + "[" + std::to_string(k) + "]";
        if (k >= a.array.size() || k >= b.array.size()) {
          *path = sub;
          return differ(k < a.array.size() ? a.array[k].Repr() : "(absent)",
                        k < b.array.size() ? b.array[k].Repr() : "(absent)");
        }
        std::string saved = *path;
        *path = sub;
        if (FirstDifference(a.array[k], b.array[k], path, a_repr, b_repr)) return true;
        *path = saved;
      }
      return false;
    }
    case Json::kObject: {
      std::map<std::string, int> keys;  // union of both key sets, in sorted order
      for (const auto& kv : a.object) keys[kv.first] |= 1;
      for (const auto& kv : b.object) keys[kv.first] |= 2;
      for (const auto& [key, where] : keys) {
        std::string sub = path->empty() ? key : *path + "." + key;
        if (where != 3) {
          *path = sub;
          return differ(where & 1 ? a.object.at(key).Repr() : "(absent)",
                        where & 2 ? b.object.at(key).Repr() : "(absent)");
        }
        std::string saved = *path;
        *path = sub;
        if (FirstDifference(a.object.at(key), b.object.at(key), path, a_repr, b_repr)) return true;
        *path = saved;
      }
      return false;
    }
  }
  return false;
}

}  // namespace autokernel
