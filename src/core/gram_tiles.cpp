#include "dictlearn/core/gram_tiles.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/transpose_block.hpp"

namespace dictlearn {

GramTiles::GramTiles(Index atoms) : atoms_(atoms) {
  DICTLEARN_ASSERT(atoms >= 0);
  double work = 0.0;
  for (Index column = 0; column < atoms; column += kTile) {
    const Index columns = std::min(kTile, atoms - column);
    for (Index row = 0; row <= column; row += kTile) {
      const Index rows = std::min(kTile, atoms - row);
      tiles_.push_back({row, rows, column, columns});
      work_before_.push_back(work);
      work += row == column ? 0.5 * double(rows * columns) : double(rows * columns);
    }
  }
  work_before_.push_back(work);
}

std::pair<Index, Index> GramTiles::part(int index, int parts, Index begin, Index end) const {
  if (end < 0) end = count();
  DICTLEARN_ASSERT(parts > 0 && index >= 0 && index < parts && 0 <= begin && begin <= end &&
                   end <= count());
  // Part p takes the tiles whose work starts in [p, p + 1) x (the range's work) / parts.
  const double low = work_before_[size_t(begin)], high = work_before_[size_t(end)];
  const auto first_of = [&](int p) {
    if (p >= parts) return end;
    const double start = low + (high - low) * double(p) / double(parts);
    return Index(std::lower_bound(work_before_.begin() + begin, work_before_.begin() + end, start) -
                 work_before_.begin());
  };
  return {first_of(index), first_of(index + 1)};
}

void GramTiles::compute(const Matrix& dictionary, const TransposedDictionary* transposed,
                        Index index, double* gram, Index ld) const {
  DICTLEARN_ASSERT(dictionary.cols() == atoms_ && ld >= atoms_);
  DICTLEARN_ASSERT(transposed == nullptr ||
                   (transposed->atoms() == atoms_ && transposed->dim() == dictionary.rows()));
  const Tile& t = tile(index);
  const Index d = dictionary.rows();
  double* upper = gram + t.row + t.column * ld;
  const bool diagonal = t.row == t.column;
  if (transposed != nullptr) {
    transposed->multiply(t.row, t.rows, dictionary.data() + t.column * d, d, t.columns, upper, ld,
                         diagonal);
  } else if (d == 0) {
    for (Index j = 0; j < t.columns; ++j) std::fill(upper + j * ld, upper + j * ld + t.rows, 0.0);
  } else {
    // Eigen's kernel, not OpenBLAS's: at 64 x 64 tiles its set-up is lighter (tiles of
    // D^T D, one thread: 128 x 512 took 654 us against 755, 784 x 256 1024 against 1172).
    // A diagonal tile is formed whole, both triangles; its upper one is mirrored below
    // all the same, so that G is exactly symmetric whatever the kernel's order.
    Eigen::Map<Matrix, 0, Eigen::OuterStride<>> block(upper, t.rows, t.columns,
                                                      Eigen::OuterStride<>(ld));
    block.noalias() = dictionary.middleCols(t.row, t.rows).transpose() *
                      dictionary.middleCols(t.column, t.columns);
  }
  if (diagonal)
    mirror_upper_to_lower(upper, t.columns, ld);
  else
    transpose_block(upper, ld, t.rows, t.columns, gram + t.column + t.row * ld, ld);
}

void GramTiles::copy_upper(Index index, const double* from, Index from_ld, double* to,
                           Index to_ld) const {
  const Tile& t = tile(index);
  for (Index j = t.column; j < t.column + t.columns; ++j)
    std::memcpy(to + t.row + j * to_ld, from + t.row + j * from_ld,
                sizeof(double) * size_t(t.rows));
}

void GramTiles::copy_upper_and_mirror(Index index, const double* from, Index from_ld, double* to,
                                      Index to_ld) const {
  copy_upper(index, from, from_ld, to, to_ld);
  const Tile& t = tile(index);
  if (t.row != t.column)  // from `to`, where the block now sits in cache
    transpose_block(to + t.row + t.column * to_ld, to_ld, t.rows, t.columns,
                    to + t.column + t.row * to_ld, to_ld);
}

void gram_matrix(const Matrix& dictionary, const TransposedDictionary* transposed, Matrix& gram,
                 int threads) {
  const Index K = dictionary.cols();
  gram.resize(K, K);
  const GramTiles tiles(K);
  const int team = int(std::clamp<Index>(threads, 1, std::max<Index>(1, tiles.count())));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const auto [first, last] = tiles.part(omp_get_thread_num(), omp_get_num_threads());
    for (Index tile = first; tile < last; ++tile)
      tiles.compute(dictionary, transposed, tile, gram.data(), K);
  }
}

void gram_matrix(const Matrix& dictionary, Matrix& gram, int threads) {
  TransposedDictionary transposed;
  gram_matrix(dictionary, transposed.assign_where_it_pays(dictionary), gram, threads);
}

}  // namespace dictlearn
