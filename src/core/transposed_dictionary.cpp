#include "dictlearn/core/transposed_dictionary.hpp"

#include <algorithm>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/transpose_block.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace dictlearn {
namespace {

constexpr Index kTileAtoms = 16;  // two vectors of 8 doubles

#if defined(__AVX512F__)
// Rows of D per pass over a tile: 16 atoms x 256 rows of D^T (32 KiB) stay in the L1 cache
// while the tile's columns of Y stream past. Longer sums continue from the stored partial
// sums, so each element's arithmetic is still one running sum in row order.
constexpr Index kDepth = 256;
constexpr Index kTileColumns = 8;

// Rows of D^T requested this many rows ahead when kPrefetch. The tile reads 16 atoms of
// each row of D^T, one row after another at a stride of ld doubles; from 4 KiB on, each
// row starts on another page, which the hardware prefetchers do not enter, and a tile
// whose rows are not in the L1 cache waited on every one. With the rows requested ahead,
// D^T X for 256 samples took 2.14-2.16 ms instead of 4.18-4.22 at 256 x 1024, and G
// 1.11 ms instead of 1.26-1.30 at 256 x 512 (product_bench). At shorter strides the
// requests only cost instructions (G at 64 x 256: 80 us against 78), hence the choice.
constexpr Index kPrefetchRows = 16;
constexpr Index kPrefetchStride = 4096 / Index(sizeof(double));

// Rows [0, 16) (those in `rows` only) x columns [0, kColumns) of out += D^T y over `depth`
// rows of D, starting from zero or from out's values (`accumulate`). `at` points to the
// tile's first atom in D^T (leading dimension ld); the padding of D^T makes the two full
// vector loads safe even for the last atoms (and a prefetch past D^T's end never faults).
template <int kColumns, bool kPrefetch>
void tile_product(const double* at, Index ld, Index depth, const double* y, Index ldy, double* out,
                  Index out_ld, __mmask8 low_rows, __mmask8 high_rows, bool accumulate) {
  __m512d low[kColumns], high[kColumns];
  for (int c = 0; c < kColumns; ++c) {
    if (accumulate) {
      low[c] = _mm512_maskz_loadu_pd(low_rows, out + c * out_ld);
      high[c] = _mm512_maskz_loadu_pd(high_rows, out + c * out_ld + 8);
    } else {
      low[c] = high[c] = _mm512_setzero_pd();
    }
  }
  for (Index r = 0; r < depth; ++r, at += ld) {
    if constexpr (kPrefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(at + kPrefetchRows * ld), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(at + kPrefetchRows * ld + 15), _MM_HINT_T0);
    }
    const __m512d atoms_low = _mm512_loadu_pd(at), atoms_high = _mm512_loadu_pd(at + 8);
    for (int c = 0; c < kColumns; ++c) {
      const __m512d weight = _mm512_set1_pd(y[c * ldy + r]);
      low[c] = _mm512_fmadd_pd(atoms_low, weight, low[c]);
      high[c] = _mm512_fmadd_pd(atoms_high, weight, high[c]);
    }
  }
  for (int c = 0; c < kColumns; ++c) {
    _mm512_mask_storeu_pd(out + c * out_ld, low_rows, low[c]);
    _mm512_mask_storeu_pd(out + c * out_ld + 8, high_rows, high[c]);
  }
}

using TileFunction = void (*)(const double*, Index, Index, const double*, Index, double*, Index,
                              __mmask8, __mmask8, bool);
// By width, without and with the requests ahead.
constexpr TileFunction kTileOfWidth[2][kTileColumns + 1] = {
    {nullptr, tile_product<1, false>, tile_product<2, false>, tile_product<3, false>,
     tile_product<4, false>, tile_product<5, false>, tile_product<6, false>, tile_product<7, false>,
     tile_product<8, false>},
    {nullptr, tile_product<1, true>, tile_product<2, true>, tile_product<3, true>,
     tile_product<4, true>, tile_product<5, true>, tile_product<6, true>, tile_product<7, true>,
     tile_product<8, true>}};

// The first `rows` lanes (none for rows <= 0, all for rows >= 8).
__mmask8 rows_mask(Index rows) {
  return __mmask8(rows >= 8 ? 0xffu : rows <= 0 ? 0u : (1u << rows) - 1u);
}
#endif

}  // namespace

void TransposedDictionary::assign(const Matrix& dictionary) {
  const Index d = dictionary.rows(), K = dictionary.cols();
  if (d != dim_ || K != atoms_) {
    atoms_ = K;
    dim_ = d;
    // Room for a full tile past any atom, and an odd number of cache lines per row of D, so
    // that a tile's rows fall in different sets of the L1 cache (a stride of 2 or 4 KiB
    // would put them all in a few).
    ld_ = (K + kTileAtoms + 7) / 8 * 8;
    if ((ld_ / 8) % 2 == 0) ld_ += 8;
    transpose_.setZero(ld_, d);  // the padding rows stay zero
  }
  transpose_block(dictionary.data(), d, d, K, transpose_.data(), ld_);
}

const TransposedDictionary* TransposedDictionary::assign_where_it_pays(const Matrix& dictionary) {
  if (!pays_off(dictionary.rows(), dictionary.cols())) return nullptr;
  assign(dictionary);
  return this;
}

bool TransposedDictionary::pays_off(Index d, Index K) {
#if defined(__AVX512F__)
  // Training loops in s, the copy against Eigen on D (AVX-512 VM, alternating runs):
  // - the patches, 64 x 256: 1x2 0.525-0.535 against 0.550-0.587, 2x1 0.506-0.519 against
  //   0.521-0.528, 1x1 even;
  // - the suite's synthetic set, 128 x 512: even (1x1 0.527-0.548 against 0.524-0.544);
  // - one epoch of 10240 synthetic samples, 1x1: Eigen's packed kernel wins at 128 x 1024
  //   (3.52 against 3.66-3.68), 256 x 512 (1.87 against 1.90) and 256 x 1024 (3.44-3.49
  //   against 3.73-3.92).
  constexpr Index kLargestCopy = 128 * 512;
  return d <= kDepth && d * K <= kLargestCopy;
#else
  (void)d, (void)K;
  return false;
#endif
}

void TransposedDictionary::multiply(Index first_atom, Index atoms, const double* y, Index ldy,
                                    Index columns, double* out, Index out_ld,
                                    bool upper_only) const {
  DICTLEARN_ASSERT(first_atom >= 0 && atoms >= 0 && first_atom + atoms <= atoms_);
  const Index d = dim_;
#if defined(__AVX512F__)
  // At least one pass, so that d = 0 gives zeros.
  const Index passes = std::max<Index>(1, (d + kDepth - 1) / kDepth);
  for (Index pass = 0; pass < passes; ++pass) {
    const Index r0 = pass * kDepth, depth = std::min(kDepth, d - r0);
    const bool accumulate = pass > 0;
    for (Index c0 = 0; c0 < columns; c0 += kTileColumns) {
      const Index width = std::min(kTileColumns, columns - c0);
      const TileFunction tile = kTileOfWidth[ld_ >= kPrefetchStride ? 1 : 0][width];
      // Upper only: tiles that reach above the diagonal of these columns.
      const Index atom_end = upper_only ? std::min(atoms, c0 + width) : atoms;
      for (Index a0 = 0; a0 < atom_end; a0 += kTileAtoms) {
        const Index rows = std::min(kTileAtoms, atoms - a0);
        tile(transpose_.data() + first_atom + a0 + r0 * ld_, ld_, depth, y + c0 * ldy + r0, ldy,
             out + a0 + c0 * out_ld, out_ld, rows_mask(rows), rows_mask(rows - 8), accumulate);
      }
    }
  }
#else
  // Without the tiles (the trainer then uses Eigen on D, see pays_off): the same running
  // sum per element, in row order, whatever the block, as the tiles form it.
  for (Index j = 0; j < columns; ++j) {
    double* result = out + j * out_ld;
    const Index atom_end = upper_only ? std::min(atoms, j + 1) : atoms;
    std::fill(result, result + atom_end, 0.0);
    for (Index r = 0; r < d; ++r) {
      const double weight = y[j * ldy + r];
      const double* row = transpose_.data() + first_atom + r * ld_;
      for (Index a = 0; a < atom_end; ++a) result[a] += row[a] * weight;
    }
  }
#endif
}

}  // namespace dictlearn
