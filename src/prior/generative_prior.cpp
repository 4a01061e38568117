#include "dictlearn/prior/generative_prior.hpp"

#include <lapacke.h>

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <limits>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {

namespace {

/// The purpose key of the decode starts in derive_seed ("gprior").
constexpr std::uint64_t kStartStream = 0x67707269'6F72ULL;

void check_problem(const char* what, const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                   const Matrix& z) {
  if (a.cols() != net.output_dim())
    throw Error(cat(what, ": the dictionary is ", a.rows(), " x ", a.cols(),
                    "; the generator's output dimension is ", net.output_dim()));
  if (y.rows() != a.rows())
    throw Error(cat(what, ": the samples have ", y.rows(), " rows; the dictionary has ", a.rows()));
  if (z.rows() != net.input_dim() || z.cols() != y.cols())
    throw Error(cat(what, ": the codes are ", z.rows(), " x ", z.cols(), "; expected ",
                    net.input_dim(), " x ", y.cols()));
}

/// R = A G - Y (m x N).
Matrix residual(const Matrix& a, const Matrix& g, const Matrix& y) {
  Matrix r = y;
  blas::gemm(false, false, 1.0, a, g, -1.0, r);
  return r;
}

/// Each column z <- z * min(1, radius / ||z||).
void project_columns(Matrix& z, double radius) {
  for (Index j = 0; j < z.cols(); ++j) {
    const double norm = z.col(j).norm();
    if (norm > radius) z.col(j) *= radius / norm;
  }
}

}  // namespace

void validate(const DecodeOptions& options) {
  validate(options.optimizer);
  if (options.steps < 1) throw Error(cat("decode: steps must be >= 1, got ", options.steps));
  if (options.restarts < 0)
    throw Error(
        cat("decode: restarts must be >= 0 (>= 1 without a warm start), got ", options.restarts));
  if (!(options.radius >= 0.0) || !std::isfinite(options.radius))
    throw Error(cat("decode: radius must be >= 0 (0: unconstrained), got ", options.radius));
  if (!(options.init_scale > 0.0) || !std::isfinite(options.init_scale))
    throw Error(cat("decode: init_scale must be > 0, got ", options.init_scale));
  if (options.polish < 0)
    throw Error(cat("decode: polish iterations must be >= 0, got ", options.polish));
  if (!(options.lr_decay > 0.0 && options.lr_decay <= 1.0))
    throw Error(cat("decode: lr decay must be in (0, 1], got ", options.lr_decay));
  if (options.screen_steps < 0 ||
      (options.screen_steps > 0 && options.screen_steps >= options.steps))
    throw Error(cat("decode: screen steps must be in [0, steps - 1] = [0, ", options.steps - 1,
                    "], got ", options.screen_steps));
}

void validate(const AltminOptions& options) {
  if (!(options.eps >= 0.0) || !std::isfinite(options.eps))
    throw Error(cat("altmin: eps must be >= 0, got ", options.eps));
  if (options.update == AltminOptions::Update::optimizer_step) validate(options.optimizer);
}

Matrix initial_codes(Index k, const std::vector<Index>& rows, Index restart,
                     const DecodeOptions& options) {
  Matrix z(k, Index(rows.size()));
  for (Index j = 0; j < z.cols(); ++j) {
    // One stream per (seed, global row, restart): independent of the split over ranks.
    Random random(derive_seed(
        {options.seed, kStartStream, std::uint64_t(rows[size_t(j)]), std::uint64_t(restart)}));
    for (Index i = 0; i < k; ++i) z(i, j) = options.init_scale * random.normal();
  }
  if (options.radius > 0.0) project_columns(z, options.radius);
  return z;
}

Vector refine_codes(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Matrix& z,
                    const DecodeOptions& options) {
  validate(options);
  check_problem("decode", a, net, y, z);
  if (options.radius > 0.0) project_columns(z, options.radius);  // a feasible start
  const Index n_samples = z.cols(), n = net.output_dim();
  Vector best_loss = Vector::Constant(n_samples, std::numeric_limits<double>::infinity());
  Matrix best = z;
  Optimizer optimizer(options.optimizer, {z.size()});
  GeneratorTape tape;
  Matrix grad_g(n, n_samples);
  // With n < 2m the steps work on the Gram matrix H = A^T A and C = A^T Y, formed once:
  //   ||y - A g||^2 = ||y||^2 - 2 g.c + g.(H g),  d/dg = 2 (H g - c),
  // n^2 instead of 2 m n flops per sample and step (5x fewer for n = 300, m = 784).
  const bool gram = n < 2 * a.rows();
  Matrix h, c, hg(n, n_samples);
  Vector y_norms;
  if (gram) {
    h.resize(n, n);
    blas::gemm(true, false, 1.0, a, a, 0.0, h);  // once per decode: not worth a SYRK
    c.resize(n, n_samples);
    blas::gemm(true, false, 1.0, a, y, 0.0, c);
    y_norms = y.colwise().squaredNorm().transpose();
  }
  for (Index step = 0;; ++step) {
    const Matrix g = net.forward(z, tape);  // G(Z)
    Vector loss(n_samples);
    Matrix r;
    if (gram) {
      blas::gemm(false, false, 1.0, h, g, 0.0, hg);  // H G
      for (Index j = 0; j < n_samples; ++j)
        loss(j) = std::max(0.0, y_norms(j) + g.col(j).dot(hg.col(j) - 2.0 * c.col(j)));
    } else {
      r = residual(a, g, y);  // R = A G(Z) - Y
      loss = r.colwise().squaredNorm().transpose();
    }
    // Keep each column's best iterate: f_j = ||r_j||^2 (in the expanded form, only gains
    // larger than its rounding error count: a start that is already optimal stays).
    for (Index j = 0; j < n_samples; ++j)
      if (loss(j) < best_loss(j) - (gram ? 1e-13 * y_norms(j) : 0.0)) {
        best_loss(j) = loss(j);
        best.col(j) = z.col(j);
      }
    if (step == options.steps) break;
    if (options.lr_decay != 1.0)  // lr_t = lr decay^(t / (steps - 1)), t = 0 .. steps - 1
      optimizer.set_learning_rate(
          options.optimizer.learning_rate *
          std::pow(options.lr_decay, double(step) / double(std::max<Index>(1, options.steps - 1))));
    if (gram)
      grad_g = 2.0 * (hg - c);  // dL/dG = 2 (H G - C) = 2 A^T R
    else
      blas::gemm(true, false, 2.0, a, r, 0.0, grad_g);             // dL/dG = 2 A^T R
    const Matrix grad_z = net.backward(tape, grad_g);              // dL/dZ = J_G^T dL/dG
    optimizer.step({z.data()}, {grad_z.data()});                   // elementwise: per-sample Adam
    if (options.radius > 0.0) project_columns(z, options.radius);  // z <- P_{||z||<=R}(z)
  }
  if (gram) {
    // The expanded form cannot rank iterates whose losses differ by less than its rounding
    // (~1e-16 ||y||^2): recompute the best and the last iterate's losses directly and keep
    // the lower (Adam's last iterate is usually the finest).
    best_loss = residual(a, net.forward(best), y).colwise().squaredNorm().transpose();
    const Vector last = residual(a, net.forward(z), y).colwise().squaredNorm().transpose();
    for (Index j = 0; j < n_samples; ++j)
      if (last(j) < best_loss(j)) {
        best_loss(j) = last(j);
        best.col(j) = z.col(j);
      }
  }
  z = std::move(best);
  return best_loss;
}

Vector polish_codes(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Matrix& z,
                    Index iterations, double radius) {
  const Index k = net.input_dim(), n = net.output_dim(), N = z.cols();
  check_problem("polish", a, net, y, z);
  if (iterations < 0) throw Error(cat("polish: iterations must be >= 0, got ", iterations));
  const auto losses = [&](const Matrix& codes) {
    return Vector(residual(a, net.forward(codes), y).colwise().squaredNorm().transpose());
  };
  Vector loss = losses(z);
  if (iterations == 0 || N == 0) return loss;
  Matrix h(n, n), c(n, N);
  blas::gemm(true, false, 1.0, a, a, 0.0, h);  // H = A^T A
  blas::gemm(true, false, 1.0, a, y, 0.0, c);  // C = A^T Y
  Vector mu = Vector::Constant(N, 1e-3);
  // A sample stops when converged or stuck (frozen), by its own test alone, so whether it
  // goes on never depends on the other samples of the batch.
  std::vector<char> frozen(size_t(N), 0);
  // Per latent coordinate i: J_G e_i and H J_G e_i (n x N each).
  std::vector<Matrix> jacobian(static_cast<size_t>(k)), h_jacobian(static_cast<size_t>(k));
  Matrix trial(k, N), normal(k, k);
  Vector rhs(k);
  GeneratorTape tape;
  for (Index iteration = 0; iteration < iterations; ++iteration) {
    const Matrix g = net.forward(z, tape);
    Matrix grad_g = c;
    blas::gemm(false, false, 1.0, h, g, -1.0, grad_g);   // A^T (A G - Y) = H G - C
    const Matrix gradient = net.backward(tape, grad_g);  // half the loss's gradient: J^T r
    for (Index i = 0; i < k; ++i) {
      // Central differences with a step relative to each |z|: exact for the quadratic
      // layers up to rounding, O(h^2) otherwise, and only the step depends on it.
      Matrix plus = z, minus = z;
      Vector step(N);
      for (Index j = 0; j < N; ++j) {
        step(j) = 1e-5 * std::max(1.0, std::abs(z(i, j)));
        plus(i, j) += step(j);
        minus(i, j) -= step(j);
      }
      jacobian[size_t(i)] = net.forward(plus) - net.forward(minus);
      for (Index j = 0; j < N; ++j) jacobian[size_t(i)].col(j) /= 2.0 * step(j);
      h_jacobian[size_t(i)].resize(n, N);
      blas::gemm(false, false, 1.0, h, jacobian[size_t(i)], 0.0, h_jacobian[size_t(i)]);
    }
    for (Index j = 0; j < N; ++j) {
      for (Index p = 0; p < k; ++p)
        for (Index q = 0; q <= p; ++q)
          normal(p, q) = normal(q, p) =
              jacobian[size_t(p)].col(j).dot(h_jacobian[size_t(q)].col(j));
      // Marquardt's scaling, plus a small multiple of the mean curvature so that a flat
      // coordinate (dG/dz_i = 0, e.g. z_i = 0 under a square) still gets a finite step.
      const double floor = 1e-6 * normal.trace() / double(k) + 1e-300;
      for (Index p = 0; p < k; ++p) normal(p, p) += mu(j) * (normal(p, p) + floor);
      rhs = -gradient.col(j);
      trial.col(j) = z.col(j) + normal.ldlt().solve(rhs);
    }
    if (radius > 0.0) project_columns(trial, radius);
    const Vector trial_loss = losses(trial);
    bool active = false;
    for (Index j = 0; j < N; ++j) {
      if (frozen[size_t(j)]) continue;
      active = true;
      if (trial_loss(j) < loss(j)) {
        // Converged when an accepted step gains less than a relative 1e-12.
        frozen[size_t(j)] = trial_loss(j) >= loss(j) * (1.0 - 1e-12);
        loss(j) = trial_loss(j);
        z.col(j) = trial.col(j);
        mu(j) = std::max(mu(j) / 3.0, 1e-12);
      } else {
        mu(j) *= 4.0;
        frozen[size_t(j)] = mu(j) > 1e12;  // no descent even with tiny steps
      }
    }
    if (!active) break;  // every sample frozen
  }
  return loss;
}

DecodeResult decode(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                    const std::vector<Index>& rows, const DecodeOptions& options,
                    const Matrix* warm_start) {
  validate(options);
  if (Index(rows.size()) != y.cols())
    throw Error(cat("decode: ", rows.size(), " row numbers for ", y.cols(), " samples"));
  if (warm_start == nullptr && options.restarts < 1)
    throw Error("decode: restarts must be >= 1 without a warm start");
  if (warm_start != nullptr &&
      (warm_start->rows() != net.input_dim() || warm_start->cols() != y.cols()))
    throw Error(cat("decode: the warm start is ", warm_start->rows(), " x ", warm_start->cols(),
                    "; expected ", net.input_dim(), " x ", y.cols()));
  DecodeResult result;
  const Index first_start = warm_start != nullptr ? -1 : 0;
  const Index starts = options.restarts - first_start, k = net.input_dim(), n = y.cols();
  if (options.screen_steps > 0 && starts > 1) {
    // All starts side by side (start s in columns s n .. s n + n - 1), screen_steps steps.
    Matrix z_all(k, starts * n), y_all(y.rows(), starts * n);
    for (Index s = 0; s < starts; ++s) {
      const Index start = first_start + s;
      z_all.middleCols(s * n, n) = start < 0 ? *warm_start : initial_codes(k, rows, start, options);
      y_all.middleCols(s * n, n) = y;
    }
    DecodeOptions screening = options;
    screening.steps = options.screen_steps;
    screening.screen_steps = 0;
    screening.lr_decay = 1.0;
    const Vector screened = refine_codes(a, net, y_all, z_all, screening);
    // Each sample's best quarter of the starts (ties: the earliest) goes on, side by side.
    const Index keep = (starts + 3) / 4;
    Matrix z_kept(k, keep * n), y_kept(y.rows(), keep * n);
    std::vector<Index> kept(size_t(keep * n)), order(static_cast<size_t>(starts));
    for (Index j = 0; j < n; ++j) {
      for (Index s = 0; s < starts; ++s) order[size_t(s)] = s;
      std::stable_sort(order.begin(), order.end(),
                       [&](Index p, Index q) { return screened(p * n + j) < screened(q * n + j); });
      for (Index s = 0; s < keep; ++s) {
        kept[size_t(s * n + j)] = order[size_t(s)];
        z_kept.col(s * n + j) = z_all.col(order[size_t(s)] * n + j);
        y_kept.col(s * n + j) = y.col(j);
      }
    }
    DecodeOptions rest = options;
    rest.steps = options.steps - options.screen_steps;
    rest.screen_steps = 0;
    const Vector loss = refine_codes(a, net, y_kept, z_kept, rest);
    result.codes.resize(k, n);
    result.loss.resize(n);
    result.start.assign(size_t(n), first_start);
    for (Index j = 0; j < n; ++j) {
      Index best = 0;
      for (Index s = 1; s < keep; ++s)  // strict: the better screened start wins ties
        if (loss(s * n + j) < loss(best * n + j)) best = s;
      result.codes.col(j) = z_kept.col(best * n + j);
      result.loss(j) = loss(best * n + j);
      result.start[size_t(j)] = first_start + kept[size_t(best * n + j)];
    }
    if (options.polish > 0)
      result.loss = polish_codes(a, net, y, result.codes, options.polish, options.radius);
    return result;
  }
  bool first = true;
  // Start -1 is the warm start, 0 .. restarts - 1 the random ones.
  for (Index start = warm_start != nullptr ? -1 : 0; start < options.restarts; ++start) {
    Matrix z = start < 0 ? *warm_start : initial_codes(net.input_dim(), rows, start, options);
    const Vector loss = refine_codes(a, net, y, z, options);
    if (first) {
      result.codes = std::move(z);
      result.loss = loss;
      result.start.assign(rows.size(), start);
      first = false;
      continue;
    }
    for (Index j = 0; j < y.cols(); ++j)
      if (loss(j) < result.loss(j)) {  // strict: the earliest start wins ties
        result.loss(j) = loss(j);
        result.codes.col(j) = z.col(j);
        result.start[size_t(j)] = start;
      }
  }
  if (options.polish > 0)
    result.loss = polish_codes(a, net, y, result.codes, options.polish, options.radius);
  return result;
}

DecodeResult decode(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Index first_row,
                    const DecodeOptions& options, const Matrix* warm_start) {
  std::vector<Index> rows(size_t(y.cols()));
  for (size_t j = 0; j < rows.size(); ++j) rows[j] = first_row + Index(j);
  return decode(a, net, y, rows, options, warm_start);
}

Vector reconstruction_error(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                            const Matrix& z) {
  check_problem("reconstruction_error", a, net, y, z);
  return residual(a, net.forward(z), y).colwise().squaredNorm().transpose();
}

void accumulate_altmin_statistics(const GeneratorNetwork& net, const Matrix& y, const Matrix& z,
                                  AltminStatistics& stats) {
  const Index m = y.rows(), n = net.output_dim();
  if (stats.b.rows() != m || stats.b.cols() != n || stats.c.rows() != n || stats.c.cols() != n)
    throw Error(cat("altmin statistics: B is ", stats.b.rows(), " x ", stats.b.cols(), " and C ",
                    stats.c.rows(), " x ", stats.c.cols(), "; expected ", m, " x ", n, " and ", n,
                    " x ", n));
  if (z.rows() != net.input_dim() || z.cols() != y.cols())
    throw Error(cat("altmin statistics: the codes are ", z.rows(), " x ", z.cols(), "; expected ",
                    net.input_dim(), " x ", y.cols()));
  const Matrix g = net.forward(z);
  blas::gemm(false, true, 1.0, y, g, 1.0, stats.b);  // B += Y G^T
  blas::syrk_upper(1.0, g, 1.0, stats.c);            // C += G G^T (upper triangle)
  blas::symmetrize_from_upper(stats.c);
}

Matrix solve_altmin(const Matrix& b, const Matrix& c, double eps) {
  const Index m = b.rows(), n = b.cols();
  if (c.rows() != n || c.cols() != n)
    throw Error(cat("solve_altmin: B is ", m, " x ", n, " but C is ", c.rows(), " x ", c.cols()));
  if (!(eps >= 0.0) || !std::isfinite(eps))
    throw Error(cat("solve_altmin: eps must be >= 0, got ", eps));
  if (!b.allFinite() || !c.allFinite()) throw Error("solve_altmin: B or C is not finite");
  Matrix system = c;
  system.diagonal().array() += eps;  // C + eps I
  Matrix solution = b.transpose();   // right-hand sides B^T (n x m)
  if (n == 0 || m == 0) return solution.transpose();
  // C + eps I = U^T U, then U^T U A^T = B^T.
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', int(n), system.data(), int(n));
  if (info != 0)
    throw Error(cat("altmin: C + eps I is not positive definite (LAPACK potrf info ", info,
                    "); too few samples for n = ", n, ", or increase eps"));
  info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', int(n), int(m), system.data(), int(n),
                        solution.data(), int(n));
  DICTLEARN_ASSERT(info == 0);
  return solution.transpose();
}

Matrix altmin_gradient(const Matrix& a, const Matrix& b, const Matrix& c) {
  if (a.rows() != b.rows() || a.cols() != b.cols() || c.rows() != a.cols() || c.cols() != a.cols())
    throw Error(cat("altmin_gradient: A is ", a.rows(), " x ", a.cols(), ", B ", b.rows(), " x ",
                    b.cols(), ", C ", c.rows(), " x ", c.cols()));
  Matrix grad = b;
  blas::gemm(false, false, 2.0, a, c, -2.0, grad);  // 2 (A C - B)
  return grad;
}

double joint_loss_gradient(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                           const Matrix& z, Matrix* grad_a, Matrix* grad_z) {
  check_problem("joint_loss_gradient", a, net, y, z);
  GeneratorTape tape;
  const Matrix g = grad_z != nullptr ? net.forward(z, tape) : net.forward(z);
  const Matrix r = residual(a, g, y);  // R = A G - Y
  if (grad_a != nullptr) {
    grad_a->resize(a.rows(), a.cols());
    blas::gemm(false, true, 2.0, r, g, 0.0, *grad_a);  // dL/dA = 2 R G^T
  }
  if (grad_z != nullptr) {
    Matrix grad_g(a.cols(), z.cols());
    blas::gemm(true, false, 2.0, a, r, 0.0, grad_g);  // dL/dG = 2 A^T R
    *grad_z = net.backward(tape, grad_g);             // dL/dZ = J_G^T dL/dG
  }
  return r.squaredNorm();
}

bool project_to_ball(Matrix& a, const Matrix& a0, double radius) {
  if (a.rows() != a0.rows() || a.cols() != a0.cols())
    throw Error(cat("project_to_ball: A is ", a.rows(), " x ", a.cols(), " but A0 is ", a0.rows(),
                    " x ", a0.cols()));
  if (!(radius >= 0.0) || !std::isfinite(radius))
    throw Error(cat("project_to_ball: radius must be >= 0, got ", radius));
  const double distance = (a - a0).norm();
  if (distance <= radius) return false;
  // A <- A0 + radius (A - A0) / ||A - A0||_F
  a = a0 + (radius / distance) * (a - a0);
  return true;
}

}  // namespace dictlearn
