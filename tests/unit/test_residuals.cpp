// Residual norms ||x - D c||^2 from G and D^T X (residual_sqnorm_from_gram, what
// MinibatchCoder returns to the trainer) against the dense residual X - D C, and the
// nonzero scan they rely on.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/core/nonzero_rows.hpp"
#include "dictlearn/core/random.hpp"
#include "test_support.hpp"

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::Vector;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

TEST_CASE("nonzero_rows lists the nonzero rows in order", "[coding]") {
  // Lengths around the 4- and 8-row blocks of the vector scan, and codes from very sparse
  // to full (every 4-bit pattern occurs); double and float.
  Random random(77);
  for (int trial = 0; trial < 40; ++trial) {
    const Index K = 1 + Index(random.below(trial < 20 ? 20 : 300));
    const double density = std::vector<double>{0.05, 0.3, 0.7, 1.0}[std::size_t(trial % 4)];
    const Matrix code = sparse_codes(K, 1, density, random);
    const dictlearn::MatrixT<float> code_float = code.cast<float>();
    std::vector<Index> expected;
    for (Index k = 0; k < K; ++k)
      if (code(k, 0) != 0.0) expected.push_back(k);
    INFO("trial=" << trial << " K=" << K);
    std::vector<Index> rows(static_cast<std::size_t>(K), -1);
    const Index count = dictlearn::nonzero_rows(code.data(), K, rows.data());
    REQUIRE(count == Index(expected.size()));
    rows.resize(static_cast<std::size_t>(count));
    CHECK(rows == expected);
    std::vector<Index> rows_float(static_cast<std::size_t>(K), -1);
    const Index count_float = dictlearn::nonzero_rows(code_float.data(), K, rows_float.data());
    REQUIRE(count_float == Index(expected.size()));
    rows_float.resize(static_cast<std::size_t>(count_float));
    CHECK(rows_float == expected);
  }
}

TEST_CASE("residual_sqnorm_from_gram equals the dense residual norms", "[coding]") {
  Random random(78);
  for (int trial = 0; trial < 10; ++trial) {
    const Index d = 1 + Index(random.below(20)), K = 1 + Index(random.below(50));
    const Index n = 1 + Index(random.below(40));
    const Matrix D = gaussian(d, K, random), x = gaussian(d, n, random);
    const Matrix codes = sparse_codes(K, n, trial % 2 == 0 ? 0.1 : 0.7, random);
    const Matrix G = D.transpose() * D, dtx = D.transpose() * x;
    const Vector expected = (x - D * codes).colwise().squaredNorm().transpose();
    const dictlearn::MatrixT<float> G_float = G.cast<float>(), dtx_float = dtx.cast<float>();
    const dictlearn::MatrixT<float> codes_float = codes.cast<float>();
    std::vector<Index> support(static_cast<std::size_t>(K));
    INFO("trial=" << trial << " d=" << d << " K=" << K << " n=" << n);
    for (Index j = 0; j < n; ++j) {
      const double scale =
          1.0 + x.col(j).squaredNorm() + (D * codes.col(j).cwiseAbs()).squaredNorm();
      const double from_gram = dictlearn::residual_sqnorm_from_gram<double>(
          G, dtx.col(j), x.col(j).squaredNorm(), codes.col(j), support.data());
      CHECK(std::abs(from_gram - expected(j)) <= 1e-13 * scale);
      // Float inputs: within float rounding of the terms.
      const double float_norm = dictlearn::residual_sqnorm_from_gram<float>(
          G_float, dtx_float.col(j), float(x.col(j).squaredNorm()), codes_float.col(j),
          support.data());
      const Vector float_residual = x.col(j) - D * codes_float.col(j).cast<double>();
      CHECK(std::abs(float_norm - float_residual.squaredNorm()) <= 1e-5 * scale);
    }
  }
}

TEST_CASE("MinibatchCoder's residual norms are those of its codes", "[coding]") {
  Random random(79);
  const Index d = 16, K = 40, n = 50;
  Matrix D = gaussian(d, K, random);
  for (Index k = 0; k < K; ++k) D.col(k).normalize();
  const Matrix x = gaussian(d, n, random);
  dictlearn::CoderOptions options;
  options.lambda = 0.2;
  for (const auto precision : {dictlearn::Precision::float64, dictlearn::Precision::float32}) {
    INFO("precision " << dictlearn::to_string(precision));
    dictlearn::MinibatchCoder coder(options, precision, K, d, 2);
    coder.set_dictionary(D);
    Matrix codes;
    Vector residuals;
    coder.encode(x, codes, nullptr, &residuals);
    REQUIRE(residuals.size() == n);
    const Vector expected = (x - D * codes).colwise().squaredNorm().transpose();
    const double tolerance = precision == dictlearn::Precision::float64 ? 1e-13 : 1e-5;
    CHECK((residuals - expected).cwiseAbs().maxCoeff() <= tolerance * (1.0 + x.squaredNorm() / n));
    CHECK(expected.minCoeff() > 0.01);  // not trivially zero
  }
}
