// MOD: D = B (A + eps I)^-1 with renormalised columns, eps = ridge * trace(A) / K, against
// Eigen's Cholesky; atoms without statistics decoupled and kept; exact recovery of a
// dictionary from noiseless data; the positive heuristic.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/update/mod_update.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::ModUpdateOptions;
using dictlearn::Random;
using dictlearn::Vector;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

// Columns of B (A + eps I)^-1, eps = ridge * trace / K, each normalised.
Matrix closed_form(const Matrix& a, const Matrix& b, double eps) {
  const Index K = a.rows();
  const Matrix system = a + eps * Matrix::Identity(K, K);
  const Matrix dt = system.llt().solve(b.transpose());  // K x d
  Matrix D = dt.transpose();
  for (Index k = 0; k < K; ++k) D.col(k).normalize();
  return D;
}

}  // namespace

TEST_CASE("MOD equals the normalised columns of B (A + eps I)^-1", "[mod]") {
  Random random(11);
  for (int trial = 0; trial < 40; ++trial) {
    const Index d = 2 + Index(random.below(12)), K = 1 + Index(random.below(14));
    // n < K too: then A is singular and only the ridge makes the system definite.
    const Index n = 1 + Index(random.below(3 * K + 5));
    const Matrix c = sparse_codes(K, n, 0.5, random);
    const Matrix x = gaussian(d, n, random);
    const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
    bool all_used = true;
    for (Index k = 0; k < K; ++k) all_used = all_used && a(k, k) > 1e-6 * a.trace() / double(K);
    if (!all_used) continue;  // the decoupled case has its own test
    for (double ridge : {1e-7, 1e-3, 0.5}) {
      if (n < K && ridge < 1e-3) continue;  // too ill-conditioned to compare to 1e-10
      ModUpdateOptions options;
      options.ridge = ridge;
      Matrix D = gaussian(d, K, random);
      dictlearn::mod_dictionary_update(a, b, D, options);
      const Matrix expected = closed_form(a, b, ridge * a.trace() / double(K));
      INFO("trial=" << trial << " d=" << d << " K=" << K << " n=" << n << " ridge=" << ridge);
      CHECK((D - expected).cwiseAbs().maxCoeff() <= 1e-10);
      for (Index k = 0; k < K; ++k) CHECK(D.col(k).norm() == Approx(1.0).epsilon(1e-12));
    }
  }
}

TEST_CASE("MOD recovers the dictionary of noiseless data (no ridge)", "[mod]") {
  Random random(12);
  const Index d = 10, K = 15, n = 200;
  Matrix truth = gaussian(d, K, random);
  for (Index k = 0; k < K; ++k) truth.col(k) *= (0.3 + random.uniform()) / truth.col(k).norm();
  const Matrix c = sparse_codes(K, n, 0.3, random);
  const Matrix x = truth * c;
  const Matrix a = c * c.transpose(), b = x * c.transpose();  // plain sums (per epoch)
  ModUpdateOptions options;
  options.ridge = 0.0;
  Matrix D = gaussian(d, K, random);
  dictlearn::mod_dictionary_update(a, b, D, options);
  for (Index k = 0; k < K; ++k) {
    INFO("atom " << k);
    CHECK((D.col(k) - truth.col(k).normalized()).norm() <= 1e-9);
  }
}

TEST_CASE("MOD keeps atoms without statistics and solves the subsystem of the others", "[mod]") {
  Random random(13);
  for (int trial = 0; trial < 20; ++trial) {
    const Index d = 3 + Index(random.below(8)), K = 3 + Index(random.below(10));
    const Index n = 2 * K + Index(random.below(20));
    Matrix c = sparse_codes(K, n, 0.5, random);
    std::vector<bool> unused(size_t(K), false);
    for (Index k = 0; k < K; ++k)
      if (k == trial % K || random.uniform() < 0.25) {
        unused[size_t(k)] = true;
        c.row(k).setZero();
      }
    const Matrix x = gaussian(d, n, random);
    const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
    std::vector<Index> used;
    for (Index k = 0; k < K; ++k)
      if (!unused[size_t(k)] && a(k, k) > 0.0) used.push_back(k);
    const Index m = Index(used.size());
    // The closed form on the used atoms only, eps still ridge * trace(A) / K (full K).
    const double ridge = 1e-2;
    const double eps = ridge * a.trace() / double(K);
    Matrix a_sub(m, m), b_sub(d, m);
    for (Index j = 0; j < m; ++j) {
      for (Index i = 0; i < m; ++i) a_sub(i, j) = a(used[size_t(i)], used[size_t(j)]);
      b_sub.col(j) = b.col(used[size_t(j)]);
    }
    const Matrix expected = m > 0 ? closed_form(a_sub, b_sub, eps) : Matrix(d, 0);

    const Matrix D0 = gaussian(d, K, random);
    Matrix D = D0;
    ModUpdateOptions options;
    options.ridge = ridge;
    dictlearn::mod_dictionary_update(a, b, D, options);
    INFO("trial=" << trial << " d=" << d << " K=" << K << " used=" << m);
    for (Index k = 0; k < K; ++k)
      if (unused[size_t(k)] || !(a(k, k) > 0.0)) CHECK(D.col(k) == D0.col(k));
    for (Index j = 0; j < m; ++j)
      CHECK((D.col(used[size_t(j)]) - expected.col(j)).cwiseAbs().maxCoeff() <= 1e-10);
  }
}

TEST_CASE("MOD min_curvature is relative to trace(A) / K", "[mod]") {
  Random random(14);
  const Index d = 5, K = 4, n = 30;
  Matrix c = sparse_codes(K, n, 0.6, random);
  const Matrix x = gaussian(d, n, random);
  c.row(1) *= 1e-7;                         // A_11 ~ 1e-14 * the others: below 1e-10 relative
  for (double unit : {1.0, 1e-20, 1e20}) {  // the decision must not depend on the scale
    const Matrix a = unit * c * c.transpose(), b = unit * x * c.transpose();
    REQUIRE(a(1, 1) > 0.0);
    const Matrix D0 = gaussian(d, K, random);
    Matrix D = D0;
    dictlearn::mod_dictionary_update(a, b, D, ModUpdateOptions{});
    INFO("unit=" << unit);
    CHECK(D.col(1) == D0.col(1));
    for (Index k : {0, 2, 3}) {
      CHECK(D.col(k).norm() == Approx(1.0).epsilon(1e-12));
      CHECK((D.col(k) - D0.col(k)).norm() > 1e-3);
    }
  }
}

TEST_CASE("MOD with no statistics at all leaves the dictionary unchanged", "[mod]") {
  Random random(15);
  const Matrix D0 = gaussian(4, 3, random);
  Matrix D = D0;
  dictlearn::mod_dictionary_update(Matrix::Zero(3, 3), Matrix::Zero(4, 3), D, ModUpdateOptions{});
  CHECK(D == D0);
}

TEST_CASE("MOD positive clips the closed form before normalising", "[mod]") {
  Random random(16);
  const Index d = 8, K = 6, n = 50;
  const Matrix c = sparse_codes(K, n, 0.5, random);
  const Matrix x = gaussian(d, n, random);
  const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
  ModUpdateOptions options;
  options.positive = true;
  options.ridge = 1e-3;
  Matrix expected = closed_form(a, b, options.ridge * a.trace() / double(K));
  for (Index k = 0; k < K; ++k) {
    expected.col(k) = expected.col(k).cwiseMax(0.0);
    if (expected.col(k).norm() > 0.0) expected.col(k).normalize();
  }
  Matrix D = gaussian(d, K, random);
  dictlearn::mod_dictionary_update(a, b, D, options);
  CHECK(D.minCoeff() >= 0.0);
  CHECK((D - expected).cwiseAbs().maxCoeff() <= 1e-10);
  // An atom whose solution is entirely negative becomes zero (left to the replacement).
  Matrix b_neg = b;
  const Matrix unclipped = closed_form(a, b, options.ridge * a.trace() / double(K));
  // Make the solution of atom 0 the negative of a positive vector: B' = D' (A + eps I).
  Matrix target = unclipped;
  target.col(0) = -Vector::Ones(d);
  b_neg = target * (a + options.ridge * a.trace() / double(K) * Matrix::Identity(K, K));
  D = gaussian(d, K, random);
  dictlearn::mod_dictionary_update(a, b_neg, D, options);
  CHECK(D.col(0).isZero(0.0));
}

TEST_CASE("MOD rejects an indefinite system with an Error", "[mod]") {
  Matrix a(2, 2);
  a << 1.0, 2.0, 2.0, 1.0;  // eigenvalues 3 and -1: not PSD
  const Matrix b = Matrix::Ones(3, 2);
  Matrix D = Matrix::Ones(3, 2);
  ModUpdateOptions options;
  options.ridge = 1e-6;
  CHECK_THROWS_AS(dictlearn::mod_dictionary_update(a, b, D, options), dictlearn::Error);
}
