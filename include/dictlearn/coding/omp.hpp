#pragma once
// Batch-OMP (Rubinstein, Zibulevsky, Elad, "Efficient implementation of the K-SVD
// algorithm using batch orthogonal matching pursuit", Technion CS-2008-08).
//
//   minimise ||x - D a||_2^2  subject to  ||a||_0 <= nonzeros   (and/or until
//   ||x - D a||_2^2 <= tolerance)
//
// Works from G = D^T D (K x K), alpha0 = D^T x (K) and ||x||^2 only: each iteration picks
// the atom most correlated with the residual, extends the Cholesky factor of G_II by one
// row, re-solves the least-squares coefficients on the support and updates the
// correlations alpha = alpha0 - G_{:,I} gamma_I without forming the residual.
// The residual energy is tracked as eps_n = eps_{n-1} - delta_n + delta_{n-1}
// with delta_n = gamma_I^T (G_{:,I} gamma_I)_I, which makes the tolerance test O(|I|).
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct OmpOptions {
  Index nonzeros = 0;      ///< l0 budget (> 0), 0: limited only by the tolerance and min(d, K)
  double tolerance = 0.0;  ///< stop once ||x - D a||^2 <= tolerance (scikit-learn's omp tol)
};

/// A reusable Batch-OMP solver; all workspace is allocated by the constructor.
template <typename Scalar>
class BatchOmp {
 public:
  explicit BatchOmp(Index n_atoms);

  /// Writes the K coefficients into `code` and returns the number of nonzeros.
  /// `x_sqnorm` = ||x||^2 is needed by the tolerance test.
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              Scalar x_sqnorm, const OmpOptions& options, Eigen::Ref<VectorT<Scalar>> code);

 private:
  Index n_atoms_;
  MatrixT<Scalar> chol_;   // lower Cholesky factor of G_II
  VectorT<Scalar> alpha_;  // D^T r, correlations with the residual
  VectorT<Scalar> gamma_;  // coefficients on the support, in support order
  VectorT<Scalar> beta_;   // G_{:,I} gamma_I
  VectorT<Scalar> rhs_;    // alpha0_I
  VectorT<Scalar> work_;
  Eigen::Matrix<Index, Eigen::Dynamic, 1> support_;
  Eigen::Matrix<bool, Eigen::Dynamic, 1> selected_;
};

extern template class BatchOmp<double>;
extern template class BatchOmp<float>;

}  // namespace dictlearn
