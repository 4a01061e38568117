// Coordinate-descent lasso: KKT conditions at a tight tolerance, the exact LARS minimum, the
// nonnegative variant, warm starts, the duality gap (an upper bound on the suboptimality that
// falls below the tolerance), empty atoms, scikit-learn's codes on a fixed problem and single
// precision.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>

#include "dictlearn/coding/coordinate_descent.hpp"
#include "dictlearn/coding/lars.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::CoordinateDescentLasso;
using dictlearn::CoordinateDescentOptions;
using dictlearn::Index;
using dictlearn::LarsLasso;
using dictlearn::LarsOptions;
using dictlearn::Matrix;
using dictlearn::Vector;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

struct Kkt {
  double off_support = 0.0;  // max_j (|c_j| - lambda)_+  (positive: (c_j - lambda)_+)
  double on_support = 0.0;   // max over a_j != 0 of |c_j - lambda sign(a_j)|
  double wrong_sign = 0.0;   // positive mode: max_j (-a_j)_+
};

Kkt kkt(const Matrix& G, const Vector& dtx, const Vector& a, double lambda, bool positive) {
  const Vector c = dtx - G * a;
  Kkt out;
  for (Index j = 0; j < c.size(); ++j) {
    out.off_support = std::max(out.off_support, (positive ? c(j) : std::abs(c(j))) - lambda);
    if (a(j) != 0.0)
      out.on_support = std::max(out.on_support, std::abs(c(j) - lambda * (a(j) > 0 ? 1 : -1)));
    if (positive) out.wrong_sign = std::max(out.wrong_sign, -a(j));
  }
  return out;
}

// 0.5 ||x - D a||^2 + lambda ||a||_1 from G, D^T x and ||x||^2.
double objective(const Matrix& G, const Vector& dtx, double x_sqnorm, const Vector& a,
                 double lambda) {
  return 0.5 * (x_sqnorm - 2.0 * dtx.dot(a) + a.dot(G * a)) + lambda * a.lpNorm<1>();
}

Index count_nonzeros(const Vector& a) { return (a.array() != 0.0).count(); }

}  // namespace

TEST_CASE("CoordinateDescentLasso meets the lasso KKT conditions at a tight tolerance", "[cd]") {
  struct Shape {
    Index d, K;
    double shared;
  };
  const Shape shapes[] = {{20, 10, 0.0}, {16, 32, 0.0}, {32, 64, 1.0}, {24, 48, 0.0}};
  Rng rng(2024);
  double worst = 0.0, worst_objective = 0.0;
  for (const Shape& shape : shapes) {
    CoordinateDescentLasso<double> cd(shape.K);
    LarsLasso<double> lars(shape.K);
    Vector code(shape.K), exact(shape.K);
    for (int trial = 0; trial < 3; ++trial) {
      const Matrix D = random_dictionary(shape.d, shape.K, rng, shape.shared);
      const Vector x = rng.gaussian_vector(shape.d);
      const Matrix G = D.transpose() * D;
      const Vector dtx = D.transpose() * x;
      const double x_sqnorm = x.squaredNorm();
      for (bool positive : {false, true}) {
        const double lambda_max = positive ? dtx.maxCoeff() : dtx.cwiseAbs().maxCoeff();
        if (!(lambda_max > 0.0)) continue;
        for (double f : {0.7, 0.3, 0.1}) {
          CoordinateDescentOptions options;
          options.lambda = f * lambda_max;
          options.positive = positive;
          options.tol = 1e-14;  // near the rounding floor of the gap itself
          options.max_iter = 100000;
          const Index nnz = cd.solve(G, dtx, x_sqnorm, options, code);
          INFO("d=" << shape.d << " K=" << shape.K << " positive=" << positive << " f=" << f
                    << " sweeps=" << cd.sweeps());
          REQUIRE(code.allFinite());
          REQUIRE(nnz == count_nonzeros(code));
          REQUIRE(cd.sweeps() < options.max_iter);  // converged, not capped
          const Kkt k = kkt(G, dtx, code, options.lambda, positive);
          CHECK(k.wrong_sign == 0.0);
          CHECK(k.off_support <= 1e-8);
          CHECK(k.on_support <= 1e-8);
          worst = std::max({worst, k.off_support, k.on_support});

          // Same minimum as the exact LARS homotopy.
          LarsOptions lars_options;
          lars_options.lambda = options.lambda;
          lars_options.positive = positive;
          lars.solve(G, dtx, lars_options, exact);
          const double reference = objective(G, dtx, x_sqnorm, exact, options.lambda);
          const double relative =
              std::abs(objective(G, dtx, x_sqnorm, code, options.lambda) - reference) / reference;
          CHECK(relative <= 1e-8);
          worst_objective = std::max(worst_objective, relative);
        }
      }
    }
  }
  INFO("worst KKT violation " << worst << ", worst relative objective " << worst_objective);
  SUCCEED();
}

TEST_CASE("CoordinateDescentLasso duality gap bounds the suboptimality and reaches tol", "[cd]") {
  Rng rng(8);
  const Index d = 32, K = 64;
  CoordinateDescentLasso<double> cd(K);
  LarsLasso<double> lars(K);
  Vector code(K), exact(K);
  for (int trial = 0; trial < 4; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const double x_sqnorm = x.squaredNorm();
    for (bool positive : {false, true}) {
      LarsOptions lars_options;
      lars_options.positive = positive;
      lars_options.lambda = 0.15 * dtx.cwiseAbs().maxCoeff();
      lars.solve(G, dtx, lars_options, exact);
      const double optimum = objective(G, dtx, x_sqnorm, exact, lars_options.lambda);

      // After k sweeps (tol = 0: the gap is evaluated after the last one) the gap is an upper
      // bound on P(a_k) - P*, and the primal objective never increases (each coordinate step
      // minimises exactly).
      CoordinateDescentOptions options;
      options.lambda = lars_options.lambda;
      options.positive = positive;
      options.tol = 0.0;
      double previous_objective = 0.5 * x_sqnorm;  // P(0)
      double first_gap = 0.0, last_gap = 0.0;
      for (Index sweeps = 1; sweeps <= 1024; sweeps *= 2) {
        options.max_iter = sweeps;
        cd.solve(G, dtx, x_sqnorm, options, code);
        REQUIRE(cd.sweeps() == sweeps);
        const double primal = objective(G, dtx, x_sqnorm, code, options.lambda);
        INFO("trial=" << trial << " positive=" << positive << " sweeps=" << sweeps);
        CHECK(cd.duality_gap() >= primal - optimum - 1e-12);
        // The gap itself, formed from the residual: dual point theta = s r with
        // s = min(1, lambda / max_j |D^T r|_j), D(theta) = 0.5 ||x||^2 - 0.5 ||x - theta||^2.
        const Vector r = x - D * code;
        const Vector dtr = D.transpose() * r;
        const double dual_norm = positive ? dtr.maxCoeff() : dtr.cwiseAbs().maxCoeff();
        const double s = dual_norm > options.lambda ? options.lambda / dual_norm : 1.0;
        const double dual = 0.5 * x_sqnorm - 0.5 * (x - s * r).squaredNorm();
        CHECK(cd.duality_gap() == Approx(primal - dual).margin(1e-12));
        CHECK(primal <= previous_objective + 1e-12);
        previous_objective = primal;
        if (sweeps == 1) first_gap = cd.duality_gap();
        last_gap = cd.duality_gap();
      }
      INFO("first gap " << first_gap << " last gap " << last_gap);
      CHECK(last_gap < 1e-6 * first_gap);

      // Default options: the returned gap is below tol ||x||^2.
      options = CoordinateDescentOptions();
      options.lambda = lars_options.lambda;
      options.positive = positive;
      cd.solve(G, dtx, x_sqnorm, options, code);
      CHECK(cd.sweeps() < options.max_iter);
      CHECK(cd.duality_gap() <= options.tol * x_sqnorm);
      CHECK(objective(G, dtx, x_sqnorm, code, options.lambda) - optimum <= options.tol * x_sqnorm);
    }
  }
}

TEST_CASE("CoordinateDescentLasso warm start from the solution stops after one sweep", "[cd]") {
  Rng rng(19);
  const Index d = 24, K = 60;
  CoordinateDescentLasso<double> cd(K);
  LarsLasso<double> lars(K);
  Vector code(K), exact(K);
  for (int trial = 0; trial < 6; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, 0.5);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const bool positive = trial % 2 == 1;
    LarsOptions lars_options;
    lars_options.positive = positive;
    lars_options.lambda = 0.2 * dtx.cwiseAbs().maxCoeff();
    lars.solve(G, dtx, lars_options, exact);

    CoordinateDescentOptions options;
    options.lambda = lars_options.lambda;
    options.positive = positive;
    options.tol = 1e-12;
    // Cold start needs many sweeps at this tolerance...
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    const Index cold = cd.sweeps();
    CHECK(cold > 5);
    // ...the exact solution as warm start only one, and stays there.
    options.warm_start = true;
    code = exact;
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    CHECK(cd.sweeps() == 1);
    CHECK((code - exact).cwiseAbs().maxCoeff() <= 1e-12);
    // Without warm_start the content of `code` is ignored.
    options.warm_start = false;
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    CHECK(cd.sweeps() == cold);
  }
  SECTION("an infeasible warm start is made feasible") {
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    CoordinateDescentOptions options;
    options.lambda = 0.2 * dtx.maxCoeff();
    options.positive = true;
    options.warm_start = true;
    options.tol = 1e-12;
    code = -Vector::Ones(K);  // all negative
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    const Kkt k = kkt(G, dtx, code, options.lambda, true);
    CHECK(k.wrong_sign == 0.0);
    CHECK(k.off_support <= 1e-6);
    CHECK(k.on_support <= 1e-6);
  }
}

TEST_CASE("CoordinateDescentLasso edge cases", "[cd]") {
  Rng rng(4);
  const Index d = 12, K = 20;
  Matrix D = random_dictionary(d, K, rng);
  D.col(3).setZero();  // empty atoms: G_kk = 0
  D.col(11).setZero();
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  CoordinateDescentLasso<double> cd(K);
  Vector code = Vector::Constant(K, 5.0);
  CoordinateDescentOptions options;

  SECTION("lambda >= max |D^T x|: zero code after one sweep") {
    options.lambda = dtx.cwiseAbs().maxCoeff();
    CHECK(cd.solve(G, dtx, x.squaredNorm(), options, code) == 0);
    CHECK(code.isZero(0.0));
    CHECK(cd.sweeps() == 1);
    CHECK(cd.duality_gap() == Approx(0.0).margin(1e-12));
  }
  SECTION("empty atoms keep a zero coefficient, also from a warm start") {
    options.lambda = 0.05 * dtx.cwiseAbs().maxCoeff();
    options.tol = 1e-14;
    options.max_iter = 100000;
    options.warm_start = true;
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    REQUIRE(code.allFinite());
    CHECK(code(3) == 0.0);
    CHECK(code(11) == 0.0);
    const Kkt k = kkt(G, dtx, code, options.lambda, false);
    CHECK(k.off_support <= 1e-8);
    CHECK(k.on_support <= 1e-8);
  }
  SECTION("x = 0 gives the zero code") {
    const Vector zero = Vector::Zero(K);
    options.lambda = 0.1;
    CHECK(cd.solve(G, zero, 0.0, options, code) == 0);
    CHECK(code.isZero(0.0));
    CHECK(cd.sweeps() == 1);
  }
  SECTION("max_iter = 0 returns the starting point") {
    options.max_iter = 0;
    CHECK(cd.solve(G, dtx, x.squaredNorm(), options, code) == 0);
    CHECK(code.isZero(0.0));
  }
}

TEST_CASE("CoordinateDescentLasso reproduces scikit-learn's lasso_cd codes", "[cd][sklearn]") {
  // sparse_encode(X, D, algorithm='lasso_cd', alpha=0.5, positive=...) with scikit-learn
  // 1.2.1 (default tol 1e-4, max_iter 1000) on atoms that are not unit-norm.
  Matrix atoms(8, 6);  // rows are atoms, as in scikit-learn
  atoms << 0.47, -0.68, 0.24, -1.7, 0.75, -1.53, 0.01, -0.12, -0.81, 2.87, -0.6, 0.47, 1.1, -1.22,
      1.34, -0.12, 1.01, -0.91, -1.03, 1.21, 0.5, 0.14, 0.64, 0.53, -1.15, -2.21, -1.68, -1.79,
      -2.22, -0.65, -0.53, -0.04, 0.21, -0.38, -0.25, 0.07, -1., -0.71, 0.04, -0.68, -0.57, -0.11,
      1.34, 0.32, -0.34, -0.59, -0.11, 2.24;
  Matrix samples(3, 6);
  samples << -3.15, 0.54, 0.23, 0.87, -1.15, 2.11, 1., -0.05, 0.16, -0.72, 0.05, -0.14, 0.94, 0.36,
      -0.08, 0.68, 0.56, 0.22;
  Matrix expected(3, 8), expected_positive(3, 8);
  expected << -1.0295835728222231, 0., -0.030779549106850553, 0.7518691415897786, 0., 0.,
      1.4240083120027445, 0., 0.26164600683998834, 0., 0.055179834387369675, -0.01971283672137319,
      0., 0., 0., 0.20593909785163064, 0., 0.04128434456856366, 0., -0.013213736743712038,
      -0.10023465719158023, 0., -0.3798651901253844, 0.032755372033597935;
  expected_positive << 0., 0.7169176886667504, 0., 1.4926405853458427, 0.09172920495350827, 0.,
      1.6241786669051603, 0.3409584139404628, 0.2654149859294242, 0., 0.0588546539433786, 0., 0.,
      0., 0., 0.20811348287965462, 0., 0.17172884438110303, 0.14184563721470336, 0., 0., 0., 0.,
      0.16146234601987247;
  const Matrix D = atoms.transpose();  // d x K
  const Matrix G = D.transpose() * D;
  CoordinateDescentLasso<double> cd(8);
  Vector code(8);
  for (bool positive : {false, true}) {
    for (Index i = 0; i < 3; ++i) {
      const Vector x = samples.row(i).transpose();
      const Vector dtx = D.transpose() * x;
      CoordinateDescentOptions options;
      options.lambda = 0.5;
      options.positive = positive;
      cd.solve(G, dtx, x.squaredNorm(), options, code);
      const Vector reference = (positive ? expected_positive : expected).row(i).transpose();
      INFO("sample " << i << " positive=" << positive);
      // Same sweeps and stopping rule: equal up to rounding (the solution itself is only
      // tol-accurate, ~1e-3 here, so this is a test of the iteration, not of the minimum).
      CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-10);
      for (Index k = 0; k < 8; ++k) CHECK((code(k) == 0.0) == (reference(k) == 0.0));
    }
  }
}

TEST_CASE("CoordinateDescentLasso in single precision", "[cd][float]") {
  Rng rng(31);
  const Index d = 32, K = 64;
  CoordinateDescentLasso<float> cd(K);
  LarsLasso<double> lars(K);
  Eigen::VectorXf code(K);
  Vector exact(K);
  for (int trial = 0; trial < 6; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const Eigen::MatrixXf Gf = G.cast<float>();
    const Eigen::VectorXf dtxf = dtx.cast<float>();
    for (bool positive : {false, true}) {
      for (double f : {0.5, 0.2}) {
        CoordinateDescentOptions options;
        options.positive = positive;
        options.lambda = f * dtx.cwiseAbs().maxCoeff();
        options.tol = 1e-7;
        const Index nnz = cd.solve(Gf, dtxf, static_cast<float>(x.squaredNorm()), options, code);
        REQUIRE(code.allFinite());
        REQUIRE(nnz == (code.array() != 0.0f).count());
        const Vector a = code.cast<double>();
        const Kkt k = kkt(G, dtx, a, options.lambda, positive);
        CHECK(k.wrong_sign <= 0.0);
        CHECK(k.off_support <= 1e-3);
        CHECK(k.on_support <= 1e-3);
        LarsOptions lars_options;
        lars_options.lambda = options.lambda;
        lars_options.positive = positive;
        lars.solve(G, dtx, lars_options, exact);
        const double reference = objective(G, dtx, x.squaredNorm(), exact, options.lambda);
        CHECK(objective(G, dtx, x.squaredNorm(), a, options.lambda) - reference <=
              1e-5 * reference);
      }
    }
  }
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
TEST_CASE("CoordinateDescentLasso::solve does not allocate", "[cd][malloc]") {
  Rng rng(41);
  const Index d = 20, K = 50;
  const Matrix D = random_dictionary(d, K, rng, 1.0);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  CoordinateDescentLasso<double> cd(K);
  Vector code(K);
  CoordinateDescentOptions options;
  options.lambda = 0.1 * dtx.cwiseAbs().maxCoeff();
  for (bool warm : {false, true}) {
    options.warm_start = warm;
    Eigen::internal::set_is_malloc_allowed(false);
    cd.solve(G, dtx, x.squaredNorm(), options, code);
    Eigen::internal::set_is_malloc_allowed(true);
  }
  SUCCEED();
}
#endif
