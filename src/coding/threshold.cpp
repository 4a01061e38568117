#include "dictlearn/coding/threshold.hpp"

#include <algorithm>
#include <cmath>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

template <typename Scalar>
SoftThreshold<Scalar>::SoftThreshold(Index n_atoms) : n_atoms_(n_atoms) {
  DICTLEARN_ASSERT(n_atoms > 0);
}

template <typename Scalar>
Index SoftThreshold<Scalar>::solve(const MatrixT<Scalar>& /*gram*/,
                                   const Eigen::Ref<const VectorT<Scalar>>& dtx,
                                   const ThresholdOptions& options,
                                   Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(dtx.size() == K && code.size() == K);
  DICTLEARN_ASSERT(options.lambda >= 0.0);
  const Scalar lambda = static_cast<Scalar>(options.lambda);

  Index nonzeros = 0;
  for (Index k = 0; k < K; ++k) {
    const Scalar c = dtx(k);
    Scalar a;
    if (options.positive) {
      a = std::max(c - lambda, Scalar(0));  // a_k = max(dtx_k - lambda, 0)
    } else {
      // a_k = sign(dtx_k) max(|dtx_k| - lambda, 0)
      const Scalar shrunk = std::max(std::abs(c) - lambda, Scalar(0));
      a = c < Scalar(0) ? -shrunk : shrunk;
    }
    code(k) = a;
    if (a != Scalar(0)) ++nonzeros;
  }
  return nonzeros;
}

template class SoftThreshold<double>;
template class SoftThreshold<float>;

}  // namespace dictlearn
