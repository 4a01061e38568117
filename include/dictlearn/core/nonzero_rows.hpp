#pragma once
// The rows of a code that hold nonzeros, found without a branch per row: a branch would
// mispredict at every nonzero of a sparse code, and that was most of the cost of the scan
// (the trainer's residual norms and statistics scan every code of every minibatch).
#include "dictlearn/core/types.hpp"

namespace dictlearn {

/// Writes the indices k < K with values[k] != 0, in increasing order, to `rows` (room for
/// K entries); returns how many.
template <typename Scalar>
Index nonzero_rows(const Scalar* values, Index K, Index* rows) {
  Index count = 0;
  for (Index k = 0; k < K; ++k) {
    rows[count] = k;  // kept only if the count moves past it
    count += values[k] != Scalar(0) ? 1 : 0;
  }
  return count;
}

}  // namespace dictlearn
