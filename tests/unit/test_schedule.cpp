// The sharded minibatch schedule and its loader: every row once per epoch, the batch-size
// guarantees of take_begin, ShardOrder chunk bookkeeping against brute force, and the key
// property that the global minibatches do not depend on the number of ranks (simulated
// here with one loader per rank on an in-memory source, whose reads are not collective).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/data/minibatch_loader.hpp"
#include "dictlearn/data/minibatch_schedule.hpp"
#include "dictlearn/data/synthetic.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::MinibatchLoader;
using dictlearn::MinibatchSchedule;
using dictlearn::ScheduleOptions;
using dictlearn::ShardOrder;

struct Case {
  Index samples, batch, shards, chunk;
};

// N not divisible by anything, N < V, B > N, chunk 1, chunk > shard, ...
const std::vector<Case> kCases = {{1, 1, 1, 1},      {7, 3, 10, 2},      {4, 4, 24, 4096},
                                  {10, 4, 3, 3},     {13, 20, 4, 3},     {97, 10, 7, 5},
                                  {101, 7, 5, 1},    {100, 32, 24, 7},   {331, 16, 6, 17},
                                  {509, 64, 24, 13}, {1000, 37, 5, 4096}};

ScheduleOptions options_of(const Case& c, std::uint64_t seed = 5) {
  ScheduleOptions o;
  o.batch_size = c.batch;
  o.virtual_shards = c.shards;
  o.chunk_rows = c.chunk;
  o.seed = seed;
  return o;
}

std::string describe(const Case& c) {
  return "N=" + std::to_string(c.samples) + " B=" + std::to_string(c.batch) +
         " V=" + std::to_string(c.shards) + " chunk=" + std::to_string(c.chunk);
}

// Rows as columns with recognisable values: x(i, r) = r + i / 16 (exact in double).
class MemorySource : public dictlearn::SampleSource {
 public:
  MemorySource(Index samples, Index dim) : data_(dim, samples) {
    for (Index r = 0; r < samples; ++r)
      for (Index i = 0; i < dim; ++i) data_(i, r) = double(r) + double(i) / 16.0;
  }
  Index samples() const override { return data_.cols(); }
  Index dim() const override { return data_.rows(); }
  std::string describe() const override { return "memory"; }
  void read_rows(Index begin, Index count, double* out) override {
    REQUIRE(begin >= 0);
    REQUIRE(count >= 0);
    REQUIRE(begin + count <= samples());
    ++calls;
    if (count > 0) ++nonempty_calls;
    std::copy(data_.data() + begin * dim(), data_.data() + (begin + count) * dim(), out);
  }
  const Matrix& data() const { return data_; }
  Index calls = 0, nonempty_calls = 0;

 private:
  Matrix data_;
};

// Global rows of each minibatch of one epoch, assembled over `ranks` simulated ranks
// (rank 0's rows first); checks the sample columns against the source on the way.
std::vector<std::vector<Index>> epoch_rows(dictlearn::SampleSource& source,
                                           const MinibatchSchedule& schedule, int ranks,
                                           Index epoch, const Matrix* expected_data) {
  std::vector<MinibatchLoader> loaders;
  loaders.reserve(size_t(ranks));
  for (int r = 0; r < ranks; ++r) loaders.emplace_back(source, schedule, r, ranks);
  for (auto& loader : loaders) loader.start_epoch(epoch);
  std::vector<std::vector<Index>> batches;
  Matrix batch;
  std::vector<Index> rows;
  for (Index t = 0; t < schedule.batches_per_epoch(); ++t) {
    std::vector<Index> all;
    for (int r = 0; r < ranks; ++r) {
      std::string failure;
      const Index count = loaders[size_t(r)].load(t, batch, rows, failure);
      REQUIRE(failure.empty());
      REQUIRE(count == Index(rows.size()));
      REQUIRE(batch.cols() == count);
      REQUIRE(batch.rows() == source.dim());
      for (Index j = 0; j < count; ++j) {
        REQUIRE(rows[size_t(j)] >= 0);
        REQUIRE(rows[size_t(j)] < source.samples());
        if (expected_data) REQUIRE(batch.col(j) == expected_data->col(rows[size_t(j)]));
      }
      all.insert(all.end(), rows.begin(), rows.end());
    }
    batches.push_back(std::move(all));
  }
  return batches;
}

std::vector<Index> sorted(std::vector<Index> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<Index> concatenated(const std::vector<std::vector<Index>>& batches) {
  std::vector<Index> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

}  // namespace

TEST_CASE("schedule shards partition the rows and take_begin covers every shard", "[schedule]") {
  for (const Case& c : kCases) {
    INFO(describe(c));
    const MinibatchSchedule s(c.samples, options_of(c));
    CHECK(s.shards() == std::min(c.shards, c.samples));
    CHECK(s.batches_per_epoch() == (c.samples + c.batch - 1) / c.batch);
    Index total = 0;
    for (Index v = 0; v < s.shards(); ++v) {
      CHECK(s.shard_begin(v) == total);
      CHECK(s.shard_size(v) >= 1);
      total += s.shard_size(v);
      CHECK(s.take_begin(v, 0) == 0);
      CHECK(s.take_begin(v, s.batches_per_epoch()) == s.shard_size(v));
      for (Index t = 0; t < s.batches_per_epoch(); ++t) {
        // Monotone, and exactly the documented min(n_v, floor(t B n_v / N)).
        CHECK(s.take_begin(v, t) <= s.take_begin(v, t + 1));
        CHECK(s.take_begin(v, t) ==
              std::min(s.shard_size(v), t * c.batch * s.shard_size(v) / c.samples));
      }
    }
    CHECK(total == c.samples);
    // Shard sizes differ by at most one (an even split).
    Index smallest = c.samples, largest = 0;
    for (Index v = 0; v < s.shards(); ++v) {
      smallest = std::min(smallest, s.shard_size(v));
      largest = std::max(largest, s.shard_size(v));
    }
    CHECK(largest - smallest <= 1);
  }
}

TEST_CASE("schedule batch sizes sum to N and stay within V of B", "[schedule]") {
  // What take_begin guarantees: the first t minibatches hold sum_v floor(t B n_v / N)
  // samples, i.e. within (tB - V, tB], so batch t differs from B by less than V (and the
  // error does not accumulate); the last batch holds the rest.
  for (const Case& c : kCases) {
    INFO(describe(c));
    const MinibatchSchedule s(c.samples, options_of(c));
    const Index T = s.batches_per_epoch(), V = s.shards();
    Index prefix = 0;
    for (Index t = 0; t < T; ++t) {
      INFO("t=" << t);
      const Index size = s.batch_size(t);
      CHECK(size >= 0);
      if (t + 1 < T) {
        CHECK(size > c.batch - V);
        CHECK(size < c.batch + V);
      }
      prefix += size;
      if (t + 1 < T) {
        CHECK(prefix <= (t + 1) * c.batch);
        CHECK(prefix > (t + 1) * c.batch - V);
      }
    }
    CHECK(prefix == c.samples);
    if (V == 1) {  // one shard: exactly B except for the remainder
      for (Index t = 0; t + 1 < T; ++t) CHECK(s.batch_size(t) == c.batch);
    }
  }
}

TEST_CASE("ShardOrder visits each chunk once and reads_for matches a brute-force count",
          "[schedule]") {
  for (const Case& c : kCases) {
    const MinibatchSchedule s(c.samples, options_of(c));
    for (Index epoch = 0; epoch < 2; ++epoch)
      for (Index v = 0; v < s.shards(); ++v) {
        INFO(describe(c) << " epoch=" << epoch << " shard=" << v);
        const ShardOrder order(s, v, epoch);
        const Index n = s.shard_size(v);
        CHECK(order.chunks() == (n + c.chunk - 1) / c.chunk);
        // The chunks tile the shard: distinct aligned starts, sizes chunk_rows but the
        // last (in row order) one; chunk_start is the prefix sum in visiting order.
        std::vector<Index> owner(size_t(n), -1);  // position -> chunk visited q-th
        std::vector<char> row_seen(size_t(n), 0);
        Index position = 0;
        for (Index q = 0; q < order.chunks(); ++q) {
          CHECK(order.chunk_start(q) == position);
          const Index begin = order.chunk_begin(q) - s.shard_begin(v);
          CHECK((begin % c.chunk) == 0);
          CHECK(order.chunk_size(q) == std::min(c.chunk, n - begin));
          for (Index i = 0; i < order.chunk_size(q); ++i) {
            REQUIRE(begin + i < n);
            CHECK(row_seen[size_t(begin + i)] == 0);
            row_seen[size_t(begin + i)] = 1;
            owner[size_t(position++)] = q;
          }
        }
        CHECK(order.chunk_start(order.chunks()) == n);
        CHECK(position == n);
        for (Index p = 0; p < n; ++p) CHECK(order.chunk_at(p) == owner[size_t(p)]);
        // Brute force: reads needed to serve [begin, end) when position begin - 1's chunk
        // is in memory.
        const Index step = n > 60 ? 7 : 1;  // keep the O(n^3) loop small
        for (Index begin = 0; begin <= n; begin += step)
          for (Index end = begin; end <= n; ++end) {
            Index loaded = begin > 0 ? owner[size_t(begin - 1)] : -1, reads = 0;
            for (Index p = begin; p < end; ++p)
              if (owner[size_t(p)] != loaded) {
                loaded = owner[size_t(p)];
                ++reads;
              }
            INFO("begin=" << begin << " end=" << end);
            REQUIRE(order.reads_for(begin, end) == reads);
          }
      }
  }
}

TEST_CASE("owned_shards splits the shards into contiguous ranges, one per rank", "[schedule]") {
  for (const Case& c : kCases) {
    const MinibatchSchedule s(c.samples, options_of(c));
    for (int ranks = 1; ranks <= std::min<Index>(s.shards(), 6); ++ranks) {
      INFO(describe(c) << " ranks=" << ranks);
      Index next = 0;
      for (int r = 0; r < ranks; ++r) {
        const auto [first, last] = s.owned_shards(r, ranks);
        CHECK(first == next);
        CHECK(last > first);  // ranks <= shards: nobody is idle
        next = last;
      }
      CHECK(next == s.shards());
    }
  }
}

TEST_CASE("loader: every row exactly once per epoch, columns equal the source rows",
          "[schedule][loader]") {
  for (const Case& c : kCases) {
    INFO(describe(c));
    const MinibatchSchedule s(c.samples, options_of(c));
    MemorySource source(c.samples, 3);
    for (Index epoch = 0; epoch < 2; ++epoch) {
      const auto batches = epoch_rows(source, s, 1, epoch, &source.data());
      REQUIRE(Index(batches.size()) == s.batches_per_epoch());
      for (Index t = 0; t < s.batches_per_epoch(); ++t)
        CHECK(Index(batches[size_t(t)].size()) == s.batch_size(t));
      std::vector<Index> expected(size_t(c.samples));
      std::iota(expected.begin(), expected.end(), Index(0));
      CHECK(sorted(concatenated(batches)) == expected);
    }
  }
}

TEST_CASE("loader: global minibatches are identical for 1, 2, 3 and 5 ranks",
          "[schedule][loader]") {
  for (const Case& c : kCases) {
    const MinibatchSchedule s(c.samples, options_of(c));
    MemorySource source(c.samples, 2);
    for (Index epoch = 0; epoch < 2; ++epoch) {
      const auto reference = epoch_rows(source, s, 1, epoch, &source.data());
      for (int ranks : {2, 3, 5}) {
        if (ranks > s.shards()) continue;  // V >= ranks is required
        INFO(describe(c) << " epoch=" << epoch << " ranks=" << ranks);
        const auto batches = epoch_rows(source, s, ranks, epoch, &source.data());
        REQUIRE(batches.size() == reference.size());
        for (size_t t = 0; t < batches.size(); ++t) {
          INFO("t=" << t);
          CHECK(sorted(batches[t]) == sorted(reference[t]));
        }
      }
    }
  }
}

TEST_CASE("loader: the same with the synthetic source, whose rows depend on (seed, row) only",
          "[schedule][loader]") {
  dictlearn::SyntheticOptions synthetic;
  synthetic.samples = 203;
  synthetic.dim = 4;
  synthetic.atoms = 6;
  synthetic.sparsity = 2;
  dictlearn::SyntheticSource source(synthetic);
  Matrix all(synthetic.dim, synthetic.samples);
  source.read_rows(0, synthetic.samples, all.data());
  // Row by row gives the same values as one block read.
  for (Index r = 0; r < synthetic.samples; r += 17) {
    Matrix one(synthetic.dim, 1);
    source.read_rows(r, 1, one.data());
    CHECK(one.col(0) == all.col(r));
  }
  const MinibatchSchedule s(synthetic.samples, options_of({203, 16, 10, 6}, 99));
  for (Index epoch = 0; epoch < 2; ++epoch) {
    const auto reference = epoch_rows(source, s, 1, epoch, &all);
    for (int ranks : {2, 3, 5}) {
      INFO("epoch=" << epoch << " ranks=" << ranks);
      const auto batches = epoch_rows(source, s, ranks, epoch, &all);
      REQUIRE(batches.size() == reference.size());
      for (size_t t = 0; t < batches.size(); ++t) CHECK(sorted(batches[t]) == sorted(reference[t]));
    }
  }
}

TEST_CASE("loader: epochs reorder the rows; the seed fixes the order", "[schedule][loader]") {
  const Case c{331, 16, 6, 17};
  MemorySource source(c.samples, 1);
  const MinibatchSchedule s(c.samples, options_of(c, 5));
  const MinibatchSchedule same(c.samples, options_of(c, 5));
  const MinibatchSchedule other(c.samples, options_of(c, 6));
  const auto e0 = concatenated(epoch_rows(source, s, 1, 0, nullptr));
  const auto e1 = concatenated(epoch_rows(source, s, 1, 1, nullptr));
  CHECK(e0 != e1);
  CHECK(epoch_rows(source, s, 2, 0, nullptr) != epoch_rows(source, s, 2, 1, nullptr));
  CHECK(concatenated(epoch_rows(source, same, 1, 0, nullptr)) == e0);
  CHECK(concatenated(epoch_rows(source, same, 1, 1, nullptr)) == e1);
  CHECK(concatenated(epoch_rows(source, other, 1, 0, nullptr)) != e0);
  // Shuffled, not merely rotated: the first minibatch is not a run of consecutive rows and
  // draws from every shard.
  const auto first = epoch_rows(source, s, 1, 0, nullptr)[0];
  std::vector<char> shard_hit(size_t(s.shards()), 0);
  for (Index row : first)
    for (Index v = 0; v < s.shards(); ++v)
      if (row >= s.shard_begin(v) && row < s.shard_begin(v) + s.shard_size(v))
        shard_hit[size_t(v)] = 1;
  CHECK(std::count(shard_hit.begin(), shard_hit.end(), 1) == s.shards());
  // Each shard reads chunk by chunk: in its visiting sequence the rows of a chunk form one
  // contiguous run (so one buffer suffices), the chunks come in a shuffled order, and the
  // rows inside a chunk are shuffled too.
  Index chunks_shuffled = 0, rows_shuffled_in = 0;
  for (Index v = 0; v < s.shards(); ++v) {
    INFO("shard " << v);
    std::vector<Index> sequence;
    for (Index row : e0)
      if (row >= s.shard_begin(v) && row < s.shard_begin(v) + s.shard_size(v))
        sequence.push_back(row);
    REQUIRE(Index(sequence.size()) == s.shard_size(v));
    std::vector<Index> chunk_sequence;  // chunk of each run
    bool rows_shuffled = false;
    for (size_t i = 0; i < sequence.size(); ++i) {
      const Index chunk = (sequence[i] - s.shard_begin(v)) / c.chunk;
      if (i == 0 || chunk != chunk_sequence.back()) {
        CHECK(std::find(chunk_sequence.begin(), chunk_sequence.end(), chunk) ==
              chunk_sequence.end());  // never revisited
        chunk_sequence.push_back(chunk);
      } else if (sequence[i] < sequence[i - 1]) {
        rows_shuffled = true;
      }
    }
    CHECK(Index(chunk_sequence.size()) == (s.shard_size(v) + c.chunk - 1) / c.chunk);
    chunks_shuffled += !std::is_sorted(chunk_sequence.begin(), chunk_sequence.end());
    rows_shuffled_in += rows_shuffled;
  }
  // (4 chunks per shard: a shuffle leaves them sorted with probability 1/24.)
  CHECK(chunks_shuffled >= s.shards() - 1);
  CHECK(rows_shuffled_in == s.shards());
  // Re-starting an epoch replays it exactly.
  std::vector<MinibatchLoader> loader;
  loader.emplace_back(source, s, 0, 1);
  Matrix batch;
  std::vector<Index> rows, again;
  std::string failure;
  loader[0].start_epoch(1);
  loader[0].load(0, batch, rows, failure);
  loader[0].load(1, batch, rows, failure);
  loader[0].start_epoch(1);
  loader[0].load(0, batch, again, failure);
  loader[0].load(1, batch, again, failure);
  CHECK(again == rows);
}

TEST_CASE("loader: every simulated rank issues the same number of read calls per minibatch",
          "[schedule][loader]") {
  // File reads are collective: for each t all ranks must call read_rows equally often, and
  // the non-empty calls must be exactly the chunk reads the schedule predicts.
  for (const Case& c : kCases) {
    const MinibatchSchedule s(c.samples, options_of(c));
    for (int ranks : {1, 2, 3, 5}) {
      if (ranks > s.shards()) continue;
      INFO(describe(c) << " ranks=" << ranks);
      std::vector<MemorySource> sources;
      sources.reserve(size_t(ranks));
      for (int r = 0; r < ranks; ++r) sources.emplace_back(c.samples, 1);
      std::vector<MinibatchLoader> loaders;
      loaders.reserve(size_t(ranks));
      for (int r = 0; r < ranks; ++r) loaders.emplace_back(sources[size_t(r)], s, r, ranks);
      for (Index epoch = 0; epoch < 2; ++epoch) {
        for (auto& loader : loaders) loader.start_epoch(epoch);
        std::vector<ShardOrder> orders;
        for (Index v = 0; v < s.shards(); ++v) orders.emplace_back(s, v, epoch);
        Matrix batch;
        std::vector<Index> rows;
        for (Index t = 0; t < s.batches_per_epoch(); ++t) {
          INFO("epoch=" << epoch << " t=" << t);
          std::vector<Index> calls, nonempty, predicted;
          for (int r = 0; r < ranks; ++r) {
            MemorySource& source = sources[size_t(r)];
            const Index calls0 = source.calls, nonempty0 = source.nonempty_calls;
            std::string failure;
            loaders[size_t(r)].load(t, batch, rows, failure);
            calls.push_back(source.calls - calls0);
            nonempty.push_back(source.nonempty_calls - nonempty0);
            const auto [first, last] = s.owned_shards(r, ranks);
            Index reads = 0;
            for (Index v = first; v < last; ++v)
              reads += orders[size_t(v)].reads_for(s.take_begin(v, t), s.take_begin(v, t + 1));
            predicted.push_back(reads);
          }
          CHECK(nonempty == predicted);
          CHECK(std::all_of(calls.begin(), calls.end(), [&](Index n) { return n == calls[0]; }));
          CHECK(calls[0] == *std::max_element(predicted.begin(), predicted.end()));
        }
      }
    }
  }
}

TEST_CASE("loader reports the first non-finite value with its row and column", "[loader]") {
  const double poison =
      GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
               -std::numeric_limits<double>::infinity());
  INFO("poison " << poison);
  MemorySource clean(20, 3);
  class Poisoned : public dictlearn::SampleSource {
   public:
    Poisoned(MemorySource& inner, double poison) : inner_(inner), poison_(poison) {}
    Index samples() const override { return inner_.samples(); }
    Index dim() const override { return inner_.dim(); }
    std::string describe() const override { return "poisoned"; }
    void read_rows(Index begin, Index count, double* out) override {
      inner_.read_rows(begin, count, out);
      for (Index j = 0; j < count; ++j)
        if (begin + j == 13) out[j * dim() + 2] = poison_;
    }

   private:
    MemorySource& inner_;
    double poison_;
  } source(clean, poison);
  ScheduleOptions o;
  o.batch_size = 5;
  o.virtual_shards = 2;
  o.chunk_rows = 4;
  const MinibatchSchedule s(20, o);
  MinibatchLoader loader(source, s, 0, 1);
  loader.start_epoch(0);
  Matrix batch;
  std::vector<Index> rows;
  std::string failure;
  for (Index t = 0; t < s.batches_per_epoch(); ++t) {
    loader.load(t, batch, rows, failure);
    // Reported once the chunk holding row 13 has been read; before that, nothing.
    if (failure.empty()) CHECK(std::find(rows.begin(), rows.end(), Index(13)) == rows.end());
  }
  INFO(failure);
  CHECK(failure.find("poisoned") != std::string::npos);
  CHECK(failure.find("row 13") != std::string::npos);
  CHECK(failure.find("column 2") != std::string::npos);
}
