#include "dictlearn/update/online_update.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

// Each atom step needs D a_k. Reading all of D once per atom makes the update bound by
// cache bandwidth, so the products of kAtomBlock consecutive atoms are formed together in
// one pass over D (a register tile of kRowBlock rows x kAtomBlock atoms), and the atoms
// of the block updated before atom k are then accounted for exactly:
//   D_now a_k = D_block_start a_k + sum_{i < k in block} (d_i_new - d_i_old) A_ik.
constexpr Index kAtomBlock = 8;
// Rows of D are processed in blocks of this many; thread boundaries fall on block
// boundaries, so every row is computed by the same instruction sequence whatever the
// thread count (bitwise-stable results).
constexpr Index kRowBlock = 16;
// Below this many rows per thread, one barrier per atom costs more than the work it shares.
constexpr Index kMinRowsPerThread = 128;

// products(:, c) = D(rows, :) a_{k0 + c} for c < atoms, rows [begin, begin + rows).
template <Index kRows>
void block_products(const Matrix& a, const Matrix& dictionary, Index k0, Index atoms, Index begin,
                    Index rows, double* products, Index products_ld) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  const Index n_rows = kRows > 0 ? kRows : rows;
  double tile[kAtomBlock][kRowBlock] = {};
  const double* column = dictionary.data() + begin;
  for (Index j = 0; j < K; ++j, column += d) {
    const double* a_row = a.data() + k0 * K + j;  // A(j, k0 + c) at a_row[c * K]
    for (Index c = 0; c < kAtomBlock; ++c) {
      const double weight = c < atoms ? a_row[c * K] : 0.0;
      for (Index i = 0; i < n_rows; ++i) tile[c][i] += column[i] * weight;
    }
  }
  for (Index c = 0; c < atoms; ++c)
    for (Index i = 0; i < n_rows; ++i) products[c * products_ld + begin + i] = tile[c][i];
}

}  // namespace

void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == d && b.cols() == K);
  const Index row_blocks = (d + kRowBlock - 1) / kRowBlock;
  const bool linked = options.constraint != nullptr && !options.constraint->plain();
  DICTLEARN_ASSERT(!linked || options.constraint->rows() == d);
  const int threads =
      linked ? 1
             : int(std::clamp<Index>(std::min<Index>(options.threads, d / kMinRowsPerThread), 1,
                                     row_blocks));
  std::vector<double> block_squares(size_t(2 * row_blocks));  // two buffers: atom k and k+1
  Matrix products(d, kAtomBlock);                             // D a_k of the current block
  Vector step(d);
  const auto sweep = [&](int thread, int team) {
    const Index first_block = row_blocks * thread / team;
    const Index last_block = row_blocks * (thread + 1) / team;
    const Index begin = first_block * kRowBlock, end = std::min(d, last_block * kRowBlock);
    Index parity = 0;
    for (Index pass = 0; pass < options.passes; ++pass) {
      for (Index k0 = 0; k0 < K; k0 += kAtomBlock) {
        const Index atoms = std::min(kAtomBlock, K - k0);
        for (Index block = first_block; block < last_block; ++block) {
          const Index row = block * kRowBlock, rows = std::min(kRowBlock, d - row);
          if (rows == kRowBlock)
            block_products<kRowBlock>(a, dictionary, k0, atoms, row, rows, products.data(), d);
          else
            block_products<0>(a, dictionary, k0, atoms, row, rows, products.data(), d);
        }
        for (Index c = 0; c < atoms; ++c) {
          const Index k = k0 + c;
          const double curvature = a(k, k);
          if (!(curvature > options.min_curvature)) continue;  // same on every thread
          // u_k = d_k + (b_k - D a_k) / A_kk (clipped at 0 when positive), on my rows.
          double* squares = block_squares.data() + parity * row_blocks;
          parity ^= 1;
          const double inverse_curvature = 1.0 / curvature;
          const double* d_k = dictionary.data() + k * d;
          const double* b_k = b.data() + k * d;
          const double* p_k = products.data() + c * d;
          for (Index block = first_block; block < last_block; ++block) {
            const Index row = block * kRowBlock, row_end = std::min(d, row + kRowBlock);
            double sum = 0.0;
            for (Index i = row; i < row_end; ++i) {
              double value = d_k[i] + (b_k[i] - p_k[i]) * inverse_curvature;
              if (options.positive) value = std::max(value, 0.0);
              step(i) = value;
              sum += value * value;
            }
            squares[block] = sum;
          }
          // Every thread needs the norm of the whole step before scaling its rows.
          if (team > 1) {
#pragma omp barrier
          }
          double norm_squared = 0.0;
          for (Index block = 0; block < row_blocks; ++block) norm_squared += squares[block];
          // Projection onto the unit ball (linked: onto each modality's ball, one thread).
          double scale = norm_squared > 1.0 ? 1.0 / std::sqrt(norm_squared) : 1.0;
          if (linked) {
            options.constraint->project(k, step.data(), d);
            scale = 1.0;
          }
          double* atom = dictionary.data() + k * d;
          for (Index i = begin; i < end; ++i) {
            const double updated = step(i) * scale;
            const double change = updated - atom[i];
            atom[i] = updated;
            // The later atoms of this block see the new d_k through their products.
            for (Index later = c + 1; later < atoms; ++later)
              products(i, later) += change * a(k, k0 + later);
          }
          // No barrier here: a thread only ever reads its own rows of D and of the
          // products; the second buffer of block sums keeps a fast thread from
          // overwriting this atom's before a slow one has read them.
        }
        // The next block's products read my rows only, too: no barrier.
      }
    }
  };
  if (threads == 1) {
    sweep(0, 1);
  } else {
#pragma omp parallel num_threads(threads)
    sweep(omp_get_thread_num(), omp_get_num_threads());
  }
}

double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary) {
  return 0.5 * (dictionary.transpose() * dictionary).cwiseProduct(a).sum() -
         dictionary.cwiseProduct(b).sum();
}

}  // namespace dictlearn
