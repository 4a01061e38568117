#include "dictlearn/coding/omp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

namespace {

// The next atom k is linearly dependent on the support when the squared diagonal of its
// Cholesky row, G_kk - ||L^-1 G_Ik||^2 (its squared distance to span(D_I)), is below this
// fraction of G_kk. 1e-12 in double; in float rounding alone reaches ~1e-7, hence 100 eps.
template <typename Scalar>
Scalar dependent_threshold() {
  return std::max(Scalar(1e-12), Scalar(100) * std::numeric_limits<Scalar>::epsilon());
}

}  // namespace

template <typename Scalar>
BatchOmp<Scalar>::BatchOmp(Index n_atoms)
    : n_atoms_(n_atoms),
      chol_(n_atoms, n_atoms),
      alpha_(n_atoms),
      gamma_(n_atoms),
      beta_(n_atoms),
      rhs_(n_atoms),
      work_(n_atoms),
      support_(n_atoms),
      selected_(n_atoms) {
  DICTLEARN_ASSERT(n_atoms > 0);
}

template <typename Scalar>
Index BatchOmp<Scalar>::solve(const MatrixT<Scalar>& gram,
                              const Eigen::Ref<const VectorT<Scalar>>& dtx, Scalar x_sqnorm,
                              const OmpOptions& options, Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(gram.rows() == K && gram.cols() == K);
  DICTLEARN_ASSERT(dtx.size() == K && code.size() == K);
  DICTLEARN_ASSERT(options.nonzeros >= 0 && options.tolerance >= 0.0);

  code.setZero();
  const Index budget = options.nonzeros > 0 ? std::min(options.nonzeros, K) : K;
  const bool use_tolerance = options.tolerance > 0.0;
  const Scalar tolerance = static_cast<Scalar>(options.tolerance);
  // a = 0 already meets the residual target: nothing to select. (scikit-learn's
  // orthogonal_mp_gram would still take one atom before testing.)
  if (use_tolerance && x_sqnorm <= tolerance) return 0;

  const Scalar alpha0_max = dtx.cwiseAbs().maxCoeff();
  if (!(alpha0_max > Scalar(0))) return 0;  // x orthogonal to every atom
  // Correlations below this are rounding noise of alpha = alpha0 - G_I gamma: the residual
  // is (numerically) orthogonal to the dictionary and no atom can reduce it further.
  const Scalar vanished = Scalar(1000) * std::numeric_limits<Scalar>::epsilon() * alpha0_max;
  const Scalar threshold = dependent_threshold<Scalar>();

  alpha_ = dtx;  // alpha = D^T r with r = x
  selected_.setConstant(false);
  Scalar residual = x_sqnorm;  // eps_0 = ||x||^2
  Scalar delta_previous = Scalar(0);
  Index n = 0;
  while (n < budget) {
    // Greedy selection: k = argmax_j |alpha_j| (lowest index on ties, as numpy's argmax).
    // Selected atoms have alpha_j = 0 up to rounding and are skipped explicitly.
    Index k = -1;
    Scalar best = Scalar(0);
    for (Index j = 0; j < K; ++j) {
      if (selected_(j)) continue;
      const Scalar v = std::abs(alpha_(j));
      if (k < 0 || v > best) {
        k = j;
        best = v;
      }
    }
    if (k < 0 || !(best > vanished)) break;

    // Extend L (L L^T = G_II) by one row: L w = G_Ik, new diagonal sqrt(G_kk - ||w||^2).
    for (Index i = 0; i < n; ++i) work_(i) = gram(support_(i), k);
    if (n > 0) {
      chol_.topLeftCorner(n, n).template triangularView<Eigen::Lower>().solveInPlace(work_.head(n));
    }
    const Scalar gkk = gram(k, k);
    const Scalar d2 = gkk - work_.head(n).squaredNorm();
    // D_k in span(D_I): the support has reached the rank of the dictionary.
    if (!(d2 > threshold * gkk)) break;
    chol_.row(n).head(n) = work_.head(n).transpose();
    chol_(n, n) = std::sqrt(d2);
    support_(n) = k;
    selected_(k) = true;
    rhs_(n) = dtx(k);
    ++n;

    // Least squares on the support: gamma_I = G_II^-1 alpha0_I = L^-T L^-1 alpha0_I.
    gamma_.head(n) = rhs_.head(n);
    {
      auto L = chol_.topLeftCorner(n, n).template triangularView<Eigen::Lower>();
      L.solveInPlace(gamma_.head(n));
      L.transpose().solveInPlace(gamma_.head(n));
    }
    // beta = G_{:,I} gamma_I = D^T D_I gamma_I, so alpha = alpha0 - beta = D^T r without
    // ever forming r (the point of Batch-OMP: O(K |I|) per iteration, independent of d).
    beta_.setZero();
    for (Index i = 0; i < n; ++i) beta_ += gamma_(i) * gram.col(support_(i));
    alpha_ = dtx - beta_;

    if (use_tolerance) {
      // ||r_n||^2 = ||x||^2 - gamma_I^T alpha0_I = eps_{n-1} - delta_n + delta_{n-1} with
      // delta_n = gamma_I^T beta_I (= gamma_I^T alpha0_I since G_II gamma_I = alpha0_I).
      Scalar delta = Scalar(0);
      for (Index i = 0; i < n; ++i) delta += gamma_(i) * beta_(support_(i));
      residual += delta_previous - delta;
      delta_previous = delta;
      if (residual <= tolerance) break;
    }
  }

  Index nonzeros = 0;
  for (Index i = 0; i < n; ++i) {
    code(support_(i)) = gamma_(i);
    if (gamma_(i) != Scalar(0)) ++nonzeros;
  }
  return nonzeros;
}

template class BatchOmp<double>;
template class BatchOmp<float>;

}  // namespace dictlearn
