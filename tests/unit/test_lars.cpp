// LARS-lasso: optimality (KKT) on random problems, agreement with a brute-force lasso on
// tiny problems, the nonnegative variant, degenerate inputs and single precision.
// LAR mode (lasso = false): m atoms with equiangular correlations, agreement with a textbook
// LAR and with the lasso path before any sign change, scikit-learn's 'lars' codes.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dictlearn/coding/lars.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::LarsLasso;
using dictlearn::LarsOptions;
using dictlearn::Matrix;
using dictlearn::Vector;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

struct Kkt {
  double off_support = 0.0;  // max_j (|c_j| - lambda)_+ over all j
  double on_support = 0.0;   // max over a_j != 0 of |c_j - lambda sign(a_j)|
  double wrong_sign = 0.0;   // positive mode: max_j (-a_j)_+
};

// Lasso optimality of `a` for min 0.5||x - D a||^2 + lambda ||a||_1 (positive: a >= 0),
// evaluated in double with c = D^T x - G a.
Kkt kkt(const Matrix& G, const Vector& dtx, const Vector& a, double lambda, bool positive) {
  const Vector c = dtx - G * a;
  Kkt out;
  for (Index j = 0; j < c.size(); ++j) {
    const double excess = (positive ? c(j) : std::abs(c(j))) - lambda;
    out.off_support = std::max(out.off_support, excess);
    if (a(j) != 0.0) {
      const double s = a(j) > 0 ? 1.0 : -1.0;
      out.on_support = std::max(out.on_support, std::abs(c(j) - lambda * s));
    }
    if (positive) out.wrong_sign = std::max(out.wrong_sign, -a(j));
  }
  return out;
}

double objective(const Matrix& D, const Vector& x, const Vector& a, double lambda) {
  return 0.5 * (x - D * a).squaredNorm() + lambda * a.lpNorm<1>();
}

// Global lasso minimum by enumeration: for every support S and sign pattern s the
// stationary point a_S = G_SS^-1 (dtx_S - lambda s) is a candidate if its signs are s;
// the minimiser (one with G_SS invertible always exists) is among the candidates.
double brute_force_lasso(const Matrix& D, const Vector& x, double lambda, bool positive) {
  const Index K = D.cols();
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  double best = 0.5 * x.squaredNorm();  // a = 0
  for (unsigned mask = 1; mask < (1u << K); ++mask) {
    std::vector<Index> S;
    for (Index k = 0; k < K; ++k)
      if (mask & (1u << k)) S.push_back(k);
    const Index m = static_cast<Index>(S.size());
    Matrix Gs(m, m);
    Vector ds(m);
    for (Index i = 0; i < m; ++i) {
      ds(i) = dtx(S[i]);
      for (Index j = 0; j < m; ++j) Gs(i, j) = G(S[i], S[j]);
    }
    Eigen::FullPivLU<Matrix> lu(Gs);
    lu.setThreshold(1e-10);
    if (lu.rank() < m) continue;
    const unsigned n_patterns = positive ? 1u : (1u << m);
    for (unsigned pattern = 0; pattern < n_patterns; ++pattern) {
      Vector s(m);
      for (Index i = 0; i < m; ++i) s(i) = (pattern & (1u << i)) ? -1.0 : 1.0;
      const Vector as = lu.solve(ds - lambda * s);
      bool consistent = true;
      for (Index i = 0; i < m; ++i) consistent = consistent && as(i) * s(i) > 0;
      if (!consistent) continue;
      Vector a = Vector::Zero(K);
      for (Index i = 0; i < m; ++i) a(S[i]) = as(i);
      best = std::min(best, objective(D, x, a, lambda));
    }
  }
  return best;
}

Index count_nonzeros(const Vector& a) { return (a.array() != 0.0).count(); }

}  // namespace

TEST_CASE("LarsLasso satisfies the lasso KKT conditions on random problems", "[lars]") {
  struct Shape {
    Index d, K;
    double shared;
  };
  const Shape shapes[] = {{20, 10, 0.0}, {20, 40, 0.0},  {32, 64, 1.0},  {48, 100, 0.0},
                          {64, 40, 0.0}, {64, 128, 0.0}, {64, 128, 2.0}, {24, 24, 1.5}};
  // lambda as a fraction of lambda_max = max|D^T x|: from one nonzero to about d/2.
  const double fractions[] = {0.95, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08};
  Rng rng(20240601);
  double worst_off = 0.0, worst_on = 0.0;
  Index min_nnz = 1000, max_nnz = 0;
  int problems = 0;
  for (const Shape& shape : shapes) {
    LarsLasso<double> lars(shape.K);  // one solver reused for every problem of this shape
    Vector code(shape.K);
    for (int trial = 0; trial < 6; ++trial) {
      const Matrix D = random_dictionary(shape.d, shape.K, rng, shape.shared);
      const Vector x = rng.gaussian_vector(shape.d);
      const Matrix G = D.transpose() * D;
      const Vector dtx = D.transpose() * x;
      const double lambda_max = dtx.cwiseAbs().maxCoeff();
      for (double f : fractions) {
        LarsOptions options;
        options.lambda = f * lambda_max;
        const Index nnz = lars.solve(G, dtx, options, code);
        REQUIRE(code.allFinite());
        REQUIRE(nnz == count_nonzeros(code));
        REQUIRE(nnz >= 1);
        REQUIRE(nnz <= std::min(shape.d, shape.K));
        const Kkt k = kkt(G, dtx, code, options.lambda, false);
        INFO("d=" << shape.d << " K=" << shape.K << " lambda/lambda_max=" << f << " nnz=" << nnz);
        CHECK(k.off_support <= 1e-9);
        CHECK(k.on_support <= 1e-9);
        // The residual from the final solve's terms, against the dense one.
        const double residual = (x - D * code).squaredNorm();
        CHECK(std::abs(lars.residual_sqnorm(x.squaredNorm()) - residual) <=
              1e-12 * (1.0 + x.squaredNorm()));
        worst_off = std::max(worst_off, k.off_support);
        worst_on = std::max(worst_on, k.on_support);
        min_nnz = std::min(min_nnz, nnz);
        max_nnz = std::max(max_nnz, nnz);
        ++problems;
      }
    }
  }
  // The sweep really covers sparse to fairly dense codes.
  CHECK(min_nnz == 1);
  CHECK(max_nnz >= 20);
  INFO("problems=" << problems << " worst KKT off/on support " << worst_off << " " << worst_on);
  SUCCEED();
}

TEST_CASE("LarsLasso reaches the brute-force lasso minimum on tiny problems", "[lars]") {
  Rng rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    const Index K = 2 + trial % 5;        // 2..6 atoms
    const Index d = 2 + (trial / 5) % 5;  // 2..6 dims: over- and undercomplete
    const bool positive = trial % 3 == 2;
    const Matrix D = random_dictionary(d, K, rng, (trial % 2) ? 1.5 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const double lambda_max = positive ? std::max(dtx.maxCoeff(), 1e-3) : dtx.cwiseAbs().maxCoeff();
    LarsOptions options;
    options.positive = positive;
    options.lambda = lambda_max * (0.02 + 0.9 * rng.uniform());
    LarsLasso<double> lars(K);
    Vector code(K);
    lars.solve(G, dtx, options, code);
    REQUIRE(code.allFinite());
    if (positive) REQUIRE(code.minCoeff() >= 0.0);
    const double lars_objective = objective(D, x, code, options.lambda);
    const double best = brute_force_lasso(D, x, options.lambda, positive);
    INFO("trial=" << trial << " d=" << d << " K=" << K << " positive=" << positive);
    REQUIRE(std::abs(lars_objective - best) <= 1e-10);
  }
}

TEST_CASE("LarsLasso positive mode solves the nonnegative lasso", "[lars]") {
  Rng rng(99);
  const Index d = 40, K = 80;
  LarsLasso<double> lars(K);
  Vector code(K);
  Index max_nnz = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    for (double f : {0.9, 0.5, 0.3, 0.15, 0.05}) {
      LarsOptions options;
      options.positive = true;
      options.lambda = f * dtx.maxCoeff();
      const Index nnz = lars.solve(G, dtx, options, code);
      REQUIRE(nnz == count_nonzeros(code));
      // KKT of the nonnegative lasso: c_j <= lambda for all j, c_j = lambda where a_j > 0.
      const Kkt k = kkt(G, dtx, code, options.lambda, true);
      CHECK(k.wrong_sign == 0.0);
      CHECK(k.off_support <= 1e-9);
      CHECK(k.on_support <= 1e-9);
      max_nnz = std::max(max_nnz, nnz);
    }
    // Unconstrained lasso at the same lambda would use negative coefficients: the modes
    // differ on these problems.
  }
  CHECK(max_nnz >= 10);
}

TEST_CASE("LarsLasso returns the zero code when lambda >= max |D^T x|", "[lars]") {
  Rng rng(3);
  const Index d = 16, K = 32;
  const Matrix D = random_dictionary(d, K, rng);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  LarsLasso<double> lars(K);
  Vector code = Vector::Constant(K, 7.0);  // stale content must be overwritten
  LarsOptions options;
  options.lambda = dtx.cwiseAbs().maxCoeff();
  CHECK(lars.solve(G, dtx, options, code) == 0);
  CHECK(code.isZero(0.0));
  options.lambda *= 1.5;
  CHECK(lars.solve(G, dtx, options, code) == 0);
  CHECK(code.isZero(0.0));
  // Positive mode: only positive correlations count; all-negative D^T x gives zero.
  options.positive = true;
  options.lambda = 1e-6;
  const Vector negative_dtx = -dtx.cwiseAbs();
  CHECK(lars.solve(G, negative_dtx, options, code) == 0);
  CHECK(code.isZero(0.0));
  // Just below lambda_max exactly one atom enters, the argmax of |D^T x|.
  options.positive = false;
  Index top;
  options.lambda = dtx.cwiseAbs().maxCoeff(&top) * (1.0 - 1e-6);
  CHECK(lars.solve(G, dtx, options, code) == 1);
  CHECK(code(top) != 0.0);
}

TEST_CASE("LarsLasso with lambda = 0 is least squares", "[lars]") {
  Rng rng(11);
  SECTION("undercomplete full rank: a = G^-1 D^T x") {
    const Index d = 30, K = 12;
    const Matrix D = random_dictionary(d, K, rng, 1.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    LarsOptions options;
    options.lambda = 0.0;
    CHECK(lars.solve(G, dtx, options, code) == K);
    const Vector ls = G.ldlt().solve(dtx);
    CHECK((code - ls).cwiseAbs().maxCoeff() <= 1e-9);
  }
  SECTION("overcomplete: exact fit on d atoms, dependent atoms left out without NaN") {
    const Index d = 8, K = 20;
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    LarsOptions options;
    options.lambda = 0.0;
    const Index nnz = lars.solve(G, dtx, options, code);
    REQUIRE(code.allFinite());
    CHECK(nnz == d);
    CHECK((x - D * code).norm() <= 1e-9);
  }
}

TEST_CASE("LarsLasso excludes atoms collinear with the active set", "[lars]") {
  Rng rng(5);
  const Index d = 12, K0 = 20;
  const Matrix D0 = random_dictionary(d, K0, rng);
  // Duplicates of atoms 0..3 (one with flipped sign) and an exact copy of the best atom.
  Matrix D(d, K0 + 4);
  D << D0, D0.col(0), -D0.col(1), D0.col(2), D0.col(3);
  for (int trial = 0; trial < 10; ++trial) {
    Vector x = rng.gaussian_vector(d) + 2.0 * D0.col(trial % 4);
    const Index K = D.cols();
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    for (double f : {0.6, 0.3, 0.1, 0.0}) {
      LarsOptions options;
      options.lambda = f * dtx.cwiseAbs().maxCoeff();
      const Index nnz = lars.solve(G, dtx, options, code);
      REQUIRE(code.allFinite());
      CHECK(nnz <= d);
      // A duplicate's correlation equals its twin's, so KKT holds for it as well.
      const Kkt k = kkt(G, dtx, code, options.lambda, false);
      CHECK(k.off_support <= 1e-9);
      CHECK(k.on_support <= 1e-9);
    }
  }
}

TEST_CASE("LarsLasso max_active stops at an exact lasso solution with that many atoms", "[lars]") {
  Rng rng(17);
  const Index d = 32, K = 64;
  LarsLasso<double> lars(K);
  Vector code(K);
  for (int trial = 0; trial < 10; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.5 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsOptions options;
    options.lambda = 0.02 * dtx.cwiseAbs().maxCoeff();
    const Index full = lars.solve(G, dtx, options, code);
    for (Index m : {Index(1), Index(3), Index(6)}) {
      REQUIRE(full > m);
      options.max_active = m;
      CHECK(lars.solve(G, dtx, options, code) == m);
      // Optimal for lambda' = max_j |c_j| >= lambda: the point where atom m+1 enters.
      const double lambda_stop = (dtx - G * code).cwiseAbs().maxCoeff();
      CHECK(lambda_stop >= options.lambda);
      const Kkt k = kkt(G, dtx, code, lambda_stop, false);
      CHECK(k.on_support <= 1e-9);
      CHECK(k.off_support <= 1e-9);
    }
    options.max_active = 0;
  }
}

TEST_CASE("LarsLasso accepts atoms that are not unit-norm", "[lars]") {
  Rng rng(23);
  const Index d = 20, K = 30;
  Matrix D = random_dictionary(d, K, rng);
  for (Index k = 0; k < K; ++k) D.col(k) *= 0.2 + 3.0 * rng.uniform();
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  LarsLasso<double> lars(K);
  Vector code(K);
  for (double f : {0.7, 0.3, 0.1, 0.03}) {
    LarsOptions options;
    options.lambda = f * dtx.cwiseAbs().maxCoeff();
    lars.solve(G, dtx, options, code);
    const Kkt k = kkt(G, dtx, code, options.lambda, false);
    CHECK(k.off_support <= 1e-9);
    CHECK(k.on_support <= 1e-9);
  }
}

TEST_CASE("LarsLasso joins atoms in path order when the atoms' norms differ widely", "[lars]") {
  // Norms from 1e-2 to 1e2 make the rates u_j = G[j, A] w range over orders of magnitude,
  // where the join scan's screen (|c_j - g u_j| against C - g) must let every atom whose
  // step is the next event through. Stopping after m atoms (LAR mode and lasso with
  // max_active) must leave every inactive |c_j| at or below the active atoms' common C,
  // and one of them exactly at C: the atom that would join next.
  Rng rng(29);
  const Index d = 32, K = 96;
  for (int trial = 0; trial < 8; ++trial) {
    Matrix D = random_dictionary(d, K, rng, trial % 2 == 0 ? 1.0 : 0.0);
    for (Index k = 0; k < K; ++k) D.col(k) *= std::pow(10.0, 4.0 * rng.uniform() - 2.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    for (bool lasso : {false, true}) {
      for (Index m = 1; m <= 12; ++m) {
        LarsOptions options;
        options.lambda = 0.0;
        options.lasso = lasso;
        options.max_active = m;
        lars.solve(G, dtx, options, code);
        REQUIRE(code.allFinite());
        const Vector c = dtx - G * code;
        double C = 0.0, inactive_max = 0.0;
        for (Index j = 0; j < K; ++j) {
          if (code(j) != 0.0)
            C = std::max(C, std::abs(c(j)));
          else
            inactive_max = std::max(inactive_max, std::abs(c(j)));
        }
        INFO("trial=" << trial << " lasso=" << lasso << " m=" << m);
        CHECK(C > 0.0);
        CHECK(inactive_max <= C * (1.0 + 1e-9));
        CHECK(inactive_max >= C * (1.0 - 1e-9));
      }
    }
  }
}

TEST_CASE("LarsLasso::residual_sqnorm is ||x - D a||^2 in every mode", "[lars]") {
  // Positive, LAR, a max_active stop, lambda >= lambda_max (the zero code), in double and
  // float (where the terms carry float rounding).
  Rng rng(57);
  const Index d = 24, K = 48;
  LarsLasso<double> lars(K);
  LarsLasso<float> lars_float(K);
  Vector code(K);
  Eigen::VectorXf code_float(K);
  for (int trial = 0; trial < 8; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const double lambda_max = dtx.cwiseAbs().maxCoeff();
    for (int mode = 0; mode < 4; ++mode) {
      LarsOptions options;
      options.lambda = (mode == 3 ? 1.5 : 0.2) * lambda_max;
      options.positive = mode == 0;
      options.lasso = mode != 1;
      if (mode == 1) {  // scikit-learn's 'lars' coder: lambda = 0, m atoms
        options.lambda = 0.0;
        options.max_active = 5;
      }
      if (mode == 2) options.max_active = 3;
      INFO("trial=" << trial << " mode=" << mode);
      lars.solve(G, dtx, options, code);
      const double scale = 1.0 + x.squaredNorm();
      CHECK(std::abs(lars.residual_sqnorm(x.squaredNorm()) - (x - D * code).squaredNorm()) <=
            1e-12 * scale);
      lars_float.solve(G.cast<float>(), dtx.cast<float>(), options, code_float);
      const double float_residual = (x - D * code_float.cast<double>()).squaredNorm();
      const double from_solve = lars_float.residual_sqnorm(x.squaredNorm());
      if (from_solve >= 0.0) CHECK(std::abs(from_solve - float_residual) <= 1e-4 * scale);
      if (mode == 3) CHECK(lars.residual_sqnorm(x.squaredNorm()) == x.squaredNorm());
    }
  }
}

TEST_CASE("LarsLasso in single precision", "[lars][float]") {
  Rng rng(31);
  const Index d = 32, K = 64;
  LarsLasso<float> lars(K);
  LarsLasso<double> lars_double(K);
  Eigen::VectorXf code(K);
  Vector code_double(K);
  for (int trial = 0; trial < 10; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const Eigen::MatrixXf Gf = G.cast<float>();
    const Eigen::VectorXf dtxf = dtx.cast<float>();
    for (bool positive : {false, true}) {
      for (double f : {0.6, 0.3, 0.15, 0.05}) {
        LarsOptions options;
        options.positive = positive;
        options.lambda = f * dtx.cwiseAbs().maxCoeff();
        const Index nnz = lars.solve(Gf, dtxf, options, code);
        REQUIRE(code.allFinite());
        REQUIRE(nnz == (code.array() != 0.0f).count());
        const Vector a = code.cast<double>();
        const Kkt k = kkt(G, dtx, a, options.lambda, positive);
        CHECK(k.wrong_sign <= 0.0);
        CHECK(k.off_support <= 1e-4);
        CHECK(k.on_support <= 1e-4);
        // Same minimum as in double precision.
        lars_double.solve(G, dtx, options, code_double);
        const double reference = objective(D, x, code_double, options.lambda);
        CHECK(std::abs(objective(D, x, a, options.lambda) - reference) <= 1e-5 * reference);
      }
    }
  }
}

namespace {

// Textbook LAR (Efron et al. 2004, sec. 2) with dense re-solves, as an independent
// reference: active set A in join order, s = sign(c_A), w = G_AA^-1 s by LDLT,
// u = G[:, A] w, step to the first join (or to C = 0), correlations recomputed as
// D^T x - G a. Stops with m atoms where the (m+1)-th would join, as scikit-learn's Lars.
// `crossed` reports whether an active coefficient changed sign on the way (where the LAR and
// the LARS-lasso paths part).
Vector reference_lar(const Matrix& G, const Vector& dtx, Index m, bool& crossed) {
  const Index K = dtx.size();
  Vector a = Vector::Zero(K);
  Vector c = dtx;
  crossed = false;
  std::vector<Index> active;
  Index first;
  double C = c.cwiseAbs().maxCoeff(&first);
  active.push_back(first);
  for (;;) {
    const Index n = static_cast<Index>(active.size());
    Matrix Gaa(n, n);
    Vector s(n);
    for (Index i = 0; i < n; ++i) {
      s(i) = c(active[i]) >= 0 ? 1.0 : -1.0;
      for (Index j = 0; j < n; ++j) Gaa(i, j) = G(active[i], active[j]);
    }
    const Vector w = Gaa.ldlt().solve(s);
    Vector u = Vector::Zero(K);
    for (Index i = 0; i < n; ++i) u += w(i) * G.col(active[i]);
    double step = C;  // to C = 0
    Index next = -1;
    for (Index j = 0; j < K; ++j) {
      if (std::find(active.begin(), active.end(), j) != active.end()) continue;
      for (double sign : {1.0, -1.0}) {
        const double den = 1.0 - sign * u(j);
        if (den <= 1e-14) continue;
        const double g = (C - sign * c(j)) / den;
        if (g >= 0.0 && g < step) {
          step = g;
          next = j;
        }
      }
    }
    for (Index i = 0; i < n; ++i) {
      const double before = a(active[i]);
      a(active[i]) += step * w(i);
      if (before * a(active[i]) < 0) crossed = true;
    }
    c = dtx - G * a;
    C -= step;
    if (next < 0 || n >= m) return a;
    active.push_back(next);
  }
}

LarsOptions lar_options(Index m) {
  LarsOptions options;
  options.lasso = false;
  options.lambda = 0.0;
  options.max_active = m;
  return options;
}

}  // namespace

TEST_CASE("LAR mode: m atoms, equiangular active correlations above the inactive ones",
          "[lars][lar]") {
  struct Shape {
    Index d, K;
    double shared;
  };
  const Shape shapes[] = {{20, 10, 0.0}, {16, 32, 0.0}, {32, 64, 1.5}, {64, 128, 0.0}};
  Rng rng(61);
  for (const Shape& shape : shapes) {
    LarsLasso<double> lars(shape.K);
    Vector code(shape.K);
    for (int trial = 0; trial < 5; ++trial) {
      const Matrix D = random_dictionary(shape.d, shape.K, rng, shape.shared);
      const Vector x = rng.gaussian_vector(shape.d);
      const Matrix G = D.transpose() * D;
      const Vector dtx = D.transpose() * x;
      for (Index m : {Index(1), Index(2), Index(5), std::min(shape.d, shape.K) - 1}) {
        const Index nnz = lars.solve(G, dtx, lar_options(m), code);
        INFO("d=" << shape.d << " K=" << shape.K << " trial=" << trial << " m=" << m);
        REQUIRE(code.allFinite());
        CHECK(nnz == m);
        CHECK(count_nonzeros(code) == m);
        // c = D^T x - G a: |c_j| = C on the support, <= C elsewhere, and = C for the atom
        // that would join next (the path stopped exactly there).
        const Vector c = dtx - G * code;
        double C = -1.0, spread = 0.0, inactive_max = 0.0;
        for (Index j = 0; j < shape.K; ++j) {
          if (code(j) == 0.0) continue;
          if (C < 0) C = std::abs(c(j));
          spread = std::max(spread, std::abs(std::abs(c(j)) - C));
        }
        for (Index j = 0; j < shape.K; ++j)
          if (code(j) == 0.0) inactive_max = std::max(inactive_max, std::abs(c(j)));
        CHECK(C > 0.0);
        CHECK(spread <= 1e-10 * C);
        CHECK(inactive_max <= C * (1.0 + 1e-10));
        CHECK(inactive_max >= C * (1.0 - 1e-9));
      }
      // lambda > 0 stops the LAR path at C = lambda, before m atoms are reached.
      LarsOptions options = lar_options(0);
      options.lambda = 0.3 * dtx.cwiseAbs().maxCoeff();
      const Index nnz = lars.solve(G, dtx, options, code);
      CHECK(nnz >= 1);
      CHECK((dtx - G * code).cwiseAbs().maxCoeff() == Approx(options.lambda).epsilon(1e-10));
    }
  }
}

TEST_CASE("LAR mode matches a textbook LAR, also after sign changes", "[lars][lar]") {
  Rng rng(67);
  int crossings = 0, compared = 0, lasso_differs = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const Index d = 6 + trial % 20;
    const Index K = 5 + (trial * 7) % 40;
    const Matrix D = random_dictionary(d, K, rng, trial % 3 == 0 ? 1.5 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K), lasso_code(K);
    for (Index m : {Index(1), Index(3), std::min(d, K) - 1, std::min(d, K)}) {
      if (m < 1) continue;
      bool crossed = false;
      const Vector reference = reference_lar(G, dtx, m, crossed);
      lars.solve(G, dtx, lar_options(m), code);
      INFO("trial=" << trial << " d=" << d << " K=" << K << " m=" << m << " crossed=" << crossed);
      CHECK((code - reference).cwiseAbs().maxCoeff() <= 1e-9 * (1.0 + reference.norm()));
      ++compared;
      // Until a coefficient changes sign the LAR and the LARS-lasso paths coincide.
      LarsOptions lasso_options;
      lasso_options.lambda = 0.0;
      lasso_options.max_active = m;
      lars.solve(G, dtx, lasso_options, lasso_code);
      const double difference = (code - lasso_code).cwiseAbs().maxCoeff();
      if (!crossed) {
        CHECK(difference <= 1e-9 * (1.0 + reference.norm()));
      } else {
        ++crossings;
        if (difference > 1e-6) ++lasso_differs;
      }
    }
  }
  // The sample really exercises sign changes, where the modes differ.
  CHECK(crossings >= 10);
  CHECK(lasso_differs >= 5);
  INFO("compared=" << compared << " crossings=" << crossings);
  SUCCEED();
}

TEST_CASE("LAR mode runs to least squares when m reaches the rank", "[lars][lar]") {
  Rng rng(71);
  SECTION("undercomplete: all K atoms, a = G^-1 D^T x") {
    const Index d = 30, K = 12;
    const Matrix D = random_dictionary(d, K, rng, 1.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    for (Index m : {K, Index(0), K + 5}) {  // 0: no limit
      CHECK(lars.solve(G, dtx, lar_options(m), code) == K);
      CHECK((code - G.ldlt().solve(dtx)).cwiseAbs().maxCoeff() <= 1e-9);
    }
  }
  SECTION("overcomplete: d atoms fit x exactly") {
    const Index d = 8, K = 20;
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    LarsLasso<double> lars(K);
    Vector code(K);
    for (Index m : {d, Index(12)}) {
      const Index nnz = lars.solve(G, dtx, lar_options(m), code);
      REQUIRE(code.allFinite());
      CHECK(nnz == d);
      CHECK((x - D * code).norm() <= 1e-9);
    }
  }
}

TEST_CASE("LAR mode reproduces scikit-learn's 'lars' codes", "[lars][lar][sklearn]") {
  // sparse_encode(X, D, algorithm='lars', n_nonzero_coefs=m) with scikit-learn 1.2.1; the
  // atoms are not unit-norm.
  Matrix atoms(8, 6);  // rows are atoms, as in scikit-learn
  atoms << 0.47, -0.68, 0.24, -1.7, 0.75, -1.53, 0.01, -0.12, -0.81, 2.87, -0.6, 0.47, 1.1, -1.22,
      1.34, -0.12, 1.01, -0.91, -1.03, 1.21, 0.5, 0.14, 0.64, 0.53, -1.15, -2.21, -1.68, -1.79,
      -2.22, -0.65, -0.53, -0.04, 0.21, -0.38, -0.25, 0.07, -1., -0.71, 0.04, -0.68, -0.57, -0.11,
      1.34, 0.32, -0.34, -0.59, -0.11, 2.24;
  Matrix samples(3, 6);
  samples << -3.15, 0.54, 0.23, 0.87, -1.15, 2.11, 1., -0.05, 0.16, -0.72, 0.05, -0.14, 0.94, 0.36,
      -0.08, 0.68, 0.56, 0.22;
  Matrix expected1(3, 8), expected3(3, 8);
  expected1 << -0.14357361780042197, 0, 0, 0, 0, 0, 0, 0, 0, -0.07733629434007559, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, -0.17203417353208247, 0, 0, 0;
  expected3 << -0.46118222490877897, 0, -0.3407257293194046, 0.06841595482669609, 0, 0, 0, 0,
      0.059517021032441705, -0.06439267938794979, 0, 0, 0, 0, 0, 0.026251539635165102, 0,
      0.0360333706646767, 0, 0, -0.18578967819122613, 0, 0, 0.02059069147752417;
  // m = 5, third sample (no sign change on its path).
  Vector expected5(8);
  expected5 << 0, 0.04541006777602551, 0, -0.07101526071655431, -0.10004188958604321, 0,
      -0.45797624601655884, 0.041805837720311406;
  const Matrix D = atoms.transpose();  // d x K
  const Matrix G = D.transpose() * D;
  LarsLasso<double> lars(8);
  Vector code(8);
  for (Index i = 0; i < 3; ++i) {
    const Vector dtx = D.transpose() * samples.row(i).transpose();
    INFO("sample " << i);
    CHECK(lars.solve(G, dtx, lar_options(1), code) == 1);
    CHECK((code - expected1.row(i).transpose()).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK(lars.solve(G, dtx, lar_options(3), code) == 3);
    CHECK((code - expected3.row(i).transpose()).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK(lars.solve(G, dtx, lar_options(5), code) == 5);
    if (i == 2) {
      CHECK((code - expected5).cwiseAbs().maxCoeff() <= 1e-12);
    } else {
      // On the paths of samples 0 and 1 an active coefficient crosses zero; scikit-learn then
      // flips that atom's sign in the direction and skips the next join (it returns 4
      // nonzeros), while LAR keeps going: 5 atoms, all with |c_j| = C.
      bool crossed = false;
      CHECK((code - reference_lar(G, dtx, 5, crossed)).cwiseAbs().maxCoeff() <= 1e-12);
      CHECK(crossed);
    }
  }
}

TEST_CASE("LAR mode in single precision", "[lars][lar][float]") {
  Rng rng(73);
  const Index d = 32, K = 64;
  LarsLasso<float> lars(K);
  LarsLasso<double> lars_double(K);
  Eigen::VectorXf code(K);
  Vector code_double(K);
  for (int trial = 0; trial < 10; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const Eigen::MatrixXf Gf = G.cast<float>();
    const Eigen::VectorXf dtxf = dtx.cast<float>();
    for (Index m : {Index(1), Index(4), Index(10)}) {
      CHECK(lars.solve(Gf, dtxf, lar_options(m), code) == m);
      REQUIRE(code.allFinite());
      lars_double.solve(G, dtx, lar_options(m), code_double);
      INFO("trial=" << trial << " m=" << m);
      CHECK((code.cast<double>() - code_double).cwiseAbs().maxCoeff() <=
            1e-4 * (1.0 + code_double.cwiseAbs().maxCoeff()));
    }
  }
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
// Only meaningful when the whole build defines EIGEN_RUNTIME_NO_MALLOC.
TEST_CASE("LarsLasso::solve does not allocate", "[lars][malloc]") {
  Rng rng(41);
  const Index d = 20, K = 50;
  const Matrix D = random_dictionary(d, K, rng, 1.0);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  LarsLasso<double> lars(K);
  Vector code(K);
  LarsOptions options;
  for (double f : {0.5, 0.1, 0.0}) {
    options.lambda = f * dtx.cwiseAbs().maxCoeff();
    Eigen::internal::set_is_malloc_allowed(false);
    lars.solve(G, dtx, options, code);
    Eigen::internal::set_is_malloc_allowed(true);
  }
  const LarsOptions lar = lar_options(10);  // LAR mode
  Eigen::internal::set_is_malloc_allowed(false);
  lars.solve(G, dtx, lar, code);
  Eigen::internal::set_is_malloc_allowed(true);
  SUCCEED();
}
#endif
