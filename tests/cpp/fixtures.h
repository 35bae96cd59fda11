// SPDX-License-Identifier: Apache-2.0
// The library written by tests/cpp/make_library.py, and tampered copies of it.
#pragma once

#include <dlpack/dlpack.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fixtures {

// make_library.py's kernels (M, N, K = 128, 96, 64, float32).
constexpr int64_t M = 128, N = 96, K = 64;
inline const std::string kGemm = "gemm_M128_N96_K64_float32";
inline const std::string kGemmNT = "gemm_nt_M128_N96_K64_float32";

inline std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

/*!
 * Copy `lib` and its manifest to `dir`/`name`; flip one byte of the copy's .so at `flip_at`
 * (a fraction of its size; < 0: no flip) and replace `from` by `to` once in its manifest.
 */
inline std::string TamperedCopy(const std::string& lib, const std::string& dir,
                                const std::string& name, double flip_at, const std::string& from,
                                const std::string& to) {
  std::filesystem::create_directories(dir);
  std::string path = dir + "/" + name;
  std::string so = Read(lib), manifest = Read(lib + ".json");
  if (flip_at >= 0) so[static_cast<size_t>(flip_at * so.size())] ^= 0x01;
  if (!from.empty()) {
    size_t at = manifest.find(from);
    if (at == std::string::npos) throw std::runtime_error("manifest lacks " + from);
    manifest.replace(at, from.size(), to);
  }
  Write(path, so);
  Write(path + ".json", manifest);
  return path;
}

}  // namespace fixtures
