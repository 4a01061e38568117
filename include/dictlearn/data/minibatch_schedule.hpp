#pragma once
// Which samples form global minibatch t of an epoch, independently of the number of ranks.
//
// The N rows are cut into V contiguous *virtual shards* (V fixed by the configuration,
// not by the rank count). Each virtual shard visits its rows in a seeded per-epoch order
// (its chunks of `chunk_rows` rows in random order, the rows of each chunk in random
// order), and contributes the positions [take_begin(v, t), take_begin(v, t + 1)) of that
// order to global minibatch t, i.e. a share of every minibatch proportional to its size:
//   take_begin(v, t) = min(n_v, floor(t * B * n_v / N)).
// A rank owns whole virtual shards (a contiguous range of them), so it reads only its own
// contiguous block of the file, one chunk at a time, and 1, 2 or 3 ranks see exactly the
// same sequence of global minibatches.
#include <cstdint>
#include <utility>
#include <vector>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct ScheduleOptions {
  Index batch_size = 256;     ///< B, global samples per minibatch
  Index virtual_shards = 24;  ///< V (capped at N); must be >= the number of ranks
  Index chunk_rows = 4096;    ///< rows per read; bounds the memory of a shard's buffer
  std::uint64_t seed = 0;
};

class MinibatchSchedule {
 public:
  MinibatchSchedule(Index samples, const ScheduleOptions& options);

  Index samples() const { return samples_; }
  Index shards() const { return shards_; }
  Index chunk_rows() const { return options_.chunk_rows; }
  std::uint64_t seed() const { return options_.seed; }
  Index batches_per_epoch() const { return batches_; }
  Index shard_begin(Index v) const { return shard_begin_[size_t(v)]; }
  Index shard_size(Index v) const { return shard_begin_[size_t(v) + 1] - shard_begin_[size_t(v)]; }
  Index take_begin(Index v, Index t) const;
  /// Global size of minibatch t: the sum of the shards' shares, within V - 1 of B (the
  /// last one may be smaller); minibatches 0..t-1 hold between tB - V + 1 and tB samples.
  Index batch_size(Index t) const;

  /// The contiguous range [first, last) of virtual shards owned by `rank` of `ranks`.
  std::pair<Index, Index> owned_shards(int rank, int ranks) const;

 private:
  Index samples_;
  ScheduleOptions options_;
  Index shards_;
  Index batches_;
  std::vector<Index> shard_begin_;  // V + 1 row offsets
};

/// The order in which one virtual shard visits its rows during one epoch.
class ShardOrder {
 public:
  ShardOrder() = default;
  ShardOrder(const MinibatchSchedule& schedule, Index shard, Index epoch);

  Index chunks() const { return Index(chunk_id_.size()); }
  /// The chunk visited q-th: its first global row and its number of rows.
  Index chunk_begin(Index q) const;
  Index chunk_size(Index q) const;
  /// Position (in this epoch's order) of the first row of the chunk visited q-th.
  Index chunk_start(Index q) const { return chunk_start_[size_t(q)]; }
  /// The q such that chunk_start(q) <= position < chunk_start(q + 1).
  Index chunk_at(Index position) const;
  /// Number of chunk reads needed to serve positions [begin, end) when the chunk holding
  /// position begin - 1 is already in memory.
  Index reads_for(Index begin, Index end) const;
  /// Seed of the row permutation inside the chunk visited q-th.
  std::uint64_t row_seed(Index q) const;

 private:
  Index shard_begin_ = 0, shard_size_ = 0, chunk_rows_ = 1;
  std::uint64_t seed_ = 0;
  std::vector<Index> chunk_id_;     // chunk index within the shard, in visiting order
  std::vector<Index> chunk_start_;  // prefix sums of chunk sizes in visiting order (+1)
};

}  // namespace dictlearn
