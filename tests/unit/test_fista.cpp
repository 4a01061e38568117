// FISTA: the exact lasso minimum (squared loss), Beck & Teboulle's O(1/k^2) bound without
// restart, elastic-net optimality and its closed form for orthonormal atoms, the huber loss
// (equal to squared for a huge delta, optimal and robust with outliers), the power loss
// (p = 2 equals squared, p = 2.1 and p = 1.5 optimal with backtracking), the nonnegative
// variants, the Lipschitz estimate, warm starts, the objective helpers and single precision.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>

#include "dictlearn/coding/fista.hpp"
#include "dictlearn/coding/lars.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Fista;
using dictlearn::FistaOptions;
using dictlearn::Index;
using dictlearn::LarsLasso;
using dictlearn::LarsOptions;
using dictlearn::Matrix;
using dictlearn::Vector;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;
using Loss = FistaOptions::Loss;

struct Problem {
  Matrix D, G;
  Vector x, dtx;
  Problem(Matrix dictionary, Vector sample)
      : D(std::move(dictionary)),
        G(D.transpose() * D),
        x(std::move(sample)),
        dtx(D.transpose() * x) {}
};

// Gradient of the smooth part 0.5 L(x - D a), evaluated independently of the solver.
Vector smooth_gradient(const Problem& p, const Vector& a, const FistaOptions& o) {
  const Vector r = p.x - p.D * a;
  Vector slope(r.size());  // 0.5 L'(r)
  for (Index i = 0; i < r.size(); ++i) {
    switch (o.loss) {
      case Loss::squared:
        slope(i) = r(i);
        break;
      case Loss::huber:
        slope(i) = std::min(std::max(r(i), -o.huber_delta), o.huber_delta);
        break;
      case Loss::power:
        slope(i) = 0.5 * o.power * std::copysign(std::pow(std::abs(r(i)), o.power - 1.0), r(i));
        break;
    }
  }
  return -p.D.transpose() * slope;
}

// Largest violation of 0 in grad + lambda (subgradient ||a||_1 + gamma a), a >= 0 if positive.
double optimality_violation(const Problem& p, const Vector& a, const FistaOptions& o) {
  const Vector grad = smooth_gradient(p, a, o);
  double worst = 0.0;
  for (Index j = 0; j < a.size(); ++j) {
    const double g = grad(j) + o.lambda * o.gamma * a(j);
    double v;
    if (a(j) > 0)
      v = std::abs(g + o.lambda);
    else if (a(j) < 0)
      v = o.positive ? 1e300 : std::abs(g - o.lambda);
    else
      v = o.positive ? std::max(0.0, -g - o.lambda) : std::max(0.0, std::abs(g) - o.lambda);
    worst = std::max(worst, v);
  }
  return worst;
}

double lasso_objective(const Problem& p, const Vector& a, double lambda) {
  return 0.5 * (p.x - p.D * a).squaredNorm() + lambda * a.lpNorm<1>();
}

// Exact lasso minimiser by LARS.
Vector exact_lasso(const Problem& p, double lambda, bool positive) {
  LarsLasso<double> lars(p.G.rows());
  Vector a(p.G.rows());
  LarsOptions options;
  options.lambda = lambda;
  options.positive = positive;
  lars.solve(p.G, p.dtx, options, a);
  return a;
}

FistaOptions tight(double lambda, double lipschitz) {
  FistaOptions o;
  o.lambda = lambda;
  o.lipschitz = lipschitz;
  o.tol = 1e-13;
  o.max_iter = 50000;
  return o;
}

}  // namespace

TEST_CASE("lipschitz_constant bounds the largest eigenvalue of G closely", "[fista]") {
  Rng rng(1);
  for (Index K : {Index(10), Index(64), Index(200)}) {
    for (double shared : {0.0, 2.0}) {
      const Matrix D = random_dictionary(32, K, rng, shared);
      const Matrix G = D.transpose() * D;
      const double top = Eigen::SelfAdjointEigenSolver<Matrix>(G).eigenvalues().maxCoeff();
      const double L = dictlearn::lipschitz_constant(G);
      INFO("K=" << K << " shared=" << shared << " L/lambda_max=" << L / top);
      CHECK(L >= top);
      CHECK(L <= 1.0101 * top);
      CHECK(L == dictlearn::lipschitz_constant(G));  // deterministic
      const float Lf = dictlearn::lipschitz_constant<float>(G.cast<float>());
      CHECK(Lf >= 0.999 * top);
      CHECK(Lf <= 1.011 * top);
    }
  }
  CHECK(dictlearn::lipschitz_constant<double>(Matrix::Zero(5, 5)) == 0.0);
  // G = I: exactly 1 after the Gershgorin cap.
  CHECK(dictlearn::lipschitz_constant<double>(Matrix::Identity(7, 7)) == 1.0);
}

TEST_CASE("Fista with the squared loss reaches the exact lasso minimum", "[fista]") {
  struct Shape {
    Index d, K;
    double shared;
  };
  const Shape shapes[] = {{20, 10, 0.0}, {16, 32, 0.0}, {32, 64, 1.0}};
  Rng rng(3);
  double worst = 0.0;
  for (const Shape& shape : shapes) {
    Fista<double> fista(shape.K);
    Vector code(shape.K);
    for (int trial = 0; trial < 3; ++trial) {
      const Problem p(random_dictionary(shape.d, shape.K, rng, shape.shared),
                      rng.gaussian_vector(shape.d));
      const double L = dictlearn::lipschitz_constant(p.G);
      for (bool positive : {false, true}) {
        for (double f : {0.6, 0.2, 0.05}) {
          FistaOptions o = tight(f * p.dtx.cwiseAbs().maxCoeff(), L);
          o.positive = positive;
          const Index nnz = fista.solve(p.G, p.dtx, o, code);
          INFO("d=" << shape.d << " K=" << shape.K << " positive=" << positive << " f=" << f
                    << " iterations=" << fista.iterations());
          REQUIRE(code.allFinite());
          CHECK(nnz == (code.array() != 0.0).count());
          CHECK(fista.iterations() < o.max_iter);
          if (positive) CHECK(code.minCoeff() >= 0.0);
          const double optimum = lasso_objective(p, exact_lasso(p, o.lambda, positive), o.lambda);
          const double relative = (lasso_objective(p, code, o.lambda) - optimum) / optimum;
          CHECK(relative <= 1e-8);
          CHECK(relative >= -1e-12);
          CHECK(optimality_violation(p, code, o) <= 1e-6);
          worst = std::max(worst, relative);
        }
      }
    }
  }
  INFO("worst relative objective excess " << worst);
  SUCCEED();
}

TEST_CASE("Fista without restart meets the O(1/k^2) bound of Beck and Teboulle", "[fista]") {
  // Theorem 4.4: F(a_k) - F* <= 2 L ||a_0 - a*||^2 / (k + 1)^2 with a_0 = 0.
  Rng rng(5);
  const Index d = 24, K = 48;
  Fista<double> fista(K);
  Vector code(K);
  for (int trial = 0; trial < 3; ++trial) {
    const Problem p(random_dictionary(d, K, rng, 1.0), rng.gaussian_vector(d));
    const double L = dictlearn::lipschitz_constant(p.G);
    const double lambda = 0.1 * p.dtx.cwiseAbs().maxCoeff();
    const Vector solution = exact_lasso(p, lambda, false);
    const double optimum = lasso_objective(p, solution, lambda);
    FistaOptions o;
    o.lambda = lambda;
    o.lipschitz = L;
    o.restart = false;
    o.tol = 0.0;
    double previous_excess = 1e300;
    int increases = 0;
    for (Index k = 1; k <= 300; k += (k < 20 ? 1 : 17)) {
      o.max_iter = k;
      fista.solve(p.G, p.dtx, o, code);
      REQUIRE(fista.iterations() == k);
      const double excess = lasso_objective(p, code, lambda) - optimum;
      INFO("trial=" << trial << " k=" << k);
      CHECK(excess <= 2.0 * L * solution.squaredNorm() / double((k + 1) * (k + 1)) + 1e-12);
      if (excess > previous_excess + 1e-12) ++increases;
      previous_excess = excess;
    }
    // FISTA is not monotone, but mostly decreasing over these checkpoints.
    CHECK(increases <= 8);
  }
}

TEST_CASE("Fista solves the elastic net", "[fista]") {
  Rng rng(7);
  SECTION("orthonormal atoms: a = S(D^T x, lambda) / (1 + lambda gamma)") {
    const Index d = 20, K = 12;
    Matrix A(d, K);
    for (Index k = 0; k < K; ++k) A.col(k) = rng.gaussian_vector(d);
    const Problem p(Eigen::HouseholderQR<Matrix>(A).householderQ() * Matrix::Identity(d, K),
                    rng.gaussian_vector(d));
    Fista<double> fista(K);
    Vector code(K);
    for (bool positive : {false, true}) {
      FistaOptions o = tight(0.3 * p.dtx.cwiseAbs().maxCoeff(), 1.0);
      o.gamma = 2.5;
      o.positive = positive;
      fista.solve(p.G, p.dtx, o, code);
      for (Index k = 0; k < K; ++k) {
        const double c = p.dtx(k);
        const double shrunk = positive ? std::max(c - o.lambda, 0.0)
                                       : std::copysign(std::max(std::abs(c) - o.lambda, 0.0), c);
        CHECK(code(k) == Approx(shrunk / (1.0 + o.lambda * o.gamma)).margin(1e-12));
      }
    }
  }
  SECTION("random dictionaries: 0 in grad + lambda (d||a||_1 + gamma a)") {
    const Index d = 32, K = 64;
    Fista<double> fista(K);
    Vector code(K), lasso(K);
    Index fewer_zeros = 0;
    for (int trial = 0; trial < 4; ++trial) {
      const Problem p(random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0), rng.gaussian_vector(d));
      const double L = dictlearn::lipschitz_constant(p.G);
      for (bool positive : {false, true}) {
        FistaOptions o = tight(0.1 * p.dtx.cwiseAbs().maxCoeff(), L);
        o.gamma = 1.0;
        o.positive = positive;
        const Index nnz = fista.solve(p.G, p.dtx, o, code);
        INFO("trial=" << trial << " positive=" << positive);
        CHECK(fista.iterations() < o.max_iter);
        CHECK(optimality_violation(p, code, o) <= 1e-6);
        if (positive) CHECK(code.minCoeff() >= 0.0);
        // The l2 term spreads the code over more atoms than the lasso at the same lambda.
        o.gamma = 0.0;
        if (nnz >= fista.solve(p.G, p.dtx, o, lasso)) ++fewer_zeros;
      }
    }
    CHECK(fewer_zeros >= 6);
  }
}

TEST_CASE("Fista with the huber loss", "[fista][huber]") {
  Rng rng(11);
  const Index d = 40, K = 30;
  Fista<double> fista(K, d);
  Vector code(K), reference(K);
  SECTION("a huge delta gives the squared-loss solution") {
    const Problem p(random_dictionary(d, K, rng), rng.gaussian_vector(d));
    const double L = dictlearn::lipschitz_constant(p.G);
    for (bool positive : {false, true}) {
      FistaOptions o = tight(0.2 * p.dtx.cwiseAbs().maxCoeff(), L);
      o.positive = positive;
      fista.solve(p.G, p.dtx, o, reference);
      o.loss = Loss::huber;
      o.huber_delta = 1e6;
      fista.solve(p.G, p.dtx, p.x, p.D, o, code);
      CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-9);
    }
  }
  SECTION("outliers: optimal, and closer to the clean code than least squares") {
    int better = 0;
    for (int trial = 0; trial < 5; ++trial) {
      const Matrix D = random_dictionary(d, K, rng);
      Vector truth = Vector::Zero(K);
      for (Index k = 0; k < 4; ++k) truth((trial * 5 + k * 7) % K) = (k % 2 ? -1.0 : 1.0) * 2.0;
      Vector x = D * truth + 0.05 * rng.gaussian_vector(d);
      for (Index i = 0; i < 4; ++i) x((trial + 9 * i) % d) += (i % 2 ? -15.0 : 15.0);  // outliers
      const Problem p(D, x);
      const double L = dictlearn::lipschitz_constant(p.G);
      for (bool positive : {false, true}) {
        FistaOptions o = tight(0.05, L);
        o.positive = positive;
        o.loss = Loss::huber;
        o.huber_delta = 0.5;
        fista.solve(p.G, p.dtx, p.x, p.D, o, code);
        INFO("trial=" << trial << " positive=" << positive << " iterations=" << fista.iterations());
        CHECK(fista.iterations() < o.max_iter);
        CHECK(optimality_violation(p, code, o) <= 1e-6);
        if (positive) CHECK(code.minCoeff() >= 0.0);
        // Some residuals are beyond delta: the loss is really not the squared one here.
        CHECK((p.x - p.D * code).cwiseAbs().maxCoeff() > 10.0 * o.huber_delta);
        if (!positive) {
          o.loss = Loss::squared;
          fista.solve(p.G, p.dtx, o, reference);
          if ((code - truth).norm() < 0.5 * (reference - truth).norm()) ++better;
        }
      }
    }
    CHECK(better == 5);
  }
  SECTION("backtracking from lipschitz = 0 reaches the same point") {
    const Problem p(random_dictionary(d, K, rng, 1.0), 3.0 * rng.gaussian_vector(d));
    FistaOptions o = tight(0.1, dictlearn::lipschitz_constant(p.G));
    o.loss = Loss::huber;
    o.huber_delta = 0.3;
    fista.solve(p.G, p.dtx, p.x, p.D, o, reference);
    o.lipschitz = 0.0;
    o.backtracking = true;
    fista.solve(p.G, p.dtx, p.x, p.D, o, code);
    CHECK(fista.lipschitz() <= 2.0 * dictlearn::lipschitz_constant(p.G));
    CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-8);
    CHECK(optimality_violation(p, code, o) <= 1e-6);
  }
}

TEST_CASE("Fista with the power loss", "[fista][power]") {
  Rng rng(13);
  const Index d = 32, K = 48;
  Fista<double> fista(K, d);
  Vector code(K), reference(K);
  SECTION("p = 2 is the squared loss") {
    const Problem p(random_dictionary(d, K, rng), rng.gaussian_vector(d));
    const double L = dictlearn::lipschitz_constant(p.G);
    for (bool positive : {false, true}) {
      FistaOptions o = tight(0.15 * p.dtx.cwiseAbs().maxCoeff(), L);
      o.positive = positive;
      fista.solve(p.G, p.dtx, o, reference);
      o.loss = Loss::power;
      o.power = 2.0;
      fista.solve(p.G, p.dtx, p.x, p.D, o, code);
      CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-8);
      CHECK(dictlearn::fista_objective<double>(p.x, p.D, code, o) ==
            Approx(lasso_objective(p, code, o.lambda)).epsilon(1e-12));
    }
  }
  SECTION("p = 2.1 and p = 1.5 converge to an optimal code with backtracking") {
    for (int trial = 0; trial < 3; ++trial) {
      const Problem p(random_dictionary(d, K, rng, trial == 2 ? 1.0 : 0.0),
                      2.0 * rng.gaussian_vector(d));
      const double L = dictlearn::lipschitz_constant(p.G);
      for (double power : {2.1, 1.5}) {
        for (bool positive : {false, true}) {
          FistaOptions o = tight(0.1 * p.dtx.cwiseAbs().maxCoeff(), L);
          o.loss = Loss::power;
          o.power = power;
          o.positive = positive;
          o.gamma = trial == 1 ? 0.5 : 0.0;
          fista.solve(p.G, p.dtx, p.x, p.D, o, code);
          INFO("trial=" << trial << " p=" << power << " positive=" << positive
                        << " iterations=" << fista.iterations() << " L=" << fista.lipschitz());
          REQUIRE(code.allFinite());
          CHECK(fista.iterations() < o.max_iter);
          CHECK(optimality_violation(p, code, o) <= 1e-5);
          if (positive) CHECK(code.minCoeff() >= 0.0);
          // Lower objective than the squared-loss code measured in the power loss.
          FistaOptions squared = o;
          squared.loss = Loss::squared;
          fista.solve(p.G, p.dtx, squared, reference);
          CHECK(dictlearn::fista_objective<double>(p.x, p.D, code, o) <=
                dictlearn::fista_objective<double>(p.x, p.D, reference, o) + 1e-12);
        }
      }
    }
  }
}

TEST_CASE("Fista options: on-the-fly Lipschitz, warm start, zero cases", "[fista]") {
  Rng rng(17);
  const Index d = 20, K = 40;
  const Problem p(random_dictionary(d, K, rng, 0.5), rng.gaussian_vector(d));
  Fista<double> fista(K);
  Vector code(K), reference(K);
  FistaOptions o = tight(0.15 * p.dtx.cwiseAbs().maxCoeff(), dictlearn::lipschitz_constant(p.G));
  fista.solve(p.G, p.dtx, o, reference);
  const Index cold = fista.iterations();

  SECTION("lipschitz = 0 computes the same constant: identical iterates") {
    o.lipschitz = 0.0;
    fista.solve(p.G, p.dtx, o, code);
    CHECK(fista.lipschitz() == dictlearn::lipschitz_constant(p.G));
    CHECK(code == reference);
  }
  SECTION("backtracking with the squared loss") {
    o.lipschitz = 0.0;
    o.backtracking = true;
    fista.solve(p.G, p.dtx, o, code);
    CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-8);
  }
  SECTION("warm start from the solution stops almost at once") {
    o.warm_start = true;
    code = reference;
    fista.solve(p.G, p.dtx, o, code);
    CHECK(fista.iterations() <= 3);
    CHECK(cold > 20);
    CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-10);
  }
  SECTION("lambda >= max |D^T x| gives the zero code") {
    o.lambda = p.dtx.cwiseAbs().maxCoeff();
    code.setConstant(3.0);
    CHECK(fista.solve(p.G, p.dtx, o, code) == 0);
    CHECK(code.isZero(0.0));
  }
  SECTION("an all-zero dictionary gives the zero code") {
    const Matrix zero = Matrix::Zero(K, K);
    o.lipschitz = 0.0;
    code.setConstant(3.0);
    CHECK(fista.solve(zero, Vector::Zero(K), o, code) == 0);
    CHECK(code.isZero(0.0));
  }
  SECTION("max_iter = 0 returns the starting point") {
    o.max_iter = 0;
    code.setConstant(3.0);
    CHECK(fista.solve(p.G, p.dtx, o, code) == 0);
    CHECK(code.isZero(0.0));
  }
}

TEST_CASE("Fista objective helpers", "[fista]") {
  Rng rng(19);
  const Index d = 10, K = 15;
  const Problem p(random_dictionary(d, K, rng), rng.gaussian_vector(d));
  Vector a = rng.gaussian_vector(K);
  a(2) = 0.0;
  FistaOptions o;
  o.lambda = 0.7;
  o.gamma = 0.4;
  const double penalty = 0.7 * (a.lpNorm<1>() + 0.2 * a.squaredNorm());
  CHECK(dictlearn::fista_penalty<double>(a, o) == Approx(penalty).epsilon(1e-14));
  // Squared: from x and D, and from G, D^T x, ||x||^2.
  const double squared = 0.5 * (p.x - p.D * a).squaredNorm() + penalty;
  CHECK(dictlearn::fista_objective<double>(p.x, p.D, a, o) == Approx(squared).epsilon(1e-13));
  CHECK(dictlearn::fista_objective<double>(p.G, p.dtx, p.x.squaredNorm(), a, o) ==
        Approx(squared).epsilon(1e-12));
  // Huber: 0.5 sum h(r), h(r) = r^2 inside [-delta, delta], 2 delta |r| - delta^2 outside.
  Vector r(4);
  r << 0.5, -2.0, 3.0, -0.1;
  o.loss = Loss::huber;
  o.huber_delta = 1.0;
  CHECK(dictlearn::fista_loss<double>(r, o) ==
        Approx(0.5 * (0.25 + (4.0 - 1.0) + (6.0 - 1.0) + 0.01)).epsilon(1e-14));
  o.loss = Loss::power;
  o.power = 3.0;
  CHECK(dictlearn::fista_loss<double>(r, o) ==
        Approx(0.5 * (0.125 + 8.0 + 27.0 + 0.001)).epsilon(1e-14));
}

TEST_CASE("Fista in single precision", "[fista][float]") {
  Rng rng(23);
  const Index d = 32, K = 64;
  Fista<float> fista(K, d);
  Eigen::VectorXf code(K);
  for (int trial = 0; trial < 4; ++trial) {
    const Problem p(random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0), rng.gaussian_vector(d));
    const Eigen::MatrixXf Gf = p.G.cast<float>(), Df = p.D.cast<float>();
    const Eigen::VectorXf dtxf = p.dtx.cast<float>(), xf = p.x.cast<float>();
    const float L = dictlearn::lipschitz_constant(Gf);
    for (Loss loss : {Loss::squared, Loss::huber, Loss::power}) {
      FistaOptions o;
      o.lambda = 0.15 * p.dtx.cwiseAbs().maxCoeff();
      o.lipschitz = L;
      o.loss = loss;
      o.huber_delta = 0.5;
      o.power = 2.1;
      o.positive = trial >= 2;
      o.tol = 1e-6;
      o.max_iter = 5000;
      fista.solve(Gf, dtxf, xf, Df, o, code);
      REQUIRE(code.allFinite());
      INFO("trial=" << trial << " loss=" << int(loss) << " iterations=" << fista.iterations());
      CHECK(fista.iterations() < o.max_iter);
      const Vector a = code.cast<double>();
      CHECK(optimality_violation(p, a, o) <= 1e-3);
      if (o.positive) CHECK(code.minCoeff() >= 0.0f);
    }
  }
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
TEST_CASE("Fista::solve does not allocate", "[fista][malloc]") {
  Rng rng(29);
  const Index d = 20, K = 50;
  const Problem p(random_dictionary(d, K, rng, 1.0), rng.gaussian_vector(d));
  Fista<double> fista(K, d);
  Vector code(K);
  for (Loss loss : {Loss::squared, Loss::huber, Loss::power}) {
    for (double lipschitz : {dictlearn::lipschitz_constant(p.G), 0.0}) {
      FistaOptions o;
      o.lambda = 0.1 * p.dtx.cwiseAbs().maxCoeff();
      o.loss = loss;
      o.power = 2.1;
      o.lipschitz = lipschitz;
      Eigen::internal::set_is_malloc_allowed(false);
      fista.solve(p.G, p.dtx, p.x, p.D, o, code);
      if (loss == Loss::squared) fista.solve(p.G, p.dtx, o, code);
      Eigen::internal::set_is_malloc_allowed(true);
    }
  }
  SUCCEED();
}
#endif
