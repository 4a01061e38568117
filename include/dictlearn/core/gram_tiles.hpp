#pragma once
// The Gram matrix G = D^T D (K x K, both triangles) in fixed square tiles of the upper
// triangle, each formed by one matrix product and mirrored by whoever computes it. The
// product comes from a transposed copy of D where that pays (core/transposed_dictionary.hpp;
// a diagonal tile by its upper triangle only), else from Eigen's GEMM kernel on D,
// single-threaded. A tile's arithmetic does not depend on who computes it, so G is bitwise
// the same whether one thread forms it, several threads share the tiles, or the ranks of a
// node do (parallel/node_gram.hpp). One SYRK over all of D is not: its blocking differs
// from the tiles' for some shapes (d = 130, K = 97 differed in the last bits).
#include <utility>
#include <vector>

#include "dictlearn/core/transposed_dictionary.hpp"
#include "dictlearn/core/types.hpp"

namespace dictlearn {

class GramTiles {
 public:
  /// Tiles of kTile x kTile atoms (smaller at the last row and column of tiles).
  static constexpr Index kTile = 64;

  explicit GramTiles(Index atoms);

  Index count() const { return Index(tiles_.size()); }
  /// Tiles [first, second) of a contiguous split of the tiles [begin, end) (default: all)
  /// into `parts` of about equal work (a diagonal tile counts half); parts may be empty.
  std::pair<Index, Index> part(int index, int parts, Index begin = 0, Index end = -1) const;

  /// Tile `tile` of D^T D into `gram` (column-major, leading dimension `ld` >= K): its
  /// upper block and, off the diagonal, the mirrored lower block. `transposed`, if not
  /// null, holds the same dictionary and forms the product; for a given shape, the choice
  /// must be the same for every tile and call whose results are compared.
  void compute(const Matrix& dictionary, const TransposedDictionary* transposed, Index tile,
               double* gram, Index ld) const;
  /// Copies only the upper block of tile `tile` (a diagonal tile whole) from one K x K
  /// column-major array to another.
  void copy_upper(Index tile, const double* from, Index from_ld, double* to, Index to_ld) const;
  /// copy_upper(), then the block mirrored into `to`'s lower block: both blocks, the same
  /// values, with half the bytes read from `from` for an off-diagonal tile.
  void copy_upper_and_mirror(Index tile, const double* from, Index from_ld, double* to,
                             Index to_ld) const;

  /// Rows and columns of a tile: atoms [row, row + rows) x [column, column + columns).
  struct Tile {
    Index row, rows, column, columns;
  };
  const Tile& tile(Index index) const { return tiles_[std::size_t(index)]; }

 private:
  Index atoms_;
  std::vector<Tile> tiles_;          // column of tiles after column, top down
  std::vector<double> work_before_;  // work of the tiles before each one, and the total
};

/// G = D^T D by tiles spread over `threads` OpenMP threads (one product per tile);
/// the result does not depend on the thread count. `transposed` as in GramTiles::compute.
void gram_matrix(const Matrix& dictionary, const TransposedDictionary* transposed, Matrix& gram,
                 int threads);
/// The same, with a transposed copy made here if it pays (TransposedDictionary::pays_off).
void gram_matrix(const Matrix& dictionary, Matrix& gram, int threads);

}  // namespace dictlearn
