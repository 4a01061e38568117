// Sufficient statistics: the packed buffer reproduces C C^T and X C^T (with both scales of
// add_to), sums of buffers (what the allreduce does) are the statistics of the union of the
// minibatches, pack zeroes the extras, add_atom_usage counts the codes' atoms; and the
// online forget factor is scikit-learn's.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/statistics/sufficient_statistics.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::PackedStatistics;
using dictlearn::Random;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

// scikit-learn's MiniBatchDictionaryLearning._update_inner_stats, written out.
double sklearn_beta(long step, long batch) {
  double theta;
  if (step < batch - 1)
    theta = double((step + 1) * batch);
  else
    theta = double(batch * batch + step + 1 - batch);
  return (theta + 1.0 - double(batch)) / (theta + 1.0);
}

}  // namespace

TEST_CASE("PackedStatistics pack + add_to equals C C^T and X C^T with scales", "[statistics]") {
  Random random(31);
  // pack() chooses between the sparse and the dense accumulation; each must be right alone.
  enum Method { kAuto, kSparse, kDense };
  for (int trial = 0; trial < 60; ++trial) {
    const Method method = Method(trial % 3);
    const Index K = 1 + Index(random.below(40)), d = 1 + Index(random.below(9));
    const Index n = Index(random.below(25));  // n = 0 too: an empty share of a minibatch
    const Index extras = Index(random.below(4));
    const double density = trial % 2 == 0 ? 0.05 : 0.6;
    const Matrix c = sparse_codes(K, n, density, random), x = gaussian(d, n, random);
    PackedStatistics packed(K, d, extras);
    REQUIRE(packed.size() == K * (K + 1) / 2 + d * K + extras);
    for (Index e = 0; e < extras; ++e) packed.extras()[e] = 1.0 + double(e);
    // Stale values from an earlier minibatch must not leak into the next one.
    packed.pack_dense(gaussian(d, 3, random), gaussian(K, 3, random));
    for (Index e = 0; e < extras; ++e) packed.extras()[e] = 1.0 + double(e);
    if (method == kAuto) packed.pack(x, c);
    if (method == kSparse) packed.pack_sparse(x, c);
    if (method == kDense) packed.pack_dense(x, c);
    INFO("trial=" << trial << " method=" << int(method) << " K=" << K << " d=" << d << " n=" << n);
    for (Index e = 0; e < extras; ++e) CHECK(packed.extras()[e] == 0.0);

    const Matrix a0 = [&] {
      const Matrix m = gaussian(K, K, random);
      return Matrix(m * m.transpose());  // symmetric start
    }();
    const Matrix b0 = gaussian(d, K, random);
    for (const auto& [a_scale, scale] : {std::pair{0.0, 1.0}, std::pair{1.0, 1.0},
                                         std::pair{0.37, 1.0 / 7.0}, std::pair{1.0, 0.0}}) {
      Matrix a = a0, b = b0;
      packed.add_to(a_scale, scale, a, b);
      const Matrix expected_a = a_scale * a0 + scale * c * c.transpose();
      const Matrix expected_b = a_scale * b0 + scale * x * c.transpose();
      INFO("a_scale=" << a_scale << " scale=" << scale);
      CHECK((a - expected_a).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + expected_a.norm()));
      CHECK((b - expected_b).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + expected_b.norm()));
      CHECK(a == a.transpose());  // exactly symmetric
      // Upper triangle only: the same bits there and in b, the lower triangle untouched.
      Matrix upper_a = a0, upper_b = b0;
      upper_a.triangularView<Eigen::StrictlyLower>().setConstant(-7.0);
      packed.add_to(a_scale, scale, upper_a, upper_b, 2, {0, -1},
                    PackedStatistics::Triangles::upper);
      Index upper_differs = 0, lower_written = 0;
      for (Index j = 0; j < K; ++j)
        for (Index i = 0; i < K; ++i) {
          if (i <= j && upper_a(i, j) != a(i, j)) ++upper_differs;
          if (i > j && upper_a(i, j) != -7.0) ++lower_written;
        }
      CHECK(upper_differs == 0);
      CHECK(lower_written == 0);
      CHECK(upper_b == b);
    }
  }
}

TEST_CASE("pack_sparse and add_to give the same bits on any number of threads", "[statistics]") {
  // Threads own blocks of atoms (pack_sparse) or of columns (add_to); each element is still
  // summed in sample order, so the buffers and A, B must not depend on the thread count.
  Random random(35);
  for (int trial = 0; trial < 12; ++trial) {
    const Index K = 1 + Index(random.below(200)), d = 1 + Index(random.below(20));
    const Index n = Index(random.below(60));
    const Matrix c = sparse_codes(K, n, 0.08, random), x = gaussian(d, n, random);
    const Matrix a0 = [&] {
      const Matrix m = gaussian(K, K, random);
      return Matrix(m * m.transpose());
    }();
    const Matrix b0 = gaussian(d, K, random);
    PackedStatistics one(K, d, 3);
    one.pack_sparse(x, c, 1);
    Matrix a_one = a0, b_one = b0;
    one.add_to(0.9, 1.0 / 3.0, a_one, b_one, 1);
    INFO("trial=" << trial << " K=" << K << " d=" << d << " n=" << n);
    CHECK((a_one - (0.9 * a0 + c * c.transpose() / 3.0)).cwiseAbs().maxCoeff() <=
          1e-12 * (1.0 + a_one.norm()));
    CHECK((b_one - (0.9 * b0 + x * c.transpose() / 3.0)).cwiseAbs().maxCoeff() <=
          1e-12 * (1.0 + b_one.norm()));
    for (const int threads : {2, 3, 8}) {
      PackedStatistics many(K, d, 3);
      many.pack_sparse(gaussian(d, 4, random), sparse_codes(K, 4, 0.5, random), threads);
      many.pack_sparse(x, c, threads);  // over the stale values of a first minibatch
      INFO("threads=" << threads);
      CHECK(std::equal(one.data(), one.data() + one.size(), many.data()));
      Matrix a = a0, b = b0;
      many.add_to(0.9, 1.0 / 3.0, a, b, threads);
      CHECK(a == a_one);
      CHECK(b == b_one);
      CHECK(a == a.transpose());
    }
  }
}

TEST_CASE("summed packed buffers are the statistics of the union of the shares", "[statistics]") {
  // The allreduce adds the buffers of all ranks elementwise; the result must unpack to
  // the statistics of the whole minibatch (and the extras add up as plain numbers).
  Random random(32);
  const Index K = 9, d = 7, extras = 2;
  const std::vector<Index> shares = {5, 0, 11, 3};
  Matrix x_all(d, 0), c_all(K, 0);
  std::vector<double> sum;
  for (Index n : shares) {
    const Matrix c = sparse_codes(K, n, 0.3, random), x = gaussian(d, n, random);
    PackedStatistics packed(K, d, extras);
    packed.pack(x, c);
    packed.extras()[0] = double(n);
    packed.extras()[1] = x.squaredNorm();
    if (sum.empty()) sum.assign(size_t(packed.size()), 0.0);
    for (Index i = 0; i < packed.size(); ++i) sum[size_t(i)] += packed.data()[i];
    Matrix xs(d, x_all.cols() + n), cs(K, c_all.cols() + n);
    xs << x_all, x;
    cs << c_all, c;
    x_all = xs;
    c_all = cs;
  }
  PackedStatistics total(K, d, extras);
  std::copy(sum.begin(), sum.end(), total.data());
  CHECK(total.extras()[0] == 19.0);
  CHECK(total.extras()[1] == Approx(x_all.squaredNorm()).epsilon(1e-13));
  Matrix a = Matrix::Zero(K, K), b = Matrix::Zero(d, K);
  total.add_to(1.0, 1.0 / 19.0, a, b);
  CHECK((a - c_all * c_all.transpose() / 19.0).cwiseAbs().maxCoeff() <= 1e-13);
  CHECK((b - x_all * c_all.transpose() / 19.0).cwiseAbs().maxCoeff() <= 1e-13);
}

TEST_CASE("repacking overwrites: pack does not accumulate", "[statistics]") {
  Random random(33);
  const Index K = 4, d = 3;
  PackedStatistics packed(K, d, 1);
  packed.pack(gaussian(d, 6, random), gaussian(K, 6, random));
  const Matrix c = gaussian(K, 5, random), x = gaussian(d, 5, random);
  packed.pack(x, c);
  Matrix a = Matrix::Zero(K, K), b = Matrix::Zero(d, K);
  packed.add_to(0.0, 1.0, a, b);
  CHECK((a - c * c.transpose()).cwiseAbs().maxCoeff() <= 1e-13);
  CHECK((b - x * c.transpose()).cwiseAbs().maxCoeff() <= 1e-13);
}

TEST_CASE("online_forget_factor is scikit-learn's beta raised to rho", "[statistics]") {
  for (long batch : {1L, 2L, 3L, 7L, 64L, 256L, 1000L}) {
    for (long step : {0L, 1L, 2L, 5L, 6L, 7L, 62L, 63L, 64L, 255L, 999L, 1000L, 123456L}) {
      const double beta = sklearn_beta(step, batch);
      for (double rho : {1.0, 0.5, 2.0, 3.7}) {
        INFO("step=" << step << " batch=" << batch << " rho=" << rho);
        CHECK(dictlearn::online_forget_factor(Index(step), Index(batch), rho) ==
              Approx(std::pow(beta, rho)).epsilon(1e-14));
      }
    }
  }
  // Landmarks: the first step keeps 1 / (b + 1) of the (empty) past ...
  CHECK(dictlearn::online_forget_factor(0, 10, 1.0) == Approx(1.0 / 11.0));
  // ... at the switch t = b - 1 both branches agree (theta = b^2) ...
  for (long b : {2L, 5L, 64L})
    CHECK(dictlearn::online_forget_factor(Index(b - 1), Index(b), 1.0) ==
          Approx(double(b * b + 1 - b) / double(b * b + 1)).epsilon(1e-15));
  // ... and beta increases towards 1 as t grows.
  double previous = 0.0;
  for (Index t = 0; t < 3000; t += 7) {
    const double beta = dictlearn::online_forget_factor(t, 32, 1.0);
    CHECK(beta > previous);
    CHECK(beta < 1.0);
    previous = beta;
  }
}

TEMPLATE_TEST_CASE("blas gemm and syrk_upper behind the statistics, float and double",
                   "[statistics][blas]", float, double) {
  using M = dictlearn::MatrixT<TestType>;
  const TestType tol = std::is_same<TestType, float>::value ? TestType(1e-5) : TestType(1e-13);
  Random random(34);
  const auto random_matrix = [&](Index r, Index c) {
    return M(gaussian(r, c, random).template cast<TestType>());
  };
  const Index m = 5, k = 7, n = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const M a = ta ? random_matrix(k, m) : random_matrix(m, k);
      const M b = tb ? random_matrix(n, k) : random_matrix(k, n);
      const M c0 = random_matrix(m, n);
      M c = c0;
      dictlearn::blas::gemm<TestType>(ta, tb, TestType(0.5), a, b, TestType(2), c);
      const M opa = ta ? M(a.transpose()) : a, opb = tb ? M(b.transpose()) : b;
      const M expected = TestType(0.5) * opa * opb + TestType(2) * c0;
      INFO("ta=" << ta << " tb=" << tb);
      CHECK((c - expected).cwiseAbs().maxCoeff() <= tol * (1 + expected.norm()));
    }
  const M a = random_matrix(m, k);
  const M c0 = random_matrix(m, m);
  M c = c0;
  dictlearn::blas::syrk_upper<TestType>(TestType(1.5), a, TestType(-1), c);
  const M expected = TestType(1.5) * a * a.transpose() - c0;
  for (Index j = 0; j < m; ++j)
    for (Index i = 0; i < m; ++i) {
      INFO("i=" << i << " j=" << j);
      if (i <= j)
        CHECK(std::abs(c(i, j) - expected(i, j)) <= tol * (1 + expected.norm()));
      else
        CHECK(c(i, j) == c0(i, j));  // lower triangle untouched
    }
  dictlearn::blas::symmetrize_from_upper<TestType>(c);
  CHECK(c == M(c.transpose()));
}

TEMPLATE_TEST_CASE("blas with an empty inner dimension and beta = 0 gives zeros",
                   "[statistics][blas]", float, double) {
  // BLAS convention: with beta = 0, C is output only (NaN or Inf in it must not leak). The
  // k == 0 shortcut in src/core/blas.cpp computes c *= beta instead, so NaN * 0 = NaN
  // stays. PackedStatistics::pack calls syrk_upper/gemm with beta = 0 on its work
  // matrices, which are uninitialised at construction (and keep old values afterwards), so
  // a rank with an empty share of a minibatch (n = 0) packs whatever was there times 0.
  using M = dictlearn::MatrixT<TestType>;
  const TestType nan = std::numeric_limits<TestType>::quiet_NaN();
  M c = M::Constant(3, 3, nan);
  dictlearn::blas::syrk_upper<TestType>(TestType(1), M(3, 0), TestType(0), c);
  CHECK(c.template triangularView<Eigen::Upper>().toDenseMatrix().isZero(0));
  M g = M::Constant(3, 2, nan);
  dictlearn::blas::gemm<TestType>(false, true, TestType(1), M(3, 0), M(2, 0), TestType(0), g);
  CHECK(g.isZero(0));
}

TEST_CASE("pack of an empty share after a non-finite one gives zero statistics", "[statistics]") {
  // The same defect seen through PackedStatistics (see the blas test above): the work
  // matrices keep the previous pack's values and are only multiplied by 0 when n = 0.
  const Index K = 3, d = 2;
  PackedStatistics packed(K, d, 0);
  Matrix c = Matrix::Ones(K, 2);
  c(0, 0) = std::numeric_limits<double>::infinity();
  packed.pack(Matrix::Ones(d, 2), c);
  packed.pack(Matrix(d, 0), Matrix(K, 0));
  Matrix a = Matrix::Zero(K, K), b = Matrix::Zero(d, K);
  packed.add_to(0.0, 1.0, a, b);
  CHECK(a.isZero(0));
  CHECK(b.isZero(0));
}

TEST_CASE("pack() switches to the dense accumulation above the crossover density", "[statistics]") {
  // (Both accumulations are checked for correctness above; here the choice between them.)
  for (const auto& [K, d] : {std::pair<Index, Index>{256, 64}, {1024, 64}, {96, 8}}) {
    const Index crossover = PackedStatistics::dense_crossover(K, d);
    INFO("K=" << K << " d=" << d << " crossover=" << crossover);
    CHECK(crossover > 0);
    CHECK(crossover < K);  // codes denser than a fraction of K are not "sparse"
    const Index n = 37;
    CHECK_FALSE(PackedStatistics::prefers_dense(K, d, crossover * n, n));
    CHECK(PackedStatistics::prefers_dense(K, d, crossover * n + 1, n));
    CHECK_FALSE(PackedStatistics::prefers_dense(K, d, 0, 0));  // an empty share
  }
  // Measured crossovers (K, d): (256, 64) ~80, (1024, 64) ~380 nonzeros per code.
  CHECK(PackedStatistics::dense_crossover(256, 64) >= 60);
  CHECK(PackedStatistics::dense_crossover(256, 64) <= 110);
  CHECK(PackedStatistics::dense_crossover(1024, 64) >= 300);
  CHECK(PackedStatistics::dense_crossover(1024, 64) <= 450);
}

TEST_CASE("add_atom_usage counts each atom's nonzero codes after either accumulation",
          "[statistics]") {
  Random random(41);
  const Index K = 40, d = 6, n = 23;
  Matrix codes = sparse_codes(K, n, 0.15, random);
  codes.col(7).setZero();                                   // a sample with no atom
  codes(3, 11) = -0.0;                                      // a negative zero is no use of atom 3
  codes.row(9).setZero();                                   // an atom no sample uses
  codes(12, 4) = std::numeric_limits<double>::quiet_NaN();  // a use, as for the scan
  const Matrix x = gaussian(d, n, random);
  std::vector<double> expected(size_t(K), 1.0);  // starts from 1: usage adds up
  for (Index j = 0; j < n; ++j)
    for (Index k = 0; k < K; ++k)
      if (codes(k, j) != 0.0) expected[size_t(k)] += 1.0;
  PackedStatistics packed(K, d, 1);
  for (const bool dense : {false, true, false}) {
    INFO((dense ? "dense" : "sparse") << " pack");
    const Matrix earlier = sparse_codes(K, n, 0.05, random);
    packed.pack_sparse(gaussian(d, n, random), earlier);  // lists of other codes first
    if (dense)
      packed.pack_dense(x, codes);
    else
      packed.pack_sparse(x, codes, 2);
    std::vector<double> usage(size_t(K), 1.0);
    packed.add_atom_usage(codes, usage.data());
    CHECK(usage == expected);
  }
}
