#pragma once
// The sufficient statistics of the dictionary update (Mairal, Bach, Ponce, Sapiro,
// "Online learning for matrix factorization and sparse coding", JMLR 2010):
//   A = sum_i w_i a_i a_i^T   (K x K)        B = sum_i w_i x_i a_i^T   (d x K)
// Each rank computes its minibatch part, packs A's upper triangle, B and a few scalars into
// one buffer, and a single allreduce sums the buffers of all ranks. Codes are usually very
// sparse (s << K nonzeros), so the parts are accumulated from the nonzeros only, O(s^2 + d s)
// per sample instead of O(K^2 + d K); above a measured density the two BLAS-3 calls (SYRK
// for C C^T, GEMM for X C^T) are faster and are used instead.
//
// Online weighting (section 3.4 of the paper, in scikit-learn's form): at minibatch step t
// (0-based) with global batch size b,
//   theta = (t + 1) b            if t < b - 1,   theta = b^2 + t + 1 - b   otherwise
//   beta  = ((theta + 1 - b) / (theta + 1))^rho
//   A <- beta A + A_batch / b,   B <- beta B + B_batch / b.
// rho = 1 (`forget-rate`) reproduces scikit-learn's MiniBatchDictionaryLearning; larger rho
// forgets the codes computed with early, poor dictionaries faster (memory ~ t / rho
// minibatches). dictlearn's default rho = 5 was chosen by measurement: on synthetic data
// rho = 1 leaves ~20% of the true atoms as mixtures after 5 epochs where rho = 5 recovers
// them, and on 8x8 image patches its test objective is ~0.3% lower than rho = 1.
// With update-every=epoch the statistics are instead the plain sums of the epoch.
#include <utility>
#include <vector>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

/// Layout of the packed buffer: [A upper triangle, column by column | B | extras].
class PackedStatistics {
 public:
  PackedStatistics(Index atoms, Index dim, Index extras);

  Index size() const { return Index(buffer_.size()); }
  double* data() { return buffer_.data(); }
  const double* data() const { return buffer_.data(); }
  double* extras() { return buffer_.data() + triangle_ + dim_ * atoms_; }
  const double* extras() const { return buffer_.data() + triangle_ + dim_ * atoms_; }

  /// Fills the A and B parts from this rank's minibatch (x: d x n, codes: K x n) and zeroes
  /// the extras. Picks the sparse or the dense (BLAS-3) accumulation by the codes' density.
  /// The sparse one runs on `threads` OpenMP threads (the same sums for any count).
  /// `nonzeros`: the codes' nonzero count if the caller has it (else counted here).
  void pack(const Matrix& x, const Matrix& codes, int threads = 1, Index nonzeros = -1);
  /// The two accumulations, for tests and benchmarks; same results up to rounding.
  void pack_sparse(const Matrix& x, const Matrix& codes, int threads = 1);
  void pack_dense(const Matrix& x, const Matrix& codes);
  /// Nonzeros per sample above which pack() uses pack_dense (measured crossover).
  static Index dense_crossover(Index atoms, Index dim);
  /// pack()'s choice for `nonzeros` nonzeros in `samples` codes.
  static bool prefers_dense(Index atoms, Index dim, Index nonzeros, Index samples);
  /// Which triangles of A add_to writes: both (a full symmetric matrix) or the upper one
  /// with the diagonal (for readers of only that, like the online update; the strictly
  /// lower triangle is then left as it was).
  enum class Triangles { both, upper };
  /// a <- a_scale * a + scale * packed A, b likewise (a, b full matrices), over `threads`
  /// OpenMP threads (the same result for any count).
  /// Only rows [b_rows.first, b_rows.second) of b when given (a row-split update reads
  /// no others; default: all).
  void add_to(double a_scale, double scale, Matrix& a, Matrix& b, int threads = 1,
              std::pair<Index, Index> b_rows = {0, -1},
              Triangles a_triangles = Triangles::both) const;
  /// usage[k] += the number of columns of `codes` (the last pack()'s, K x n) in which
  /// atom k is nonzero. After a sparse pack, from its per-atom lists; else by a scan.
  void add_atom_usage(const Matrix& codes, double* usage) const;

 private:
  Index atoms_, dim_, triangle_;
  std::vector<double> buffer_;
  Matrix gram_work_;   // K x K
  Matrix cross_work_;  // d x K
  // pack_sparse: the nonzeros of one thread's range of samples (kept between calls, so
  // that the lists stop growing after the first minibatches).
  struct alignas(64) SparseCodes {  // own cache lines: the threads fill theirs at once
    std::vector<Index> first;       // per sample, where its nonzeros start (and the end)
    std::vector<Index> support;     // the nonzero rows, sample after sample
    std::vector<double> values;     // and their values
    std::vector<Index> scratch;     // K entries: one code's nonzero rows, before appending
  };
  std::vector<SparseCodes> nonzeros_;
  // pack_sparse: the same nonzeros by atom, entries atom_first_[k] .. atom_first_[k + 1]
  // for atom k, in sample order.
  struct AtomEntry {
    const Index* support;  // the sample's nonzero rows
    const double* values;  // and values
    Index position;        // of this atom in them
    Index sample;          // column of x
  };
  std::vector<Index> atom_first_;  // K + 1
  std::vector<Index> atom_cursor_;
  std::vector<AtomEntry> atom_entries_;
  bool lists_current_ = false;  // the last pack() was sparse: atom_first_ counts its codes
};

/// beta of the online weighting above.
double online_forget_factor(Index step, Index batch_size, double forget_rate);

}  // namespace dictlearn
