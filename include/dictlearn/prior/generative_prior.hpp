#pragma once
// Dictionary learning under a generative coefficient prior ("Dictionary Learning Under
// Generative Coefficient Priors, with Applications to Compression", ICLR 2022 submission):
//   y = A G(z) + noise,   A : m x n (the dictionary to learn),  G : R^k -> R^n known
// (prior/generator_network.hpp). With Y : m x N (samples as columns), Z : k x N and
// G = G(Z) : n x N, the objective is
//   L(A, Z) = sum_j ||y_j - A G(z_j)||^2 = ||Y - A G(Z)||_F^2.
// The pieces here are serial functions on a rank's samples; a distributed trainer shards
// the samples and allreduces only the dictionary-sized quantities:
//   decode   min_z ||y - A G(z)||^2 per sample, by Adam from random starts (best kept);
//   altmin   after decoding, the least-squares dictionary
//              A = B (C + eps I)^-1,  B = sum y G(z)^T (m x n),  C = sum G(z) G(z)^T (n x n),
//            B and C being sums the caller allreduces (or one optimizer step with
//            dL/dA = 2 (A C - B), see altmin_gradient);
//   joint    one optimizer step over A and the batch's Z together (the paper's "autodiff"),
//            from joint_loss_gradient; the caller allreduces dL/dA only (Z is per sample).
// Every loss and gradient is a SUM over the given samples (no 1/N): the caller scales.
#include <cstdint>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/gradient/optimizer.hpp"
#include "dictlearn/prior/generator_network.hpp"

namespace dictlearn {

struct DecodeOptions {
  /// The optimizer of the codes (elementwise, so every sample's z follows its own Adam
  /// trajectory whatever the batch): Adam, lr 1e-2, beta1 0.9, beta2 0.999, eps 1e-8.
  OptimizerOptions optimizer{OptimizerOptions::Kind::adam, 1e-2};
  Index steps = 1000;       ///< optimizer steps per start, >= 1
  Index restarts = 1;       ///< random starts per sample, >= 1 (>= 0 with a warm start);
                            ///< the lowest loss is kept
  double radius = 0.0;      ///< > 0: constraint ||z|| <= radius (projection after each
                            ///< step and of the start); 0: unconstrained
  double init_scale = 1.0;  ///< starts z0 ~ N(0, init_scale^2 I), > 0
  /// > 0 (and several starts): every start runs this many steps, all in one batch; only each
  /// sample's best goes on for the remaining steps - options.steps - screen_steps (>= 1).
  /// The objective in z has many poor local minima (sin, squares), so many starts are
  /// needed; screening makes them cost screen_steps each instead of steps.
  Index screen_steps = 0;
  /// The step size falls geometrically from the optimizer's to that times lr_decay over the
  /// steps of each refinement (after screening: over the remaining steps; the screening
  /// itself runs at the full step size). 1: constant. Adam's steps are about lr in size
  /// whatever the gradient, so a constant lr limits how precisely z is found.
  double lr_decay = 1.0;
  /// > 0: after the Adam steps, this many Levenberg-Marquardt (damped Gauss-Newton)
  /// iterations per sample (polish_codes). Adam's diagonal scaling crawls when A G has
  /// strongly correlated columns (e.g. A >= 0); with small k, Gauss-Newton converges in a
  /// few iterations from inside the basin Adam found.
  Index polish = 0;
  std::uint64_t seed = 0;  ///< start of sample `row`, restart r: stream (seed, row, r)
};

/// Throws Error naming the first field out of range (and the optimizer's, see validate).
void validate(const DecodeOptions& options);

struct DecodeResult {
  Matrix codes;              ///< k x N: per sample, the best z found
  Vector loss;               ///< N: ||y_j - A G(z_j)||^2 at that z
  std::vector<Index> start;  ///< N: the restart (0-based) it came from; -1: the warm start
};

/// The deterministic start of restart `restart` for the samples of global row numbers
/// `rows` (k x rows.size()): column j ~ N(0, init_scale^2 I) from the stream derived from
/// (seed, rows[j], restart) alone, projected onto the ball when radius > 0. So the starts do not
/// depend on how the samples are split over ranks or batches, nor do the decoded codes up to
/// rounding: the optimizer is elementwise, but BLAS may round a column's GEMM result differently by
/// its position in the batch (observed: 3e-16 after 1000 Adam steps, 1 to 3 ranks).
Matrix initial_codes(Index k, const std::vector<Index>& rows, Index restart,
                     const DecodeOptions& options);

/// Runs options.steps optimizer steps on sum_j ||y_j - A G(z_j)||^2 from `z` (k x N, in
/// place), all columns at once (A G(Z) is one GEMM), projecting onto the ball (the start
/// and after each step) when radius > 0. Leaves in `z` each column's best iterate (the lowest loss
/// seen, the start included) and returns those losses (N). `restarts` and `seed` are not used.
Vector refine_codes(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Matrix& z,
                    const DecodeOptions& options);

/// Levenberg-Marquardt on each column of `z` (k x N, in place) for `iterations` iterations:
/// J_j = A J_G(z_j) (J_G by central differences, one GEMM with H = A^T A per latent
/// coordinate), step (J^T J + mu_j diag(J^T J)) d = -J^T r with the exact gradient, accepted
/// only when the loss falls (mu_j / 3), else mu_j x 4; a sample stops once an accepted step
/// gains less than a relative 1e-12 or mu_j exceeds 1e12 (the loop ends when all have). Returns the
/// final losses (N), each no larger than at the start. With radius > 0 the step is projected onto
/// the ball. decode() polishes only each sample's winning start.
Vector polish_codes(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Matrix& z,
                    Index iterations, double radius = 0.0);

/// Decodes the samples Y (m x N) whose global row numbers are `rows` (N of them): for each
/// restart r, refine_codes from initial_codes(k, rows, r); per sample the lowest loss wins
/// (the earliest start on ties). With screen_steps > 0 the starts are refined together for
/// screen_steps, then each sample's best for the remaining steps. With `warm_start` (k x N, e.g.
/// the previous iteration's codes) that is refined too, as the first start (DecodeResult::start =
/// -1 when it wins): then no sample's loss exceeds its loss at the warm start, which makes
/// alternating minimisation monotone. Throws Error on a shape mismatch or invalid options.
DecodeResult decode(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                    const std::vector<Index>& rows, const DecodeOptions& options,
                    const Matrix* warm_start = nullptr);
/// As above for the contiguous rows first_row, first_row + 1, ..., first_row + N - 1.
DecodeResult decode(const Matrix& a, const GeneratorNetwork& net, const Matrix& y, Index first_row,
                    const DecodeOptions& options, const Matrix* warm_start = nullptr);

/// Per-sample ||y_j - A G(z_j)||^2 (N), Y : m x N, Z : k x N.
Vector reconstruction_error(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                            const Matrix& z);

// ---------------------------------------------------------------------------------------
// altmin: the dictionary step with the codes fixed

struct AltminOptions {
  enum class Update { least_squares, optimizer_step };
  /// least_squares: A = B (C + eps I)^-1 (solve_altmin); optimizer_step: one step of
  /// `optimizer` with the gradient 2 (A C - B) (altmin_gradient).
  Update update = Update::least_squares;
  double eps = 1e-4;  ///< ridge added to C's diagonal: solve_altmin takes it as it is; the
                      ///< trainer scales it by trace(C) / n. >= 0
  OptimizerOptions optimizer{OptimizerOptions::Kind::adam, 1e-2};  ///< optimizer_step only
};

/// Throws Error naming the first field out of range.
void validate(const AltminOptions& options);

/// The sufficient statistics of the least-squares dictionary; b and c are contiguous, so the
/// caller allreduces b.data() (m * n values) and c.data() (n * n values) as they are.
struct AltminStatistics {
  Matrix b;  ///< m x n: sum_j y_j G(z_j)^T
  Matrix c;  ///< n x n: sum_j G(z_j) G(z_j)^T (symmetric, both triangles stored)
  AltminStatistics() = default;
  AltminStatistics(Index m, Index n) : b(Matrix::Zero(m, n)), c(Matrix::Zero(n, n)) {}
};

/// stats.b += Y G(Z)^T, stats.c += G(Z) G(Z)^T (Y : m x N, Z : k x N; stats m x n, n x n).
void accumulate_altmin_statistics(const GeneratorNetwork& net, const Matrix& y, const Matrix& z,
                                  AltminStatistics& stats);

/// A = B (C + eps I)^-1 (m x n), by a Cholesky factorisation of C + eps I (LAPACK potrf /
/// potrs on (C + eps I) A^T = B^T). Throws Error if C + eps I is not positive definite
/// (too few samples for n, or a degenerate generator: increase eps).
Matrix solve_altmin(const Matrix& b, const Matrix& c, double eps);

/// dL/dA of L = sum_j ||y_j - A G(z_j)||^2 from the statistics: 2 (A C - B) (m x n).
Matrix altmin_gradient(const Matrix& a, const Matrix& b, const Matrix& c);

// ---------------------------------------------------------------------------------------
// joint: A and Z stepped together

/// L = sum_j ||y_j - A G(z_j)||^2, and (when the pointers are not null)
///   grad_a = dL/dA = 2 (A G - Y) G^T              (m x n: the caller allreduces it)
///   grad_z = dL/dZ = J_G^T (2 A^T (A G - Y))      (k x N: per sample, stays local)
/// Returns L (the sum over the given samples).
double joint_loss_gradient(const Matrix& a, const GeneratorNetwork& net, const Matrix& y,
                           const Matrix& z, Matrix* grad_a, Matrix* grad_z);

/// A <- A0 + (A - A0) * min(1, radius / ||A - A0||_F): the projection onto the Frobenius
/// ball of `radius` (>= 0) around the initial dictionary A0. Returns true if A moved.
bool project_to_ball(Matrix& a, const Matrix& a0, double radius);

}  // namespace dictlearn
