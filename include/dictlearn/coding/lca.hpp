#pragma once
// The Locally Competitive Algorithm (Rozell, Johnson, Baraniuk, Olshausen, "Sparse coding via
// thresholding and local competition in neural circuits", Neural Computation 20, 2008):
// K leaky neurons with membrane potentials u, driven by b = D^T x and inhibiting each other
// through the Gram matrix G = D^T D,
//
//   tau du/dt = b - u - (G - I) a,        a = T_lambda(u),
//
// integrated by explicit Euler steps u += (dt / tau) (b - u - (G - I) a). T is the soft
// threshold sign(u) max(|u| - lambda, 0) (the fixed points are the lasso solutions of
// 0.5||x - D a||^2 + lambda ||a||_1) or the hard threshold u 1{|u| > lambda} (an l0-like
// energy, 0.5||x - D a||^2 + lambda^2/2 ||a||_0); `positive` rectifies (a >= 0).
// Only active neurons inhibit, so a step costs O(K |active|) with G's columns, not O(K^2).
// Stops after `steps` steps or when no potential moved by more than tol * max|b|.
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct LcaOptions {
  enum class Threshold { soft, hard };
  double lambda = 1.0;
  Threshold threshold = Threshold::soft;
  double tau = 1.0;    ///< time constant
  double dt = 0.1;     ///< Euler step; dt / tau must be in (0, 1]
  Index steps = 1000;  ///< at most this many steps
  double tol = 1e-7;   ///< stop when max |du| <= tol * max |b| (0: run all steps)
  bool positive = false;
  bool warm_start = false;  ///< start from the code passed in (u = D^T x - (G - I) a)
};

/// One solver per thread; all workspace is allocated in the constructor.
template <typename Scalar>
class Lca {
 public:
  explicit Lca(Index n_atoms);

  /// Integrates the dynamics for b = dtx; writes the code and returns its nonzeros.
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              const LcaOptions& options, Eigen::Ref<VectorT<Scalar>> code);
  /// Steps taken by the last solve().
  Index steps() const { return steps_; }

 private:
  Index n_atoms_;
  Index steps_ = 0;
  VectorT<Scalar> potential_;   // u
  VectorT<Scalar> inhibition_;  // (G - I) a
  Eigen::Matrix<Index, Eigen::Dynamic, 1> active_;
};

extern template class Lca<double>;
extern template class Lca<float>;

}  // namespace dictlearn
