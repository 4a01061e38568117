#include "dictlearn/parallel/node_allreduce.hpp"

#include <algorithm>
#include <cstring>

namespace dictlearn {
namespace {
// Segment layout: the step counter on its own cache line, then two chunk buffers used
// alternately. A rank reuses a buffer two steps later, after the step in between has
// needed every rank's counter, i.e. after every rank has copied what it needed from it.
constexpr std::size_t kCounter = 0;
constexpr std::size_t kBuffers = 64;
constexpr std::size_t kBufferBytes = std::size_t(NodeAllreduce::kChunk) * sizeof(double);
}  // namespace

NodeAllreduce::NodeAllreduce(const Communicator& node)
    : memory_(node, kBuffers + 2 * kBufferBytes) {}  // counters start at zero

double* NodeAllreduce::buffer(int rank, std::uint64_t step) const {
  return reinterpret_cast<double*>(static_cast<char*>(memory_.segment(rank)) + kBuffers +
                                   (step & 1) * kBufferBytes);
}

void NodeAllreduce::sum(double* data, Index count) {
  for (Index first = 0; first < count; first += kChunk)
    sum_chunk(data + first, std::min(kChunk, count - first));
}

void NodeAllreduce::sum_chunk(double* data, Index count) {
  const int ranks = memory_.ranks(), rank = memory_.rank();
  const std::uint64_t step = ++steps_;
  // Rank r's slice of the chunk: [first(r), first(r + 1)).
  const auto first = [&](int r) { return count * r / ranks; };
  std::memcpy(buffer(rank, step), data, sizeof(double) * std::size_t(count));
  publish_and_wait(memory_, kCounter, 2 * step - 1);  // every rank's vector is in place
  // My slice, summed in rank order into `data` (a piece of it at a time, kept in the L1
  // cache while every rank's values are added), then copied into my own buffer, whose
  // slice no other rank reads before the next counter.
  double* mine = buffer(rank, step);
  constexpr Index kPiece = 1024;
  for (Index begin = first(rank), end = first(rank + 1); begin < end; begin += kPiece) {
    const Index stop = std::min(end, begin + kPiece);
    const double* zeroth = buffer(0, step);
    for (Index i = begin; i < stop; ++i) data[i] = zeroth[i];
    for (int r = 1; r < ranks; ++r) {
      const double* theirs = buffer(r, step);
      for (Index i = begin; i < stop; ++i) data[i] += theirs[i];
    }
    std::memcpy(mine + begin, data + begin, sizeof(double) * std::size_t(stop - begin));
  }
  publish_and_wait(memory_, kCounter, 2 * step);  // every slice is summed
  for (int r = 0; r < ranks; ++r)
    if (r != rank)
      std::memcpy(data + first(r), buffer(r, step) + first(r),
                  sizeof(double) * std::size_t(first(r + 1) - first(r)));
}

}  // namespace dictlearn
