// LARS-lasso: optimality (KKT) on random problems, agreement with a brute-force lasso on
// tiny problems, the nonnegative variant, degenerate inputs and single precision.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dictlearn/coding/lars.hpp"

namespace {

using dictlearn::Index;
using dictlearn::LarsLasso;
using dictlearn::LarsOptions;
using dictlearn::Matrix;
using dictlearn::Vector;

// Portable pseudo-random numbers: std::normal_distribution differs between standard
// libraries, so Gaussians come from raw mt19937_64 bits by Box-Muller.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double gaussian() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  Vector gaussian_vector(Index n) {
    Vector v(n);
    for (Index i = 0; i < n; ++i) v(i) = gaussian();
    return v;
  }

 private:
  std::mt19937_64 engine_;
};

// d x K dictionary with unit-norm columns. `shared` > 0 adds a common component to every
// atom, which makes atoms correlated and the lasso path drop atoms now and then.
Matrix random_dictionary(Index d, Index K, Rng& rng, double shared = 0.0) {
  const Vector common = rng.gaussian_vector(d);
  Matrix D(d, K);
  for (Index k = 0; k < K; ++k) {
    D.col(k) = rng.gaussian_vector(d) + shared * rng.uniform() * common;
    D.col(k).normalize();
  }
  return D;
}

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
  SUCCEED();
}
#endif
