#include "dictlearn/update/online_update.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"

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
// Plain unit balls: the threads and ranks sharing the rows meet once per block of
// kAtomBlock atoms (see sweep_atom_block; 16 and 32 atoms per meeting measured slower).
constexpr Index kTriangle = kAtomBlock * (kAtomBlock + 1) / 2;  // a Gram matrix's triangle
// Below this many rows per thread, a barrier per atom (or per block of atoms) costs more
// than the work it shares.
constexpr Index kMinRowsPerThread = 128;
constexpr Index kMinRowsPerThreadByBlocks = 32;
// choose_row_split: the split's collectives timed to estimate their latency, and the
// margin the saved time must exceed (each synchronisation also passes on jitter).
constexpr int kLatencyProbes = 32;
constexpr double kSplitMargin = 1.5;

Index count_row_blocks(Index d) { return (d + kRowBlock - 1) / kRowBlock; }

// Rows can be split: at least two ranks, and atoms projected onto the plain unit ball
// (a linked constraint needs whole atoms).
bool splittable(const OnlineUpdateOptions& options) {
  return options.row_split != nullptr && options.row_split->size() > 1 &&
         (options.constraint == nullptr || options.constraint->plain());
}

// Rank r owns row blocks [blocks r / P, blocks (r + 1) / P) of D when the rows are split.
Index first_block_of(Index row_blocks, int rank, int ranks) { return row_blocks * rank / ranks; }

// The first row of rank r's range, for r = 0 .. ranks (the last entry is d).
std::vector<Index> first_rows(Index d, Index row_blocks, int ranks) {
  std::vector<Index> first_row(static_cast<size_t>(ranks) + 1);
  for (int r = 0; r <= ranks; ++r)
    first_row[size_t(r)] = std::min(d, first_block_of(row_blocks, r, ranks) * kRowBlock);
  return first_row;
}

// Node shared memory for the split (OnlineUpdateOptions::shared): each rank's segment holds
// a sequence counter, two buffers of its row blocks' sums and two of its rows of D (used
// alternately by step parity, so a rank one step ahead never overwrites values a slower
// rank still reads). A rank publishes by writing a buffer, then its counter (release);
// the others wait for the counter (acquire) and copy. Rank A reuses a buffer two steps
// later, after passing the step in between, which needs every other rank's counter,
// i.e. after they have read it.
struct SharedLayout {
  static constexpr std::size_t kCounter = 0, kBuffers = 64;
  std::size_t sums_bytes, rows_offset, total;
  SharedLayout(Index row_blocks, Index rows, Index K) {
    sums_bytes = std::size_t(row_blocks * kTriangle) * sizeof(double);
    rows_offset = kBuffers + 2 * ((sums_bytes + 63) / 64 * 64);
    total = rows_offset + 2 * std::size_t(rows * K) * sizeof(double);
  }
};

// After a row-split update every rank has its own rows of D: gather the others'. Rank r's
// rows travel column after column (rows_r x K), through node shared memory or one
// MPI_Allgatherv.
void share_rows(const Communicator& comm, Index row_blocks, Matrix& dictionary,
                const NodeSharedMemory* shared, std::uint64_t* sequence) {
  const Index d = dictionary.rows(), K = dictionary.cols();
  const int ranks = comm.size(), rank = comm.rank();
  const std::vector<Index> first_row = first_rows(d, row_blocks, ranks);
  const auto rows_of = [&](int r) { return first_row[size_t(r) + 1] - first_row[size_t(r)]; };
  const auto pack_mine = [&](double* out) {
    const Index first = first_row[size_t(rank)], rows = rows_of(rank);
    for (Index k = 0; k < K; ++k)
      for (Index i = 0; i < rows; ++i) out[k * rows + i] = dictionary(first + i, k);
  };
  const auto unpack_others = [&](const auto& packed_rows_of) {
    for (int r = 0; r < ranks; ++r) {
      if (r == rank) continue;
      const Index first = first_row[size_t(r)], rows = rows_of(r);
      const double* theirs = packed_rows_of(r);
      for (Index k = 0; k < K; ++k)
        for (Index i = 0; i < rows; ++i) dictionary(first + i, k) = theirs[k * rows + i];
    }
  };
  if (shared != nullptr) {
    const SharedLayout layout(row_blocks, d, K);  // rows_offset does not depend on rows
    const std::uint64_t step = ++*sequence;
    const auto buffer_of = [&](int r) {
      return reinterpret_cast<double*>(static_cast<char*>(shared->segment(r)) + layout.rows_offset +
                                       (step & 1) * std::size_t(rows_of(r) * K) * sizeof(double));
    };
    pack_mine(buffer_of(rank));
    publish_and_wait(*shared, SharedLayout::kCounter, step);
    unpack_others(buffer_of);
    return;
  }
  const auto n_ranks = static_cast<size_t>(ranks);
  std::vector<int> counts(n_ranks), offsets(n_ranks);
  for (int r = 0; r < ranks; ++r) {
    counts[size_t(r)] = int(rows_of(r) * K);
    offsets[size_t(r)] = int(first_row[size_t(r)] * K);
  }
  Vector gathered(d * K);  // every rank's block, one after another
  pack_mine(gathered.data() + offsets[size_t(rank)]);
  check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered.data(), counts.data(),
                           offsets.data(), MPI_DOUBLE, comm.get()),
            "MPI_Allgatherv (dictionary rows)");
  unpack_others([&](int r) { return gathered.data() + offsets[size_t(r)]; });
}

// The split sweep's one collective: each rank has written `per_block` values for each of
// its row blocks into its part of a buffer of all blocks' values; afterwards every rank
// has all of them (an in-place allgather, no arithmetic, so that the sum over blocks is
// then formed in block order, the same on every rank and as on one rank).
class BlockExchange {
 public:
  BlockExchange(const Communicator& comm, Index row_blocks, Index per_block,
                const NodeSharedMemory* shared)
      : comm_(comm),
        shared_(shared),
        counts_(static_cast<size_t>(comm.size())),
        offsets_(counts_.size()),
        buffer_stride_(
            shared != nullptr ? (SharedLayout(row_blocks, 0, 0).sums_bytes + 63) / 64 * 64 : 0) {
    const int ranks = comm.size();
    for (int r = 0; r < ranks; ++r) {
      const Index first = first_block_of(row_blocks, r, ranks);
      const Index last = first_block_of(row_blocks, r + 1, ranks);
      counts_[size_t(r)] = int((last - first) * per_block);
      offsets_[size_t(r)] = int(first * per_block);
    }
    // The steps continue from the last update's (a new window starts at zero).
    if (shared_ != nullptr) sequence_ = last_published(*shared_, SharedLayout::kCounter);
  }
  void exchange(double* values) {
    if (shared_ == nullptr) {
      check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, values, counts_.data(),
                               offsets_.data(), MPI_DOUBLE, comm_.get()),
                "MPI_Allgatherv (atom step norms)");
      return;
    }
    const std::uint64_t sequence = ++sequence_;
    const int rank = shared_->rank();
    std::memcpy(buffer(rank, sequence), values + offsets_[size_t(rank)],
                sizeof(double) * size_t(counts_[size_t(rank)]));
    publish_and_wait(*shared_, SharedLayout::kCounter, sequence);
    for (int r = 0; r < shared_->ranks(); ++r)
      if (r != rank)
        std::memcpy(values + offsets_[size_t(r)], buffer(r, sequence),
                    sizeof(double) * size_t(counts_[size_t(r)]));
  }
  /// The last step published (share_rows continues the sequence).
  std::uint64_t* sequence() { return &sequence_; }

 private:
  double* buffer(int rank, std::uint64_t sequence) const {
    return reinterpret_cast<double*>(static_cast<char*>(shared_->segment(rank)) +
                                     SharedLayout::kBuffers + (sequence & 1) * buffer_stride_);
  }
  const Communicator& comm_;
  const NodeSharedMemory* shared_;
  std::vector<int> counts_, offsets_;
  std::size_t buffer_stride_;
  std::uint64_t sequence_ = 0;
};

// The block's weights are A(j, k0 + c) for every j and the block's atoms c: columns
// k0 + c of A as they are, or, when only A's upper triangle is current
// (OnlineUpdateOptions::a_upper_only), those columns for rows j < k0 and a row-major panel
// (panel[(j - k0) * 8 + c]) gathered here for the rest: the block's own rows from both
// sides of the diagonal, the rows past it from row k0 + c of each later column (8 values
// on one cache line). Either way every product takes the same terms in row order j.
void gather_panel(const Matrix& a, Index k0, Index atoms, double* panel) {
  const Index K = a.cols();
  const double* upper = a.data();
  for (Index j = k0; j < k0 + atoms; ++j)
    for (Index c = 0; c < kAtomBlock; ++c)
      panel[(j - k0) * kAtomBlock + c] =
          c < atoms ? upper[std::max(j, k0 + c) * K + std::min(j, k0 + c)] : 0.0;
  for (Index j = k0 + atoms; j < K; ++j) {
    __builtin_prefetch(upper + (j + 16) * K + k0);
    std::memcpy(panel + (j - k0) * kAtomBlock, upper + j * K + k0, sizeof(double) * kAtomBlock);
  }
}

// Where a block's weights come from: columns of A for rows j < column_rows (K: all of
// them), then the block's panel (gather_panel; its first row is j = k0 = column_rows).
struct BlockWeights {
  const Matrix& a;
  Index k0, column_rows;
  const double* panel;
};

// Calls term(j, weights, stride) for j = 0 .. K - 1 in order, the weight of atom c being
// weights[c * stride] (stride a std::integral_constant where it is known).
template <typename Term>
void for_each_weight_row(const BlockWeights& from, Term&& term) {
  const Index K = from.a.cols();
  const double* column = from.a.data() + from.k0 * K;  // A(j, k0 + c) at column[c * K + j]
  for (Index j = 0; j < from.column_rows; ++j) term(j, column + j, K);
  for (Index j = from.column_rows; j < K; ++j)
    term(j, from.panel + (j - from.k0) * kAtomBlock, std::integral_constant<Index, 1>());
}

// products(:, c) = D(rows, :) a_{k0 + c} for c < atoms, rows [begin, begin + rows).
template <Index kRows>
void block_products(const BlockWeights& weights_from, const Matrix& dictionary, Index atoms,
                    Index begin, Index rows, double* products, Index products_ld) {
  const Index d = dictionary.rows();
  const Index n_rows = kRows > 0 ? kRows : rows;
  double tile[kAtomBlock][kRowBlock] = {};
  const double* first = dictionary.data() + begin;
  for_each_weight_row(weights_from, [&](Index j, const double* weights, auto stride) {
    const double* column = first + j * d;
    for (Index c = 0; c < kAtomBlock; ++c) {
      const double weight = c < atoms ? weights[c * Index(stride)] : 0.0;
      for (Index i = 0; i < n_rows; ++i) tile[c][i] += column[i] * weight;
    }
  });
  for (Index c = 0; c < atoms; ++c)
    for (Index i = 0; i < n_rows; ++i) products[c * products_ld + begin + i] = tile[c][i];
}

// The full tile (16 rows, 8 atoms), the common case: the 16 x 8 sums live in registers
// (the compiler keeps arrays of vectors in memory, hence named accumulators). Same
// products, same order of operations per element as block_products.
#if defined(__AVX512F__)
// 32 vector registers: the whole tile at once, two 8-lane vectors per atom.
using Lanes = double __attribute__((vector_size(64)));
#elif defined(__AVX__)
using Lanes = double __attribute__((vector_size(32)));
#else
using Lanes = double __attribute__((vector_size(16)));
#endif
constexpr Index kLanes = Index(sizeof(Lanes) / sizeof(double));

// The tiles walk D column by column at a stride of d doubles. Once D outgrows the L2
// cache (784 x 256 is 1.6 MB), each column's rows come from the L3 cache, and the hardware
// prefetchers, which follow strides only within a 4 KiB page, do not fetch them ahead: the
// tile then waits on every column. Asking for the rows kPrefetchColumns columns ahead
// took one sweep from 2.70-2.82 to 1.94-1.98 ms at 784 x 256, from 17.6-17.9 to 10.6-11.3
// at 256 x 1024 and from 20.7-21.0 to 15.7-15.8 at 1024 x 512 (online_update_bench, one
// rank); the shapes that fit (64 x 256, 128 x 512) are unchanged. 12-16 columns were
// best, 4, 8 and 32 slower.
constexpr Index kPrefetchColumns = 16;

// `count` <= 16 consecutive rows of one column: the lines of the first and the last, i.e.
// all of them when the rows start on a line (16 doubles are two lines; the row blocks do
// when d is a multiple of 8). Past the end of D this asks for nothing harmful: a prefetch
// never faults.
void prefetch_rows(const double* rows, Index count) {
  __builtin_prefetch(rows);
  __builtin_prefetch(rows + count - 1);
}

Lanes load_lanes(const double* from) {
  Lanes value;
  std::memcpy(&value, from, sizeof value);
  return value;
}

void store_lanes(double* to, Lanes value) { std::memcpy(to, &value, sizeof value); }

#if defined(__AVX512F__)
void full_tile_products(const BlockWeights& weights_from, const Matrix& dictionary, Index begin,
                        double* products, Index products_ld) {
  static_assert(kRowBlock == 2 * kLanes && kAtomBlock == 8, "the register tile is 16 x 8");
  const Index d = dictionary.rows();
  Lanes s00{}, s01{}, s10{}, s11{}, s20{}, s21{}, s30{}, s31{}, s40{}, s41{}, s50{}, s51{}, s60{},
      s61{}, s70{}, s71{};
  const double* first = dictionary.data() + begin;
  for_each_weight_row(weights_from, [&](Index j, const double* weights, auto stride) {
    const double* column = first + j * d;
    prefetch_rows(column + kPrefetchColumns * d, kRowBlock);
    const Lanes low = load_lanes(column), high = load_lanes(column + 8);
    double w = weights[0];
    s00 += low * w, s01 += high * w;
    w = weights[stride];
    s10 += low * w, s11 += high * w;
    w = weights[2 * stride];
    s20 += low * w, s21 += high * w;
    w = weights[3 * stride];
    s30 += low * w, s31 += high * w;
    w = weights[4 * stride];
    s40 += low * w, s41 += high * w;
    w = weights[5 * stride];
    s50 += low * w, s51 += high * w;
    w = weights[6 * stride];
    s60 += low * w, s61 += high * w;
    w = weights[7 * stride];
    s70 += low * w, s71 += high * w;
  });
  double* out = products + begin;
  const Lanes sums[kAtomBlock][2] = {{s00, s01}, {s10, s11}, {s20, s21}, {s30, s31},
                                     {s40, s41}, {s50, s51}, {s60, s61}, {s70, s71}};
  for (Index c = 0; c < kAtomBlock; ++c) {
    store_lanes(out + c * products_ld, sums[c][0]);
    store_lanes(out + c * products_ld + 8, sums[c][1]);
  }
}
#else
// 16 vector registers: the 16 x 8 tile would need 32 (AVX2) and GCC spilled them to the
// stack with store-forwarding stalls (one sweep, 64x256 on a Zen 3: 8.3 ms). So the tile is
// formed in passes that keep their accumulators, the rows of D they read and the broadcast
// weight in registers (at most 15): two vectors of rows for atoms 0-5 (12 accumulators,
// over the tile's rows in halves), then four vectors for atoms 6-7 (8). The weights are
// broadcast from A, the rows loaded once per column: 22 loads per 32 multiply-adds, where
// passes of 4 vectors x 3 atoms (12 accumulators + 4 rows + 1 weight: one register short,
// so GCC re-read every row from L1 in each multiply-add) needed 40 and were bound by the
// loads (784x256: 4.4 ms).

// An empty asm that takes `value` in a vector register and may change it: the compiler
// must materialise it there (no instruction is emitted).
void in_register(Lanes& value) { asm("" : "+x"(value)); }

// Products of kAtoms atoms (the block's atoms first_atom ..) on kVectors vectors of rows.
template <int kVectors, int kAtoms>
void tile_pass(const BlockWeights& weights_from, Index first_atom, const double* first, Index d,
               double* out, Index products_ld) {
  static_assert((kVectors == 2 && kAtoms == 6) || (kVectors == 4 && kAtoms == 2),
                "passes of 2 vectors x 6 atoms or 4 vectors x 2 atoms");
  Lanes s00{}, s01{}, s02{}, s03{}, s10{}, s11{}, s12{}, s13{}, s20{}, s21{}, s30{}, s31{}, s40{},
      s41{}, s50{}, s51{};
  for_each_weight_row(weights_from, [&](Index j, const double* all_weights, auto stride) {
    const double* weights = all_weights + first_atom * stride;
    const double* column = first + j * d;
    prefetch_rows(column + kPrefetchColumns * d, kVectors * kLanes);
    Lanes r0 = load_lanes(column), r1 = load_lanes(column + kLanes);
    if constexpr (kVectors == 4) {
      Lanes r2 = load_lanes(column + 2 * kLanes), r3 = load_lanes(column + 3 * kLanes);
      // Keeps the rows in registers: GCC would fold each load into both atoms'
      // multiply-adds, two loads per row and the pass bound by them.
      in_register(r0), in_register(r1), in_register(r2), in_register(r3);
      double w = weights[0];
      s00 += r0 * w, s01 += r1 * w, s02 += r2 * w, s03 += r3 * w;
      w = weights[stride];
      s10 += r0 * w, s11 += r1 * w, s12 += r2 * w, s13 += r3 * w;
    } else {
      double w = weights[0];
      s00 += r0 * w, s01 += r1 * w;
      w = weights[stride];
      s10 += r0 * w, s11 += r1 * w;
      w = weights[2 * stride];
      s20 += r0 * w, s21 += r1 * w;
      w = weights[3 * stride];
      s30 += r0 * w, s31 += r1 * w;
      w = weights[4 * stride];
      s40 += r0 * w, s41 += r1 * w;
      w = weights[5 * stride];
      s50 += r0 * w, s51 += r1 * w;
    }
  });
  if constexpr (kVectors == 4) {
    const Lanes sums[2][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}};
    for (Index c = 0; c < 2; ++c)
      for (Index v = 0; v < 4; ++v) store_lanes(out + c * products_ld + v * kLanes, sums[c][v]);
  } else {
    const Lanes sums[6][2] = {{s00, s01}, {s10, s11}, {s20, s21},
                              {s30, s31}, {s40, s41}, {s50, s51}};
    for (Index c = 0; c < 6; ++c)
      for (Index v = 0; v < 2; ++v) store_lanes(out + c * products_ld + v * kLanes, sums[c][v]);
  }
}

void full_tile_products(const BlockWeights& weights_from, const Matrix& dictionary, Index begin,
                        double* products, Index products_ld) {
  constexpr Index kNarrowRows = 2 * kLanes, kWideRows = 4 * kLanes;
  static_assert(kAtomBlock == 8 && kRowBlock % kWideRows == 0, "atoms 0-5, then 6-7");
  const Index d = dictionary.rows();
  for (Index row = begin; row < begin + kRowBlock; row += kNarrowRows)
    tile_pass<2, 6>(weights_from, 0, dictionary.data() + row, d, products + row, products_ld);
  for (Index row = begin; row < begin + kRowBlock; row += kWideRows)
    tile_pass<4, 2>(weights_from, 6, dictionary.data() + row, d, products + 6 * products_ld + row,
                    products_ld);
}
#endif

// The dot product of two row blocks' values (kRowBlock rows). A sum in row order is a
// chain of dependent adds, and the 36 per row block made most of a sweep's time outside
// the products at d = 784; so four running sums (rows 0, 4, 8, 12; 1, 5, ...), added in
// pairs at the end. The same order in every build and for every block: the sums do not
// depend on how the rows are split over threads and ranks.
using Quad = double __attribute__((vector_size(32)));
static_assert(kRowBlock % 4 == 0, "row blocks of whole quads");

double full_block_dot(const double* x, const double* y) {
  Quad sums{}, xs, ys;
  for (Index i = 0; i < kRowBlock; i += 4) {
    std::memcpy(&xs, x + i, sizeof xs);
    std::memcpy(&ys, y + i, sizeof ys);
    sums += xs * ys;
  }
  return (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

// A last, shorter row block: in row order.
double partial_block_dot(const double* x, const double* y, Index rows) {
  double sum = 0.0;
  for (Index i = 0; i < rows; ++i) sum += x[i] * y[i];
  return sum;
}

// Updates atoms k0 .. k0 + atoms - 1 (unit balls, no clipping) on rows [first_block,
// last_block) with one synchronisation (`reduce`) instead of one per atom. With
// P_c = D a_c at the block's start (in `products`), the sequential steps are
//   u_c = r_c - sum_{e < c} (A_ec / A_cc) d_e',   d_e' = s_e u_e  (s_e: the projection),
//   r_c = d_c + (b_c - P_c + sum_{e < c} A_ec d_e) / A_cc  (start values only).
// So u_c = sum_{m <= c} C_cm r_m, with C following from the earlier scales, and
// ||u_c||^2 = C_c^T R C_c where R is the Gram matrix of the r's: R is the only sum over
// rows, and every rank and thread derives the same scales from it. Atoms without
// curvature keep their values and drop out of the sums.
template <class Reduce>
void sweep_atom_block(const Matrix& a, const Matrix& b, double min_curvature, Index k0, Index atoms,
                      Index first_block, Index last_block, Matrix& products, Matrix& dictionary,
                      double* sums, const Reduce& reduce) {
  const Index d = dictionary.rows();
  const Index begin = std::min(d, first_block * kRowBlock),
              end = std::min(d, last_block * kRowBlock);
  bool active[kAtomBlock] = {};
  double inverse_curvature[kAtomBlock] = {};
  for (Index c = 0; c < atoms; ++c) {
    const double curvature = a(k0 + c, k0 + c);
    active[c] = curvature > min_curvature;
    inverse_curvature[c] = active[c] ? 1.0 / curvature : 0.0;
  }
  // r_c in place of P_c, on my rows: a vector of rows at a time, through all the block's
  // atoms, so that each r stays in a register while the earlier atoms are added (a pass
  // over the rows per pair of atoms loaded and stored r each time; one sweep at d = 64,
  // K = 256 took 0.147 ms that way, 0.136 ms this way). Every element gets the same
  // operations in the same order either way.
  const auto column = [&](const Matrix& m, Index c) { return m.data() + (k0 + c) * d; };
  const auto r_column = [&](Index c) { return products.data() + c * d; };
  Index piece = begin;
  for (; piece + kLanes <= end; piece += kLanes) {
    Lanes start[kAtomBlock];  // d_e on these rows
    for (Index e = 0; e < atoms; ++e) start[e] = load_lanes(column(dictionary, e) + piece);
    for (Index c = 0; c < atoms; ++c) {
      if (!active[c]) continue;
      Lanes r = load_lanes(column(b, c) + piece) - load_lanes(r_column(c) + piece);
      for (Index e = 0; e < c; ++e)
        if (active[e]) r += start[e] * a(k0 + e, k0 + c);
      store_lanes(r_column(c) + piece, start[c] + r * inverse_curvature[c]);
    }
  }
  for (Index i = piece; i < end; ++i)
    for (Index c = 0; c < atoms; ++c) {
      if (!active[c]) continue;
      double r = column(b, c)[i] - r_column(c)[i];
      for (Index e = 0; e < c; ++e)
        if (active[e]) r += column(dictionary, e)[i] * a(k0 + e, k0 + c);
      r_column(c)[i] = column(dictionary, c)[i] + r * inverse_curvature[c];
    }
  // The Gram matrix of the r's, per row block (lower triangle, row after row).
  for (Index block = first_block; block < last_block; ++block) {
    const Index row = block * kRowBlock, row_end = std::min(d, row + kRowBlock);
    double* gram = sums + block * kTriangle;
    for (Index c = 0, at = 0; c < kAtomBlock; ++c)
      for (Index m = 0; m <= c; ++m, ++at) {
        double sum = 0.0;
        if (c < atoms && active[c] && active[m]) {
          const double* r_c = products.data() + c * d + row;
          const double* r_m = products.data() + m * d + row;
          sum = row_end - row == kRowBlock ? full_block_dot(r_c, r_m)
                                           : partial_block_dot(r_c, r_m, row_end - row);
        }
        gram[at] = sum;
      }
  }
  double gram[kTriangle];
  reduce(sums, gram);
  // The scales, in atom order (the same arithmetic on every thread and rank).
  double coefficients[kAtomBlock][kAtomBlock] = {};  // C, lower triangular
  double scale[kAtomBlock] = {};
  for (Index c = 0; c < atoms; ++c) {
    if (!active[c]) continue;
    double* row_c = coefficients[c];
    row_c[c] = 1.0;
    for (Index e = 0; e < c; ++e) {
      if (!active[e]) continue;
      const double factor = a(k0 + e, k0 + c) * inverse_curvature[c] * scale[e];
      for (Index m = 0; m <= e; ++m) row_c[m] -= factor * coefficients[e][m];
    }
    double norm_squared = 0.0;
    for (Index m = 0; m <= c; ++m) {
      const double* gram_m = gram + m * (m + 1) / 2;  // R(m, 0 .. m)
      double cross = 0.0;
      for (Index n = 0; n < m; ++n) cross += row_c[n] * gram_m[n];
      norm_squared += row_c[m] * (row_c[m] * gram_m[m] + 2.0 * cross);
    }
    scale[c] = norm_squared > 1.0 ? 1.0 / std::sqrt(norm_squared) : 1.0;
  }
  // d_c' = s_c (r_c - sum_{e < c} (A_ec / A_cc) d_e'), on my rows, again a vector of rows
  // at a time through all the atoms, the new d_e' kept in registers.
  double weight[kAtomBlock][kAtomBlock] = {};  // A_ec / A_cc
  for (Index c = 0; c < atoms; ++c)
    for (Index e = 0; e < c; ++e) weight[c][e] = a(k0 + e, k0 + c) * inverse_curvature[c];
  double* atom[kAtomBlock] = {};
  for (Index c = 0; c < atoms; ++c) atom[c] = dictionary.data() + (k0 + c) * d;
  piece = begin;
  for (; piece + kLanes <= end; piece += kLanes) {
    Lanes updated[kAtomBlock];
    for (Index c = 0; c < atoms; ++c) {
      if (!active[c]) continue;
      Lanes r = load_lanes(r_column(c) + piece);
      for (Index e = 0; e < c; ++e)
        if (active[e]) r -= updated[e] * weight[c][e];
      updated[c] = r * scale[c];
      store_lanes(atom[c] + piece, updated[c]);
    }
  }
  for (Index i = piece; i < end; ++i)
    for (Index c = 0; c < atoms; ++c) {
      if (!active[c]) continue;
      double r = r_column(c)[i];
      for (Index e = 0; e < c; ++e)
        if (active[e]) r -= atom[e][i] * weight[c][e];
      atom[c][i] = r * scale[c];
    }
}

}  // namespace

std::size_t online_update_shared_bytes(Index d, Index K, int rank, int ranks) {
  const Index row_blocks = count_row_blocks(d);
  const std::vector<Index> first_row = first_rows(d, row_blocks, ranks);
  return SharedLayout(row_blocks, first_row[size_t(rank) + 1] - first_row[size_t(rank)], K).total;
}

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

std::pair<Index, Index> online_update_own_rows(const OnlineUpdateOptions& options, Index d) {
  if (!online_update_splits_rows(options)) return {0, d};
  const Index row_blocks = count_row_blocks(d);
  const int rank = options.row_split->rank(), ranks = options.row_split->size();
  return {std::min(d, first_block_of(row_blocks, rank, ranks) * kRowBlock),
          std::min(d, first_block_of(row_blocks, rank + 1, ranks) * kRowBlock)};
}

void online_update_gather_rows(const OnlineUpdateOptions& options, Matrix& m) {
  if (!online_update_splits_rows(options)) return;
  // Continues the node's sequence of shared-memory steps, as the next update will.
  std::uint64_t sequence =
      options.shared != nullptr ? last_published(*options.shared, SharedLayout::kCounter) : 0;
  share_rows(*options.row_split, count_row_blocks(m.rows()), m, options.shared, &sequence);
}

RowSplit choose_row_split(const OnlineUpdateOptions& options, Index d, Index K,
                          double sweep_seconds) {
  const Index row_blocks = count_row_blocks(d);
  if (!splittable(options) || row_blocks < 2) return RowSplit::off;
  const Communicator* comm = options.row_split;
  // The collective of the split sweep: per row block, one partial norm (per atom) or one
  // Gram triangle (per block of atoms).
  const bool by_blocks = !options.positive;  // splittable: plain balls only
  BlockExchange exchange(*comm, row_blocks, by_blocks ? kTriangle : 1, options.shared);
  std::vector<double> values(static_cast<size_t>((by_blocks ? kTriangle : 1) * row_blocks), 0.0);
  comm->barrier();
  const double start = MPI_Wtime();
  for (int probe = 0; probe < kLatencyProbes; ++probe) exchange.exchange(values.data());
  // The slowest rank's figures, so that every rank takes the same decision.
  double measured[2] = {sweep_seconds, (MPI_Wtime() - start) / kLatencyProbes};
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, measured, 2, MPI_DOUBLE, MPI_MAX, comm->get()),
            "MPI_Allreduce (row split decision)");
  const double ranks = double(comm->size());
  const double saved = (1.0 - 1.0 / ranks) * measured[0];
  const Index syncs = by_blocks ? (K + kAtomBlock - 1) / kAtomBlock : K;
  const double added = double(options.passes * syncs + 1) * measured[1];  // + the allgather
  return saved > kSplitMargin * added ? RowSplit::on : RowSplit::off;
}

void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == d && b.cols() == K);
  const Index row_blocks = count_row_blocks(d);
  const bool linked = options.constraint != nullptr && !options.constraint->plain();
  DICTLEARN_ASSERT(!linked || options.constraint->rows() == d);
  // Plain unit balls: one synchronisation per block of atoms (see sweep_atom_block).
  // Clipping at zero and linked balls are not linear in the earlier atoms' scales: one
  // synchronisation per atom.
  const bool by_blocks = !linked && !options.positive;
  // Rows of D: ranks own contiguous ranges of row blocks (when split), threads share their
  // rank's range. Every block is computed by the same instructions wherever it runs.
  const bool split = online_update_splits_rows(options);
  DICTLEARN_ASSERT(!split || options.shared == nullptr ||
                   (options.shared->ranks() == options.row_split->size() &&
                    options.shared->rank() == options.row_split->rank()));
  const int ranks = split ? options.row_split->size() : 1;
  const int rank = split ? options.row_split->rank() : 0;
  const Index rank_first_block = first_block_of(row_blocks, rank, ranks);
  const Index rank_last_block = first_block_of(row_blocks, rank + 1, ranks);
  const Index rank_rows =
      std::min(d, rank_last_block * kRowBlock) - std::min(d, rank_first_block * kRowBlock);
  const Index min_rows_per_thread = by_blocks ? kMinRowsPerThreadByBlocks : kMinRowsPerThread;
  const int threads =
      linked
          ? 1
          : int(std::clamp<Index>(std::min<Index>(options.threads, rank_rows / min_rows_per_thread),
                                  1, std::max<Index>(1, rank_last_block - rank_first_block)));
  // Per row block, the sums every rank and thread needs: the squares of the atom's step
  // (per atom) or the Gram matrix of a block's steps (per block). Two buffers, so that a
  // fast thread starting the next atom or block cannot overwrite sums a slow one still
  // reads. Split over ranks, the ranks exchange their blocks' values and then sum them in
  // block order, as on one rank.
  const Index sums_per_block = by_blocks ? kTriangle : 1;
  const Index sums_size = sums_per_block * row_blocks;
  std::vector<double> block_sums(static_cast<size_t>(2 * sums_size));
  std::optional<BlockExchange> exchange;
  if (split) exchange.emplace(*options.row_split, row_blocks, sums_per_block, options.shared);
  Matrix products(d, kAtomBlock);  // D a_k of the current block (by_blocks: then r_k)
  Vector step(d);

  // Sums the row-block values in `blocks` (this thread has written its own blocks'): after
  // the barriers and the exchange, `total[j] = sum over row blocks of the j-th value`.
  const auto reduce_blocks = [&](int team, int thread, Index count, double* blocks, double* total) {
    if (team > 1) {
#pragma omp barrier
    }
    if (split) {
      if (thread == 0) exchange->exchange(blocks);
      if (team > 1) {
#pragma omp barrier
      }
    }
    for (Index j = 0; j < count; ++j) total[j] = 0.0;
    for (Index block = 0; block < row_blocks; ++block)
      for (Index j = 0; j < count; ++j) total[j] += blocks[block * count + j];
  };

  const auto sweep = [&](int thread, int team) {
    const Index rank_blocks = rank_last_block - rank_first_block;
    const Index first_block = rank_first_block + rank_blocks * thread / team;
    const Index last_block = rank_first_block + rank_blocks * (thread + 1) / team;
    const Index begin = std::min(d, first_block * kRowBlock);
    const Index end = std::min(d, last_block * kRowBlock);
    Index parity = 0;
    std::vector<double> panel(options.a_upper_only ? size_t(K * kAtomBlock) : 0);  // gather_panel
    const auto next_sums = [&] {
      double* sums = block_sums.data() + parity * sums_size;
      parity ^= 1;
      return sums;
    };
    for (Index pass = 0; pass < options.passes; ++pass) {
      for (Index k0 = 0; k0 < K; k0 += kAtomBlock) {
        const Index atoms = std::min(kAtomBlock, K - k0);
        if (options.a_upper_only) gather_panel(a, k0, atoms, panel.data());
        const BlockWeights weights{a, k0, options.a_upper_only ? k0 : K, panel.data()};
        for (Index block = first_block; block < last_block; ++block) {
          const Index row = block * kRowBlock, rows = std::min(kRowBlock, d - row);
          if (rows == kRowBlock && atoms == kAtomBlock)
            full_tile_products(weights, dictionary, row, products.data(), d);
          else if (rows == kRowBlock)
            block_products<kRowBlock>(weights, dictionary, atoms, row, rows, products.data(), d);
          else
            block_products<0>(weights, dictionary, atoms, row, rows, products.data(), d);
        }
        if (by_blocks) {
          sweep_atom_block(a, b, options.min_curvature, k0, atoms, first_block, last_block,
                           products, dictionary, next_sums(), [&](double* blocks, double* total) {
                             reduce_blocks(team, thread, kTriangle, blocks, total);
                           });
          continue;
        }
        for (Index c = 0; c < atoms; ++c) {
          const Index k = k0 + c;
          const double curvature = a(k, k);
          if (!(curvature > options.min_curvature)) continue;  // same on every thread
          // u_k = d_k + (b_k - D a_k) / A_kk (clipped at 0 when positive), on my rows.
          double* squares = next_sums();
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
          // Every thread (and rank) needs the norm of the whole step before scaling its rows.
          double norm_squared = 0.0;
          reduce_blocks(team, thread, 1, squares, &norm_squared);
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
  if (split)
    share_rows(*options.row_split, row_blocks, dictionary, options.shared, exchange->sequence());
}

double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary) {
  return 0.5 * (dictionary.transpose() * dictionary).cwiseProduct(a).sum() -
         dictionary.cwiseProduct(b).sum();
}

}  // namespace dictlearn
