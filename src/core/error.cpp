#include "dictlearn/core/error.hpp"

#include <cstdio>
#include <cstdlib>

namespace dictlearn {

void assertion_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "dictlearn: internal error: assertion '%s' failed at %s:%d\n", condition,
               file, line);
  std::abort();
}

}  // namespace dictlearn
