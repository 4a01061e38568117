#pragma once
// The rows of a code that hold nonzeros, found without a branch per row: a branch would
// mispredict at every nonzero of a sparse code, and that was most of the cost of the scan
// (the trainer's residual norms and statistics scan every code of every minibatch).
// With AVX2, four rows at a time: the compare's 4-bit mask picks a ready list of its set
// rows, stored whole (one 256-bit store) and kept up to the mask's bit count.
#include <cstdint>
#include <type_traits>

#include "dictlearn/core/types.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace dictlearn {

namespace detail {
#if defined(__AVX2__)
// Row offsets of the set bits of a 4-bit mask, lowest first; and the number of set bits.
alignas(32) inline constexpr std::int64_t kSetBitOffsets[16][4] = {
    {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {2, 0, 0, 0}, {0, 2, 0, 0},
    {1, 2, 0, 0}, {0, 1, 2, 0}, {3, 0, 0, 0}, {0, 3, 0, 0}, {1, 3, 0, 0}, {0, 1, 3, 0},
    {2, 3, 0, 0}, {0, 2, 3, 0}, {1, 2, 3, 0}, {0, 1, 2, 3}};
inline constexpr Index kSetBitCount[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

// Appends rows first .. first + 3 whose bit is set in `mask` at rows + count. Writes four
// entries whatever the count: the caller's room covers them (see nonzero_rows).
inline Index append_set_rows(int mask, Index first, Index* rows, Index count) {
  const __m256i offsets = _mm256_load_si256(reinterpret_cast<const __m256i*>(kSetBitOffsets[mask]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(rows + count),
                      _mm256_add_epi64(offsets, _mm256_set1_epi64x(std::int64_t(first))));
  return count + kSetBitCount[mask];
}
#endif
}  // namespace detail

/// Writes the indices k < K with values[k] != 0, in increasing order, to `rows` (room for
/// K entries); returns how many.
template <typename Scalar>
Index nonzero_rows(const Scalar* values, Index K, Index* rows) {
  Index count = 0;
  Index k = 0;
#if defined(__AVX2__)
  // Every store starts at count <= k and ends before k + 4 <= K: within the room.
  if constexpr (sizeof(Index) == 8 && std::is_same_v<Scalar, double>) {
    for (; k + 4 <= K; k += 4) {
      const __m256d nonzero =
          _mm256_cmp_pd(_mm256_loadu_pd(values + k), _mm256_setzero_pd(), _CMP_NEQ_UQ);
      count = detail::append_set_rows(_mm256_movemask_pd(nonzero), k, rows, count);
    }
  } else if constexpr (sizeof(Index) == 8 && std::is_same_v<Scalar, float>) {
    for (; k + 8 <= K; k += 8) {
      const int mask = _mm256_movemask_ps(
          _mm256_cmp_ps(_mm256_loadu_ps(values + k), _mm256_setzero_ps(), _CMP_NEQ_UQ));
      count = detail::append_set_rows(mask & 15, k, rows, count);
      count = detail::append_set_rows(mask >> 4, k + 4, rows, count);
    }
  }
#endif
  for (; k < K; ++k) {
    rows[count] = k;  // kept only if the count moves past it
    count += values[k] != Scalar(0) ? 1 : 0;
  }
  return count;
}

}  // namespace dictlearn
