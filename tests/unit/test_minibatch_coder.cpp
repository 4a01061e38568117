// MinibatchCoder: the double path equals BatchEncoder on hand-made D^T X and G; the float
// path gives the same supports and codes within float accuracy.
#include <catch2/catch.hpp>

#include <cstdint>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/core/random.hpp"
#include "test_support.hpp"

using dictlearn::CoderKind;
using dictlearn::CoderOptions;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::MinibatchCoder;
using dictlearn::Precision;
using dictlearn::Random;
using dictlearn::Vector;
using dictlearn::testing::gaussian;

namespace {

Matrix unit_columns(Matrix m) {
  for (Index k = 0; k < m.cols(); ++k) m.col(k).normalize();
  return m;
}

// A dictionary of unit atoms, samples, and what the encoders take of them.
struct CodingProblem {
  CodingProblem(std::uint64_t seed, Index d, Index K, Index n) {
    Random random(seed);
    D = unit_columns(gaussian(d, K, random));
    x = gaussian(d, n, random);
    G = D.transpose() * D;
    dtx = D.transpose() * x;
    x_sqnorms = x.colwise().squaredNorm().transpose();
  }
  Matrix D, x, G, dtx;
  Vector x_sqnorms;
};

}  // namespace

TEST_CASE("MinibatchCoder in double equals BatchEncoder; float agrees to float accuracy",
          "[coding]") {
  const Index d = 24, K = 48, n = 60;
  const CodingProblem p(404, d, K, n);
  const Matrix &D = p.D, &x = p.x, &G = p.G, &dtx = p.dtx;
  const Vector& x_sqnorms = p.x_sqnorms;
  for (CoderKind kind : {CoderKind::lars, CoderKind::omp, CoderKind::cd}) {
    CoderOptions options;
    options.kind = kind;
    options.lambda = 0.3;
    options.nonzeros = 5;
    INFO("coder " << dictlearn::to_string(kind));

    dictlearn::BatchEncoder reference(options, K, d, 1);
    Matrix expected;
    const Index expected_nonzeros = reference.encode(D, G, x, dtx, x_sqnorms, expected);

    MinibatchCoder coder(options, Precision::float64, K, d, 2);
    coder.set_dictionary(D);
    CHECK((coder.gram() - G).cwiseAbs().maxCoeff() <= 1e-14);
    Matrix codes;
    CHECK(coder.encode(x, codes) == expected_nonzeros);
    CHECK((codes - expected).cwiseAbs().maxCoeff() <= 1e-12);

    MinibatchCoder single(options, Precision::float32, K, d, 2);
    single.set_dictionary(D);
    Matrix float_codes;
    single.encode(x, float_codes);
    REQUIRE(float_codes.rows() == K);
    REQUIRE(float_codes.cols() == n);
    // Float rounding can move a coefficient that sits at the selection threshold; the
    // bulk must agree to ~1e-4 relative.
    const double scale = expected.cwiseAbs().maxCoeff();
    const double mean_difference = (float_codes - expected).cwiseAbs().mean();
    CHECK(mean_difference <= 1e-4 * scale);
    Index same_support = 0;
    for (Index j = 0; j < n; ++j)
      same_support +=
          ((float_codes.col(j).array() != 0.0) == (expected.col(j).array() != 0.0)).all();
    CHECK(same_support >= n - 2);
  }
}

TEST_CASE("BatchEncoder overwrites every entry of a reused codes matrix, for every coder",
          "[coding]") {
  // The encoder skips zeroing the codes for the coders that clear each code themselves:
  // nothing of a previous minibatch's codes may survive, with 1 or 2 threads, cold or warm.
  const Index d = 16, K = 32, n = 21;
  const CodingProblem p(405, d, K, n);
  const Matrix &D = p.D, &x = p.x, &G = p.G, &dtx = p.dtx;
  const Vector& x_sqnorms = p.x_sqnorms;
  const Matrix warm = 0.01 * Matrix::Ones(K, n);
  for (CoderKind kind : {CoderKind::lars, CoderKind::lar, CoderKind::cd, CoderKind::omp,
                         CoderKind::threshold, CoderKind::fista, CoderKind::lca}) {
    for (const Matrix* start : {static_cast<const Matrix*>(nullptr), &warm}) {
      for (const int threads : {1, 2}) {
        INFO("coder " << dictlearn::to_string(kind) << (start ? " warm" : " cold") << ", "
                      << threads << " threads");
        CoderOptions options;
        options.kind = kind;
        options.lambda = 0.2;
        options.nonzeros = 4;
        dictlearn::BatchEncoder fresh_encoder(options, K, d, threads);
        Matrix fresh;
        fresh_encoder.encode(D, G, x, dtx, x_sqnorms, fresh, start);
        dictlearn::BatchEncoder reused_encoder(options, K, d, threads);
        Matrix reused = Matrix::Constant(K, n, 7.0);  // a previous minibatch's codes
        reused_encoder.encode(D, G, x, dtx, x_sqnorms, reused, start);
        CHECK(reused == fresh);
      }
    }
  }
}
