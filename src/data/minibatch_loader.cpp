#include "dictlearn/data/minibatch_loader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {
namespace {
// Whether none of the n values is NaN or infinite (all exponent bits set): one branch-free
// pass of integer operations, which the compiler vectorises; a chunk that fails is then
// searched value by value for the message.
bool all_finite(const double* values, Index n) {
  constexpr std::uint64_t kExponent = 0x7ff0000000000000ull;
  std::uint64_t non_finite = 0;
  for (Index i = 0; i < n; ++i) {
    std::uint64_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    non_finite |= (bits & kExponent) == kExponent ? 1u : 0u;
  }
  return non_finite == 0;
}
}  // namespace

MinibatchLoader::MinibatchLoader(SampleSource& source, const MinibatchSchedule& schedule, int rank,
                                 int ranks)
    : source_(source), schedule_(schedule), rank_(rank), ranks_(ranks) {
  const auto [first, last] = schedule.owned_shards(rank, ranks);
  for (Index v = first; v < last; ++v) {
    Stream stream;
    stream.shard = v;
    stream.buffer.resize(source.dim(), std::min(schedule.chunk_rows(), schedule.shard_size(v)));
    stream.row_perm.reserve(size_t(stream.buffer.cols()));
    streams_.push_back(std::move(stream));
  }
}

void MinibatchLoader::start_epoch(Index epoch) {
  epoch_ = epoch;
  orders_.clear();
  for (Index v = 0; v < schedule_.shards(); ++v) orders_.emplace_back(schedule_, v, epoch);
  for (Stream& stream : streams_) stream.loaded = -1;
}

Index MinibatchLoader::reads_needed(int rank, Index t) const {
  const auto [first, last] = schedule_.owned_shards(rank, ranks_);
  Index reads = 0;
  for (Index v = first; v < last; ++v)
    reads +=
        orders_[size_t(v)].reads_for(schedule_.take_begin(v, t), schedule_.take_begin(v, t + 1));
  return reads;
}

void MinibatchLoader::read_chunk(Stream& stream, Index q, std::string& failure) {
  const ShardOrder& order = orders_[size_t(stream.shard)];
  const Index begin = order.chunk_begin(q), size = order.chunk_size(q);
  source_.read_rows(begin, size, stream.buffer.data());
  stream.loaded = q;
  stream.row_perm.resize(size_t(size));
  std::iota(stream.row_perm.begin(), stream.row_perm.end(), Index(0));
  Random(order.row_seed(q)).shuffle(stream.row_perm.data(), stream.row_perm.size());
  if (!failure.empty() || all_finite(stream.buffer.data(), stream.buffer.rows() * size)) return;
  const Index d = stream.buffer.rows();
  for (Index j = 0; j < size; ++j)
    for (Index i = 0; i < d; ++i) {
      const double value = stream.buffer(i, j);
      if (!std::isfinite(value)) {
        failure = cat("input '", source_.describe(), "' has a non-finite value (", value,
                      ") at row ", begin + j, ", column ", i, " (0-based)");
        return;
      }
    }
}

Index MinibatchLoader::seek_reads(int rank, Index t) const {
  const auto [first, last] = schedule_.owned_shards(rank, ranks_);
  Index reads = 0;
  for (Index v = first; v < last; ++v) reads += schedule_.take_begin(v, t) > 0 ? 1 : 0;
  return reads;
}

void MinibatchLoader::seek(Index t, std::string& failure) {
  DICTLEARN_ASSERT(epoch_ >= 0 && t >= 0 && t <= schedule_.batches_per_epoch());
  Index most_reads = 0;
  for (int r = 0; r < ranks_; ++r) most_reads = std::max(most_reads, seek_reads(r, t));
  Index reads = 0;
  for (Stream& stream : streams_) {
    const Index begin = schedule_.take_begin(stream.shard, t);
    if (begin == 0) continue;
    read_chunk(stream, orders_[size_t(stream.shard)].chunk_at(begin - 1), failure);
    ++reads;
  }
  double unused = 0.0;
  for (; reads < most_reads; ++reads) source_.read_rows(0, 0, &unused);
}

Index MinibatchLoader::load(Index t, Matrix& batch, std::vector<Index>& rows,
                            std::string& failure) {
  DICTLEARN_ASSERT(epoch_ >= 0 && t >= 0 && t < schedule_.batches_per_epoch());
  Index count = 0;
  for (const Stream& stream : streams_)
    count += schedule_.take_begin(stream.shard, t + 1) - schedule_.take_begin(stream.shard, t);
  batch.resize(source_.dim(), count);
  rows.resize(size_t(count));

  Index most_reads = 0;  // over all ranks, from the global schedule
  for (int r = 0; r < ranks_; ++r) most_reads = std::max(most_reads, reads_needed(r, t));
  Index reads = 0, column = 0;
  for (Stream& stream : streams_) {
    const ShardOrder& order = orders_[size_t(stream.shard)];
    const Index end = schedule_.take_begin(stream.shard, t + 1);
    for (Index p = schedule_.take_begin(stream.shard, t); p < end; ++p, ++column) {
      const Index q = order.chunk_at(p);
      if (q != stream.loaded) {
        read_chunk(stream, q, failure);
        ++reads;
      }
      const Index local = stream.row_perm[size_t(p - order.chunk_start(q))];
      batch.col(column) = stream.buffer.col(local);
      rows[size_t(column)] = order.chunk_begin(q) + local;
    }
  }
  DICTLEARN_ASSERT(reads == reads_needed(rank_, t));
  double unused = 0.0;  // empty reads still take a valid buffer
  for (; reads < most_reads; ++reads) source_.read_rows(0, 0, &unused);
  return count;
}

}  // namespace dictlearn
