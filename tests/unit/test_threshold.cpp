// Soft thresholding: the exact formula (ties, zeros, signs, positive mode), the gram matrix
// being ignored, the lasso optimality for orthonormal atoms and single precision.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>

#include "dictlearn/coding/threshold.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::SoftThreshold;
using dictlearn::ThresholdOptions;
using dictlearn::Vector;
using dictlearn::testing::Rng;

}  // namespace

TEST_CASE("SoftThreshold applies sign(c) max(|c| - lambda, 0)", "[threshold]") {
  const Index K = 9;
  Vector dtx(K);
  // Exact ties with the threshold, zeros of both signs, values just above and below.
  dtx << 0.5, -0.5, 0.0, -0.0, 0.7, -0.7, 2.0, -3.25, 0.5000001;
  SoftThreshold<double> coder(K);
  Vector code = Vector::Constant(K, 42.0);  // stale content must be overwritten
  ThresholdOptions options;
  options.lambda = 0.5;
  const Matrix empty_gram;  // ignored
  CHECK(coder.solve(empty_gram, dtx, options, code) == 5);
  Vector expected(K);
  expected << 0.0, 0.0, 0.0, 0.0, 0.2, -0.2, 1.5, -2.75, 0.5000001 - 0.5;
  for (Index k = 0; k < K; ++k) {
    INFO("k=" << k);
    CHECK(code(k) == Approx(expected(k)).margin(1e-15));
  }
  CHECK(code(0) == 0.0);
  CHECK(code(1) == 0.0);

  SECTION("positive mode: max(c - lambda, 0)") {
    options.positive = true;
    CHECK(coder.solve(empty_gram, dtx, options, code) == 3);
    Vector expected_positive(K);
    expected_positive << 0.0, 0.0, 0.0, 0.0, 0.2, 0.0, 1.5, 0.0, 0.5000001 - 0.5;
    for (Index k = 0; k < K; ++k) {
      INFO("k=" << k);
      CHECK(code(k) == Approx(expected_positive(k)).margin(1e-15));
    }
    CHECK(code.minCoeff() >= 0.0);
  }
  SECTION("lambda = 0 returns D^T x itself") {
    options.lambda = 0.0;
    CHECK(coder.solve(empty_gram, dtx, options, code) == 7);
    CHECK(code == dtx);
  }
}

TEST_CASE("SoftThreshold matches the formula on random correlations", "[threshold]") {
  Rng rng(101);
  const Index K = 200;
  SoftThreshold<double> coder(K);
  Vector code(K);
  const Matrix gram = Matrix::Identity(K, K) * 3.0;  // any content: ignored
  for (int trial = 0; trial < 20; ++trial) {
    const Vector dtx = rng.gaussian_vector(K) * (0.1 + 3.0 * rng.uniform());
    for (bool positive : {false, true}) {
      ThresholdOptions options;
      options.positive = positive;
      options.lambda = 2.0 * rng.uniform();
      const Index nnz = coder.solve(gram, dtx, options, code);
      Index expected_nnz = 0;
      for (Index k = 0; k < K; ++k) {
        const double c = dtx(k);
        const double expected = positive
                                    ? std::max(c - options.lambda, 0.0)
                                    : std::copysign(std::max(std::abs(c) - options.lambda, 0.0), c);
        REQUIRE(code(k) == expected);  // bitwise: one subtraction, no other rounding
        if (expected != 0.0) ++expected_nnz;
      }
      CHECK(nnz == expected_nnz);
    }
  }
}

TEST_CASE("SoftThreshold is the lasso solution for orthonormal atoms", "[threshold]") {
  // With G = I the lasso KKT conditions |c_j| <= lambda, c_j = lambda sign(a_j) on the
  // support (c = D^T x - a) hold exactly for the thresholded code.
  Rng rng(7);
  const Index d = 24, K = 16;
  Matrix A(d, K);
  for (Index k = 0; k < K; ++k) A.col(k) = rng.gaussian_vector(d);
  const Matrix D = Eigen::HouseholderQR<Matrix>(A).householderQ() * Matrix::Identity(d, K);
  const Vector x = rng.gaussian_vector(d);
  const Vector dtx = D.transpose() * x;
  const Matrix G = D.transpose() * D;
  REQUIRE((G - Matrix::Identity(K, K)).cwiseAbs().maxCoeff() <= 1e-12);
  SoftThreshold<double> coder(K);
  Vector code(K);
  for (bool positive : {false, true}) {
    ThresholdOptions options;
    options.positive = positive;
    options.lambda = 0.4 * dtx.cwiseAbs().maxCoeff();
    const Index nnz = coder.solve(G, dtx, options, code);
    CHECK(nnz >= 1);
    const Vector c = dtx - G * code;
    for (Index j = 0; j < K; ++j) {
      INFO("j=" << j << " positive=" << positive);
      CHECK((positive ? c(j) : std::abs(c(j))) <= options.lambda + 1e-12);
      if (code(j) != 0.0) CHECK(std::abs(c(j) - options.lambda * (code(j) > 0 ? 1 : -1)) <= 1e-12);
      if (positive) CHECK(code(j) >= 0.0);
    }
  }
}

TEST_CASE("SoftThreshold in single precision", "[threshold][float]") {
  Rng rng(3);
  const Index K = 64;
  SoftThreshold<float> coder(K);
  Eigen::VectorXf code(K);
  const Eigen::MatrixXf gram;
  const Eigen::VectorXf dtx = rng.gaussian_vector(K).cast<float>();
  for (bool positive : {false, true}) {
    ThresholdOptions options;
    options.positive = positive;
    options.lambda = 0.6;
    const Index nnz = coder.solve(gram, dtx, options, code);
    CHECK(nnz == (code.array() != 0.0f).count());
    const float lambda = 0.6f;
    for (Index k = 0; k < K; ++k) {
      const float c = dtx(k);
      const float expected = positive ? std::max(c - lambda, 0.0f)
                                      : std::copysign(std::max(std::abs(c) - lambda, 0.0f), c);
      CHECK(code(k) == expected);
    }
  }
}

#ifdef EIGEN_RUNTIME_NO_MALLOC
TEST_CASE("SoftThreshold::solve does not allocate", "[threshold][malloc]") {
  Rng rng(5);
  const Index K = 50;
  const Vector dtx = rng.gaussian_vector(K);
  const Matrix gram;
  SoftThreshold<double> coder(K);
  Vector code(K);
  ThresholdOptions options;
  options.lambda = 0.3;
  Eigen::internal::set_is_malloc_allowed(false);
  coder.solve(gram, dtx, options, code);
  Eigen::internal::set_is_malloc_allowed(true);
  SUCCEED();
}
#endif
