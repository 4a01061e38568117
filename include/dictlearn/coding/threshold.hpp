#pragma once
// Soft thresholding of the correlations, scikit-learn's sparse_encode(algorithm='threshold'):
//
//   a_k = sign(dtx_k) max(|dtx_k| - lambda, 0)        with dtx = D^T x
//   a_k = max(dtx_k - lambda, 0)                      [positive]
//
// This is the proximal operator of lambda ||.||_1 applied to D^T x (Donoho & Johnstone,
// "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81, 1994), i.e. the exact
// lasso solution of 0.5 ||x - D a||^2 + lambda ||a||_1 only for orthonormal atoms (G = I);
// for a general dictionary it is a one-step, non-iterative encoder (the first ISTA step from
// a = 0 with unit step), as used for dictionary learning by Coates & Ng, "The importance of
// encoding versus training with sparse coding and vector quantization", ICML 2011.
//
// Shapes: dtx = D^T x has K entries, the code has K entries. The Gram matrix is accepted so
// that every coder has the same solve() arguments, and is ignored.
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct ThresholdOptions {
  double lambda = 1.0;    ///< threshold (>= 0); same as scikit-learn's sparse_encode alpha
  bool positive = false;  ///< clip the code at 0 (a >= 0)
};

/// Soft-thresholding encoder. It needs no workspace; the class exists for symmetry with the
/// iterative coders (one object per thread, solve() never allocates).
template <typename Scalar>
class SoftThreshold {
 public:
  explicit SoftThreshold(Index n_atoms);

  /// Writes the K coefficients into `code` and returns the number of nonzeros.
  /// `gram` is ignored (it may be empty).
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              const ThresholdOptions& options, Eigen::Ref<VectorT<Scalar>> code);

 private:
  Index n_atoms_;
};

extern template class SoftThreshold<double>;
extern template class SoftThreshold<float>;

}  // namespace dictlearn
