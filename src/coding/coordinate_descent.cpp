#include "dictlearn/coding/coordinate_descent.hpp"

#include <algorithm>
#include <cmath>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

template <typename Scalar>
CoordinateDescentLasso<Scalar>::CoordinateDescentLasso(Index n_atoms)
    : n_atoms_(n_atoms), correlation_(n_atoms) {
  DICTLEARN_ASSERT(n_atoms > 0);
}

template <typename Scalar>
Scalar CoordinateDescentLasso<Scalar>::gap(const Eigen::Ref<const VectorT<Scalar>>& dtx,
                                           Scalar x_sqnorm, Scalar lambda, bool positive,
                                           const Eigen::Ref<const VectorT<Scalar>>& code) const {
  // Dual norm of c: max_j |c_j| (positive: max_j c_j, only the upper bound c_j <= lambda binds).
  const Scalar dual_norm = positive ? correlation_.maxCoeff() : correlation_.cwiseAbs().maxCoeff();
  const Scalar dtx_dot_a = dtx.dot(code);
  // ||r||^2 = ||x||^2 - 2 dtx^T a + a^T G a, with G a = dtx - c.
  const Scalar r_sqnorm = x_sqnorm - dtx_dot_a - code.dot(correlation_);
  const Scalar l1 = code.template lpNorm<1>();
  // Dual point theta = s r with s = min(1, lambda / dual_norm), feasible: |D^T theta| <= lambda.
  const Scalar s = dual_norm > lambda ? lambda / dual_norm : Scalar(1);
  // gap = P(a) - D(theta) = 0.5 ||r||^2 + lambda ||a||_1 - 0.5 ||x||^2 + 0.5 ||x - s r||^2.
  return Scalar(0.5) * (Scalar(1) + s * s) * r_sqnorm + lambda * l1 - s * x_sqnorm + s * dtx_dot_a;
}

template <typename Scalar>
Index CoordinateDescentLasso<Scalar>::solve(const MatrixT<Scalar>& gram,
                                            const Eigen::Ref<const VectorT<Scalar>>& dtx,
                                            Scalar x_sqnorm,
                                            const CoordinateDescentOptions& options,
                                            Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(gram.rows() == K && gram.cols() == K);
  DICTLEARN_ASSERT(dtx.size() == K && code.size() == K);
  DICTLEARN_ASSERT(options.lambda >= 0.0 && options.tol >= 0.0 && options.max_iter >= 0);

  const Scalar lambda = static_cast<Scalar>(options.lambda);
  const bool positive = options.positive;
  const Scalar target = static_cast<Scalar>(options.tol) * x_sqnorm;  // tol * ||x||^2

  // Initial code: zeros, or the warm start made feasible (a_k = 0 where G_kk = 0, a >= 0).
  if (!options.warm_start) code.setZero();
  correlation_ = dtx;  // c = D^T x - G a
  for (Index k = 0; k < K; ++k) {
    if (gram(k, k) == Scalar(0) || (positive && code(k) < Scalar(0))) code(k) = Scalar(0);
    if (code(k) != Scalar(0)) correlation_ -= code(k) * gram.col(k);
  }

  // scikit-learn's stopping logic: the gap is evaluated after a sweep whose largest
  // coefficient change is below tol * max_k |a_k| (or that left a = 0), and after the last.
  const Scalar change_tol = static_cast<Scalar>(options.tol);
  sweeps_ = 0;
  if (options.max_iter == 0) gap_ = gap(dtx, x_sqnorm, lambda, positive, code);
  while (sweeps_ < options.max_iter) {
    Scalar max_change = Scalar(0);  // max_k |a_k_new - a_k_old| over the sweep
    Scalar max_code = Scalar(0);    // max_k |a_k| after the sweep
    for (Index k = 0; k < K; ++k) {
      const Scalar gkk = gram(k, k);
      if (gkk == Scalar(0)) continue;  // empty atom: its coefficient stays 0
      const Scalar old = code(k);
      // z = c_k + G_kk a_k: the correlation with a_k removed from the fit.
      const Scalar z = correlation_(k) + gkk * old;
      Scalar next;
      if (positive) {
        next = std::max(z - lambda, Scalar(0)) / gkk;  // a_k = max(z - lambda, 0) / G_kk
      } else {
        const Scalar shrunk = std::max(std::abs(z) - lambda, Scalar(0));  // |S(z, lambda)|
        next = (z < Scalar(0) ? -shrunk : shrunk) / gkk;                  // a_k = S(z, l) / G_kk
      }
      const Scalar delta = next - old;
      if (delta != Scalar(0)) {
        code(k) = next;
        correlation_ -= delta * gram.col(k);  // c -= (a_k_new - a_k_old) G[:, k]
      }
      max_change = std::max(max_change, std::abs(delta));
      max_code = std::max(max_code, std::abs(next));
    }
    ++sweeps_;
    if (max_code == Scalar(0) || max_change < change_tol * max_code ||
        sweeps_ == options.max_iter) {
      gap_ = gap(dtx, x_sqnorm, lambda, positive, code);
      if (gap_ <= target) break;
    }
  }

  Index nonzeros = 0;
  for (Index k = 0; k < K; ++k)
    if (code(k) != Scalar(0)) ++nonzeros;
  return nonzeros;
}

template class CoordinateDescentLasso<double>;
template class CoordinateDescentLasso<float>;

}  // namespace dictlearn
