// Hebbian update: the step is D + eta (B - D A) followed by unit-norm columns, it lowers the
// minibatch's reconstruction error for a small rate, and the rate schedule.
#include <catch2/catch.hpp>

#include "dictlearn/core/random.hpp"
#include "dictlearn/update/hebbian_update.hpp"
#include "test_support.hpp"

using dictlearn::HebbianUpdateOptions;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

TEST_CASE("hebbian step is D + eta (B - D A) with renormalised columns", "[hebbian]") {
  Random random(909);
  const Index d = 9, K = 14, n = 40;
  const Matrix codes = sparse_codes(K, n, 0.3, random), x = gaussian(d, n, random);
  const Matrix a = codes * codes.transpose() / double(n), b = x * codes.transpose() / double(n);
  Matrix D = gaussian(d, K, random);
  for (Index k = 0; k < K; ++k) D.col(k).normalize();
  for (bool positive : {false, true}) {
    HebbianUpdateOptions options;
    options.positive = positive;
    Matrix expected = D + 0.05 * (b - D * a);
    if (positive) expected = expected.cwiseMax(0.0);
    for (Index k = 0; k < K; ++k)
      if (expected.col(k).norm() > 0) expected.col(k).normalize();
    Matrix updated = D;
    dictlearn::hebbian_dictionary_update(a, b, updated, 0.05, options);
    CHECK((updated - expected).cwiseAbs().maxCoeff() <= 1e-13);
  }
}

TEST_CASE("a small hebbian step lowers the minibatch reconstruction error", "[hebbian]") {
  Random random(910);
  const Index d = 12, K = 20, n = 200;
  const Matrix truth = gaussian(d, K, random);
  const Matrix codes = sparse_codes(K, n, 0.2, random);
  const Matrix x = truth * codes;
  const Matrix a = codes * codes.transpose() / double(n), b = x * codes.transpose() / double(n);
  // Before renormalisation the step is plain gradient descent on 0.5 mean ||x - D a||^2.
  Matrix D = gaussian(d, K, random);
  const auto error = [&](const Matrix& dictionary) {
    return (x - dictionary * codes).squaredNorm();
  };
  const Matrix stepped = D + 0.01 * (b - D * a);
  CHECK(error(stepped) < error(D));
}

TEST_CASE("hebbian rate decays as rate / (1 + decay t)", "[hebbian]") {
  HebbianUpdateOptions options;
  options.rate = 0.2;
  options.decay = 0.5;
  CHECK(dictlearn::hebbian_rate(options, 0) == 0.2);
  CHECK(dictlearn::hebbian_rate(options, 2) == Approx(0.1));
  options.decay = 0.0;
  CHECK(dictlearn::hebbian_rate(options, 1000) == 0.2);
}
