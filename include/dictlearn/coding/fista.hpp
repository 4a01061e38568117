#pragma once
// FISTA (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
// inverse problems", SIAM J. Imaging Sci. 2, 2009) for elastic-net sparse coding with a
// choice of data loss:
//
//   minimise over a (K):  0.5 L(x - D a) + lambda (||a||_1 + (gamma / 2) ||a||_2^2)
//                                                                  [optionally a >= 0]
// with the residual r = x - D a and
//   squared:  L(r) = ||r||_2^2                  gradient of the smooth part  G a - D^T x
//   huber:    L(r) = sum_i h(r_i),  h(r) = r^2 (|r| <= delta), 2 delta |r| - delta^2 (else)
//             (equals the squared loss while |r_i| <= delta)       -D^T clip(r, -delta, delta)
//   power:    L(r) = sum_i |r_i|^p, p > 1 (p = 2 is the squared loss; jaxopt's sparse-coding
//             example uses p = 2.1)                       -(p / 2) D^T (sign(r) |r|^(p-1))
//
// Shapes: G = D^T D is K x K, dtx = D^T x has K entries, x has d entries, D is d x K, the
// code has K entries. The squared loss works on G and dtx only (x and D are not read); huber
// and power need x and D and cost O(d K) per iteration instead of O(K nnz).
//
// Iteration k (step 1/L): y = a_k + ((t_{k-1} - 1) / t_k) (a_k - a_{k-1}),
//   a_{k+1} = prox(y - grad f(y) / L),  t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,
// with the elastic-net prox  prox(z)_j = S(z_j, lambda / L) / (1 + lambda gamma / L),
// S(z, t) = sign(z) max(|z| - t, 0) (positive: max(z - t, 0)).
// L is the Lipschitz constant of grad f: the largest eigenvalue of G for the squared and the
// huber loss (h'' <= 2, times the factor 0.5). Compute it once per dictionary with
// lipschitz_constant() and pass it in FistaOptions::lipschitz; 0 makes every solve() run the
// power iteration itself (slow). The power loss has no global constant for p > 2 (and none
// at r = 0 for p < 2), so it always uses the backtracking rule of Beck & Teboulle (sec. 4):
// L <- 2 L until f(a_{k+1}) <= f(y) + grad f(y)^T (a_{k+1} - y) + (L / 2) ||a_{k+1} - y||^2,
// starting from FistaOptions::lipschitz (or max_j G_jj when that is 0); L never decreases
// within a solve.
// Adaptive restart (O'Donoghue & Candes, "Adaptive restart for accelerated gradient
// schemes", Found. Comput. Math. 15, 2015, gradient scheme): the momentum is reset (t = 1)
// whenever (y - a_{k+1})^T (a_{k+1} - a_k) > 0; on by default, as it turns the O(1/k^2)
// tail into fast (locally linear) convergence on the well-conditioned support.
// Stop when ||a_{k+1} - a_k||_2 <= tol ||a_{k+1}||_2 or after max_iter iterations.
#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct FistaOptions {
  enum class Loss { squared, huber, power };

  double lambda = 1.0;        ///< l1 weight (>= 0); squared loss, gamma = 0: sklearn's alpha
  double gamma = 0.0;         ///< elastic-net weight: penalty lambda (||a||_1 + gamma/2 ||a||^2)
  Loss loss = Loss::squared;  ///< data loss L(x - D a), see the header comment
  double huber_delta = 1.0;   ///< huber: quadratic for |r_i| <= delta (> 0)
  double power = 2.0;         ///< power: exponent p (> 1)
  bool positive = false;      ///< constrain every coefficient to be >= 0
  double tol = 1e-6;          ///< stop once ||a_{k+1} - a_k|| <= tol ||a_{k+1}||
  Index max_iter = 1000;      ///< maximum number of iterations
  /// Lipschitz constant of the gradient of 0.5 L, i.e. lambda_max(G) for squared and huber
  /// (see lipschitz_constant()). 0: computed in every solve() by power iteration (slow), or
  /// with backtracking, started from max_j G_jj.
  double lipschitz = 0.0;
  bool backtracking = false;  ///< backtracking line search (always on for Loss::power)
  bool restart = true;        ///< adaptive (gradient) restart of the momentum
  bool warm_start = false;    ///< start from the code passed to solve() instead of zeros
};

/// Largest eigenvalue of the symmetric positive semidefinite `gram`, by `iterations` power
/// iterations from a fixed start vector (deterministic), returned with a 1% margin and
/// capped by the Gershgorin bound max_i sum_j |G_ij|, so that 1/L is a safe FISTA step.
/// Call it once per dictionary (it allocates two K-vectors) and pass it in
/// FistaOptions::lipschitz.
template <typename Scalar>
Scalar lipschitz_constant(const MatrixT<Scalar>& gram, Index iterations = 100);

/// The data term 0.5 L(r) of the objective for a residual r = x - D a (any d), e.g. to report
/// per-sample objectives from residual columns. Like the helpers below it takes Eigen::Ref
/// arguments, so name the scalar: fista_loss<double>(residual.col(j), options).
template <typename Scalar>
Scalar fista_loss(const Eigen::Ref<const VectorT<Scalar>>& residual, const FistaOptions& options);

/// The penalty lambda (||a||_1 + (gamma / 2) ||a||^2).
template <typename Scalar>
Scalar fista_penalty(const Eigen::Ref<const VectorT<Scalar>>& code, const FistaOptions& options);

/// The objective 0.5 L(x - D a) + penalty for any loss (allocates the d-vector x - D a).
template <typename Scalar>
Scalar fista_objective(const Eigen::Ref<const VectorT<Scalar>>& x,
                       const MatrixT<Scalar>& dictionary,
                       const Eigen::Ref<const VectorT<Scalar>>& code, const FistaOptions& options);

/// The objective for the squared loss from G, dtx = D^T x and x_sqnorm = ||x||^2 only:
/// 0.5 (||x||^2 - 2 dtx^T a + a^T G a) + penalty (O(K nnz), no allocation).
template <typename Scalar>
Scalar fista_objective(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
                       Scalar x_sqnorm, const Eigen::Ref<const VectorT<Scalar>>& code,
                       const FistaOptions& options);

/// A reusable FISTA solver; all workspace is allocated by the constructor, so solve() never
/// touches the heap. `dimension` (d) is needed only for the huber and power losses.
template <typename Scalar>
class Fista {
 public:
  explicit Fista(Index n_atoms, Index dimension = 0);

  /// Any loss. Writes the K coefficients into `code` and returns the number of nonzeros.
  /// With options.warm_start the initial value is read from `code`. For Loss::squared, `x`
  /// and `dictionary` are not read (they may be empty).
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              const Eigen::Ref<const VectorT<Scalar>>& x, const MatrixT<Scalar>& dictionary,
              const FistaOptions& options, Eigen::Ref<VectorT<Scalar>> code);

  /// Loss::squared only (needs no sample and no dictionary).
  Index solve(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
              const FistaOptions& options, Eigen::Ref<VectorT<Scalar>> code);

  /// Iterations done by the last solve().
  Index iterations() const { return iterations_; }
  /// Final step-size constant L of the last solve() (grown by backtracking, if used).
  Scalar lipschitz() const { return lipschitz_; }

 private:
  // trial_ = prox(y - grad / L): soft threshold by lambda / L, shrink by 1 + lambda gamma / L.
  void prox_step(Scalar L, Scalar lambda, Scalar gamma, bool positive);

  Index n_atoms_;
  Index dimension_;
  VectorT<Scalar> a_;               // a_k
  VectorT<Scalar> a_prev_;          // a_{k-1}
  VectorT<Scalar> y_;               // extrapolated point
  VectorT<Scalar> grad_;            // grad f(y)
  VectorT<Scalar> trial_;           // candidate a_{k+1}
  VectorT<Scalar> gram_a_;          // squared: G a_k
  VectorT<Scalar> gram_prev_;       // squared: G a_{k-1}
  VectorT<Scalar> gram_y_;          // squared: G y
  VectorT<Scalar> delta_;           // backtracking: trial - y
  VectorT<Scalar> residual_;        // x - D a_k             (d, huber / power)
  VectorT<Scalar> residual_prev_;   // x - D a_{k-1}
  VectorT<Scalar> residual_y_;      // x - D y
  VectorT<Scalar> residual_trial_;  // x - D trial
  VectorT<Scalar> loss_slope_;      // dL/dr at y, halved: grad f(y) = -D^T loss_slope_
  Index iterations_ = 0;
  Scalar lipschitz_ = Scalar(0);
};

// The free functions above are instantiated for float and double in fista.cpp.
extern template class Fista<double>;
extern template class Fista<float>;

}  // namespace dictlearn
