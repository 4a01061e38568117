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

}  // namespace

template <typename Scalar>
void transpose_block(const Scalar* from, Index from_ld, Index rows, Index columns, Scalar* to,
                     Index to_ld) {
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
    // The edges: the last rows % 4 rows of the full columns, then the last columns.
    transpose_scalar(from + full_rows, from_ld, rows - full_rows, full_columns,
                     to + full_rows * to_ld, to_ld);
    transpose_scalar(from + full_columns * from_ld, from_ld, rows, columns - full_columns,
                     to + full_columns, to_ld);
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
