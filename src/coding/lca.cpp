#include "dictlearn/coding/lca.hpp"

#include <algorithm>
#include <cmath>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

template <typename Scalar>
Lca<Scalar>::Lca(Index n_atoms)
    : n_atoms_(n_atoms), potential_(n_atoms), inhibition_(n_atoms), active_(n_atoms) {
  DICTLEARN_ASSERT(n_atoms > 0);
}

template <typename Scalar>
Index Lca<Scalar>::solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
                         const LcaOptions& options, Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(gram.rows() == K && gram.cols() == K && dtx.size() == K && code.size() == K);
  const Scalar lambda = static_cast<Scalar>(options.lambda);
  const Scalar rate = static_cast<Scalar>(options.dt / options.tau);
  DICTLEARN_ASSERT(lambda >= 0 && rate > 0 && rate <= 1);
  const bool soft = options.threshold == LcaOptions::Threshold::soft;
  const bool positive = options.positive;
  // a = T(u), written into `code`; returns |active| and fills active_.
  const auto threshold = [&]() {
    Index n = 0;
    for (Index k = 0; k < K; ++k) {
      const Scalar u = potential_(k);
      Scalar a = 0;
      if (soft) {
        const Scalar shrunk = std::max(std::abs(u) - lambda, Scalar(0));
        a = u < 0 ? -shrunk : shrunk;
      } else if (std::abs(u) > lambda) {
        a = u;
      }
      if (positive) a = std::max(a, Scalar(0));
      code(k) = a;
      if (a != Scalar(0)) active_(n++) = k;
    }
    return n;
  };

  if (options.warm_start) {
    // The potentials the dynamics hold still at for the given code: u = b - (G - I) a
    // (at a fixed point this thresholds back to a itself).
    potential_ = dtx;
    for (Index k = 0; k < K; ++k)
      if (code(k) != Scalar(0)) {
        potential_.noalias() -= code(k) * gram.col(k);
        potential_(k) += code(k);
      }
  } else {
    potential_.setZero();
  }
  Index n = threshold();
  const Scalar scale = std::max(dtx.cwiseAbs().maxCoeff(), std::numeric_limits<Scalar>::min());
  const Scalar stop = static_cast<Scalar>(options.tol) * scale;
  steps_ = 0;
  while (steps_ < options.steps) {
    // (G - I) a from the active neurons' columns of G only.
    inhibition_.setZero();
    for (Index q = 0; q < n; ++q) {
      const Index k = active_(q);
      inhibition_ += code(k) * gram.col(k);
      inhibition_(k) -= code(k);
    }
    Scalar largest_change = 0;
    for (Index k = 0; k < K; ++k) {
      const Scalar change = rate * (dtx(k) - potential_(k) - inhibition_(k));
      potential_(k) += change;
      largest_change = std::max(largest_change, std::abs(change));
    }
    ++steps_;
    n = threshold();
    if (largest_change <= stop) break;
  }
  return n;
}

template class Lca<double>;
template class Lca<float>;

}  // namespace dictlearn
