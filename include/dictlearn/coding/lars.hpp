#pragma once
// Exact lasso by the LARS homotopy (Efron, Hastie, Johnstone, Tibshirani 2004, with the
// lasso modification), working only on the Gram matrix G = D^T D and the correlations
// D^T x, as scikit-learn's lars_path_gram and SPAMS' lasso do.
//
//   minimise over a (K):  0.5 ||x - D a||_2^2 + lambda ||a||_1      [optionally a >= 0]
//
// Shapes: G is K x K (symmetric, atoms need not be unit-norm), dtx = D^T x has K entries,
// the code has K entries. The active set's Cholesky factor of G_AA is extended by one row
// per added atom and downdated (Givens rotations) when an atom leaves, so a path step
// costs O(K |A|). An atom that is (numerically) a linear combination of the active atoms
// is excluded for the rest of that solve instead of making the factor singular.
// On return the code satisfies the lasso optimality (KKT) conditions
//   |(D^T x - G a)_j| <= lambda for all j, and = lambda sign(a_j) where a_j != 0
// to rounding accuracy (the active coefficients are re-solved once at the end).
//
// LAR mode (LarsOptions::lasso = false): plain Least Angle Regression (Efron et al., sec. 2),
// scikit-learn's lars_path(method='lar') behind Lars(n_nonzero_coefs=m) and
// sparse_encode(algorithm='lars', n_nonzero_coefs=m). The path is the same equiangular walk
// from lambda = +inf, but an active coefficient that crosses zero stays active (no lasso drop
// step), so every step adds one atom. The active correlations keep |c_j| = C with s_j the
// sign of c_j (not of a_j), and C >= |c_j| for every inactive j. With max_active = m and
// lambda = 0 the result is the point where the m-th atom has joined and the path has moved on
// until an (m+1)-th would join (or until C = 0, an exact fit, if that comes first). The code
// is then not a lasso solution when some coefficient has changed sign on the way.
// scikit-learn differs after such a sign change (it flips that atom's sign in the direction
// and skips the next join), so codes agree until the first sign change of a path.
#include <algorithm>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct LarsOptions {
  double lambda = 1.0;    ///< l1 weight (>= 0); same as scikit-learn's sparse_encode alpha
  bool positive = false;  ///< constrain every coefficient to be >= 0
  /// Stop the path after this many active atoms (0: no limit). The result is then the
  /// exact lasso solution for the larger lambda' >= lambda at which one more atom would
  /// have entered.
  Index max_active = 0;
  /// true: LARS-lasso (the default). false: plain LAR (no drop when a coefficient crosses
  /// zero); the path still stops at C = lambda, so scikit-learn's 'lars' coder with
  /// n_nonzero_coefs = m is {lambda = 0, max_active = m, lasso = false}. LAR does not
  /// support `positive` (as in scikit-learn).
  bool lasso = true;
};

/// A reusable LARS-lasso solver. All workspace is allocated in the constructor, so a
/// solver owned by one thread codes any number of samples without touching the heap.
template <typename Scalar>
class LarsLasso {
 public:
  explicit LarsLasso(Index n_atoms);

  /// Writes the K coefficients of the solution into `code` (zeros outside the active set)
  /// and returns the number of nonzeros.
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              const LarsOptions& options, Eigen::Ref<VectorT<Scalar>> code);

  /// After solve(): ||x - D a||^2 for the sample whose ||x||^2 this is, from the terms the
  /// final solve leaves behind (a^T D^T x, and a^T G a = ||L^-1 (D^T x - lambda s)||^2):
  /// O(|A|) instead of a pass over the code and |A|^2 entries of G. In double, clipped at 0;
  /// as accurate as residual_sqnorm_from_gram (a few ulps of ||x||^2). Negative if the
  /// last solve did not end with that exact re-solve (then use residual_sqnorm_from_gram).
  double residual_sqnorm(double x_sqnorm) const {
    if (!residual_terms_) return -1.0;
    return std::max(0.0, x_sqnorm - 2.0 * code_dot_dtx_ + code_gram_code_);
  }

 private:
  // Removes active slot `slot` from the factor by Givens rotations (O(|A|^2), no rebuild).
  void remove_slot(Index slot, Index n_active);

  Index n_atoms_;
  MatrixT<Scalar> chol_;            // lower Cholesky factor L of G_AA (max K x K)
  VectorT<Scalar> correlation_;     // c = D^T x - G a
  VectorT<Scalar> direction_;       // w = G_AA^-1 s_A, in active order
  VectorT<Scalar> forward_;         // y = L^-1 s_A (w = L^-T y), in active order
  VectorT<Scalar> gram_direction_;  // u = G[:, A] w
  VectorT<Scalar> step_direction_;  // the last step's u, until c -= gamma u is applied
  VectorT<Scalar> work_;            // scratch of length K
  VectorT<Scalar> active_code_;     // coefficients of the active atoms, in active order
  VectorT<Scalar> active_sign_;     // s_A: sign of each active slot (+1 / -1)
  Eigen::Matrix<Index, Eigen::Dynamic, 1> active_;  // atom index of each active slot
  // Per atom: 0 if it may join, +inf if it is active or excluded (dependent on the active
  // set) for this solve.
  VectorT<Scalar> blocked_;
  VectorT<Scalar> inverse_diagonal_;  // 1 / L_kk of the active slots
  // The last solve's a^T D^T x and a^T G a (see residual_sqnorm), when known.
  bool residual_terms_ = false;
  double code_dot_dtx_ = 0.0, code_gram_code_ = 0.0;
};

extern template class LarsLasso<double>;
extern template class LarsLasso<float>;

}  // namespace dictlearn
