// Products from the transposed dictionary (core/transposed_dictionary.hpp): D^T Y for blocks
// of atoms and columns, equal to Eigen's product up to rounding, bitwise the same however
// the columns are grouped, and the diagonal-block variant fills the upper triangle.
#include <catch2/catch.hpp>

#include <limits>
#include <utility>

#include "dictlearn/core/random.hpp"
#include "dictlearn/core/transposed_dictionary.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::TransposedDictionary;
using dictlearn::testing::gaussian;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("TransposedDictionary::multiply is D^T Y by blocks of atoms", "[gram]") {
  Random random(23);
  // Partial tiles of atoms (K % 16) and columns (n % 8), d = 0, d over one pass of rows
  // (300, 600: the sums continue from the stored partial sums), and K >= 512, where the
  // tiles request rows of D^T ahead (also over two passes, with partial tiles).
  const Index shapes[][3] = {{64, 256, 256}, {7, 37, 13},   {0, 20, 5},     {300, 50, 19},
                             {600, 17, 9},   {128, 512, 1}, {300, 521, 11}, {1, 1, 1}};
  for (const auto& shape : shapes) {
    const Index d = shape[0], K = shape[1], n = shape[2];
    INFO("d=" << d << " K=" << K << " n=" << n);
    const Matrix dictionary = gaussian(d, K, random), y = gaussian(d, n, random);
    TransposedDictionary transposed;
    transposed.assign(dictionary);
    REQUIRE(transposed.atoms() == K);
    REQUIRE(transposed.dim() == d);

    // All atoms at once, into an array with a larger leading dimension.
    Matrix whole = Matrix::Constant(K + 3, n, kNaN);
    transposed.multiply(0, K, y.data(), d, n, whole.data(), K + 3);
    const Matrix expected = dictionary.transpose() * y;
    const double tolerance =
        1e-13 * double(std::max<Index>(d, 1)) * std::max(1.0, expected.cwiseAbs().maxCoeff());
    CHECK((whole.topRows(K) - expected).cwiseAbs().maxCoeff() <= tolerance);
    CHECK(whole.bottomRows(3).array().isNaN().all());  // nothing written past the block

    // A block of atoms off any tile boundary, column by column: the same bits.
    const Index first = K / 3, atoms = K - first - K / 4;
    Matrix by_column = Matrix::Constant(atoms, n, kNaN);
    for (Index j = 0; j < n; ++j)
      transposed.multiply(first, atoms, y.col(j).data(), d, 1, by_column.col(j).data(), atoms);
    CHECK(by_column == whole.middleRows(first, atoms));

    // A diagonal block of D^T D: the upper triangle, the same bits as the full block.
    const Index begin = K / 4, size = K - begin;
    const double* columns = dictionary.data() + begin * d;
    Matrix full(size, size), upper = Matrix::Constant(size, size, kNaN);
    transposed.multiply(begin, size, columns, d, size, full.data(), size);
    transposed.multiply(begin, size, columns, d, size, upper.data(), size, true);
    for (Index j = 0; j < size; ++j)
      for (Index i = 0; i <= j; ++i) CHECK(upper(i, j) == full(i, j));

    // A new dictionary of the same shape replaces the old one.
    const Matrix other = gaussian(d, K, random);
    transposed.assign(other);
    Matrix again(K, n);
    transposed.multiply(0, K, y.data(), d, n, again.data(), K);
    const Matrix expected_other = other.transpose() * y;
    CHECK((again - expected_other).cwiseAbs().maxCoeff() <=
          1e-13 * double(std::max<Index>(d, 1)) *
              std::max(1.0, expected_other.cwiseAbs().maxCoeff()));
  }
}
