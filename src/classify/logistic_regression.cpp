#include "dictlearn/classify/logistic_regression.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

// The two products of an evaluation, for each kind of features.
//   scores   Z = W X            (C x n)
//   gradient G = R X^T          (C x d), R = P - Y
void product_scores(const Matrix& w, const Matrix& x, Matrix& z) {
  blas::gemm(false, false, 1.0, w, x, 0.0, z);
}
void product_scores(const Matrix& w, const SparseMatrix& x, Matrix& z) { z.noalias() = w * x; }
void product_gradient(const Matrix& r, const Matrix& x, Matrix& g) {
  if (x.cols() == 0) {
    g.setZero();
    return;
  }
  blas::gemm(false, true, 1.0, r, x, 0.0, g);
}
void product_gradient(const Matrix& r, const SparseMatrix& x, Matrix& g) {
  g.noalias() = r * x.transpose();
}

bool all_finite(const Matrix& x) { return x.allFinite(); }
bool all_finite(const SparseMatrix& x) {
  const double* v = x.valuePtr();
  for (Index e = 0; e < x.nonZeros(); ++e)
    if (!std::isfinite(v[e])) return false;
  return true;
}

// Checks shared by the fit and the objective; throws Error (the caller agrees).
template <typename Features>
void check_local_data(const Features& x, const std::vector<int>& labels, Index classes) {
  if (Index(labels.size()) != x.cols())
    throw Error(cat("classifier: ", labels.size(), " labels for ", x.cols(),
                    " samples on rank-local data"));
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw Error(cat("classifier: label ", labels[i], " of local sample ", i, " is outside [0, ",
                      classes, ")"));
  if (!all_finite(x)) throw Error("classifier: the features hold a non-finite value");
}

// f and its gradient at theta = [vec(W); b] over all ranks' samples: the local sums go into
// one buffer [loss, G (C x d), g_b (C)] and are combined by ONE allreduce.
template <typename Features>
class Objective {
 public:
  Objective(const Communicator& comm, const Features& x, const std::vector<int>& labels,
            Index classes, double l2, Index samples)
      : comm_(comm), x_(x), labels_(labels), classes_(classes), l2_(l2), samples_(samples) {
    w_.resize(classes, x.rows());
    z_.resize(classes, x.cols());
    g_.resize(classes, x.rows());
    buffer_.resize(1 + classes * (x.rows() + 1));
  }

  Index parameters() const { return classes_ * (x_.rows() + 1); }

  /// f(theta); `gradient` receives grad f(theta) (the same on every rank).
  double evaluate(const Vector& theta, Vector& gradient) {
    const Index C = classes_, d = x_.rows(), n = x_.cols();
    w_ = Eigen::Map<const Matrix>(theta.data(), C, d);
    const auto b = theta.tail(C);
    // Z = W X (BLAS-3), then per sample z += b, p = softmax(z), loss += lse(z) - z_y.
    product_scores(w_, x_, z_);
    double loss = 0.0;
    for (Index j = 0; j < n; ++j) {
      auto z = z_.col(j);
      z += b;
      const int y = labels_[size_t(j)];
      const double m = z.maxCoeff();
      const double zy = z(y);
      z = (z.array() - m).exp();  // in (0, 1], the largest is 1: no overflow
      const double s = z.sum();
      loss += m + std::log(s) - zy;
      z /= s;       // p
      z(y) -= 1.0;  // r = p - e_y
    }
    // G = R X^T (BLAS-3), g_b = R 1.
    product_gradient(z_, x_, g_);
    buffer_(0) = loss;
    Eigen::Map<Matrix>(buffer_.data() + 1, C, d) = g_;
    auto gb = buffer_.tail(C);
    gb.setZero();
    for (Index j = 0; j < n; ++j) gb += z_.col(j);
    comm_.allreduce_sum(buffer_.data(), buffer_.size());
    // f = loss / N + (l2/2) ||W||^2,  grad_W = G / N + l2 W,  grad_b = g_b / N.
    const double inv_n = 1.0 / double(samples_);
    gradient.resize(parameters());
    gradient = buffer_.tail(parameters()) * inv_n;
    const auto w = theta.head(C * d);
    gradient.head(C * d) += l2_ * w;
    return buffer_(0) * inv_n + 0.5 * l2_ * w.squaredNorm();
  }

 private:
  const Communicator& comm_;
  const Features& x_;
  const std::vector<int>& labels_;
  Index classes_;
  double l2_;
  Index samples_;
  Matrix w_, z_, g_;
  Vector buffer_;
};

// N = sum of the local sample counts, and C (1 + the largest label when not given); the
// local checks agreed across ranks.
template <typename Features>
std::pair<Index, Index> global_sizes(const Communicator& comm, const Features& x,
                                     const std::vector<int>& labels, Index classes) {
  // The largest label, and max and -min of the feature counts (all ranks must agree on d).
  long long maxima[3] = {-1, (long long)x.rows(), -(long long)x.rows()};
  comm.agree([&] {
    if (Index(labels.size()) != x.cols())
      throw Error(cat("classifier: ", labels.size(), " labels for ", x.cols(),
                      " samples on rank-local data"));
    for (int y : labels) maxima[0] = std::max<long long>(maxima[0], y);
  });
  comm.allreduce_max(maxima, 3);
  if (classes == 0) classes = Index(maxima[0] + 1);
  double n = double(x.cols());
  comm.allreduce_sum(&n, 1);
  comm.agree([&] {
    if (maxima[1] != -maxima[2])
      throw Error(cat("classifier: the ranks hold features of different dimensions (", -maxima[2],
                      " to ", maxima[1], ")"));
    if (n < 1) throw Error("classifier: no samples");
    if (classes < 2)
      throw Error(cat("classifier: needs at least 2 classes (the labels give ", classes, ")"));
    check_local_data(x, labels, classes);
  });
  return {Index(n), classes};
}

// theta = [vec(W); b] <-> model.
Vector pack(const LogisticModel& model) {
  Vector theta(model.weights.size() + model.bias.size());
  theta.head(model.weights.size()) =
      Eigen::Map<const Vector>(model.weights.data(), model.weights.size());
  theta.tail(model.bias.size()) = model.bias;
  return theta;
}

LogisticModel unpack(const Vector& theta, Index classes, Index features) {
  LogisticModel model;
  model.weights = Eigen::Map<const Matrix>(theta.data(), classes, features);
  model.bias = theta.tail(classes);
  return model;
}

template <typename Features>
LogisticFit fit(const Communicator& comm, const Features& x, const std::vector<int>& labels,
                const LogisticRegressionOptions& options, const LogisticProgressFn& progress,
                const LogisticModel* initial) {
  comm.agree([&] { validate(options); });
  const auto [samples, classes] = global_sizes(comm, x, labels, options.classes);
  const Index d = x.rows();
  comm.agree([&] {
    if (initial != nullptr && (initial->weights.rows() != classes || initial->weights.cols() != d ||
                               initial->bias.size() != classes))
      throw Error(cat("classifier: the initial model is ", initial->weights.rows(), " x ",
                      initial->weights.cols(), "; expected ", classes, " x ", d));
  });
  Objective<Features> objective(comm, x, labels, classes, options.l2, samples);

  LogisticFit result;
  result.samples = samples;
  Vector theta = initial != nullptr ? pack(*initial) : Vector::Zero(objective.parameters());
  Vector gradient, trial, trial_gradient, direction;
  double f = objective.evaluate(theta, gradient);
  Index evaluations = 1, iteration = 0;
  double gradient_norm = gradient.lpNorm<Eigen::Infinity>();
  const auto report = [&] {
    if (progress) progress({iteration, evaluations, f, gradient_norm});
  };
  report();

  // L-BFGS memory: s_k = theta_{k+1} - theta_k, y_k = grad_{k+1} - grad_k, rho_k = 1/(y's).
  std::deque<Vector> s_memory, y_memory;
  std::deque<double> rho_memory;
  std::vector<double> alpha_two_loop;
  LogisticStop stop = LogisticStop::max_iterations;
  constexpr double kArmijo = 1e-4;
  const double epsilon = std::numeric_limits<double>::epsilon();
  while (true) {
    if (gradient_norm <= options.tolerance) {
      stop = LogisticStop::converged;
      break;
    }
    if (iteration >= options.max_iterations) break;
    bool step_taken = false;
    for (int attempt = 0; attempt < 2 && !step_taken; ++attempt) {
      const bool had_memory = !s_memory.empty();
      // Direction d = -H g by the two-loop recursion, H0 = (s'y / y'y) I (N&W Alg. 7.4).
      direction = -gradient;
      const size_t m = s_memory.size();
      alpha_two_loop.assign(m, 0.0);
      for (size_t i = m; i-- > 0;) {
        alpha_two_loop[i] = rho_memory[i] * s_memory[i].dot(direction);
        direction -= alpha_two_loop[i] * y_memory[i];
      }
      if (m > 0) direction *= s_memory.back().dot(y_memory.back()) / y_memory.back().squaredNorm();
      for (size_t i = 0; i < m; ++i) {
        const double beta = rho_memory[i] * y_memory[i].dot(direction);
        direction += (alpha_two_loop[i] - beta) * s_memory[i];
      }
      double slope = gradient.dot(direction);  // g'd < 0 for a descent direction
      if (!(slope < 0.0)) {                    // lost descent (rounding): steepest descent
        s_memory.clear(), y_memory.clear(), rho_memory.clear();
        direction = -gradient;
        slope = -gradient.squaredNorm();
      }
      // First step without curvature information: a unit-length move.
      double step = s_memory.empty() ? std::min(1.0, 1.0 / direction.norm()) : 1.0;
      for (int trial_count = 0; trial_count < options.max_line_search; ++trial_count) {
        trial = theta + step * direction;
        const double f_trial = objective.evaluate(trial, trial_gradient);
        ++evaluations;
        const double g_trial = trial_gradient.lpNorm<Eigen::Infinity>();
        // Armijo: f(theta + a d) <= f + c1 a g'd. Near the optimum the decrease drowns in
        // rounding; a step that keeps f within rounding and shrinks the gradient is taken.
        const bool armijo = f_trial <= f + kArmijo * step * slope;
        const bool flat = f_trial <= f + 4.0 * epsilon * std::abs(f) && g_trial < gradient_norm;
        if (std::isfinite(f_trial) && (armijo || flat)) {
          Vector s = trial - theta, y = trial_gradient - gradient;
          const double sy = s.dot(y);
          if (sy > epsilon * s.norm() * y.norm()) {  // curvature condition: keep H SPD
            if (Index(s_memory.size()) == options.memory)
              s_memory.pop_front(), y_memory.pop_front(), rho_memory.pop_front();
            s_memory.push_back(std::move(s));
            y_memory.push_back(std::move(y));
            rho_memory.push_back(1.0 / sy);
          }
          theta.swap(trial);
          gradient.swap(trial_gradient);
          f = f_trial;
          gradient_norm = g_trial;
          step_taken = true;
          break;
        }
        // Backtrack: minimiser of the quadratic through f, f'(0) = g'd and f(step),
        // kept in [0.1, 0.5] x step.
        double next = 0.5 * step;
        if (std::isfinite(f_trial)) {
          const double curvature = f_trial - f - step * slope;
          if (curvature > 0.0) next = -slope * step * step / (2.0 * curvature);
        }
        step = std::clamp(next, 0.1 * step, 0.5 * step);
      }
      if (step_taken || !had_memory) break;
      // The quasi-Newton direction failed: forget the memory, retry along -g.
      s_memory.clear(), y_memory.clear(), rho_memory.clear();
    }
    if (!step_taken) {
      stop = LogisticStop::line_search_failed;
      break;
    }
    ++iteration;
    report();
  }

  result.model = unpack(theta, classes, d);
  result.iterations = iteration;
  result.evaluations = evaluations;
  result.loss = f;
  result.gradient_norm = gradient_norm;
  result.stop = stop;
  return result;
}

template <typename Features>
double objective_at(const Communicator& comm, const LogisticModel& model, const Features& x,
                    const std::vector<int>& labels, double l2, LogisticModel* gradient) {
  comm.agree([&] {
    if (model.weights.cols() != x.rows() || model.bias.size() != model.weights.rows())
      throw Error(cat("classifier: a ", model.weights.rows(), " x ", model.weights.cols(),
                      " model for ", x.rows(), " features"));
  });
  const auto [samples, classes] = global_sizes(comm, x, labels, model.classes());
  Objective<Features> objective(comm, x, labels, classes, l2, samples);
  Vector g;
  const double f = objective.evaluate(pack(model), g);
  if (gradient != nullptr) *gradient = unpack(g, classes, x.rows());
  return f;
}

template <typename Features>
Matrix scores_of(const LogisticModel& model, const Features& x) {
  DICTLEARN_ASSERT(model.weights.cols() == x.rows());
  Matrix z(model.classes(), x.cols());
  if (x.cols() == 0) return z;
  product_scores(model.weights, x, z);
  z.colwise() += model.bias;
  return z;
}

std::vector<int> argmax_columns(const Matrix& z) {
  std::vector<int> out(size_t(z.cols()));
  for (Index j = 0; j < z.cols(); ++j) {
    Index best = 0;
    for (Index c = 1; c < z.rows(); ++c)
      if (z(c, j) > z(best, j)) best = c;
    out[size_t(j)] = int(best);
  }
  return out;
}

}  // namespace

void validate(const LogisticRegressionOptions& options) {
  if (options.classes < 0 || options.classes == 1)
    throw Error(cat("classes must be >= 2 (or 0: from the labels), got ", options.classes));
  if (!(options.l2 >= 0.0) || !std::isfinite(options.l2))
    throw Error(cat("l2 must be a finite number >= 0, got ", options.l2));
  if (options.max_iterations < 1)
    throw Error(cat("max-iter must be >= 1, got ", options.max_iterations));
  if (!(options.tolerance >= 0.0))
    throw Error(cat("tolerance must be >= 0, got ", options.tolerance));
  if (options.memory < 1) throw Error(cat("L-BFGS memory must be >= 1, got ", options.memory));
  if (options.max_line_search < 1)
    throw Error(cat("max_line_search must be >= 1, got ", options.max_line_search));
}

std::string to_string(LogisticStop reason) {
  switch (reason) {
    case LogisticStop::converged:
      return "converged";
    case LogisticStop::max_iterations:
      return "max-iterations";
    case LogisticStop::line_search_failed:
      return "line-search-failed";
  }
  return "unknown";
}

LogisticFit fit_logistic_regression(const Communicator& comm, const Matrix& features,
                                    const std::vector<int>& labels,
                                    const LogisticRegressionOptions& options,
                                    const LogisticProgressFn& progress,
                                    const LogisticModel* initial) {
  return fit(comm, features, labels, options, progress, initial);
}

LogisticFit fit_logistic_regression(const Communicator& comm, const SparseMatrix& features,
                                    const std::vector<int>& labels,
                                    const LogisticRegressionOptions& options,
                                    const LogisticProgressFn& progress,
                                    const LogisticModel* initial) {
  return fit(comm, features, labels, options, progress, initial);
}

double logistic_objective(const Communicator& comm, const LogisticModel& model,
                          const Matrix& features, const std::vector<int>& labels, double l2,
                          LogisticModel* gradient) {
  return objective_at(comm, model, features, labels, l2, gradient);
}

double logistic_objective(const Communicator& comm, const LogisticModel& model,
                          const SparseMatrix& features, const std::vector<int>& labels, double l2,
                          LogisticModel* gradient) {
  return objective_at(comm, model, features, labels, l2, gradient);
}

Matrix decision_scores(const LogisticModel& model, const Matrix& features) {
  return scores_of(model, features);
}

Matrix decision_scores(const LogisticModel& model, const SparseMatrix& features) {
  return scores_of(model, features);
}

std::vector<int> predict(const LogisticModel& model, const Matrix& features) {
  return argmax_columns(scores_of(model, features));
}

std::vector<int> predict(const LogisticModel& model, const SparseMatrix& features) {
  return argmax_columns(scores_of(model, features));
}

ClassificationReport evaluate_predictions(const Communicator& comm,
                                          const std::vector<int>& predicted,
                                          const std::vector<int>& labels, Index classes) {
  comm.agree([&] {
    if (classes < 1) throw Error(cat("classifier: ", classes, " classes"));
    if (predicted.size() != labels.size())
      throw Error(
          cat("classifier: ", predicted.size(), " predictions for ", labels.size(), " labels"));
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= classes || predicted[i] < 0 || predicted[i] >= classes)
        throw Error(cat("classifier: label ", labels[i], " or prediction ", predicted[i],
                        " of local sample ", i, " is outside [0, ", classes, ")"));
  });
  // Counts as doubles: exact below 2^53 samples.
  Matrix counts = Matrix::Zero(classes, classes);
  for (size_t i = 0; i < labels.size(); ++i) counts(labels[i], predicted[i]) += 1.0;
  comm.allreduce_sum(counts.data(), counts.size());
  ClassificationReport report;
  report.confusion = counts.cast<long long>();
  report.samples = Index(counts.sum());
  report.correct = Index(counts.trace());
  report.accuracy = report.samples > 0 ? double(report.correct) / double(report.samples) : 0.0;
  return report;
}

}  // namespace dictlearn
