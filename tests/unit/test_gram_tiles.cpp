// Gram matrix by tiles (core/gram_tiles.hpp): D^T D with both triangles, bitwise the same
// for any thread count and any order of the tiles; the work split covers every tile once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <vector>

#include "dictlearn/core/gram_tiles.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/core/transposed_dictionary.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::GramTiles;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::testing::gaussian;

}  // namespace

TEST_CASE("gram_matrix is D^T D, bitwise the same for any thread count", "[gram]") {
  Random random(17);
  // Shapes off the tile size (the last tile row and column are partial), one tile only,
  // one atom, d < K, d = 0, and a tall D.
  const std::pair<Index, Index> shapes[] = {{130, 97}, {64, 256}, {7, 64},   {3, 65},
                                            {5, 1},    {0, 10},   {40, 200}, {300, 3}};
  for (const auto& [d, K] : shapes) {
    INFO("d=" << d << " K=" << K);
    const Matrix dictionary = gaussian(d, K, random);
    Matrix one(3, 3), two, three;
    dictlearn::gram_matrix(dictionary, one, 1);
    dictlearn::gram_matrix(dictionary, two, 2);
    dictlearn::gram_matrix(dictionary, three, 3);
    REQUIRE(one.rows() == K);
    REQUIRE(one.cols() == K);
    const Matrix expected = dictionary.transpose() * dictionary;
    const double scale = std::max(1.0, expected.cwiseAbs().maxCoeff());
    CHECK((one - expected).cwiseAbs().maxCoeff() <= 1e-13 * scale * double(std::max<Index>(d, 1)));
    CHECK(one == one.transpose());  // both triangles, mirrored exactly
    CHECK(two == one);
    CHECK(three == one);
    // Tiles computed one by one in reverse order into a poisoned array, from D itself and
    // from its transposed copy: every entry written, the same bits as gram_matrix() making
    // the same choice on two threads, and within rounding of D^T D either way.
    const GramTiles tiles(K);
    dictlearn::TransposedDictionary transposed;
    transposed.assign(dictionary);
    for (const bool from_copy : {false, true}) {
      INFO("from the transposed copy: " << from_copy);
      const dictlearn::TransposedDictionary* from = from_copy ? &transposed : nullptr;
      Matrix reversed = Matrix::Constant(K, K, std::numeric_limits<double>::quiet_NaN());
      for (Index tile = tiles.count() - 1; tile >= 0; --tile)
        tiles.compute(dictionary, from, tile, reversed.data(), K);
      Matrix shared;
      dictlearn::gram_matrix(dictionary, from, shared, 2);
      CHECK(reversed == shared);
      CHECK(reversed == reversed.transpose());
      CHECK((reversed - expected).cwiseAbs().maxCoeff() <=
            1e-13 * scale * double(std::max<Index>(d, 1)));
      // gram_matrix() without a copy makes the copy where it pays.
      if (from_copy == dictlearn::TransposedDictionary::pays_off(d, K)) CHECK(reversed == one);
    }
    // copy_upper() moves a tile's upper block only; copy_upper_and_mirror() rebuilds both
    // blocks from it, between arrays of different leading dimensions.
    Matrix uppers = Matrix::Constant(K + 3, K, std::numeric_limits<double>::quiet_NaN());
    for (Index tile = 0; tile < tiles.count(); ++tile)
      tiles.copy_upper(tile, one.data(), K, uppers.data(), K + 3);
    CHECK(uppers.topRows(K).triangularView<Eigen::Upper>().toDenseMatrix() ==
          Matrix(one.triangularView<Eigen::Upper>()));
    Matrix wide = Matrix::Constant(K + 5, K, std::numeric_limits<double>::quiet_NaN());
    for (Index tile = 0; tile < tiles.count(); ++tile)
      tiles.copy_upper_and_mirror(tile, uppers.data(), K + 3, wide.data(), K + 5);
    CHECK(wide.topRows(K) == one);
  }
}

TEST_CASE("GramTiles parts cover every tile once with about equal work", "[gram]") {
  for (const Index K : {1, 63, 64, 65, 256, 1000}) {
    const GramTiles tiles(K);
    const Index expected_tiles = ((K + 63) / 64) * ((K + 63) / 64 + 1) / 2;
    REQUIRE(tiles.count() == expected_tiles);
    std::vector<double> work(size_t(tiles.count()));
    for (Index t = 0; t < tiles.count(); ++t) {
      const auto& tile = tiles.tile(t);
      CHECK(tile.row <= tile.column);
      work[size_t(t)] = double(tile.rows * tile.columns) * (tile.row == tile.column ? 0.5 : 1.0);
    }
    const double largest = *std::max_element(work.begin(), work.end());
    for (int parts = 1; parts <= 7; ++parts) {
      // The whole range, and a sub-range split further (as a rank's tiles over its threads).
      for (const auto& [begin, end] :
           {std::pair<Index, Index>{0, tiles.count()}, tiles.part(parts / 2, parts)}) {
        Index next = begin;
        double range_work = 0.0;
        for (Index t = begin; t < end; ++t) range_work += work[size_t(t)];
        for (int p = 0; p < parts; ++p) {
          const auto [first, last] = tiles.part(p, parts, begin, end);
          INFO("K=" << K << " parts=" << parts << " p=" << p << " range " << begin << ".." << end);
          CHECK(first == next);  // contiguous, in order
          CHECK(last >= first);
          double part_work = 0.0;
          for (Index t = first; t < last; ++t) part_work += work[size_t(t)];
          CHECK(part_work <= range_work / parts + largest + 1e-9);
          next = last;
        }
        CHECK(next == end);
      }
    }
  }
}
