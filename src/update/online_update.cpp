#include "dictlearn/update/online_update.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/parallel/communicator.hpp"

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
// choose_row_split: small allreduces timed to estimate the per-atom latency, and the
// margin the saved time must exceed (per-atom synchronisation also passes on jitter).
constexpr int kLatencyProbes = 32;
constexpr double kSplitMargin = 1.5;

Index count_row_blocks(Index d) { return (d + kRowBlock - 1) / kRowBlock; }

// Rows can be split: at least two ranks, and atoms projected onto the plain unit ball
// (a linked constraint needs whole atoms).
bool splittable(const OnlineUpdateOptions& options) {
  return options.row_split != nullptr && options.row_split->size() > 1 &&
         (options.constraint == nullptr || options.constraint->plain());
}

// After a row-split update every rank has its own rows of D: gather the others'.
void share_rows(const Communicator& comm, Index row_blocks, Matrix& dictionary) {
  const Index d = dictionary.rows(), K = dictionary.cols();
  const int ranks = comm.size();
  const auto n_ranks = static_cast<size_t>(ranks);
  std::vector<int> counts(n_ranks), offsets(n_ranks);
  std::vector<Index> first_row(n_ranks + 1);
  for (int r = 0; r <= ranks; ++r)
    first_row[size_t(r)] = std::min(d, row_blocks * r / ranks * kRowBlock);
  for (int r = 0; r < ranks; ++r) {
    counts[size_t(r)] = int((first_row[size_t(r) + 1] - first_row[size_t(r)]) * K);
    offsets[size_t(r)] = int(first_row[size_t(r)] * K);
  }
  // Rank r's rows, column after column, then every rank's blocks one after another.
  Vector gathered(d * K);
  const int rank = comm.rank();
  const Index my_first = first_row[size_t(rank)], my_rows = first_row[size_t(rank) + 1] - my_first;
  double* mine = gathered.data() + offsets[size_t(rank)];
  for (Index k = 0; k < K; ++k)
    for (Index i = 0; i < my_rows; ++i) mine[k * my_rows + i] = dictionary(my_first + i, k);
  check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered.data(), counts.data(),
                           offsets.data(), MPI_DOUBLE, comm.get()),
            "MPI_Allgatherv (dictionary rows)");
  for (int r = 0; r < ranks; ++r) {
    if (r == rank) continue;
    const Index first = first_row[size_t(r)], rows = first_row[size_t(r) + 1] - first;
    const double* theirs = gathered.data() + offsets[size_t(r)];
    for (Index k = 0; k < K; ++k)
      for (Index i = 0; i < rows; ++i) dictionary(first + i, k) = theirs[k * rows + i];
  }
}

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

RowSplit parse_row_split(const std::string& name) {
  if (name == "auto") return RowSplit::automatic;
  if (name == "off") return RowSplit::off;
  if (name == "on") return RowSplit::on;
  throw Error(cat("update-split: unknown value '", name, "' (expected auto, on or off)"));
}

std::string to_string(RowSplit split) {
  return split == RowSplit::automatic ? "auto" : split == RowSplit::off ? "off" : "on";
}

bool online_update_splits_rows(const OnlineUpdateOptions& options) {
  // automatic is unresolved here (see choose_row_split): no split.
  return options.split == RowSplit::on && splittable(options);
}

RowSplit choose_row_split(const OnlineUpdateOptions& options, Index d, Index K,
                          double sweep_seconds) {
  const Index row_blocks = count_row_blocks(d);
  if (!splittable(options) || row_blocks < 2) return RowSplit::off;
  const Communicator* comm = options.row_split;
  // The message of the split sweep: one partial norm per row block.
  const auto blocks = static_cast<size_t>(row_blocks);
  std::vector<double> send(blocks, 0.0), receive(blocks, 0.0);
  comm->barrier();
  const double start = MPI_Wtime();
  for (int probe = 0; probe < kLatencyProbes; ++probe)
    check_mpi(MPI_Allreduce(send.data(), receive.data(), int(row_blocks), MPI_DOUBLE, MPI_SUM,
                            comm->get()),
              "MPI_Allreduce (latency probe)");
  // The slowest rank's figures, so that every rank takes the same decision.
  double measured[2] = {sweep_seconds, (MPI_Wtime() - start) / kLatencyProbes};
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, measured, 2, MPI_DOUBLE, MPI_MAX, comm->get()),
            "MPI_Allreduce (row split decision)");
  const double ranks = double(comm->size());
  const double saved = (1.0 - 1.0 / ranks) * measured[0];
  const double added = double(options.passes * K + 1) * measured[1];  // + the allgather
  return saved > kSplitMargin * added ? RowSplit::on : RowSplit::off;
}

void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == d && b.cols() == K);
  const Index row_blocks = count_row_blocks(d);
  const bool linked = options.constraint != nullptr && !options.constraint->plain();
  DICTLEARN_ASSERT(!linked || options.constraint->rows() == d);
  // Rows of D: ranks own contiguous ranges of row blocks (when split), threads share their
  // rank's range. Every block is computed by the same instructions wherever it runs.
  const bool split = online_update_splits_rows(options);
  const int ranks = split ? options.row_split->size() : 1;
  const int rank = split ? options.row_split->rank() : 0;
  const Index rank_first_block = row_blocks * rank / ranks;
  const Index rank_last_block = row_blocks * (rank + 1) / ranks;
  const Index rank_rows =
      std::min(d, rank_last_block * kRowBlock) - std::min(d, rank_first_block * kRowBlock);
  const int threads =
      linked
          ? 1
          : int(std::clamp<Index>(std::min<Index>(options.threads, rank_rows / kMinRowsPerThread),
                                  1, std::max<Index>(1, rank_last_block - rank_first_block)));
  std::vector<double> block_squares(size_t(2 * row_blocks));  // two buffers: atom k and k+1
  // Split over ranks: each rank's block sums go out in `my_squares` (zero elsewhere, so
  // the summing allreduce delivers every block's value exactly, x + 0 = x) and come back
  // in block_squares; the norm is then summed in block order, as on one rank.
  std::vector<double> my_squares(split ? size_t(row_blocks) : 0, 0.0);
  Matrix products(d, kAtomBlock);  // D a_k of the current block
  Vector step(d);
  const auto sweep = [&](int thread, int team) {
    const Index rank_blocks = rank_last_block - rank_first_block;
    const Index first_block = rank_first_block + rank_blocks * thread / team;
    const Index last_block = rank_first_block + rank_blocks * (thread + 1) / team;
    const Index begin = std::min(d, first_block * kRowBlock);
    const Index end = std::min(d, last_block * kRowBlock);
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
          double* my_sums = split ? my_squares.data() : squares;
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
            my_sums[block] = sum;
          }
          // Every thread (and rank) needs the norm of the whole step before scaling its rows.
          if (team > 1) {
#pragma omp barrier
          }
          if (split) {
            if (thread == 0)
              check_mpi(MPI_Allreduce(my_squares.data(), squares, int(row_blocks), MPI_DOUBLE,
                                      MPI_SUM, options.row_split->get()),
                        "MPI_Allreduce (atom step norms)");
            if (team > 1) {
#pragma omp barrier
            }
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
  if (split) share_rows(*options.row_split, row_blocks, dictionary);
}

double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary) {
  return 0.5 * (dictionary.transpose() * dictionary).cwiseProduct(a).sum() -
         dictionary.cwiseProduct(b).sum();
}

}  // namespace dictlearn
