#include "dictlearn/statistics/sufficient_statistics.hpp"

#include <algorithm>
#include <cmath>

#include <omp.h>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/nonzero_rows.hpp"
#include "dictlearn/core/transpose_block.hpp"

namespace dictlearn {

PackedStatistics::PackedStatistics(Index atoms, Index dim, Index extras)
    : atoms_(atoms),
      dim_(dim),
      triangle_(atoms * (atoms + 1) / 2),
      buffer_(size_t(triangle_ + dim * atoms + extras), 0.0),
      nonzeros_(1) {}

namespace {
// Appends the nonzeros of one code (K values), in atom order, to the lists of `codes`;
// returns how many. The lists keep their capacity between calls: no allocation once warm.
template <class Lists>  // PackedStatistics::SparseCodes
Index append_nonzeros(const double* code, Index K, Lists& codes) {
  if (Index(codes.scratch.size()) < K) codes.scratch.resize(std::size_t(K));
  const Index* rows = codes.scratch.data();
  const Index count = nonzero_rows(code, K, codes.scratch.data());
  for (Index q = 0; q < count; ++q) {
    codes.support.push_back(rows[q]);
    codes.values.push_back(code[rows[q]]);
  }
  return count;
}
}  // namespace

Index PackedStatistics::dense_crossover(Index atoms, Index dim) {
  // Per sample the sparse path costs ~ s^2/2 + d s scattered multiply-adds, the dense one
  // K^2/2 + d K at BLAS-3 speed, kDenseSpeedRatio times faster per multiply-add
  // (measured with K = 256, 1024 and d = 64, 256: crossovers at s ~ 80, 100, 380, 280).
  constexpr double kDenseSpeedRatio = 6.0;
  const double k = double(atoms), d = double(dim);
  const double dense = (0.5 * k * k + d * k) / kDenseSpeedRatio;
  // Solve s^2/2 + d s = dense for s.
  return Index(-d + std::sqrt(d * d + 2.0 * dense));
}

bool PackedStatistics::prefers_dense(Index atoms, Index dim, Index nonzeros, Index samples) {
  return samples > 0 && nonzeros > dense_crossover(atoms, dim) * samples;
}

void PackedStatistics::pack(const Matrix& x, const Matrix& codes, int threads, Index nonzeros) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  if (nonzeros < 0) nonzeros = Index((codes.array() != 0.0).count());
  if (prefers_dense(atoms_, dim_, nonzeros, codes.cols()))
    pack_dense(x, codes);
  else
    pack_sparse(x, codes, threads);
}

void PackedStatistics::add_atom_usage(const Matrix& codes, double* usage) const {
  DICTLEARN_ASSERT(codes.rows() == atoms_);
  if (lists_current_) {  // the counting sort's atom boundaries hold the counts
    for (Index k = 0; k < atoms_; ++k)
      usage[k] += double(atom_first_[size_t(k) + 1] - atom_first_[size_t(k)]);
    return;
  }
  for (Index j = 0; j < codes.cols(); ++j)
    for (Index k = 0; k < atoms_; ++k) usage[k] += codes(k, j) != 0.0 ? 1.0 : 0.0;
}

void PackedStatistics::pack_sparse(const Matrix& x, const Matrix& codes, int threads) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  lists_current_ = true;
  const Index n = codes.cols(), K = atoms_, d = dim_;
  double* triangle = buffer_.data();  // (i, k), i <= k, at k (k + 1) / 2 + i
  double* cross = buffer_.data() + triangle_;
  std::fill(buffer_.begin() + triangle_ + d * K, buffer_.end(), 0.0);  // the extras
  constexpr Index kAtomBlock = 32;
  const int team =
      int(std::clamp<Index>(threads, 1, std::max<Index>(1, (K + kAtomBlock - 1) / kAtomBlock)));
  if (Index(nonzeros_.size()) < team) nonzeros_.resize(size_t(team));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const int me = omp_get_thread_num(), members = omp_get_num_threads();
    // The nonzeros of a range of samples per thread (support and values, in atom order
    // within a sample), each thread in its own lists.
    {
      SparseCodes& mine = nonzeros_[size_t(me)];
      mine.first.clear();
      mine.support.clear();
      mine.values.clear();
      for (Index j = n * me / members; j < n * (me + 1) / members; ++j) {
        mine.first.push_back(Index(mine.support.size()));
        append_nonzeros(codes.data() + j * K, K, mine);
      }
      mine.first.push_back(Index(mine.support.size()));
    }
#pragma omp barrier
#pragma omp single
    {
      // The same nonzeros by atom (a counting sort), samples in ascending order in each.
      atom_first_.assign(size_t(K) + 1, 0);
      for (int part = 0; part < members; ++part)
        for (const Index k : nonzeros_[size_t(part)].support) ++atom_first_[size_t(k) + 1];
      for (Index k = 0; k < K; ++k) atom_first_[size_t(k) + 1] += atom_first_[size_t(k)];
      atom_entries_.resize(size_t(atom_first_[size_t(K)]));
      atom_cursor_.assign(atom_first_.begin(), atom_first_.end() - 1);
      for (int part = 0; part < members; ++part) {
        const SparseCodes& lists = nonzeros_[size_t(part)];
        const Index first_sample = n * part / members;
        for (Index s = 0; s + 1 < Index(lists.first.size()); ++s) {
          const Index begin = lists.first[size_t(s)], end = lists.first[size_t(s) + 1];
          for (Index q = begin; q < end; ++q)
            atom_entries_[size_t(atom_cursor_[size_t(lists.support[size_t(q)])]++)] = {
                lists.support.data() + begin, lists.values.data() + begin, q - begin,
                first_sample + s};
        }
      }
    }
    // Threads own interleaved blocks of atoms, i.e. the columns k of A's triangle and of
    // B, and find their terms in the atom lists: no thread scans the others' nonzeros
    // (an ownership test per nonzero mispredicted at every other one). A column takes its
    // samples' terms in sample order, as a sample-by-sample sum would, so the sums are
    // bitwise the same for any thread count.
    for (Index k0 = me * kAtomBlock; k0 < K; k0 += members * kAtomBlock) {
      for (Index k = k0; k < std::min(K, k0 + kAtomBlock); ++k) {
        double* column = triangle + k * (k + 1) / 2;
        double* b_k = cross + k * d;
        std::fill(column, column + k + 1, 0.0);
        std::fill(b_k, b_k + d, 0.0);
        for (Index e = atom_first_[size_t(k)]; e < atom_first_[size_t(k) + 1]; ++e) {
          const AtomEntry& entry = atom_entries_[size_t(e)];
          const double value = entry.values[entry.position];
          for (Index p = 0; p <= entry.position; ++p)
            column[entry.support[p]] += entry.values[p] * value;
          const double* sample = x.data() + entry.sample * d;
          for (Index i = 0; i < d; ++i) b_k[i] += sample[i] * value;
        }
      }
    }
  }
}

void PackedStatistics::pack_dense(const Matrix& x, const Matrix& codes) {
  DICTLEARN_ASSERT(x.cols() == codes.cols() && codes.rows() == atoms_ && x.rows() == dim_);
  lists_current_ = false;
  if (gram_work_.rows() != atoms_) {  // first dense minibatch: allocate the BLAS outputs
    gram_work_.resize(atoms_, atoms_);
    cross_work_.resize(dim_, atoms_);
  }
  blas::syrk_upper(1.0, codes, 0.0, gram_work_);             // C C^T (upper)
  blas::gemm(false, true, 1.0, x, codes, 0.0, cross_work_);  // X C^T
  double* out = buffer_.data();
  for (Index j = 0; j < atoms_; ++j)
    for (Index i = 0; i <= j; ++i) *out++ = gram_work_(i, j);
  for (Index i = 0; i < dim_ * atoms_; ++i) *out++ = cross_work_.data()[i];
  for (double* e = extras(); e != buffer_.data() + buffer_.size(); ++e) *e = 0.0;
}

void PackedStatistics::add_to(double a_scale, double scale, Matrix& a, Matrix& b, int threads,
                              std::pair<Index, Index> b_rows, Triangles a_triangles) const {
  DICTLEARN_ASSERT(a.rows() == atoms_ && a.cols() == atoms_ && b.rows() == dim_ &&
                   b.cols() == atoms_);
  // A by blocks of 16 columns: the upper part of each column (contiguous), then the block
  // mirrored onto its 16 rows of the lower triangle while its columns are still in cache
  // (each column of the lower part gets 16 contiguous values).
  // B elementwise. Every element is one multiply-add whoever computes it, so the result
  // does not depend on the thread count.
  constexpr Index kTile = 16;
  const Index K = atoms_, tile_columns = (K + kTile - 1) / kTile;
  const Index first_row = std::clamp<Index>(b_rows.first, 0, dim_);
  const Index end_row =
      b_rows.second < 0 ? dim_ : std::clamp<Index>(b_rows.second, first_row, dim_);
  const double* packed_a = buffer_.data();  // (i, j), i <= j, at j (j + 1) / 2 + i
  const double* packed_b = buffer_.data() + triangle_;
  double* out_a = a.data();
  double* out_b = b.data();
  const int team = std::max(1, threads);
#pragma omp parallel num_threads(team) if (team > 1 && K >= 2 * kTile)
  {
    // Column blocks from the right (the longest first) handed out one by one.
#pragma omp for schedule(dynamic, 1) nowait
    for (Index block = tile_columns - 1; block >= 0; --block) {
      const Index j0 = block * kTile, j1 = std::min(K, j0 + kTile);
      for (Index j = j0; j < j1; ++j) {
        const double* in = packed_a + j * (j + 1) / 2;
        double* column = out_a + j * K;
        for (Index i = 0; i <= j; ++i) column[i] = a_scale * column[i] + scale * in[i];
      }
      // A(j, i) = A(i, j) for i < j: rows j0..j1 of the columns left of the block, then
      // the block's own lower triangle.
      if (a_triangles == Triangles::upper) continue;
      transpose_block(out_a + j0 * K, K, j0, j1 - j0, out_a + j0, K);
      mirror_upper_to_lower(out_a + j0 + j0 * K, j1 - j0, K);
    }
#pragma omp for schedule(static) nowait
    for (Index k = 0; k < K; ++k)
      for (Index i = k * dim_ + first_row; i < k * dim_ + end_row; ++i)
        out_b[i] = a_scale * out_b[i] + scale * packed_b[i];
  }
}

double online_forget_factor(Index step, Index batch_size, double forget_rate) {
  const double b = double(batch_size), t = double(step);
  const double theta = step < batch_size - 1 ? (t + 1.0) * b : b * b + t + 1.0 - b;
  return std::pow((theta + 1.0 - b) / (theta + 1.0), forget_rate);
}

}  // namespace dictlearn
