#pragma once
// Two error channels (as in faiss): `Error` is thrown for caller mistakes and bad input
// (bad parameters, missing files, NaN in data); DICTLEARN_ASSERT aborts on a broken
// internal invariant, which no caller can fix.
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

namespace dictlearn {

/// A user-facing failure. what() is one line that names the culprit (file, dataset,
/// sample or parameter).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

[[noreturn]] void assertion_failed(const char* condition, const char* file, int line);

/// Builds a message from stream-able parts: throw Error(cat("bad K=", k)).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// Runs `task` and returns what it threw (null if nothing): for work inside an OpenMP
/// region, which no exception may leave; rethrow after the region.
template <typename Task>
std::exception_ptr run_caught(const Task& task) {
  try {
    task();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace dictlearn

#define DICTLEARN_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::dictlearn::assertion_failed(#cond, __FILE__, __LINE__))
