#include "dictlearn/core/transpose_block.hpp"

#include <algorithm>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace dictlearn {
namespace {

template <typename Scalar>
void transpose_scalar(const Scalar* from, Index from_ld, Index rows, Index columns, Scalar* to,
                      Index to_ld) {
  // Pieces of 8 x 8: 16 lines of the L1 cache at any stride.
  constexpr Index kPiece = 8;
  for (Index c0 = 0; c0 < columns; c0 += kPiece)
    for (Index r0 = 0; r0 < rows; r0 += kPiece)
      for (Index r = r0; r < std::min(rows, r0 + kPiece); ++r)
        for (Index c = c0; c < std::min(columns, c0 + kPiece); ++c)
          to[c + r * to_ld] = from[r + c * from_ld];
}

// What whole blocks leave of the block: the last rows - full_rows rows of the first
// full_columns columns, then the last columns - full_columns columns.
template <typename Scalar>
void transpose_edges(const Scalar* from, Index from_ld, Index rows, Index columns, Index full_rows,
                     Index full_columns, Scalar* to, Index to_ld) {
  transpose_scalar(from + full_rows, from_ld, rows - full_rows, full_columns,
                   to + full_rows * to_ld, to_ld);
  transpose_scalar(from + full_columns * from_ld, from_ld, rows, columns - full_columns,
                   to + full_columns, to_ld);
}

#if defined(__AVX2__)
// from's 4 x 4 block at (r, c) to `to`'s at (c, r).
inline void transpose_4x4(const double* from, Index from_ld, double* to, Index to_ld) {
  const __m256d c0 = _mm256_loadu_pd(from), c1 = _mm256_loadu_pd(from + from_ld),
                c2 = _mm256_loadu_pd(from + 2 * from_ld), c3 = _mm256_loadu_pd(from + 3 * from_ld);
  const __m256d even01 = _mm256_unpacklo_pd(c0, c1), odd01 = _mm256_unpackhi_pd(c0, c1);
  const __m256d even23 = _mm256_unpacklo_pd(c2, c3), odd23 = _mm256_unpackhi_pd(c2, c3);
  _mm256_storeu_pd(to, _mm256_permute2f128_pd(even01, even23, 0x20));
  _mm256_storeu_pd(to + to_ld, _mm256_permute2f128_pd(odd01, odd23, 0x20));
  _mm256_storeu_pd(to + 2 * to_ld, _mm256_permute2f128_pd(even01, even23, 0x31));
  _mm256_storeu_pd(to + 3 * to_ld, _mm256_permute2f128_pd(odd01, odd23, 0x31));
}
#endif

#if defined(__AVX512F__)
// from's 8 x 8 block at (r, c) to `to`'s at (c, r), in registers: every load and store
// moves a whole 64-byte line.
inline void transpose_8x8(const double* from, Index from_ld, double* to, Index to_ld) {
  __m512d column[8];
  for (int i = 0; i < 8; ++i) column[i] = _mm512_loadu_pd(from + i * from_ld);
  // Pairs of columns interleaved, then pairs of 128-bit lanes, then the 256-bit halves.
  __m512d pairs[8], quads[8];
  for (int i = 0; i < 8; i += 2) {
    pairs[i] = _mm512_shuffle_pd(column[i], column[i + 1], 0x00);      // unpacklo
    pairs[i + 1] = _mm512_shuffle_pd(column[i], column[i + 1], 0xff);  // unpackhi
  }
  const __m512i low_lanes = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
  const __m512i high_lanes = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      quads[i + j] = _mm512_permutex2var_pd(pairs[i + j], low_lanes, pairs[i + j + 2]);
      quads[i + j + 2] = _mm512_permutex2var_pd(pairs[i + j], high_lanes, pairs[i + j + 2]);
    }
  // (permutes throughout: GCC 12 warns about the undefined source of shuffle_f64x2)
  const __m512i low_halves = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
  const __m512i high_halves = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
  for (int i = 0; i < 4; ++i) {
    _mm512_storeu_pd(to + i * to_ld, _mm512_permutex2var_pd(quads[i], low_halves, quads[i + 4]));
    _mm512_storeu_pd(to + (i + 4) * to_ld,
                     _mm512_permutex2var_pd(quads[i], high_halves, quads[i + 4]));
  }
}

// Both strides at least 2 KiB (the mirrors of K x K matrices, K >= 256): there the 4 x 4
// blocks' half-line accesses crowd a few sets of the L1 cache, and whole-line 8 x 8
// blocks took 0.6x the time (a 256 x 256 Gram matrix's off-diagonal tiles: 13 us against
// 20). At a short stride (D^T from D, d = 64) the 4 x 4 blocks were faster.
constexpr Index kLongStride = 256;
#endif

}  // namespace

template <typename Scalar>
void transpose_block(const Scalar* from, Index from_ld, Index rows, Index columns, Scalar* to,
                     Index to_ld) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Scalar, double>) {
    if (from_ld >= kLongStride && to_ld >= kLongStride) {
      const Index full_rows = rows / 8 * 8, full_columns = columns / 8 * 8;
      for (Index c = 0; c < full_columns; c += 8)
        for (Index r = 0; r < full_rows; r += 8)
          transpose_8x8(from + r + c * from_ld, from_ld, to + c + r * to_ld, to_ld);
      transpose_edges(from, from_ld, rows, columns, full_rows, full_columns, to, to_ld);
      return;
    }
  }
#endif
#if defined(__AVX2__)
  if constexpr (std::is_same_v<Scalar, double>) {
    // Strips of 8 columns of `from`: each 4-row step writes 8 contiguous values (64 bytes)
    // into each of four columns of `to`.
    const Index full_rows = rows / 4 * 4, full_columns = columns / 4 * 4;
    for (Index c0 = 0; c0 < full_columns; c0 += 8) {
      const Index strip = std::min<Index>(8, full_columns - c0);
      for (Index r = 0; r < full_rows; r += 4)
        for (Index c = c0; c < c0 + strip; c += 4)
          transpose_4x4(from + r + c * from_ld, from_ld, to + c + r * to_ld, to_ld);
    }
    transpose_edges(from, from_ld, rows, columns, full_rows, full_columns, to, to_ld);
    return;
  }
#endif
  transpose_scalar(from, from_ld, rows, columns, to, to_ld);
}

template <typename Scalar>
void mirror_upper_to_lower(Scalar* block, Index n, Index ld) {
  // By square pieces of 8 (8 contiguous values per column of the lower part): the pieces
  // above the diagonal transposed whole, the diagonal pieces element by element.
  constexpr Index kPiece = 8;
  for (Index j0 = 0; j0 < n; j0 += kPiece) {
    const Index j1 = std::min(n, j0 + kPiece);
    // Rows [0, j0) of columns [j0, j1) to rows [j0, j1) of columns [0, j0).
    transpose_block(block + j0 * ld, ld, j0, j1 - j0, block + j0, ld);
    for (Index j = j0; j < j1; ++j)
      for (Index i = j0; i < j; ++i) block[j + i * ld] = block[i + j * ld];
  }
}

template void transpose_block<double>(const double*, Index, Index, Index, double*, Index);
template void transpose_block<float>(const float*, Index, Index, Index, float*, Index);
template void mirror_upper_to_lower<double>(double*, Index, Index);
template void mirror_upper_to_lower<float>(float*, Index, Index);

}  // namespace dictlearn
