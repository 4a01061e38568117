#include "dictlearn/update/online_update.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

// Rows of D are processed in blocks of this many: a block's part of D a_k stays in
// registers, and thread boundaries fall on block boundaries, so every row is computed
// by the same instruction sequence whatever the thread count (bitwise-stable results).
constexpr Index kRowBlock = 16;
// Below this many rows per thread, one barrier per atom costs more than the work it shares.
constexpr Index kMinRowsPerThread = 128;

// u = d_k + (b_k - D a_k) / A_kk on rows [begin, end) of one block, clipped at 0 when
// positive; returns the block's sum of squares of u.
double atom_step_block(const Matrix& a, const Matrix& b, const Matrix& dictionary, Index k,
                       Index begin, Index end, bool positive, double* step) {
  const Index K = dictionary.cols(), d = dictionary.rows(), rows = end - begin;
  double product[kRowBlock] = {};
  const double* a_k = a.data() + k * K;  // column k of the symmetric A (= row k)
  const double* column = dictionary.data() + begin;
  if (rows == kRowBlock) {  // the common case, with a constant trip count to unroll
    for (Index j = 0; j < K; ++j, column += d) {
      const double weight = a_k[j];
      for (Index i = 0; i < kRowBlock; ++i) product[i] += column[i] * weight;
    }
  } else {
    for (Index j = 0; j < K; ++j, column += d) {
      const double weight = a_k[j];
      for (Index i = 0; i < rows; ++i) product[i] += column[i] * weight;
    }
  }
  const double inverse_curvature = 1.0 / a(k, k);
  const double* d_k = dictionary.data() + k * d + begin;
  const double* b_k = b.data() + k * d + begin;
  double squares = 0.0;
  for (Index i = 0; i < rows; ++i) {
    double value = d_k[i] + (b_k[i] - product[i]) * inverse_curvature;
    if (positive) value = std::max(value, 0.0);
    step[i] = value;
    squares += value * value;
  }
  return squares;
}

}  // namespace

void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == d && b.cols() == K);
  // One matrix-vector product D a_k per atom step (as scikit-learn and SPAMS): d*K work,
  // reading D from cache, instead of maintaining D A with strided rank-one refreshes.
  const Index blocks = (d + kRowBlock - 1) / kRowBlock;
  const int threads =
      int(std::clamp<Index>(std::min<Index>(options.threads, d / kMinRowsPerThread), 1, blocks));
  std::vector<double> block_squares(size_t(2 * blocks));  // two buffers: atom k and k+1
  Vector step(d);
  const auto sweep = [&](int thread, int team) {
    const Index first_block = blocks * thread / team, last_block = blocks * (thread + 1) / team;
    Index parity = 0;
    for (Index pass = 0; pass < options.passes; ++pass) {
      for (Index k = 0; k < K; ++k) {
        if (!(a(k, k) > options.min_curvature)) continue;
        double* squares = block_squares.data() + parity * blocks;
        parity ^= 1;
        for (Index block = first_block; block < last_block; ++block) {
          const Index begin = block * kRowBlock, end = std::min(d, begin + kRowBlock);
          squares[block] = atom_step_block(a, b, dictionary, k, begin, end, options.positive,
                                           step.data() + begin);
        }
        // Every thread needs the norm of the whole step before scaling its rows.
        if (team > 1) {
#pragma omp barrier
        }
        double norm_squared = 0.0;
        for (Index block = 0; block < blocks; ++block) norm_squared += squares[block];
        // Projection onto the unit ball.
        const double scale = norm_squared > 1.0 ? 1.0 / std::sqrt(norm_squared) : 1.0;
        const Index begin = first_block * kRowBlock, end = std::min(d, last_block * kRowBlock);
        double* d_k = dictionary.data() + k * d;
        for (Index i = begin; i < end; ++i) d_k[i] = step(i) * scale;
        // No barrier here: a thread's next product reads only its own rows of D; the
        // second buffer of block sums keeps a fast thread from overwriting this atom's.
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
