#pragma once
// Multinomial (softmax) logistic regression with an l2 penalty, on samples sharded across
// MPI ranks: the classifier that `dictlearn classify` trains on sparse codes (or raw data).
//
// Data. Rank r holds n_r samples as the columns of X_r: dense d x n_r (Matrix), or sparse
// K x n_r (SparseMatrix, e.g. the codes written by `dictlearn encode`), with labels
// y_i in {0, ..., C-1}; N = sum_r n_r. Any rank may hold no samples.
//
// Model. Scores z_i = W x_i + b with W : C x d, b : C; p_i = softmax(z_i), i.e.
//   p_ic = exp(z_ic) / sum_k exp(z_ik).
//
// Objective (mean cross-entropy over ALL N samples, bias not penalised):
//   f(W, b) = (1/N) sum_i [ logsumexp(z_i) - z_{i,y_i} ] + (l2 / 2) ||W||_F^2
//   grad_W f = (1/N) (P - Y) X^T + l2 W        (C x d)
//   grad_b f = (1/N) (P - Y) 1                 (C)
// with P = [p_1 ... p_N] (C x N) and Y the one-hot labels. logsumexp(z) is computed as
// m + log sum_k exp(z_k - m), m = max_k z_k, so no exp overflows. f is convex, strictly
// convex in W for l2 > 0. f is unchanged by b -> b + t 1 and the entries of grad_b sum to
// zero, so the iterates (started at b = 0) keep sum_c b_c = 0: the minimum-norm optimum.
// For separable data and l2 = 0 there is no minimiser; max_iterations ends the run.
//
// Solver: L-BFGS (Liu & Nocedal, Math. Programming 45, 1989; Nocedal & Wright,
// "Numerical Optimization", Alg. 7.4 and 7.5) on theta = [vec(W); b], with a backtracking
// line search on the Armijo condition (safeguarded quadratic interpolation). Each
// evaluation of f and its gradient costs two BLAS-3 products per rank (Z = W X_r and
// G = (P - Y) X_r^T) and ONE allreduce of [loss sum, G, (P - Y) 1] (C (d + 1) + 1
// doubles), so every rank takes the same steps and holds the same model bit for bit. Other
// rank counts change only the order of the sums (rounding). Stops when
// ||grad f||_inf <= tolerance (converged), after max_iterations, or when the line search
// cannot decrease f any more (at the limit of floating-point precision).
#include <Eigen/SparseCore>
#include <functional>
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// K x n sparse features, one sample per column (the same alias as in io/label_reader.hpp,
/// repeated so that this header does not pull in HDF5).
using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;

struct LogisticRegressionOptions {
  Index classes = 0;           ///< C >= 2; labels lie in [0, C). 0: 1 + the largest label
  double l2 = 1e-4;            ///< weight of (1/2) ||W||_F^2, >= 0 (the bias is not penalised)
  Index max_iterations = 500;  ///< L-BFGS iterations (>= 1)
  double tolerance = 1e-6;     ///< converged when ||grad f||_inf <= tolerance (>= 0)
  int memory = 10;             ///< L-BFGS correction pairs kept (>= 1)
  int max_line_search = 40;    ///< trial steps per line search (>= 1)
};

/// Throws Error naming the first out-of-range field.
void validate(const LogisticRegressionOptions& options);

struct LogisticModel {
  Matrix weights;  ///< C x d
  Vector bias;     ///< C
  Index classes() const { return weights.rows(); }
  Index features() const { return weights.cols(); }
};

enum class LogisticStop { converged, max_iterations, line_search_failed };
std::string to_string(LogisticStop reason);

/// State after an iteration, handed to the progress callback (on every rank).
struct LogisticProgress {
  Index iteration = 0;         ///< iterations done (0: the starting point)
  Index evaluations = 0;       ///< evaluations of f and its gradient so far
  double loss = 0.0;           ///< f at the current model
  double gradient_norm = 0.0;  ///< ||grad f||_inf
};
using LogisticProgressFn = std::function<void(const LogisticProgress&)>;

struct LogisticFit {
  LogisticModel model;
  Index samples = 0;  ///< N, over all ranks
  Index iterations = 0;
  Index evaluations = 0;
  double loss = 0.0;           ///< f at the returned model
  double gradient_norm = 0.0;  ///< ||grad f||_inf there
  LogisticStop stop = LogisticStop::max_iterations;
  bool converged() const { return stop == LogisticStop::converged; }
};

/// Collective. Fits W, b on every rank's samples (the columns of `features`, labels
/// `labels`, one per column); all ranks return the same model. `initial` (C x d and C,
/// or nullptr for zeros) is a warm start. Throws AgreedError on every rank for invalid
/// options, a label outside [0, C), a non-finite feature, mismatched sizes or N = 0.
LogisticFit fit_logistic_regression(const Communicator& comm, const Matrix& features,
                                    const std::vector<int>& labels,
                                    const LogisticRegressionOptions& options,
                                    const LogisticProgressFn& progress = {},
                                    const LogisticModel* initial = nullptr);
LogisticFit fit_logistic_regression(const Communicator& comm, const SparseMatrix& features,
                                    const std::vector<int>& labels,
                                    const LogisticRegressionOptions& options,
                                    const LogisticProgressFn& progress = {},
                                    const LogisticModel* initial = nullptr);

/// Collective. f(W, b) over all ranks' samples (see above); if `gradient` is not null it
/// receives grad_W f and grad_b f. The same numbers the solver uses (for tests and
/// diagnostics). Labels must lie in [0, model.classes()).
double logistic_objective(const Communicator& comm, const LogisticModel& model,
                          const Matrix& features, const std::vector<int>& labels, double l2,
                          LogisticModel* gradient = nullptr);
double logistic_objective(const Communicator& comm, const LogisticModel& model,
                          const SparseMatrix& features, const std::vector<int>& labels, double l2,
                          LogisticModel* gradient = nullptr);

/// Local. Scores W X + b 1^T (C x n).
Matrix decision_scores(const LogisticModel& model, const Matrix& features);
Matrix decision_scores(const LogisticModel& model, const SparseMatrix& features);

/// Local. Predicted class of each column: argmax_c of the scores (the lowest c on ties).
std::vector<int> predict(const LogisticModel& model, const Matrix& features);
std::vector<int> predict(const LogisticModel& model, const SparseMatrix& features);

/// Counts over all ranks' samples.
struct ClassificationReport {
  Index samples = 0;
  Index correct = 0;
  double accuracy = 0.0;  ///< correct / samples (0 if there are none)
  /// C x C: confusion(t, p) = number of samples of true class t predicted as p.
  Eigen::Matrix<long long, Eigen::Dynamic, Eigen::Dynamic> confusion;
};

/// Collective (one allreduce). Accuracy and confusion matrix of this rank's `predicted`
/// against `labels` (same length), summed over all ranks. Throws AgreedError if a value
/// lies outside [0, classes) or the lengths differ.
ClassificationReport evaluate_predictions(const Communicator& comm,
                                          const std::vector<int>& predicted,
                                          const std::vector<int>& labels, Index classes);

}  // namespace dictlearn
