#include "dictlearn/coding/fista.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

namespace {

using Loss = FistaOptions::Loss;

// Safety margin on the power-iteration estimate: the Rayleigh quotient approaches
// lambda_max from below, and a step slightly above 1/L_true can make FISTA diverge.
constexpr double kLipschitzMargin = 1.01;

// Largest eigenvalue of the symmetric PSD matrix G by power iteration, in the workspace
// v, w (K each), with the margin and the Gershgorin cap applied.
template <typename Scalar>
Scalar largest_eigenvalue(const MatrixT<Scalar>& gram, Index iterations, VectorT<Scalar>& v,
                          VectorT<Scalar>& w) {
  const Index K = gram.rows();
  // Gershgorin: lambda_max <= max_j sum_i |G_ij| (column sums = row sums, G symmetric).
  Scalar gershgorin = Scalar(0);
  for (Index j = 0; j < K; ++j) gershgorin = std::max(gershgorin, gram.col(j).cwiseAbs().sum());
  if (!(gershgorin > Scalar(0))) return Scalar(0);  // G = 0
  // Fixed start with mixed signs (frac((i + 1) phi) - 1/2), almost surely not orthogonal to
  // the top eigenvector, and the same on every call.
  for (Index i = 0; i < K; ++i) {
    const double u = static_cast<double>(i + 1) * 0.6180339887498949;
    v(i) = static_cast<Scalar>(u - std::floor(u) - 0.5);
  }
  v.normalize();
  Scalar rho = Scalar(0);
  for (Index it = 0; it < iterations; ++it) {
    w.noalias() = gram * v;        // w = G v
    const Scalar next = v.dot(w);  // Rayleigh quotient v^T G v (||v|| = 1)
    const Scalar norm = w.norm();
    if (!(norm > Scalar(0))) break;  // v in the null space of G
    v = w / norm;                    // v = G v / ||G v||
    const bool settled = std::abs(next - rho) <= Scalar(1e-6) * next;
    rho = next;
    if (settled) break;
  }
  return std::min(static_cast<Scalar>(kLipschitzMargin) * rho, gershgorin);
}

// phi(r) = 0.5 L(r) per component, and its derivative phi'(r) = 0.5 L'(r).
template <typename Scalar>
Scalar half_loss(Scalar r, Loss loss, Scalar delta, Scalar p) {
  const Scalar m = std::abs(r);
  switch (loss) {
    case Loss::squared:
      return Scalar(0.5) * r * r;
    case Loss::huber:  // 0.5 h(r): r^2 / 2 inside, delta |r| - delta^2 / 2 outside
      return m <= delta ? Scalar(0.5) * r * r : delta * m - Scalar(0.5) * delta * delta;
    case Loss::power:
      return Scalar(0.5) * std::pow(m, p);
  }
  return Scalar(0);
}

template <typename Scalar>
Scalar half_loss_slope(Scalar r, Loss loss, Scalar delta, Scalar p) {
  switch (loss) {
    case Loss::squared:
      return r;
    case Loss::huber:  // 0.5 h'(r) = clip(r, -delta, delta)
      return std::min(std::max(r, -delta), delta);
    case Loss::power: {  // 0.5 p sign(r) |r|^(p-1)
      const Scalar m = std::pow(std::abs(r), p - Scalar(1));
      return Scalar(0.5) * p * (r < Scalar(0) ? -m : m);
    }
  }
  return Scalar(0);
}

// v += G a over the nonzeros of a: O(K nnz).
template <typename Scalar>
void add_gram_times(const MatrixT<Scalar>& gram, const VectorT<Scalar>& a, VectorT<Scalar>& v) {
  for (Index k = 0; k < a.size(); ++k)
    if (a(k) != Scalar(0)) v += a(k) * gram.col(k);
}

// r = x - D a over the nonzeros of a: O(d nnz).
template <typename Scalar>
void residual_of(const Eigen::Ref<const VectorT<Scalar>>& x, const MatrixT<Scalar>& dictionary,
                 const VectorT<Scalar>& a, VectorT<Scalar>& r) {
  r = x;
  for (Index k = 0; k < a.size(); ++k)
    if (a(k) != Scalar(0)) r -= a(k) * dictionary.col(k);
}

template <typename Scalar>
void check_options(const FistaOptions& options) {
  DICTLEARN_ASSERT(options.lambda >= 0.0 && options.gamma >= 0.0);
  DICTLEARN_ASSERT(options.tol >= 0.0 && options.max_iter >= 0 && options.lipschitz >= 0.0);
  DICTLEARN_ASSERT(options.loss != Loss::huber || options.huber_delta > 0.0);
  DICTLEARN_ASSERT(options.loss != Loss::power || options.power > 1.0);
}

}  // namespace

template <typename Scalar>
Scalar lipschitz_constant(const MatrixT<Scalar>& gram, Index iterations) {
  DICTLEARN_ASSERT(gram.rows() == gram.cols() && gram.rows() > 0 && iterations > 0);
  VectorT<Scalar> v(gram.rows()), w(gram.rows());
  return largest_eigenvalue(gram, iterations, v, w);
}

template <typename Scalar>
Scalar fista_loss(const Eigen::Ref<const VectorT<Scalar>>& residual, const FistaOptions& options) {
  check_options<Scalar>(options);
  const Scalar delta = static_cast<Scalar>(options.huber_delta);
  const Scalar p = static_cast<Scalar>(options.power);
  Scalar sum = Scalar(0);
  for (Index i = 0; i < residual.size(); ++i)
    sum += half_loss(residual(i), options.loss, delta, p);  // 0.5 L(r) = sum_i phi(r_i)
  return sum;
}

template <typename Scalar>
Scalar fista_penalty(const Eigen::Ref<const VectorT<Scalar>>& code, const FistaOptions& options) {
  // lambda (||a||_1 + (gamma / 2) ||a||^2)
  return static_cast<Scalar>(options.lambda) *
         (code.template lpNorm<1>() +
          Scalar(0.5) * static_cast<Scalar>(options.gamma) * code.squaredNorm());
}

template <typename Scalar>
Scalar fista_objective(const Eigen::Ref<const VectorT<Scalar>>& x,
                       const MatrixT<Scalar>& dictionary,
                       const Eigen::Ref<const VectorT<Scalar>>& code, const FistaOptions& options) {
  DICTLEARN_ASSERT(dictionary.rows() == x.size() && dictionary.cols() == code.size());
  const VectorT<Scalar> residual = x - dictionary * code;  // r = x - D a
  return fista_loss<Scalar>(residual, options) + fista_penalty<Scalar>(code, options);
}

template <typename Scalar>
Scalar fista_objective(const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
                       Scalar x_sqnorm, const Eigen::Ref<const VectorT<Scalar>>& code,
                       const FistaOptions& options) {
  DICTLEARN_ASSERT(options.loss == Loss::squared);
  DICTLEARN_ASSERT(gram.rows() == code.size() && gram.cols() == code.size());
  DICTLEARN_ASSERT(dtx.size() == code.size());
  // a^T G a over the nonzeros of a.
  Scalar quadratic = Scalar(0);
  for (Index k = 0; k < code.size(); ++k)
    if (code(k) != Scalar(0)) quadratic += code(k) * gram.col(k).dot(code);
  // 0.5 ||x - D a||^2 = 0.5 (||x||^2 - 2 dtx^T a + a^T G a)
  return Scalar(0.5) * (x_sqnorm - Scalar(2) * dtx.dot(code) + quadratic) +
         fista_penalty<Scalar>(code, options);
}

template <typename Scalar>
Fista<Scalar>::Fista(Index n_atoms, Index dimension)
    : n_atoms_(n_atoms),
      dimension_(dimension),
      a_(n_atoms),
      a_prev_(n_atoms),
      y_(n_atoms),
      grad_(n_atoms),
      trial_(n_atoms),
      gram_a_(n_atoms),
      gram_prev_(n_atoms),
      gram_y_(n_atoms),
      delta_(n_atoms),
      residual_(dimension),
      residual_prev_(dimension),
      residual_y_(dimension),
      residual_trial_(dimension),
      loss_slope_(dimension) {
  DICTLEARN_ASSERT(n_atoms > 0 && dimension >= 0);
}

template <typename Scalar>
void Fista<Scalar>::prox_step(Scalar L, Scalar lambda, Scalar gamma, bool positive) {
  const Scalar threshold = lambda / L;                                 // lambda * step
  const Scalar shrink = Scalar(1) / (Scalar(1) + lambda * gamma / L);  // 1 / (1 + l g step)
  for (Index k = 0; k < n_atoms_; ++k) {
    const Scalar z = y_(k) - grad_(k) / L;  // z = y - grad f(y) / L
    Scalar a;
    if (positive) {
      a = std::max(z - threshold, Scalar(0));  // max(z - lambda / L, 0)
    } else {
      const Scalar m = std::max(std::abs(z) - threshold, Scalar(0));
      a = z < Scalar(0) ? -m : m;  // S(z, lambda / L)
    }
    trial_(k) = a * shrink;
  }
}

template <typename Scalar>
Index Fista<Scalar>::solve(const MatrixT<Scalar>& gram,
                           const Eigen::Ref<const VectorT<Scalar>>& dtx,
                           const FistaOptions& options, Eigen::Ref<VectorT<Scalar>> code) {
  DICTLEARN_ASSERT(options.loss == Loss::squared);
  const VectorT<Scalar> empty_x;  // size 0: no allocation
  const MatrixT<Scalar> empty_dictionary;
  return solve(gram, dtx, empty_x, empty_dictionary, options, code);
}

template <typename Scalar>
Index Fista<Scalar>::solve(const MatrixT<Scalar>& gram,
                           const Eigen::Ref<const VectorT<Scalar>>& dtx,
                           const Eigen::Ref<const VectorT<Scalar>>& x,
                           const MatrixT<Scalar>& dictionary, const FistaOptions& options,
                           Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(gram.rows() == K && gram.cols() == K);
  DICTLEARN_ASSERT(dtx.size() == K && code.size() == K);
  check_options<Scalar>(options);
  const Loss loss = options.loss;
  const bool squared = loss == Loss::squared;
  if (!squared) {
    DICTLEARN_ASSERT(dimension_ > 0 && x.size() == dimension_);
    DICTLEARN_ASSERT(dictionary.rows() == dimension_ && dictionary.cols() == K);
  }
  const Scalar lambda = static_cast<Scalar>(options.lambda);
  const Scalar gamma = static_cast<Scalar>(options.gamma);
  const Scalar delta = static_cast<Scalar>(options.huber_delta);
  const Scalar p = static_cast<Scalar>(options.power);
  const Scalar tol = static_cast<Scalar>(options.tol);
  const bool positive = options.positive;
  const bool backtracking = options.backtracking || loss == Loss::power;
  const Scalar eps = std::numeric_limits<Scalar>::epsilon();

  // Step constant: given; or, for backtracking, start at max_j G_jj <= lambda_max(G);
  // or lambda_max(G) by power iteration (grad_ and trial_ serve as its workspace).
  Scalar L = static_cast<Scalar>(options.lipschitz);
  if (!(L > Scalar(0)))
    L = backtracking ? gram.diagonal().maxCoeff() : largest_eigenvalue(gram, 100, grad_, trial_);
  iterations_ = 0;
  lipschitz_ = L;
  if (!(L > Scalar(0))) {
    // G = 0 (every atom empty): the data term does not depend on a, the penalty is
    // minimised by a = 0.
    code.setZero();
    return 0;
  }

  // a_0: zeros, or the warm start (clipped at 0 in positive mode); a_{-1} = a_0.
  if (options.warm_start) {
    a_ = code;
    if (positive) a_ = a_.cwiseMax(Scalar(0));
  } else {
    a_.setZero();
  }
  a_prev_ = a_;
  if (squared) {
    gram_a_.setZero();
    add_gram_times(gram, a_, gram_a_);  // G a_0
    gram_prev_ = gram_a_;
  } else {
    residual_of(x, dictionary, a_, residual_);  // r_0 = x - D a_0
    residual_prev_ = residual_;
  }

  Scalar t = Scalar(1);
  Scalar beta = Scalar(0);  // momentum (t_{k-1} - 1) / t_k
  while (iterations_ < options.max_iter) {
    // Extrapolation y = a_k + beta (a_k - a_{k-1}); G y and x - D y follow linearly.
    y_ = a_ + beta * (a_ - a_prev_);
    Scalar f_y = Scalar(0);
    if (squared) {
      gram_y_ = gram_a_ + beta * (gram_a_ - gram_prev_);
      grad_ = gram_y_ - dtx;  // grad f(y) = G y - D^T x
    } else {
      residual_y_ = residual_ + beta * (residual_ - residual_prev_);
      for (Index i = 0; i < dimension_; ++i) {
        const Scalar r = residual_y_(i);
        loss_slope_(i) = half_loss_slope(r, loss, delta, p);    // phi'(r_i) = 0.5 L'(r_i)
        if (backtracking) f_y += half_loss(r, loss, delta, p);  // f(y) = sum_i phi(r_i)
      }
      // grad f(y) = -D^T phi'(r) (a negated product would be evaluated into a temporary)
      grad_.noalias() = dictionary.transpose() * loss_slope_;
      grad_ = -grad_;
    }

    // Proximal gradient step; with backtracking, L <- 2 L until the quadratic model at y
    // majorises f at the trial point.
    for (;;) {
      prox_step(L, lambda, gamma, positive);
      if (!backtracking) break;
      delta_ = trial_ - y_;                                         // Delta = trial - y
      const Scalar model = Scalar(0.5) * L * delta_.squaredNorm();  // (L / 2) ||Delta||^2
      if (squared) {
        // f(trial) - f(y) - grad^T Delta = 0.5 Delta^T G Delta, formed directly (no
        // cancellation between the two function values).
        Scalar curvature = Scalar(0);
        for (Index k = 0; k < K; ++k)
          if (delta_(k) != Scalar(0)) curvature += delta_(k) * gram.col(k).dot(delta_);
        if (Scalar(0.5) * curvature <= model * (Scalar(1) + Scalar(16) * eps)) break;
      } else {
        residual_of(x, dictionary, trial_, residual_trial_);  // x - D trial
        // Bregman distance sum_i phi(rt_i) - phi(ry_i) - phi'(ry_i) (rt_i - ry_i), with
        // rt - ry = -D Delta, so that grad^T Delta = phi'(ry)^T (rt - ry).
        Scalar bregman = Scalar(0);
        Scalar f_trial = Scalar(0);
        for (Index i = 0; i < dimension_; ++i) {
          const Scalar rt = residual_trial_(i);
          const Scalar ry = residual_y_(i);
          const Scalar ft = half_loss(rt, loss, delta, p);
          f_trial += ft;
          bregman += ft - half_loss(ry, loss, delta, p) - loss_slope_(i) * (rt - ry);
        }
        // Rounding of the function values (~eps f) is accepted as noise: once the step is
        // that small the iterate has converged to working precision.
        if (bregman <= model + Scalar(16) * eps * (f_y + f_trial)) break;
      }
      L *= Scalar(2);
    }
    ++iterations_;

    // Accept: a_{k-1} = a_k, a_k = trial, and their G a or x - D a.
    a_prev_.swap(a_);
    a_ = trial_;
    if (squared) {
      gram_prev_.swap(gram_a_);
      gram_a_.setZero();
      add_gram_times(gram, a_, gram_a_);
    } else {
      residual_prev_.swap(residual_);
      if (backtracking)
        residual_ = residual_trial_;
      else
        residual_of(x, dictionary, a_, residual_);
    }

    // Stop on a small relative change: ||a_k - a_{k-1}|| <= tol ||a_k||.
    const Scalar change = (a_ - a_prev_).norm();
    if (change <= tol * a_.norm()) break;

    // Gradient restart: the step a_k - a_{k-1} opposes the momentum direction.
    if (options.restart && (y_ - a_).dot(a_ - a_prev_) > Scalar(0)) t = Scalar(1);
    const Scalar t_next = Scalar(0.5) * (Scalar(1) + std::sqrt(Scalar(1) + Scalar(4) * t * t));
    beta = (t - Scalar(1)) / t_next;  // t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2
    t = t_next;
  }
  lipschitz_ = L;

  code = a_;
  Index nonzeros = 0;
  for (Index k = 0; k < K; ++k)
    if (a_(k) != Scalar(0)) ++nonzeros;
  return nonzeros;
}

template class Fista<double>;
template class Fista<float>;
template double lipschitz_constant<double>(const MatrixT<double>&, Index);
template float lipschitz_constant<float>(const MatrixT<float>&, Index);
template double fista_loss<double>(const Eigen::Ref<const VectorT<double>>&, const FistaOptions&);
template float fista_loss<float>(const Eigen::Ref<const VectorT<float>>&, const FistaOptions&);
template double fista_penalty<double>(const Eigen::Ref<const VectorT<double>>&,
                                      const FistaOptions&);
template float fista_penalty<float>(const Eigen::Ref<const VectorT<float>>&, const FistaOptions&);
template double fista_objective<double>(const Eigen::Ref<const VectorT<double>>&,
                                        const MatrixT<double>&,
                                        const Eigen::Ref<const VectorT<double>>&,
                                        const FistaOptions&);
template float fista_objective<float>(const Eigen::Ref<const VectorT<float>>&,
                                      const MatrixT<float>&,
                                      const Eigen::Ref<const VectorT<float>>&, const FistaOptions&);
template double fista_objective<double>(const MatrixT<double>&,
                                        const Eigen::Ref<const VectorT<double>>&, double,
                                        const Eigen::Ref<const VectorT<double>>&,
                                        const FistaOptions&);
template float fista_objective<float>(const MatrixT<float>&,
                                      const Eigen::Ref<const VectorT<float>>&, float,
                                      const Eigen::Ref<const VectorT<float>>&, const FistaOptions&);

}  // namespace dictlearn
