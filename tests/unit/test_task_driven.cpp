// Task-driven dictionary learning (gradient/task_driven.hpp): parsing and validation; the
// codes are elastic-net optimal (KKT); the gradients in D, W and b against central finite
// differences for every task (binary, multinomial, squared) and every reconstruction loss
// (squared, huber with residuals on both sides of delta, power p = 2.1 and p = 1.5); the
// squared-loss gradient against Mairal et al.'s closed form computed independently; gradients
// are added and bitwise independent of the thread count; the weight penalty; and the seed
// check of the jaxopt example (N = 74, d = 13, K = 7): task-driven steps lower the task loss
// below that of the unsupervised dictionary.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/gradient/task_driven.hpp"
#include "test_support.hpp"

using namespace dictlearn;
using Loss = FistaOptions::Loss;

namespace {

/// A small random problem: x = D_gen c + noise coded with an unrelated dictionary D, so that
/// residuals are large (huber sees both pieces), a random task model and random targets.
struct Problem {
  Matrix dictionary;  // d x K
  Matrix x;           // d x n
  Matrix targets;     // 1 x n or m x n
  TaskModel model;
};

Problem make_problem(TaskKind task, Index d, Index K, Index n, Index outputs, std::uint64_t seed) {
  testing::Rng rng(seed);
  Random random(seed + 1000);
  Problem p;
  const Matrix generator = testing::random_dictionary(d, K, rng);
  p.dictionary = testing::random_dictionary(d, K, rng);
  p.x =
      generator * testing::sparse_codes(K, n, 0.5, random) + 0.5 * testing::gaussian(d, n, random);
  const Index m = task_outputs(task, outputs);
  p.model.weights = 0.8 * testing::gaussian(m, K, random);
  p.model.bias = 0.3 * testing::gaussian(m, 1, random);
  if (task == TaskKind::squared) {
    p.targets = testing::gaussian(m, n, random);
  } else {
    p.targets.resize(1, n);
    for (Index j = 0; j < n; ++j)
      p.targets(0, j) = static_cast<double>(random.below(static_cast<std::uint64_t>(outputs)));
  }
  return p;
}

// psi(r) = 0.5 rho'(r) and w(r), written independently of the library.
double psi_of(double r, const TaskDrivenOptions& o) {
  switch (o.loss) {
    case Loss::squared:
      return r;
    case Loss::huber:
      return std::min(std::max(r, -o.huber_delta), o.huber_delta);
    case Loss::power:
      return 0.5 * o.loss_power * std::copysign(std::pow(std::abs(r), o.loss_power - 1.0), r);
  }
  return 0.0;
}

/// Largest violation, relative to lambda1, of the elastic-net optimality of every code:
/// -D^T psi(r) + lambda2 a + lambda1 sign(a) = 0 on the support, |D^T psi(r)| <= lambda1 off it.
double kkt_violation(const TaskDrivenOptions& o, const Matrix& D, const Matrix& x,
                     const Matrix& codes) {
  double worst = 0.0;
  for (Index j = 0; j < x.cols(); ++j) {
    const Vector r = x.col(j) - D * codes.col(j);
    Vector psi(r.size());
    for (Index i = 0; i < r.size(); ++i) psi(i) = psi_of(r(i), o);
    const Vector g = -D.transpose() * psi + o.lambda2 * codes.col(j);
    for (Index k = 0; k < D.cols(); ++k) {
      const double a = codes(k, j);
      const double v = a != 0.0 ? std::abs(g(k) + std::copysign(o.lambda1, a))
                                : std::max(0.0, std::abs(g(k)) - o.lambda1);
      worst = std::max(worst, v / o.lambda1);
    }
  }
  return worst;
}

/// Smallest distance of the problem to a change of the active set or of a loss piece:
/// min |a_k| on the supports, lambda1 - |D_k^T psi| off them, ||r_i| - delta| (huber),
/// |r_i| (power, p < 2). Finite differences are valid when it is >> eps.
double stability_margin(const TaskDrivenOptions& o, const Matrix& D, const Matrix& x,
                        const Matrix& codes) {
  double margin = 1e300;
  for (Index j = 0; j < x.cols(); ++j) {
    const Vector r = x.col(j) - D * codes.col(j);
    Vector psi(r.size());
    for (Index i = 0; i < r.size(); ++i) {
      psi(i) = psi_of(r(i), o);
      if (o.loss == Loss::huber)
        margin = std::min(margin, std::abs(std::abs(r(i)) - o.huber_delta));
      if (o.loss == Loss::power && o.loss_power < 2.0) margin = std::min(margin, std::abs(r(i)));
    }
    for (Index k = 0; k < D.cols(); ++k) {
      const double a = codes(k, j);
      margin = std::min(margin, a != 0.0 ? std::abs(a) : o.lambda1 - std::abs(D.col(k).dot(psi)));
    }
  }
  return margin;
}

/// J = task loss + mu reconstruction, recoded from a warm start (the base codes).
double objective(const TaskDrivenOptions& o, const Matrix& D, const TaskModel& model,
                 const Problem& p, const Matrix& warm) {
  TaskDrivenOptions warm_options = o;
  warm_options.warm_start = true;
  Matrix codes = warm;
  const TaskBatchResult r =
      task_driven_batch(warm_options, D, model, p.x, p.targets, codes, nullptr, nullptr);
  return r.task_loss + o.task_weight * r.reconstruction;
}

struct FdErrors {
  double dictionary = 0.0, weights = 0.0, bias = 0.0;  // ||fd - g|| / ||g||
};

FdErrors finite_difference_errors(const TaskDrivenOptions& o, const Problem& p, const Matrix& codes,
                                  const Matrix& grad_d, const TaskModel& grad_t, double eps) {
  FdErrors e;
  Matrix fd_d(grad_d.rows(), grad_d.cols());
  for (Index k = 0; k < grad_d.cols(); ++k)
    for (Index i = 0; i < grad_d.rows(); ++i) {
      Matrix plus = p.dictionary, minus = p.dictionary;
      plus(i, k) += eps;
      minus(i, k) -= eps;
      fd_d(i, k) =
          (objective(o, plus, p.model, p, codes) - objective(o, minus, p.model, p, codes)) /
          (2.0 * eps);
    }
  e.dictionary = (fd_d - grad_d).norm() / grad_d.norm();
  Matrix fd_w(grad_t.weights.rows(), grad_t.weights.cols());
  for (Index k = 0; k < fd_w.cols(); ++k)
    for (Index i = 0; i < fd_w.rows(); ++i) {
      TaskModel plus = p.model, minus = p.model;
      plus.weights(i, k) += eps;
      minus.weights(i, k) -= eps;
      fd_w(i, k) = (objective(o, p.dictionary, plus, p, codes) -
                    objective(o, p.dictionary, minus, p, codes)) /
                   (2.0 * eps);
    }
  e.weights = (fd_w - grad_t.weights).norm() / grad_t.weights.norm();
  Vector fd_b(grad_t.bias.size());
  for (Index i = 0; i < fd_b.size(); ++i) {
    TaskModel plus = p.model, minus = p.model;
    plus.bias(i) += eps;
    minus.bias(i) -= eps;
    fd_b(i) =
        (objective(o, p.dictionary, plus, p, codes) - objective(o, p.dictionary, minus, p, codes)) /
        (2.0 * eps);
  }
  e.bias = (fd_b - grad_t.bias).norm() / grad_t.bias.norm();
  return e;
}

TaskDrivenOptions fd_options(TaskKind task, Loss loss, double power) {
  TaskDrivenOptions o;
  o.task = task;
  o.loss = loss;
  o.lambda1 = 0.4;
  o.lambda2 = 0.2;
  o.huber_delta = 0.4;
  o.loss_power = power;
  o.task_weight = 0.7;
  o.coder_tol = 1e-13;
  o.coder_max_iter = 20000;
  return o;
}

}  // namespace

TEST_CASE("task-driven: names, options and inputs are validated", "[task_driven]") {
  for (TaskKind kind : {TaskKind::binary, TaskKind::multinomial, TaskKind::squared})
    CHECK(parse_task(to_string(kind)) == kind);
  CHECK_THROWS_WITH(parse_task("logistic"), Catch::Contains("logistic"));
  CHECK(task_outputs(TaskKind::binary, 2) == 1);
  CHECK(task_outputs(TaskKind::multinomial, 4) == 4);
  CHECK(task_outputs(TaskKind::squared, 3) == 3);
  CHECK_THROWS_AS(task_outputs(TaskKind::binary, 3), Error);
  CHECK_THROWS_AS(task_outputs(TaskKind::multinomial, 1), Error);
  CHECK_THROWS_AS(task_outputs(TaskKind::squared, 0), Error);

  TaskDrivenOptions o;
  CHECK_NOTHROW(validate(o));
  auto bad = [](auto change) {
    TaskDrivenOptions c;
    change(c);
    return c;
  };
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.lambda1 = 0.0; })),
                    Catch::Contains("lambda1"));
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.lambda2 = 0.0; })),
                    Catch::Contains("lambda2"));
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.huber_delta = -1.0; })),
                    Catch::Contains("huber-delta"));
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.loss_power = 1.0; })),
                    Catch::Contains("loss-power"));
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.task_weight = -0.5; })),
                    Catch::Contains("task-weight"));
  CHECK_THROWS_WITH(validate(bad([](TaskDrivenOptions& c) { c.coder_max_iter = 0; })),
                    Catch::Contains("coder-max-iter"));

  Problem p = make_problem(TaskKind::multinomial, 5, 4, 6, 3, 7);
  o.task = TaskKind::multinomial;
  Matrix codes;
  CHECK_NOTHROW(
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, nullptr, nullptr));
  Matrix bad_targets = p.targets;
  bad_targets(0, 4) = 3.0;  // class 3 of 3
  CHECK_THROWS_WITH(
      task_driven_batch(o, p.dictionary, p.model, p.x, bad_targets, codes, nullptr, nullptr),
      Catch::Contains("sample 4"));
  bad_targets(0, 4) = 1.5;
  CHECK_THROWS_AS(
      task_driven_batch(o, p.dictionary, p.model, p.x, bad_targets, codes, nullptr, nullptr),
      Error);
  o.task = TaskKind::binary;  // a 3-output model
  CHECK_THROWS_WITH(
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, nullptr, nullptr),
      Catch::Contains("binary"));
  o.task = TaskKind::multinomial;
  Matrix x_nan = p.x;
  x_nan(2, 1) = std::nan("");
  CHECK_THROWS_WITH(
      task_driven_batch(o, p.dictionary, p.model, x_nan, p.targets, codes, nullptr, nullptr),
      Catch::Contains("sample 1"));
  Matrix wrong_grad(3, 3);
  CHECK_THROWS_WITH(
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, &wrong_grad, nullptr),
      Catch::Contains("grad_dictionary"));
}

TEST_CASE("task-driven: the codes are elastic-net optimal for every loss", "[task_driven]") {
  for (Loss loss : {Loss::squared, Loss::huber, Loss::power}) {
    for (double power : {2.1, 1.5}) {
      if (loss != Loss::power && power != 2.1) continue;
      TaskDrivenOptions o = fd_options(TaskKind::squared, loss, power);
      const Problem p = make_problem(TaskKind::squared, 8, 6, 20, 2, 11);
      Matrix codes;
      const TaskBatchResult r =
          task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, nullptr, nullptr);
      CAPTURE(to_string(loss), power, r.nonzeros);
      CHECK(r.nonzeros > 0);
      CHECK(r.nonzeros < 6 * 20);
      CHECK(kkt_violation(o, p.dictionary, p.x, codes) < 1e-12);
      // The reported sums are the objective at these codes.
      FistaOptions f;
      f.lambda = o.lambda1;
      f.gamma = o.lambda2 / o.lambda1;
      f.loss = loss;
      f.huber_delta = o.huber_delta;
      f.power = power;
      double recon = 0.0, task = 0.0;
      for (Index j = 0; j < 20; ++j) {
        recon += fista_objective<double>(p.x.col(j), p.dictionary, codes.col(j), f);
        const Vector z = p.model.weights * codes.col(j) + p.model.bias;
        task += 0.5 * (z - p.targets.col(j)).squaredNorm();
      }
      CHECK(r.reconstruction == Approx(recon).epsilon(1e-12));
      CHECK(r.task_loss == Approx(task).epsilon(1e-12));
    }
  }
}

TEST_CASE("task-driven: gradients match central finite differences", "[task_driven]") {
  struct Case {
    Loss loss;
    double power;
  };
  const Case cases[] = {
      {Loss::squared, 2.0}, {Loss::huber, 2.0}, {Loss::power, 2.1}, {Loss::power, 1.5}};
  const Index d = 8, K = 6, n = 5;
  const double eps = 1e-6;
  for (TaskKind task : {TaskKind::binary, TaskKind::multinomial, TaskKind::squared}) {
    for (const Case& c : cases) {
      const TaskDrivenOptions o = fd_options(task, c.loss, c.power);
      const Index outputs = task == TaskKind::binary ? 2 : task == TaskKind::multinomial ? 3 : 2;
      // The first problem whose codes sit well away from a change of active set (or of a huber
      // piece, or from r = 0 for p < 2), where the objective is smooth.
      Problem p;
      Matrix codes;
      double margin = 0.0;
      std::uint64_t seed = 1;
      for (; seed < 200; ++seed) {
        p = make_problem(task, d, K, n, outputs, seed);
        task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, nullptr, nullptr);
        margin = stability_margin(o, p.dictionary, p.x, codes);
        const Index nnz = (codes.array() != 0.0).count();
        if (margin > 1e-3 && nnz > n && nnz < n * K) break;
      }
      CAPTURE(to_string(task), to_string(c.loss), c.power, seed, margin);
      REQUIRE(margin > 1e-3);
      if (c.loss == Loss::huber) {  // residuals on both sides of delta
        const Matrix r = p.x - p.dictionary * codes;
        CHECK((r.array().abs() > o.huber_delta).count() > 0);
        CHECK((r.array().abs() < o.huber_delta).count() > 0);
      }
      Matrix grad_d;
      TaskModel grad_t;
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, &grad_d, &grad_t);
      const FdErrors e = finite_difference_errors(o, p, codes, grad_d, grad_t, eps);
      CAPTURE(e.dictionary, e.weights, e.bias, grad_d.norm());
      CHECK(e.dictionary < 1e-6);
      CHECK(e.weights < 1e-6);
      CHECK(e.bias < 1e-6);
    }
  }
}

TEST_CASE("task-driven: squared loss gradient is Mairal et al.'s closed form", "[task_driven]") {
  TaskDrivenOptions o = fd_options(TaskKind::multinomial, Loss::squared, 2.0);
  o.task_weight = 0.3;
  const Problem p = make_problem(TaskKind::multinomial, 9, 7, 12, 4, 5);
  Matrix codes, grad_d;
  TaskModel grad_t;
  task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes, &grad_d, &grad_t);
  // Independently: beta_L = (D_L^T D_L + lambda2 I)^-1 W_L^T (softmax(z) - e_y),
  // grad_D = sum_j -D beta a^T + (x - D a) beta^T - mu (x - D a) a^T.
  Matrix expected_d = Matrix::Zero(9, 7), expected_w = Matrix::Zero(4, 7);
  Vector expected_b = Vector::Zero(4);
  for (Index j = 0; j < 12; ++j) {
    const Vector a = codes.col(j);
    std::vector<Index> support;
    for (Index k = 0; k < 7; ++k)
      if (a(k) != 0.0) support.push_back(k);
    const Index s = Index(support.size());
    const Vector z = p.model.weights * a + p.model.bias;
    Vector g = (z.array() - z.maxCoeff()).exp().matrix();
    g /= g.sum();
    g(Index(p.targets(0, j))) -= 1.0;
    expected_w += g * a.transpose();
    expected_b += g;
    const Vector r = p.x.col(j) - p.dictionary * a;
    expected_d -= o.task_weight * r * a.transpose();
    if (s == 0) continue;
    Matrix d_l(9, s);
    Vector rhs(s);
    for (Index i = 0; i < s; ++i) {
      d_l.col(i) = p.dictionary.col(support[size_t(i)]);
      rhs(i) = p.model.weights.col(support[size_t(i)]).dot(g);
    }
    const Matrix h = d_l.transpose() * d_l + o.lambda2 * Matrix::Identity(s, s);
    const Vector beta_l = h.ldlt().solve(rhs);
    Vector beta = Vector::Zero(7);
    for (Index i = 0; i < s; ++i) beta(support[size_t(i)]) = beta_l(i);
    expected_d += -p.dictionary * beta * a.transpose() + r * beta.transpose();
  }
  CHECK((grad_d - expected_d).norm() <= 1e-12 * expected_d.norm());
  CHECK((grad_t.weights - expected_w).norm() <= 1e-12 * expected_w.norm());
  CHECK((grad_t.bias - expected_b).norm() <= 1e-12 * expected_b.norm());
}

TEST_CASE("task-driven: gradients are added and independent of the thread count", "[task_driven]") {
  const TaskDrivenOptions o = fd_options(TaskKind::binary, Loss::huber, 2.0);
  const Problem p = make_problem(TaskKind::binary, 10, 8, 37, 2, 3);
  Matrix codes1, codes3, grad1, grad3;
  TaskModel task1, task3;
  const TaskBatchResult r1 =
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes1, &grad1, &task1, 1);
  const TaskBatchResult r3 =
      task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes3, &grad3, &task3, 3);
  CHECK(r1.task_loss == r3.task_loss);
  CHECK(r1.reconstruction == r3.reconstruction);
  CHECK(r1.correct == r3.correct);
  CHECK(r1.nonzeros == r3.nonzeros);
  CHECK(codes1 == codes3);
  CHECK(grad1 == grad3);
  CHECK(task1.weights == task3.weights);
  CHECK(task1.bias == task3.bias);
  // A second call adds the same gradient again.
  const Matrix once = grad1;
  const TaskModel task_once = task1;
  task_driven_batch(o, p.dictionary, p.model, p.x, p.targets, codes1, &grad1, &task1, 2);
  CHECK((grad1 - 2.0 * once).norm() <= 1e-14 * once.norm());
  CHECK((task1.weights - 2.0 * task_once.weights).norm() <= 1e-14 * task_once.weights.norm());
  // correct counts predictions sign(z) == y.
  Index correct = 0;
  for (Index j = 0; j < 37; ++j) {
    const double z = p.model.weights.row(0).dot(codes3.col(j)) + p.model.bias(0);
    correct += (z > 0.0) == (p.targets(0, j) == 1.0) ? 1 : 0;
  }
  CHECK(r3.correct == correct);
  // Warm start from the exact codes reproduces them.
  TaskDrivenOptions warm = o;
  warm.warm_start = true;
  Matrix codes_warm = codes3;
  task_driven_batch(warm, p.dictionary, p.model, p.x, p.targets, codes_warm, nullptr, nullptr);
  CHECK((codes_warm - codes3).norm() <= 1e-12 * codes3.norm());
}

TEST_CASE("task-driven: the weight penalty is added once", "[task_driven]") {
  Random random(4);
  const TaskModel model{testing::gaussian(3, 5, random), testing::gaussian(3, 1, random)};
  TaskModel grad;
  const double value = add_weight_penalty(0.25, model, &grad);
  CHECK(value == Approx(0.125 * model.weights.squaredNorm()));
  CHECK((grad.weights - 0.25 * model.weights).norm() <= 1e-15 * model.weights.norm());
  CHECK(grad.bias.isZero());
  CHECK_THROWS_WITH(add_weight_penalty(-1.0, model, nullptr), Catch::Contains("mu_w"));
}

namespace {

/// Minimises sum_j [log(1 + e^z_j) - y_j z_j] + (mu_w / 2) ||w||^2, z = w^T a + b, over
/// (w, b) for fixed codes A (K x N), by Newton's method with a backtracking line search.
TaskModel fit_logistic(const Matrix& codes, const Matrix& labels, double mu_w, TaskModel start) {
  const Index K = codes.rows(), n = codes.cols();
  Matrix features(K + 1, n);
  features.topRows(K) = codes;
  features.row(K).setOnes();
  Vector theta(K + 1);
  theta.head(K) = start.weights.row(0).transpose();
  theta(K) = start.bias(0);
  auto value = [&](const Vector& t) {
    double f = 0.5 * mu_w * t.head(K).squaredNorm();
    for (Index j = 0; j < n; ++j) {
      const double z = features.col(j).dot(t);
      f += std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))) - labels(0, j) * z;
    }
    return f;
  };
  for (int it = 0; it < 100; ++it) {
    Vector grad = Vector::Zero(K + 1);
    Matrix hess = Matrix::Zero(K + 1, K + 1);
    grad.head(K) = mu_w * theta.head(K);
    hess.diagonal().head(K).setConstant(mu_w);
    for (Index j = 0; j < n; ++j) {
      const double sigma = 1.0 / (1.0 + std::exp(-features.col(j).dot(theta)));
      grad += (sigma - labels(0, j)) * features.col(j);
      hess += sigma * (1.0 - sigma) * features.col(j) * features.col(j).transpose();
    }
    if (grad.norm() < 1e-10) break;
    hess.diagonal().array() += 1e-12;
    const Vector step = hess.ldlt().solve(grad);
    const double f0 = value(theta);
    double t = 1.0;
    while (t > 1e-12 && value(theta - t * step) > f0 - 0.25 * t * grad.dot(step)) t *= 0.5;
    theta -= t * step;
  }
  TaskModel model;
  model.weights = theta.head(K).transpose();
  model.bias = theta.tail(1);
  return model;
}

/// Columns of D projected onto the unit ball.
void project_columns(Matrix& dictionary) {
  for (Index k = 0; k < dictionary.cols(); ++k) {
    const double norm = dictionary.col(k).norm();
    if (norm > 1.0) dictionary.col(k) /= norm;
  }
}

struct Adam {
  double rate, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  Matrix m, v;
  int t = 0;
  explicit Adam(double lr) : rate(lr) {}
  void step(Matrix& param, const Matrix& grad) {
    if (m.size() == 0) {
      m = Matrix::Zero(param.rows(), param.cols());
      v = m;
    }
    ++t;
    m = beta1 * m + (1.0 - beta1) * grad;
    v = beta2 * v + (1.0 - beta2) * grad.cwiseAbs2();
    const double c1 = 1.0 - std::pow(beta1, t), c2 = 1.0 - std::pow(beta2, t);
    param.array() -= rate * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
  }
};

}  // namespace

TEST_CASE("task-driven: the jaxopt seed check (task-driven D lowers the task loss)",
          "[task_driven]") {
  // Data as in jaxopt's examples/implicit_diff/sparse_coding.py: N = 74 signals of d = 13
  // from K = 7 random unit atoms with K / 2 = 3 nonzero standard normal coefficients each
  // (scikit-learn's make_sparse_coded_signal), X = 0.1 D C + 1e-4 noise; binary labels
  // y = [c_1 + c_2 + c_3 > 0] from the TRUE codes; elastic-net codes with lambda1 = 0.01 and
  // gamma = 0.01 (lambda2 = 1e-4); task l2 penalty mu_w = 1e-3 (jaxopt's task_params).
  // Three data sets (seeds), each checked on its own.
  const std::uint64_t seed = GENERATE(as<std::uint64_t>(), 2021, 7, 42);
  CAPTURE(seed);
  const Index N = 74, d = 13, K = 7;
  testing::Rng rng(seed);
  Random random(seed);
  const Matrix true_dictionary = testing::random_dictionary(d, K, rng);
  Matrix true_codes = Matrix::Zero(K, N);
  for (Index j = 0; j < N; ++j) {
    std::vector<Index> atoms(static_cast<size_t>(K));
    for (Index k = 0; k < K; ++k) atoms[size_t(k)] = k;
    random.shuffle(atoms.data(), static_cast<std::uint64_t>(K));
    for (Index i = 0; i < K / 2; ++i) true_codes(atoms[size_t(i)], j) = random.normal();
  }
  const Matrix x = 0.1 * true_dictionary * true_codes + 1e-4 * testing::gaussian(d, N, random);
  Matrix labels(1, N);
  for (Index j = 0; j < N; ++j) labels(0, j) = true_codes.topRows(3).col(j).sum() > 0.0 ? 1 : 0;

  TaskDrivenOptions o;
  o.task = TaskKind::binary;
  o.lambda1 = 0.01;
  o.lambda2 = 1e-4;
  o.coder_tol = 1e-10;
  const double mu_w = 1e-3;

  // Unsupervised dictionary: the true atoms plus noise (0.5 per entry before normalising),
  // then 30 projected gradient steps on the reconstruction objective alone (task model 0,
  // task_weight 1: grad_D = -Psi A^T), step 1 / lambda_max(A A^T).
  Matrix unsupervised = true_dictionary + 0.5 * testing::gaussian(d, K, random);
  for (Index k = 0; k < K; ++k) unsupervised.col(k).normalize();
  {
    TaskDrivenOptions recon = o;
    recon.task_weight = 1.0;
    const TaskModel zero = zero_task_model(1, K);
    Matrix codes;
    double first = 0.0, last = 0.0;
    for (int it = 0; it < 30; ++it) {
      Matrix grad;
      const TaskBatchResult r =
          task_driven_batch(recon, unsupervised, zero, x, labels, codes, &grad, nullptr);
      (it == 0 ? first : last) = r.reconstruction;
      const double lipschitz =
          Eigen::SelfAdjointEigenSolver<Matrix>(codes * codes.transpose()).eigenvalues().maxCoeff();
      unsupervised -= grad / std::max(lipschitz, 1e-12);
      project_columns(unsupervised);
    }
    CAPTURE(first, last);
    CHECK(last < first);
  }

  // Task loss of the codes of D with the model (W, b), no penalty.
  auto task_loss_of = [&](const Matrix& dictionary, const TaskModel& model, Index* correct) {
    Matrix codes;
    const TaskBatchResult r =
        task_driven_batch(o, dictionary, model, x, labels, codes, nullptr, nullptr);
    if (correct != nullptr) *correct = r.correct;
    return r.task_loss;
  };
  auto refit = [&](const Matrix& dictionary) {
    Matrix codes;
    task_driven_batch(o, dictionary, zero_task_model(1, K), x, labels, codes, nullptr, nullptr);
    return fit_logistic(codes, labels, mu_w, zero_task_model(1, K));
  };
  // Penalised task objective of the refitted model: min over (W, b) for this D.
  auto refit_objective = [&](const Matrix& dictionary) {
    const TaskModel model = refit(dictionary);
    return task_loss_of(dictionary, model, nullptr) + add_weight_penalty(mu_w, model, nullptr);
  };

  // (W0, b0) fitted on the codes of the unsupervised dictionary.
  const TaskModel fitted = refit(unsupervised);
  Index correct_unsupervised = 0;
  const double loss_unsupervised = task_loss_of(unsupervised, fitted, &correct_unsupervised);

  // (1) W fixed at the fitted (W0, b0): Adam on D alone (lr 1e-3, as jaxopt), projected.
  Matrix task_dictionary = unsupervised;
  {
    Adam adam(1e-3);
    for (int it = 0; it < 150; ++it) {
      Matrix codes, grad;
      task_driven_batch(o, task_dictionary, fitted, x, labels, codes, &grad, nullptr);
      adam.step(task_dictionary, grad / double(N));
      project_columns(task_dictionary);
    }
  }
  Index correct_task = 0;
  const double loss_task = task_loss_of(task_dictionary, fitted, &correct_task);

  // (2) jaxopt's run: Adam on (D, W, b) jointly from (D_unsup, W0, b0); then the SAME learnt
  // (W, b) on both dictionaries.
  Matrix joint_dictionary = unsupervised;
  TaskModel joint = fitted;
  {
    Adam adam_d(1e-3), adam_w(1e-2), adam_b(1e-2);
    for (int it = 0; it < 150; ++it) {
      Matrix codes, grad;
      TaskModel grad_t;
      task_driven_batch(o, joint_dictionary, joint, x, labels, codes, &grad, &grad_t);
      grad_t.weights /= double(N);
      grad_t.bias /= double(N);
      add_weight_penalty(mu_w, joint, &grad_t);  // once per step, on the mean objective
      adam_d.step(joint_dictionary, grad / double(N));
      adam_w.step(joint.weights, grad_t.weights);
      Matrix bias = joint.bias;
      adam_b.step(bias, grad_t.bias);
      joint.bias = bias.col(0);
      project_columns(joint_dictionary);
    }
  }
  const double joint_on_unsupervised = task_loss_of(unsupervised, joint, nullptr);
  const double joint_on_task = task_loss_of(joint_dictionary, joint, nullptr);

  // (3) The fair comparison: (W, b) refitted to optimality for each dictionary.
  const double refit_unsupervised = refit_objective(unsupervised);
  const double refit_task = refit_objective(joint_dictionary);

  CAPTURE(loss_unsupervised, loss_task, correct_unsupervised, correct_task);
  CAPTURE(joint_on_unsupervised, joint_on_task, refit_unsupervised, refit_task);
  CHECK(loss_task < loss_unsupervised);
  CHECK(joint_on_task < joint_on_unsupervised);
  CHECK(refit_task < refit_unsupervised);
}
