#pragma once
// Elementwise sums of a vector of doubles over the ranks of one node, through node shared
// memory instead of MPI_Allreduce: each rank copies the other ranks' slices of its vector
// into its segment, adds up its own slice over all ranks (in rank order), and then copies
// the other ranks' summed slices. No messages and no temporaries; for the per-minibatch
// statistics (hundreds of KiB) it is faster than Open MPI's allreduce between the ranks of
// a node (measured in docs/scaling.md).
//
// The sum of each element is formed in rank order, rank 0 first, the same on every rank
// and in every call, so results are reproducible for a given rank count; with two ranks
// they are bitwise those of MPI_Allreduce (a + b == b + a). With three or more they may
// differ from MPI's order in the last bit.
//
// Every rank of the node must call sum() the same number of times with the same count, as
// with any collective. Long vectors go in chunks, so the shared memory stays small.
#include <cstdint>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"

namespace dictlearn {

class NodeAllreduce {
 public:
  /// Collective over `node` (node_communicator()). Vectors of any length can be summed.
  explicit NodeAllreduce(const Communicator& node);

  /// In place: afterwards every rank's data[i] is the sum over the ranks of their data[i].
  void sum(double* data, Index count);

  /// Doubles per chunk: one step of the exchange (two buffers of it per rank).
  static constexpr Index kChunk = Index(1) << 17;  // 1 MiB

 private:
  void sum_chunk(double* data, Index count);
  double* buffer(int rank, std::uint64_t step) const;

  NodeSharedMemory memory_;
  std::uint64_t steps_ = 0;  // chunks summed so far (the same on every rank)
};

}  // namespace dictlearn
