#pragma once
// Codes a whole minibatch at once. The caller provides the two BLAS-3 products every
// coder here needs, G = D^T D (once per dictionary update) and D^T X (once per
// minibatch); the per-sample solvers then run on K-sized data only (FISTA with a robust
// loss also touches x and D), in parallel over the samples with one preallocated solver
// per OpenMP thread.
//
// Coders and the objective each minimises per sample (r = x - D a):
//   lars       0.5||r||^2 + lambda||a||_1, exact (LARS homotopy)      scikit-learn lasso_lars
//   lar        LARS path stopped at `nonzeros` active atoms            scikit-learn lars
//   cd         0.5||r||^2 + lambda||a||_1, coordinate descent          scikit-learn lasso_cd
//   omp        ||r||^2 s.t. ||a||_0 <= nonzeros / ||r||^2 <= tolerance scikit-learn omp
//   threshold  soft thresholding of D^T x by lambda                    scikit-learn threshold
//   fista      0.5 L(r) + lambda (||a||_1 + gamma/2 ||a||^2), L squared, huber or power
//   lca        Locally Competitive Algorithm (Rozell et al. 2008): soft threshold -> the
//              lasso above; hard threshold -> 0.5||r||^2 + lambda^2/2 ||a||_0 (local minima)
// `positive` (a >= 0) is available for lars, cd, threshold, fista and lca; like scikit-learn,
// omp and lar refuse it.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "dictlearn/coding/coordinate_descent.hpp"
#include "dictlearn/coding/fista.hpp"
#include "dictlearn/coding/lars.hpp"
#include "dictlearn/coding/lca.hpp"
#include "dictlearn/coding/omp.hpp"
#include "dictlearn/coding/threshold.hpp"

namespace dictlearn {

enum class CoderKind { lars, lar, cd, omp, threshold, fista, lca };

CoderKind parse_coder(const std::string& name);  ///< throws Error naming the value
std::string to_string(CoderKind kind);

using Loss = FistaOptions::Loss;
LcaOptions::Threshold parse_lca_threshold(const std::string& name);
std::string to_string(LcaOptions::Threshold threshold);
Loss parse_loss(const std::string& name);
std::string to_string(Loss loss);

/// One coder's parameters, in the terms of the command line (see the table above).
struct CoderOptions {
  CoderKind kind = CoderKind::lars;
  double lambda = 1.0;           ///< l1 weight (lars, cd, threshold, fista)
  bool positive = false;         ///< a >= 0 (lars, cd, threshold, fista)
  Index nonzeros = 0;            ///< omp budget / lar path length (0: none)
  double tolerance = 0.0;        ///< omp: target squared residual (0: none)
  double coder_tol = 0.0;        ///< cd: duality gap / ||x||^2, fista: relative step (0: default)
  Index coder_max_iter = 1000;   ///< cd sweeps / fista iterations
  double elastic_penalty = 0.0;  ///< fista: gamma of the l2 term
  Loss loss = Loss::squared;     ///< fista: reconstruction loss
  double huber_delta = 1.0;      ///< fista: huber threshold
  double loss_power = 2.0;       ///< fista: p of the power loss (> 1)
  LcaOptions::Threshold lca_threshold = LcaOptions::Threshold::soft;  ///< lca: soft or hard
  double lca_tau = 1.0;                                               ///< lca: time constant
  double lca_dt = 0.1;     ///< lca: Euler step (dt / tau in (0, 1])
  Index lca_steps = 1000;  ///< lca: steps, at most
  double lca_tol = 1e-7;   ///< lca: stop when max |du| <= lca_tol * max |D^T x|
};

/// Throws Error naming the first invalid or contradictory coder option.
void validate(const CoderOptions& options);

/// Arithmetic of the coders: double (default) or float. Float halves the memory traffic
/// and doubles the SIMD width of D^T X, the Gram matrix and the per-sample solvers; the
/// statistics and the dictionary update stay in double.
enum class Precision { float64, float32 };
Precision parse_precision(const std::string& name);  ///< "double" or "float"
std::string to_string(Precision precision);

template <typename Scalar>
class NodeCodingTeam;

/// Codes minibatches in Scalar arithmetic (double or float).
template <typename Scalar>
class BatchEncoderT {
 public:
  /// `threads` <= 0 means the OpenMP default.
  BatchEncoderT(const CoderOptions& options, Index n_atoms, Index dim, int threads);

  /// codes (K x n) of the samples x (d x n), from the dictionary D (d x K), G = D^T D,
  /// dtx = D^T X (K x n) and x_sqnorms(j) = ||x_j||^2. Returns the total number of nonzeros.
  /// `warm_codes` (K x n), if given, starts the iterative coders (cd, fista) there; the
  /// exact and greedy coders do not need a starting point and ignore it.
  /// `residual_sqnorms`, if given, receives ||x_j - D a_j||^2 per sample (LARS and LAR:
  /// from the terms of the final solve, LarsLasso::residual_sqnorm; the other coders:
  /// residual_sqnorm_from_gram).
  /// `beside`, if given, runs once on the calling thread before it joins the coding; the
  /// team's other threads code meanwhile (the trainer reads the next minibatch there).
  /// `prepare`, if given, is called as prepare(begin, end) by the thread about to code
  /// samples [begin, end), before it reads their columns of dtx: it may fill them there,
  /// while they stay in that core's cache.
  Index encode(const MatrixT<Scalar>& dictionary, const MatrixT<Scalar>& gram,
               const MatrixT<Scalar>& x, const MatrixT<Scalar>& dtx,
               const VectorT<Scalar>& x_sqnorms, MatrixT<Scalar>& codes,
               const MatrixT<Scalar>* warm_codes = nullptr, Vector* residual_sqnorms = nullptr,
               const std::function<void()>& beside = {},
               const std::function<void(Index, Index)>& prepare = {});

  /// Codes this round of `team` (coding/node_coding_team.hpp): this rank's published
  /// samples first, then chunks of the other ranks' while any are left, until all of this
  /// rank's are coded (by whichever rank). Cold starts only. Returns this rank's nonzeros;
  /// its codes and residual norms are in team.mine(n). Bitwise the same as encode().
  Index encode_shared(NodeCodingTeam<Scalar>& team, const MatrixT<Scalar>& dictionary,
                      const MatrixT<Scalar>& gram, const std::function<void()>& beside = {});

  const CoderOptions& options() const { return options_; }
  /// Whether the solver reads the samples themselves (not only D^T X and ||x||^2).
  bool reads_samples() const { return options_.kind == CoderKind::fista; }

 private:
  // The solvers' options for one call (FISTA's step size depends on G).
  struct Settings {
    LarsOptions lars;
    CoordinateDescentOptions cd;
    FistaOptions fista;
    LcaOptions lca;
    ThresholdOptions threshold;
    OmpOptions omp;
  };
  Settings settings(const MatrixT<Scalar>& gram, bool warm) const;
  // LARS (and LAR) set every entry of the code from zero whatever it held; the others
  // start from it (zero, or the warm code).
  bool solver_clears_code() const {
    return options_.kind == CoderKind::lars || options_.kind == CoderKind::lar;
  }
  Index solve_one(std::size_t thread, const Settings& settings, const MatrixT<Scalar>& dictionary,
                  const MatrixT<Scalar>& gram, const Eigen::Ref<const VectorT<Scalar>>& dtx,
                  const Eigen::Ref<const VectorT<Scalar>>& x, Scalar x_sqnorm,
                  Eigen::Ref<VectorT<Scalar>> code);
  // ||x - D a||^2 of the code thread `thread` has just solved.
  double residual_sqnorm(std::size_t thread, const MatrixT<Scalar>& gram,
                         const Eigen::Ref<const VectorT<Scalar>>& dtx, Scalar x_sqnorm,
                         const Eigen::Ref<const VectorT<Scalar>>& code);

  CoderOptions options_;
  int threads_;
  std::vector<std::vector<Index>> support_;  // per thread: a code's nonzero atoms
  std::vector<LarsLasso<Scalar>> lars_;
  std::vector<CoordinateDescentLasso<Scalar>> cd_;
  std::vector<BatchOmp<Scalar>> omp_;
  std::vector<SoftThreshold<Scalar>> threshold_;
  std::vector<Fista<Scalar>> fista_;
  std::vector<Lca<Scalar>> lca_;
};

extern template class BatchEncoderT<double>;
extern template class BatchEncoderT<float>;
using BatchEncoder = BatchEncoderT<double>;

/// Per-sample terms of the coder's own objective, from the residuals R = X - D C (d x n)
/// and the codes (K x n): the data term (0.5||r||^2, or 0.5 L(r) for fista) and the
/// penalty (lambda||a||_1, plus lambda gamma/2 ||a||^2 for fista; 0 for omp and lar).
void sample_objectives(const CoderOptions& options, const Matrix& residual, const Matrix& codes,
                       Vector& reconstruction, Vector& penalty);

/// The penalty part of sample_objectives alone (one entry per code).
void code_penalties(const CoderOptions& options, const Matrix& codes, Vector& penalty);

/// ||x - D a||^2 of one code a from G = D^T D, D^T x and ||x||^2 (the coder's inputs):
///   ||x||^2 - 2 a^T D^T x + a^T G a
/// over the s nonzeros of a, O(s^2) instead of the O(d s) of forming the residual; summed
/// in double, clipped at 0. Rounding: a few ulps of ||x||^2 (absolute), so a residual
/// 1e-12 times smaller than the sample is noise. `support` holds K indices (workspace).
template <typename Scalar>
double residual_sqnorm_from_gram(const MatrixT<Scalar>& gram,
                                 const Eigen::Ref<const VectorT<Scalar>>& dtx, Scalar x_sqnorm,
                                 const Eigen::Ref<const VectorT<Scalar>>& code, Index* support);

}  // namespace dictlearn
