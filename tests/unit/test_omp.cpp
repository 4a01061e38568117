// Batch-OMP: exact recovery of sparse signals, agreement with a plain OMP that forms the
// residual explicitly, the residual-tolerance stop, least-squares optimality on the
// support, rank-deficient dictionaries and single precision.
#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dictlearn/coding/omp.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::BatchOmp;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::OmpOptions;
using dictlearn::Vector;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

// s distinct atoms with coefficients of magnitude in [0.5, 1.5] and random signs.
Vector random_sparse_code(Index K, Index s, Rng& rng) {
  Vector a = Vector::Zero(K);
  Index placed = 0;
  while (placed < s) {
    const Index k = rng.below(K);
    if (a(k) != 0.0) continue;
    a(k) = (0.5 + rng.uniform()) * (rng.uniform() < 0.5 ? -1.0 : 1.0);
    ++placed;
  }
  return a;
}

// Textbook OMP (Pati et al. 1993) with an explicit residual: select argmax_j |D_j^T r|
// (lowest index on ties), solve least squares on the support by QR, r = x - D_S a_S.
// Returns the selection order; stops after `nonzeros` atoms.
std::vector<Index> reference_omp(const Matrix& D, const Vector& x, Index nonzeros, Vector& a) {
  std::vector<Index> support;
  a = Vector::Zero(D.cols());
  Vector r = x;
  for (Index it = 0; it < nonzeros; ++it) {
    const Vector correlations = D.transpose() * r;
    Index best = -1;
    for (Index j = 0; j < D.cols(); ++j) {
      if (std::find(support.begin(), support.end(), j) != support.end()) continue;
      if (best < 0 || std::abs(correlations(j)) > std::abs(correlations(best))) best = j;
    }
    support.push_back(best);
    Matrix Ds(D.rows(), static_cast<Index>(support.size()));
    for (size_t i = 0; i < support.size(); ++i) Ds.col(static_cast<Index>(i)) = D.col(support[i]);
    const Vector as = Ds.colPivHouseholderQr().solve(x);
    a.setZero();
    for (size_t i = 0; i < support.size(); ++i) a(support[i]) = as(static_cast<Index>(i));
    r = x - Ds * as;
  }
  return support;
}

std::vector<Index> support_of(const Vector& a) {
  std::vector<Index> s;
  for (Index j = 0; j < a.size(); ++j)
    if (a(j) != 0.0) s.push_back(j);
  return s;
}

}  // namespace

TEST_CASE("BatchOmp recovers the support of noiseless sparse signals", "[omp]") {
  Rng rng(12345);
  const Index d = 64, K = 128;
  const Matrix D = random_dictionary(d, K, rng);
  const Matrix G = D.transpose() * D;
  BatchOmp<double> omp(K);
  Vector code(K);
  int recovered = 0;
  const int trials = 300;
  for (int trial = 0; trial < trials; ++trial) {
    const Index s = 4 + trial % 3;  // 4..6 nonzeros
    const Vector truth = random_sparse_code(K, s, rng);
    const Vector x = D * truth;
    const Vector dtx = D.transpose() * x;
    INFO("trial=" << trial << " s=" << s);

    // (a) budget = s.
    OmpOptions budget;
    budget.nonzeros = s;
    REQUIRE(omp.solve(G, dtx, x.squaredNorm(), budget, code) == s);
    REQUIRE(support_of(code) == support_of(truth));
    REQUIRE((code - truth).cwiseAbs().maxCoeff() <= 1e-9);

    // (b) no budget, tiny tolerance: stops as soon as the residual energy vanishes.
    OmpOptions tolerance;
    tolerance.tolerance = 1e-12 * x.squaredNorm();
    REQUIRE(omp.solve(G, dtx, x.squaredNorm(), tolerance, code) == s);
    REQUIRE((code - truth).cwiseAbs().maxCoeff() <= 1e-9);

    // (c) neither: stops when the residual correlations vanish (exact fit), not at d.
    REQUIRE(omp.solve(G, dtx, x.squaredNorm(), OmpOptions{}, code) == s);
    REQUIRE((code - truth).cwiseAbs().maxCoeff() <= 1e-9);
    ++recovered;
  }
  CHECK(recovered == trials);
}

TEST_CASE("BatchOmp selects the same atoms as a plain OMP with explicit residuals", "[omp]") {
  Rng rng(2024);
  for (int trial = 0; trial < 24; ++trial) {
    const Index d = 16 + 8 * (trial % 4), K = 2 * d + 8 * (trial % 3);
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 2.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    BatchOmp<double> omp(K);
    Vector code(K), expected(K);
    for (Index nonzeros : {Index(1), Index(2), Index(5), d / 2}) {
      OmpOptions options;
      options.nonzeros = nonzeros;
      const Index nnz = omp.solve(G, dtx, x.squaredNorm(), options, code);
      const std::vector<Index> order = reference_omp(D, x, nonzeros, expected);
      INFO("trial=" << trial << " d=" << d << " K=" << K << " nonzeros=" << nonzeros);
      REQUIRE(nnz == nonzeros);
      REQUIRE(support_of(code) == support_of(expected));
      CHECK((code - expected).cwiseAbs().maxCoeff() <= 1e-9);
    }
  }
}

TEST_CASE("BatchOmp stops at the residual tolerance", "[omp]") {
  Rng rng(77);
  const Index d = 32, K = 64;
  BatchOmp<double> omp(K);
  Vector code(K), shorter(K);
  for (int trial = 0; trial < 10; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 1.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    const double energy = x.squaredNorm();
    for (double fraction : {0.6, 0.3, 0.1, 0.03, 0.005}) {
      OmpOptions options;
      options.tolerance = fraction * energy;
      const Index n = omp.solve(G, dtx, energy, options, code);
      REQUIRE(n >= 1);
      // Residual energy computed directly, not from the solver's running update.
      const double residual = (x - D * code).squaredNorm();
      INFO("trial=" << trial << " fraction=" << fraction << " n=" << n);
      CHECK(residual <= options.tolerance * (1.0 + 1e-12));
      // One atom fewer (same greedy path, budget n-1) would not have been enough.
      OmpOptions fewer;
      fewer.nonzeros = n - 1;
      if (n > 1) {
        omp.solve(G, dtx, energy, fewer, shorter);
        CHECK((x - D * shorter).squaredNorm() > options.tolerance);
        // The shorter run is a prefix of the same path.
        for (Index j : support_of(shorter)) CHECK(code(j) != 0.0);
      } else {
        CHECK(energy > options.tolerance);
      }
      // With both criteria the stricter one wins.
      OmpOptions both = options;
      both.nonzeros = std::max<Index>(1, n - 2);
      CHECK(omp.solve(G, dtx, energy, both, shorter) == both.nonzeros);
    }
    // Tolerance already met by a = 0: nothing selected.
    OmpOptions loose;
    loose.tolerance = 1.01 * energy;
    CHECK(omp.solve(G, dtx, energy, loose, code) == 0);
    CHECK(code.isZero(0.0));
  }
}

TEST_CASE("BatchOmp codes are least-squares optimal on their support", "[omp]") {
  Rng rng(5150);
  const Index d = 40, K = 90;
  BatchOmp<double> omp(K);
  Vector code(K);
  for (int trial = 0; trial < 10; ++trial) {
    const Matrix D = random_dictionary(d, K, rng, trial % 2 ? 2.0 : 0.0);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    for (Index nonzeros : {Index(3), Index(10), Index(25), Index(40)}) {
      OmpOptions options;
      options.nonzeros = nonzeros;
      REQUIRE(omp.solve(G, dtx, x.squaredNorm(), options, code) == nonzeros);
      // Normal equations on the support: D_S^T (x - D a) = (D^T x - G a)_S = 0.
      const Vector c = dtx - G * code;
      double worst = 0.0;
      for (Index j : support_of(code)) worst = std::max(worst, std::abs(c(j)));
      INFO("trial=" << trial << " nonzeros=" << nonzeros);
      CHECK(worst <= 1e-9);
      // Greedy choice: the first atom is argmax |D^T x|.
      Index first;
      dtx.cwiseAbs().maxCoeff(&first);
      CHECK(code(first) != 0.0);
    }
  }
}

TEST_CASE("BatchOmp stops at the rank of the dictionary", "[omp]") {
  Rng rng(8);
  SECTION("overcomplete, no budget or tolerance: d atoms, exact fit") {
    const Index d = 8, K = 20;
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    BatchOmp<double> omp(K);
    Vector code(K);
    CHECK(omp.solve(G, dtx, x.squaredNorm(), OmpOptions{}, code) == d);
    REQUIRE(code.allFinite());
    CHECK((x - D * code).norm() <= 1e-9);
  }
  SECTION("budget above K on an undercomplete dictionary: least squares on all atoms") {
    const Index d = 20, K = 6;
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    BatchOmp<double> omp(K);
    Vector code(K);
    OmpOptions options;
    options.nonzeros = 50;
    CHECK(omp.solve(G, dtx, x.squaredNorm(), options, code) == K);
    CHECK((code - G.ldlt().solve(dtx)).cwiseAbs().maxCoeff() <= 1e-9);
  }
  SECTION("duplicated atoms: one of each twin, projection onto span(D0), no NaN") {
    const Index d = 10, K0 = 6;
    const Matrix D0 = random_dictionary(d, K0, rng);
    Matrix D(d, K0 + 2);
    D << D0, D0.col(0), -D0.col(2);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector dtx = D.transpose() * x;
    BatchOmp<double> omp(D.cols());
    Vector code(D.cols());
    OmpOptions options;
    options.nonzeros = D.cols();
    CHECK(omp.solve(G, dtx, x.squaredNorm(), options, code) == K0);
    REQUIRE(code.allFinite());
    CHECK(((code(0) != 0.0) != (code(K0) != 0.0)));
    CHECK(((code(2) != 0.0) != (code(K0 + 1) != 0.0)));
    const Vector projection = D0 * (D0.transpose() * D0).ldlt().solve(D0.transpose() * x);
    CHECK((D * code - projection).cwiseAbs().maxCoeff() <= 1e-9);
  }
  SECTION("nearly dependent atom: stops instead of taking a huge coefficient") {
    // Atom 5 = atom 0 + 1e-7 noise: after the others its residual correlation is ~1e-7
    // (not negligible), but its new Cholesky diagonal^2 is ~1e-14 << 1e-12.
    const Index d = 6, K = 6;
    Matrix D = random_dictionary(d, K, rng);
    D.col(5) = D.col(0) + 1e-7 * rng.gaussian_vector(d);
    D.col(5).normalize();
    BatchOmp<double> omp(K);
    Vector code(K);
    for (int trial = 0; trial < 20; ++trial) {
      const Vector x = rng.gaussian_vector(d);
      const Matrix G = D.transpose() * D;
      const Vector dtx = D.transpose() * x;
      OmpOptions options;
      options.nonzeros = K;
      CHECK(omp.solve(G, dtx, x.squaredNorm(), options, code) == 5);
      REQUIRE(code.allFinite());
      CHECK(((code(0) != 0.0) != (code(5) != 0.0)));
      CHECK(code.cwiseAbs().maxCoeff() < 1e3);
    }
  }
  SECTION("zero signal: empty code") {
    const Index d = 10, K = 15;
    const Matrix D = random_dictionary(d, K, rng);
    const Matrix G = D.transpose() * D;
    BatchOmp<double> omp(K);
    Vector code = Vector::Constant(K, 3.0);
    OmpOptions options;
    options.nonzeros = 4;
    CHECK(omp.solve(G, Vector::Zero(K), 0.0, options, code) == 0);
    CHECK(code.isZero(0.0));
  }
}

TEST_CASE("BatchOmp in single precision", "[omp][float]") {
  Rng rng(4242);
  const Index d = 64, K = 128;
  const Matrix D = random_dictionary(d, K, rng);
  const Eigen::MatrixXf G = (D.transpose() * D).cast<float>();
  BatchOmp<float> omp(K);
  Eigen::VectorXf code(K);
  for (int trial = 0; trial < 100; ++trial) {
    const Index s = 4 + trial % 3;
    const Vector truth = random_sparse_code(K, s, rng);
    const Vector x = D * truth;
    const Eigen::VectorXf dtx = (D.transpose() * x).cast<float>();
    const float energy = static_cast<float>(x.squaredNorm());
    INFO("trial=" << trial);
    OmpOptions options;
    options.nonzeros = s;
    REQUIRE(omp.solve(G, dtx, energy, options, code) == s);
    REQUIRE(support_of(code.cast<double>()) == support_of(truth));
    CHECK((code.cast<double>() - truth).cwiseAbs().maxCoeff() <= 1e-4);
    // Tolerance stop in float: 1e-6 of the energy is far above float rounding.
    OmpOptions tolerance;
    tolerance.tolerance = 1e-6 * x.squaredNorm();
    CHECK(omp.solve(G, dtx, energy, tolerance, code) == s);
    CHECK((code.cast<double>() - truth).cwiseAbs().maxCoeff() <= 1e-4);
  }
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
// Only meaningful when the whole build defines EIGEN_RUNTIME_NO_MALLOC.
TEST_CASE("BatchOmp::solve does not allocate", "[omp][malloc]") {
  Rng rng(9);
  const Index d = 20, K = 50;
  const Matrix D = random_dictionary(d, K, rng);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector dtx = D.transpose() * x;
  BatchOmp<double> omp(K);
  Vector code(K);
  OmpOptions options;
  options.tolerance = 1e-3 * x.squaredNorm();
  Eigen::internal::set_is_malloc_allowed(false);
  omp.solve(G, dtx, x.squaredNorm(), options, code);
  Eigen::internal::set_is_malloc_allowed(true);
  SUCCEED();
}
#endif
