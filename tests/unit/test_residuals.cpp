// residual_sqnorms (the trainer's objective and replacement candidates) against the dense
// residual X - D C, for 1 and 2 threads (bitwise equal: each sample is computed alone).
#include <catch2/catch.hpp>

#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/core/random.hpp"
#include "test_support.hpp"

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::Vector;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

TEST_CASE("residual_sqnorms equals the dense residual norms", "[coding]") {
  Random random(77);
  for (int trial = 0; trial < 10; ++trial) {
    const Index d = 1 + Index(random.below(20)), K = 1 + Index(random.below(50));
    const Index n = Index(random.below(40));
    const Matrix D = gaussian(d, K, random), x = gaussian(d, n, random);
    const Matrix codes = sparse_codes(K, n, trial % 2 == 0 ? 0.1 : 0.7, random);
    const Vector expected = (x - D * codes).colwise().squaredNorm().transpose();
    Vector one, two;
    dictlearn::residual_sqnorms(D, x, codes, 1, one);
    dictlearn::residual_sqnorms(D, x, codes, 2, two);
    INFO("trial=" << trial << " d=" << d << " K=" << K << " n=" << n);
    REQUIRE(one.size() == n);
    CHECK(one == two);
    if (n > 0) CHECK((one - expected).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + expected.maxCoeff()));
  }
}
