#include "dictlearn/data/minibatch_schedule.hpp"

#include <algorithm>
#include <numeric>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {
namespace {
constexpr std::uint64_t kChunkOrderStream = 0xC0DE;
constexpr std::uint64_t kRowOrderStream = 0x0DE5;
}  // namespace

MinibatchSchedule::MinibatchSchedule(Index samples, const ScheduleOptions& options)
    : samples_(samples), options_(options) {
  DICTLEARN_ASSERT(samples >= 1 && options.batch_size >= 1 && options.virtual_shards >= 1 &&
                   options.chunk_rows >= 1);
  shards_ = std::min(options.virtual_shards, samples);
  batches_ = (samples + options.batch_size - 1) / options.batch_size;
  shard_begin_.resize(size_t(shards_) + 1);
  for (Index v = 0; v <= shards_; ++v) shard_begin_[size_t(v)] = v * samples / shards_;
}

Index MinibatchSchedule::take_begin(Index v, Index t) const {
  const Index n_v = shard_size(v);
  // floor(t * B * n_v / N) in 128-bit to stay exact for huge N.
  const auto wide = static_cast<__int128>(t) * options_.batch_size * n_v / samples_;
  return Index(std::min<__int128>(wide, n_v));
}

Index MinibatchSchedule::batch_size(Index t) const {
  Index total = 0;
  for (Index v = 0; v < shards_; ++v) total += take_begin(v, t + 1) - take_begin(v, t);
  return total;
}

std::pair<Index, Index> MinibatchSchedule::owned_shards(int rank, int ranks) const {
  DICTLEARN_ASSERT(ranks >= 1 && ranks <= shards_);
  return {Index(rank) * shards_ / ranks, Index(rank + 1) * shards_ / ranks};
}

ShardOrder::ShardOrder(const MinibatchSchedule& schedule, Index shard, Index epoch)
    : shard_begin_(schedule.shard_begin(shard)),
      shard_size_(schedule.shard_size(shard)),
      chunk_rows_(schedule.chunk_rows()),
      seed_(derive_seed({schedule.seed(), std::uint64_t(epoch), std::uint64_t(shard)})) {
  const Index n_chunks = (shard_size_ + chunk_rows_ - 1) / chunk_rows_;
  chunk_id_.resize(size_t(n_chunks));
  std::iota(chunk_id_.begin(), chunk_id_.end(), Index(0));
  Random random(derive_seed({seed_, kChunkOrderStream}));
  random.shuffle(chunk_id_.data(), chunk_id_.size());
  chunk_start_.resize(size_t(n_chunks) + 1);
  chunk_start_[0] = 0;
  for (Index q = 0; q < n_chunks; ++q)
    chunk_start_[size_t(q) + 1] = chunk_start_[size_t(q)] + chunk_size(q);
}

Index ShardOrder::chunk_begin(Index q) const {
  return shard_begin_ + chunk_id_[size_t(q)] * chunk_rows_;
}

Index ShardOrder::chunk_size(Index q) const {
  return std::min(chunk_rows_, shard_size_ - chunk_id_[size_t(q)] * chunk_rows_);
}

Index ShardOrder::chunk_at(Index position) const {
  const auto it = std::upper_bound(chunk_start_.begin(), chunk_start_.end(), position);
  return Index(it - chunk_start_.begin()) - 1;
}

Index ShardOrder::reads_for(Index begin, Index end) const {
  if (end <= begin) return 0;
  const Index first = chunk_at(begin), last = chunk_at(end - 1);
  const bool first_loaded = begin > 0 && chunk_at(begin - 1) == first;
  return last - first + 1 - (first_loaded ? 1 : 0);
}

std::uint64_t ShardOrder::row_seed(Index q) const {
  return derive_seed({seed_, kRowOrderStream, std::uint64_t(chunk_id_[size_t(q)])});
}

}  // namespace dictlearn
