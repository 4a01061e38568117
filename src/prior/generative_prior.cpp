#include "dictlearn/prior/generative_prior.hpp"

#include <lapacke.h>

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
  const Index n_samples = z.cols();
  Vector best_loss = Vector::Constant(n_samples, std::numeric_limits<double>::infinity());
  Matrix best = z;
  Optimizer optimizer(options.optimizer, {z.size()});
  GeneratorTape tape;
  Matrix grad_g(net.output_dim(), n_samples);
  for (Index step = 0;; ++step) {
    const Matrix g = net.forward(z, tape);  // G(Z)
    const Matrix r = residual(a, g, y);     // R = A G(Z) - Y
    // Keep each column's best iterate: f_j = ||r_j||^2.
    const Vector loss = r.colwise().squaredNorm().transpose();
    for (Index j = 0; j < n_samples; ++j)
      if (loss(j) < best_loss(j)) {
        best_loss(j) = loss(j);
        best.col(j) = z.col(j);
      }
    if (step == options.steps) break;
    blas::gemm(true, false, 2.0, a, r, 0.0, grad_g);               // dL/dG = 2 A^T R
    const Matrix grad_z = net.backward(tape, grad_g);              // dL/dZ = J_G^T dL/dG
    optimizer.step({z.data()}, {grad_z.data()});                   // elementwise: per-sample Adam
    if (options.radius > 0.0) project_columns(z, options.radius);  // z <- P_{||z||<=R}(z)
  }
  z = std::move(best);
  return best_loss;
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
