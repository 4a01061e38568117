#pragma once
// Lasso by cyclic coordinate descent on the Gram matrix (Friedman, Hastie, Tibshirani,
// "Regularization paths for generalized linear models via coordinate descent", J. Stat.
// Softw. 33, 2010), as scikit-learn's enet_coordinate_descent_gram behind Lasso(precompute=G)
// and sparse_encode(algorithm='lasso_cd'):
//
//   minimise over a (K):  0.5 ||x - D a||_2^2 + lambda ||a||_1      [optionally a >= 0]
//
// Shapes: G = D^T D is K x K (symmetric, atoms need not be unit-norm), dtx = D^T x has K
// entries, the code has K entries; ||x||^2 enters only the duality gap. The correlation
// vector c = D^T x - G a is kept current: each sweep visits k = 0..K-1 and sets
//   a_k <- S(c_k + G_kk a_k, lambda) / G_kk,   S(z, t) = sign(z) max(|z| - t, 0)
// (positive: max(z - lambda, 0) / G_kk), then c -= (a_k_new - a_k_old) G[:, k], so a sweep
// costs O(K) plus O(K) per coefficient that changed. Atoms with G_kk = 0 are skipped (code 0).
//
// Stopping rule (scikit-learn's): the duality gap P(a) - D(theta) of the dual point
// theta = s r, r = x - D a, s = min(1, lambda / max_j |c_j|) (max_j c_j if positive), written
// in G, dtx and ||x||^2 only,
//   ||r||^2 = ||x||^2 - dtx^T a - a^T c
//   gap = 0.5 (1 + s^2) ||r||^2 + lambda ||a||_1 - s ||x||^2 + s dtx^T a   (s < 1)
//   gap = ||r||^2 + lambda ||a||_1 - ||x||^2 + dtx^T a                  (s = 1)
// is at most tol * ||x||^2. As in scikit-learn, the gap is evaluated only after a sweep whose
// largest coefficient change is below tol * max_k |a_k| (or that left a = 0), and after the
// last sweep, so the iterates and the stopping sweep are scikit-learn's (up to rounding).
// A warm start from the solution therefore costs one sweep.
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct CoordinateDescentOptions {
  double lambda = 1.0;      ///< l1 weight (>= 0); same as scikit-learn's sparse_encode alpha
  bool positive = false;    ///< constrain every coefficient to be >= 0
  double tol = 1e-4;        ///< stop once gap <= tol * ||x||^2 (scikit-learn's Lasso default)
  Index max_iter = 1000;    ///< maximum number of sweeps (scikit-learn's Lasso default)
  bool warm_start = false;  ///< start from the code passed to solve() instead of zeros
};

/// A reusable coordinate-descent lasso solver; all workspace is allocated by the
/// constructor, so solve() never touches the heap.
template <typename Scalar>
class CoordinateDescentLasso {
 public:
  explicit CoordinateDescentLasso(Index n_atoms);

  /// Writes the K coefficients into `code` and returns the number of nonzeros. With
  /// options.warm_start the initial value is read from `code` (negative entries are clipped
  /// to 0 in positive mode), otherwise the descent starts from zeros. `x_sqnorm` = ||x||^2.
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              Scalar x_sqnorm, const CoordinateDescentOptions& options,
              Eigen::Ref<VectorT<Scalar>> code);

  /// Sweeps done by the last solve().
  Index sweeps() const { return sweeps_; }
  /// Duality gap of the code returned by the last solve() (compare with tol * ||x||^2); it
  /// exceeds that only when max_iter sweeps were not enough.
  Scalar duality_gap() const { return gap_; }

 private:
  // gap(a) from the current code and correlation_ (see the header comment).
  Scalar gap(const Eigen::Ref<const VectorT<Scalar>>& dtx, Scalar x_sqnorm, Scalar lambda,
             bool positive, const Eigen::Ref<const VectorT<Scalar>>& code) const;

  Index n_atoms_;
  VectorT<Scalar> correlation_;  // c = D^T x - G a
  Index sweeps_ = 0;
  Scalar gap_ = Scalar(0);
};

extern template class CoordinateDescentLasso<double>;
extern template class CoordinateDescentLasso<float>;

}  // namespace dictlearn
