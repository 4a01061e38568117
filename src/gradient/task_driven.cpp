#include "dictlearn/gradient/task_driven.hpp"

#include <omp.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

namespace {

using Loss = FistaOptions::Loss;

// Newton iterations of the active-set polish, at most (the squared loss needs one, huber a
// few, power converges quadratically).
constexpr int kMaxNewton = 30;
// Relative slack on the inactive optimality |D_k^T psi| <= lambda1 after the polish.
constexpr double kKktSlack = 1e-6;

// One thread's workspace, sized once per call; the per-sample code never allocates.
struct Workspace {
  Fista<double> fista;
  std::vector<Index> active;  // Lambda, the indices of the nonzero coefficients
  Matrix d_active;            // D_L                      d x K (first |L| columns used)
  Matrix weighted;            // diag(w) D_L              d x K
  Matrix hessian;             // H = D_L^T diag(w) D_L + lambda2 I, then its Cholesky factor
  Vector a_active, trial;     // a_L, Newton candidate    K
  Vector signs;               // s = sign(a_L)            K
  Vector f, f_trial, step;    // F(a_L), F(trial), H^-1 F K
  Vector residual, residual_trial, psi, psi_trial, weight;  // d
  Vector z, slope;                                          // m
  Vector grad_code;                                         // W^T dl/dz, then beta_L    K
  Vector d_beta;                                            // D_L beta_L                d

  Workspace(Index d, Index K, Index m)
      : fista(K, d),
        active(static_cast<size_t>(K)),
        d_active(d, K),
        weighted(d, K),
        hessian(K, K),
        a_active(K),
        trial(K),
        signs(K),
        f(K),
        f_trial(K),
        step(K),
        residual(d),
        residual_trial(d),
        psi(d),
        psi_trial(d),
        weight(d),
        z(m),
        slope(m),
        grad_code(K),
        d_beta(d) {}
};

struct LossParams {
  Loss loss;
  double delta;    // huber
  double p;        // power
  double r_floor;  // power, p < 2: |r| floored here in w
};

// psi(r) = 0.5 rho'(r), elementwise.
void loss_slope(const LossParams& lp, const Vector& r, Vector& psi) {
  switch (lp.loss) {
    case Loss::squared:
      psi = r;
      break;
    case Loss::huber:  // clip(r, -delta, delta)
      psi = r.cwiseMax(-lp.delta).cwiseMin(lp.delta);
      break;
    case Loss::power:  // (p / 2) sign(r) |r|^(p-1)
      for (Index i = 0; i < r.size(); ++i) {
        const double m = 0.5 * lp.p * std::pow(std::abs(r(i)), lp.p - 1.0);
        psi(i) = r(i) < 0.0 ? -m : m;
      }
      break;
  }
}

// w(r) = 0.5 rho''(r), elementwise (huber: 1 on |r| <= delta, the quadratic piece).
void loss_curvature(const LossParams& lp, const Vector& r, Vector& w) {
  switch (lp.loss) {
    case Loss::squared:
      w.setOnes();
      break;
    case Loss::huber:
      for (Index i = 0; i < r.size(); ++i) w(i) = std::abs(r(i)) <= lp.delta ? 1.0 : 0.0;
      break;
    case Loss::power: {  // (p (p - 1) / 2) |r|^(p-2)
      const double c = 0.5 * lp.p * (lp.p - 1.0);
      for (Index i = 0; i < r.size(); ++i)
        w(i) = c * std::pow(std::max(std::abs(r(i)), lp.r_floor), lp.p - 2.0);
      break;
    }
  }
}

// Lambda = {k : a_k != 0}; D_L, a_L and s = sign(a_L) gathered. Returns |Lambda|.
Index gather_active(const Matrix& dictionary, const Eigen::Ref<const Vector>& a, Workspace& ws) {
  Index s = 0;
  for (Index k = 0; k < a.size(); ++k) {
    if (a(k) == 0.0) continue;
    ws.active[static_cast<size_t>(s)] = k;
    ws.d_active.col(s) = dictionary.col(k);
    ws.a_active(s) = a(k);
    ws.signs(s) = a(k) > 0.0 ? 1.0 : -1.0;
    ++s;
  }
  return s;
}

// r = x - D_L v_L.
void active_residual(const Eigen::Ref<const Vector>& x, const Workspace& ws, Index s,
                     const Vector& v, Vector& r) {
  r = x;
  r.noalias() -= ws.d_active.leftCols(s) * v.head(s);
}

// F(v_L) = -D_L^T psi + lambda1 s + lambda2 v_L.
void stationarity(const Workspace& ws, Index s, const Vector& v, const Vector& psi, double lambda1,
                  double lambda2, Vector& f) {
  f.head(s).noalias() = ws.d_active.leftCols(s).transpose() * psi;
  f.head(s) = lambda1 * ws.signs.head(s) + lambda2 * v.head(s) - f.head(s);
}

// H = D_L^T diag(w) D_L + lambda2 I (from G for the squared loss), factored in place
// (lower Cholesky factor in ws.hessian). Returns false if H is not positive definite.
bool factor_hessian(const LossParams& lp, const Matrix& gram, double lambda2, Workspace& ws,
                    Index s) {
  auto h = ws.hessian.topLeftCorner(s, s);
  if (lp.loss == Loss::squared) {
    for (Index j = 0; j < s; ++j)
      for (Index i = 0; i < s; ++i)
        h(i, j) = gram(ws.active[static_cast<size_t>(i)], ws.active[static_cast<size_t>(j)]);
  } else {
    ws.weighted.leftCols(s) = ws.weight.asDiagonal() * ws.d_active.leftCols(s);
    h.noalias() = ws.d_active.leftCols(s).transpose() * ws.weighted.leftCols(s);
  }
  h.diagonal().array() += lambda2;
  Eigen::Ref<Matrix> ref(h);
  Eigen::LLT<Eigen::Ref<Matrix>> llt(ref);  // in place: no allocation
  return llt.info() == Eigen::Success;
}

// v_L <- H^-1 v_L with the factor left in ws.hessian by factor_hessian().
void solve_hessian(Workspace& ws, Index s, Vector& v) {
  const auto l = ws.hessian.topLeftCorner(s, s).triangularView<Eigen::Lower>();
  auto head = v.head(s);
  l.solveInPlace(head);              // L y = v
  l.transpose().solveInPlace(head);  // L^T u = y
}

// Newton on F(a_L) = 0 with the signs of the FISTA code fixed: a_L <- a_L - H^-1 F. The code
// `a` is replaced only if the polish keeps every sign, lowers ||F|| and leaves the inactive
// atoms optimal (|D_k^T psi| <= lambda1). Leaves D_L, a_L and s in the workspace.
Index polish(const LossParams& lp, const Matrix& dictionary, const Matrix& gram,
             const Eigen::Ref<const Vector>& x, double lambda1, double lambda2, Workspace& ws,
             Eigen::Ref<Vector> a) {
  const Index s = gather_active(dictionary, a, ws);
  if (s == 0) return 0;
  active_residual(x, ws, s, ws.a_active, ws.residual);
  loss_slope(lp, ws.residual, ws.psi);
  stationarity(ws, s, ws.a_active, ws.psi, lambda1, lambda2, ws.f);
  double f_norm = ws.f.head(s).norm();
  const double f_start = f_norm;
  for (int it = 0; it < kMaxNewton && f_norm > 0.0; ++it) {
    loss_curvature(lp, ws.residual, ws.weight);
    if (!factor_hessian(lp, gram, lambda2, ws, s)) break;
    ws.step.head(s) = ws.f.head(s);
    solve_hessian(ws, s, ws.step);                             // H^-1 F
    ws.trial.head(s) = ws.a_active.head(s) - ws.step.head(s);  // a_L - H^-1 F
    bool same_signs = true;
    for (Index i = 0; i < s; ++i) same_signs = same_signs && ws.trial(i) * ws.signs(i) > 0.0;
    if (!same_signs) break;
    active_residual(x, ws, s, ws.trial, ws.residual_trial);
    loss_slope(lp, ws.residual_trial, ws.psi_trial);
    stationarity(ws, s, ws.trial, ws.psi_trial, lambda1, lambda2, ws.f_trial);
    const double trial_norm = ws.f_trial.head(s).norm();
    if (!(trial_norm < f_norm)) break;
    ws.a_active.swap(ws.trial);
    ws.residual.swap(ws.residual_trial);
    ws.psi.swap(ws.psi_trial);
    ws.f.swap(ws.f_trial);
    f_norm = trial_norm;
    if (lp.loss == Loss::squared) break;  // F is affine in a_L: one step is exact
  }
  if (!(f_norm < f_start)) return s;  // nothing gained: keep the FISTA code
  // Inactive atoms must stay optimal: |D_k^T psi| <= lambda1.
  for (Index k = 0; k < a.size(); ++k)
    if (a(k) == 0.0 && std::abs(dictionary.col(k).dot(ws.psi)) > lambda1 * (1.0 + kKktSlack)) {
      gather_active(dictionary, a, ws);  // restore a_L
      return s;
    }
  for (Index i = 0; i < s; ++i) a(ws.active[static_cast<size_t>(i)]) = ws.a_active(i);
  return s;
}

// l(z, y) of one sample, its slope dl/dz into `slope`, and whether the prediction is right.
double task_loss(TaskKind task, const Vector& z, const Eigen::Ref<const Vector>& y, Vector& slope,
                 bool& correct) {
  switch (task) {
    case TaskKind::binary: {
      const double v = z(0), label = y(0);
      // log(1 + e^v) - y v = max(v, 0) + log1p(e^-|v|) - y v
      const double loss = std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))) - label * v;
      const double e = std::exp(-std::abs(v));
      const double sigmoid = v >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      slope(0) = sigmoid - label;  // sigmoid(v) - y
      correct = (v > 0.0) == (label == 1.0);
      return loss;
    }
    case TaskKind::multinomial: {
      const Index label = static_cast<Index>(y(0));
      Index best = 0;
      const double top = z.maxCoeff(&best);
      // logsumexp(z) = m + log sum_c exp(z_c - m)
      slope = (z.array() - top).exp().matrix();
      const double lse = top + std::log(slope.sum());
      slope = (z.array() - lse).exp().matrix();  // softmax(z)
      slope(label) -= 1.0;                       // - e_y
      correct = best == label;
      return lse - z(label);
    }
    case TaskKind::squared:
      slope = z - y;  // z - y
      correct = false;
      return 0.5 * slope.squaredNorm();
  }
  return 0.0;
}

void require_shape(const Matrix& m, Index rows, Index cols, const char* name) {
  if (m.rows() != rows || m.cols() != cols)
    throw Error(cat("task-driven: ", name, " is ", m.rows(), " x ", m.cols(), ", expected ", rows,
                    " x ", cols));
}

}  // namespace

TaskKind parse_task(const std::string& name) {
  if (name == "binary") return TaskKind::binary;
  if (name == "multinomial") return TaskKind::multinomial;
  if (name == "squared") return TaskKind::squared;
  throw Error(cat("task: unknown value '", name, "' (expected binary, multinomial or squared)"));
}

std::string to_string(TaskKind kind) {
  switch (kind) {
    case TaskKind::binary:
      return "binary";
    case TaskKind::multinomial:
      return "multinomial";
    case TaskKind::squared:
      return "squared";
  }
  return "?";
}

void validate(const TaskDrivenOptions& o) {
  if (!(o.lambda1 > 0.0) || !std::isfinite(o.lambda1))
    throw Error(cat("lambda1 must be a finite number > 0 (got ", o.lambda1, ")"));
  if (!(o.lambda2 > 0.0) || !std::isfinite(o.lambda2))
    throw Error(cat("lambda2 must be a finite number > 0 (got ", o.lambda2,
                    "): the task-driven gradient needs a strongly convex coder"));
  if (!(o.huber_delta > 0.0) || !std::isfinite(o.huber_delta))
    throw Error(cat("huber-delta must be a finite number > 0 (got ", o.huber_delta, ")"));
  if (!(o.loss_power > 1.0) || !std::isfinite(o.loss_power))
    throw Error(cat("loss-power must be a finite number > 1 (got ", o.loss_power, ")"));
  if (!(o.task_weight >= 0.0) || !std::isfinite(o.task_weight))
    throw Error(cat("task-weight must be a finite number >= 0 (got ", o.task_weight, ")"));
  if (!(o.coder_tol >= 0.0)) throw Error(cat("coder-tol must be >= 0 (got ", o.coder_tol, ")"));
  if (o.coder_max_iter < 1)
    throw Error(cat("coder-max-iter must be >= 1 (got ", o.coder_max_iter, ")"));
}

Index task_outputs(TaskKind kind, Index n) {
  switch (kind) {
    case TaskKind::binary:
      if (n != 1 && n != 2) throw Error(cat("task binary needs 2 classes (got ", n, ")"));
      return 1;
    case TaskKind::multinomial:
      if (n < 2) throw Error(cat("task multinomial needs >= 2 classes (got ", n, ")"));
      return n;
    case TaskKind::squared:
      if (n < 1) throw Error(cat("task squared needs >= 1 outputs (got ", n, ")"));
      return n;
  }
  return 0;
}

TaskModel zero_task_model(Index outputs, Index atoms) {
  DICTLEARN_ASSERT(outputs > 0 && atoms > 0);
  return {Matrix::Zero(outputs, atoms), Vector::Zero(outputs)};
}

double add_weight_penalty(double mu_w, const TaskModel& model, TaskModel* grad) {
  if (!(mu_w >= 0.0) || !std::isfinite(mu_w))
    throw Error(cat("weight penalty mu_w must be a finite number >= 0 (got ", mu_w, ")"));
  if (grad != nullptr) {
    if (grad->weights.size() == 0 && grad->bias.size() == 0)
      *grad = zero_task_model(model.weights.rows(), model.weights.cols());
    require_shape(grad->weights, model.weights.rows(), model.weights.cols(), "grad_task weights");
    grad->weights += mu_w * model.weights;  // d/dW (mu_w / 2) ||W||^2 = mu_w W
  }
  return 0.5 * mu_w * model.weights.squaredNorm();
}

TaskBatchResult task_driven_batch(const TaskDrivenOptions& options, const Matrix& dictionary,
                                  const TaskModel& model, const Matrix& x, const Matrix& targets,
                                  Matrix& codes, Matrix* grad_dictionary, TaskModel* grad_task,
                                  int threads) {
  validate(options);
  const Index d = dictionary.rows(), K = dictionary.cols(), n = x.cols();
  const Index m = model.weights.rows();
  const TaskKind task = options.task;
  if (d < 1 || K < 1) throw Error("task-driven: empty dictionary");
  require_shape(x, d, n, "x");
  if (m < 1) throw Error("task-driven: the task model has no outputs");
  require_shape(model.weights, m, K, "task weights");
  if (model.bias.size() != m)
    throw Error(cat("task-driven: task bias has ", model.bias.size(), " entries, expected ", m));
  if (task == TaskKind::binary && m != 1)
    throw Error(cat("task binary needs a model with 1 output (got ", m, ")"));
  if (task == TaskKind::multinomial && m < 2)
    throw Error(cat("task multinomial needs a model with >= 2 outputs (got ", m, ")"));
  require_shape(targets, task == TaskKind::squared ? m : 1, n, "targets");
  if (!dictionary.allFinite()) throw Error("task-driven: the dictionary is not finite");
  if (!model.weights.allFinite() || !model.bias.allFinite())
    throw Error("task-driven: the task model is not finite");
  for (Index j = 0; j < n; ++j) {
    if (!x.col(j).allFinite()) throw Error(cat("task-driven: sample ", j, " is not finite"));
    if (!targets.col(j).allFinite())
      throw Error(cat("task-driven: the target of sample ", j, " is not finite"));
    if (task == TaskKind::squared) continue;
    const double y = targets(0, j);
    const bool ok = task == TaskKind::binary
                        ? (y == 0.0 || y == 1.0)
                        : (y >= 0.0 && y < static_cast<double>(m) && y == std::floor(y));
    if (!ok)
      throw Error(cat("task-driven: label ", y, " of sample ", j, " is not ",
                      task == TaskKind::binary ? "0 or 1" : cat("a class in [0, ", m, ")")));
  }
  if (grad_dictionary != nullptr) {
    if (grad_dictionary->size() == 0) grad_dictionary->setZero(d, K);
    require_shape(*grad_dictionary, d, K, "grad_dictionary");
  }
  if (grad_task != nullptr) {
    if (grad_task->weights.size() == 0 && grad_task->bias.size() == 0)
      *grad_task = zero_task_model(m, K);
    require_shape(grad_task->weights, m, K, "grad_task weights");
    if (grad_task->bias.size() != m) throw Error("task-driven: grad_task bias has the wrong size");
  }
  const bool warm = options.warm_start && codes.rows() == K && codes.cols() == n;
  if (!warm) codes.setZero(K, n);
  TaskBatchResult result;
  if (n == 0) return result;

  // Coder: FISTA with lambda = lambda1, gamma = lambda2 / lambda1; one Lipschitz constant.
  FistaOptions fista;
  fista.lambda = options.lambda1;
  fista.gamma = options.lambda2 / options.lambda1;
  fista.loss = options.loss;
  fista.huber_delta = options.huber_delta;
  fista.power = options.loss_power;
  fista.tol = options.coder_tol;
  fista.max_iter = options.coder_max_iter;
  fista.warm_start = warm;
  const Matrix gram = dictionary.transpose() * dictionary;  // G = D^T D
  const Matrix dtx = dictionary.transpose() * x;            // D^T X
  fista.lipschitz = lipschitz_constant(gram);

  const bool want_dictionary = grad_dictionary != nullptr;
  const double lambda1 = options.lambda1, lambda2 = options.lambda2;
  // Per-sample results, one column each (summed in sample order after the parallel loop).
  Vector losses(n), recons(n);
  std::vector<char> right(static_cast<size_t>(n), 0);
  std::vector<Index> nnz(static_cast<size_t>(n), 0);
  Matrix slopes(m, n);  // Gz = [dl/dz_j]
  Matrix betas, psis, us;
  if (want_dictionary) {
    betas.setZero(K, n);  // B
    psis.resize(d, n);    // Psi
    us.resize(d, n);      // U
  }

  const int team = threads > 0 ? threads : omp_get_max_threads();
  std::exception_ptr failure;
#pragma omp parallel num_threads(team)
  {
    try {
      Workspace ws(d, K, m);
#pragma omp for schedule(dynamic, 4)
      for (Index j = 0; j < n; ++j) {
        const auto xj = x.col(j);
        auto aj = codes.col(j);
        // a* by FISTA, then the Newton polish on the active set.
        ws.fista.solve(gram, dtx.col(j), xj, dictionary, fista, aj);
        const LossParams lp{options.loss, options.huber_delta, options.loss_power,
                            1e-12 * std::max(1.0, xj.cwiseAbs().maxCoeff())};
        const Index s = polish(lp, dictionary, gram, xj, lambda1, lambda2, ws, aj);
        nnz[static_cast<size_t>(j)] = s;
        // Residual and psi at the final code (polish may have rejected its iterate).
        active_residual(xj, ws, s, ws.a_active, ws.residual);
        recons(j) = fista_loss<double>(ws.residual, fista) + fista_penalty<double>(aj, fista);
        // Task: z = W a + b, l(z, y), g = dl/dz.
        ws.z = model.bias;
        ws.z.noalias() += model.weights * aj;
        bool ok = false;
        losses(j) = task_loss(task, ws.z, targets.col(j), ws.slope, ok);
        right[static_cast<size_t>(j)] = ok ? 1 : 0;
        slopes.col(j) = ws.slope;
        if (!want_dictionary) continue;
        loss_slope(lp, ws.residual, ws.psi);
        psis.col(j) = ws.psi;  // psi(r)
        if (s == 0) {
          us.col(j).setZero();
          continue;
        }
        // beta_L = H^-1 (W^T g)_L, H = D_L^T diag(w) D_L + lambda2 I.
        for (Index i = 0; i < s; ++i)
          ws.grad_code(i) = model.weights.col(ws.active[static_cast<size_t>(i)]).dot(ws.slope);
        loss_curvature(lp, ws.residual, ws.weight);
        const bool spd = factor_hessian(lp, gram, lambda2, ws, s);
        DICTLEARN_ASSERT(spd);  // lambda2 > 0 and w >= 0
        solve_hessian(ws, s, ws.grad_code);
        for (Index i = 0; i < s; ++i) betas(ws.active[static_cast<size_t>(i)], j) = ws.grad_code(i);
        // U_j = w .* (D_L beta_L)
        ws.d_beta.noalias() = ws.d_active.leftCols(s) * ws.grad_code.head(s);
        us.col(j) = ws.weight.cwiseProduct(ws.d_beta);
      }
    } catch (...) {
#pragma omp critical(dictlearn_task_driven_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);

  // Sums in sample order: independent of the thread count.
  for (Index j = 0; j < n; ++j) {
    result.task_loss += losses(j);
    result.reconstruction += recons(j);
    result.correct += right[static_cast<size_t>(j)];
    result.nonzeros += nnz[static_cast<size_t>(j)];
  }
  if (task == TaskKind::squared) result.correct = 0;
  if (grad_task != nullptr) {
    grad_task->weights.noalias() += slopes * codes.transpose();  // Gz A^T
    grad_task->bias += slopes.rowwise().sum();                   // Gz 1
  }
  if (want_dictionary) {
    // grad_D J = Psi (B - mu A)^T - U A^T
    if (options.task_weight != 0.0) betas -= options.task_weight * codes;
    grad_dictionary->noalias() += psis * betas.transpose();
    grad_dictionary->noalias() -= us * codes.transpose();
  }
  return result;
}

}  // namespace dictlearn
