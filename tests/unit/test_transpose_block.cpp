// Transposed block copies (core/transpose_block.hpp): every element in place, nothing
// outside the block touched, for sizes around the 4 x 4 register blocks and strides of
// a power of two (the cache-set case the vector copy exists for).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "dictlearn/core/random.hpp"
#include "dictlearn/core/transpose_block.hpp"
#include "test_support.hpp"

namespace {
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::testing::gaussian;
}  // namespace

TEST_CASE("transpose_block copies to(c, r) = from(r, c) and nothing else", "[gram]") {
  Random random(5);
  const double poison = std::numeric_limits<double>::quiet_NaN();
  for (const Index rows : {0, 1, 3, 4, 5, 8, 13, 64})
    for (const Index columns : {0, 1, 4, 7, 8, 9, 17}) {
      for (const Index source_ld : {rows, rows + 3, Index(512)}) {
        INFO("rows=" << rows << " columns=" << columns << " source ld=" << source_ld);
        const Matrix source = gaussian(source_ld, columns, random);
        Matrix target = Matrix::Constant(source_ld == 512 ? 512 : columns + 2, rows + 1, poison);
        // Into target(1.., 0..), one row down.
        dictlearn::transpose_block(source.data(), source.rows(), rows, columns, target.data() + 1,
                                   target.rows());
        for (Index c = 0; c < target.rows(); ++c)
          for (Index r = 0; r < target.cols(); ++r) {
            const bool inside = c >= 1 && c - 1 < columns && r < rows;
            if (inside)
              REQUIRE(target(c, r) == source(r, c - 1));
            else
              REQUIRE(std::isnan(target(c, r)));
          }
      }
    }
}

TEMPLATE_TEST_CASE("mirror_upper_to_lower makes a block symmetric from its upper triangle",
                   "[gram]", double, float) {
  using MatrixType = dictlearn::MatrixT<TestType>;
  Random random(6);
  for (const Index n : {0, 1, 2, 4, 7, 8, 9, 16, 31, 64, 65}) {
    INFO("n=" << n);
    const Index ld = n == 64 ? 512 : n + 3;
    MatrixType full = gaussian(ld, n + 1, random).cast<TestType>();
    const MatrixType before = full;
    // The n x n block at (2, 1).
    dictlearn::mirror_upper_to_lower(full.data() + 2 + ld, n, ld);
    for (Index j = 0; j < full.cols(); ++j)
      for (Index i = 0; i < ld; ++i) {
        const bool lower = j >= 1 && j - 1 < n && i >= 2 && i - 2 < n && i - 2 > j - 1;
        if (lower)
          REQUIRE(full(i, j) == before(2 + (j - 1), 1 + (i - 2)));
        else
          REQUIRE(full(i, j) == before(i, j));
      }
  }
}
