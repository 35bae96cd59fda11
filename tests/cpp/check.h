// SPDX-License-Identifier: Apache-2.0
// Minimal checks for the C++ tests (no test framework is available offline): a failed check
// prints file:line and the reason, and the test exits non-zero at the end.
#pragma once

#include <exception>
#include <iostream>
#include <string>

namespace check {
inline int failures = 0;

inline void Fail(const char* file, int line, const std::string& what) {
  std::cerr << file << ":" << line << ": FAILED: " << what << "\n";
  ++failures;
}

inline int Done(const char* name) {
  std::cout << name << ": " << (failures ? "FAILED" : "ok") << " (" << failures
            << " failure(s))\n";
  return failures ? 1 : 0;
}
}  // namespace check

#define CHECK_TRUE(cond)                                                        \
  do {                                                                          \
    if (!(cond)) check::Fail(__FILE__, __LINE__, "expected true: " #cond);      \
  } while (0)

// Run `stmt`; it must throw `Type` whose what() contains `needle`.
#define CHECK_THROWS(Type, needle, stmt)                                                   \
  do {                                                                                     \
    try {                                                                                  \
      stmt;                                                                                \
      check::Fail(__FILE__, __LINE__, "no exception from: " #stmt);                        \
    } catch (const Type& err) {                                                            \
      if (std::string(err.what()).find(needle) == std::string::npos) {                     \
        check::Fail(__FILE__, __LINE__,                                                    \
                    std::string("message lacks [") + (needle) + "]: " + err.what());        \
      } else {                                                                             \
        std::cout << "  ok, " #Type ": " << err.what() << "\n";                            \
      }                                                                                    \
    } catch (const std::exception& err) {                                                  \
      check::Fail(__FILE__, __LINE__, std::string("wrong exception type: ") + err.what()); \
    }                                                                                      \
  } while (0)

// Run `stmt`; it must throw some std::exception whose what() contains `needle`.
#define CHECK_THROWS_ANY(needle, stmt)                                                 \
  do {                                                                                 \
    try {                                                                              \
      stmt;                                                                            \
      check::Fail(__FILE__, __LINE__, "no exception from: " #stmt);                    \
    } catch (const std::exception& err) {                                              \
      if (std::string(err.what()).find(needle) == std::string::npos) {                 \
        check::Fail(__FILE__, __LINE__,                                                \
                    std::string("message lacks [") + (needle) + "]: " + err.what());    \
      }                                                                                \
    }                                                                                  \
  } while (0)
