#pragma once
// The ranks of one node code each other's samples: a rank that has finished its own part
// of a minibatch takes chunks of another rank's part, so the node waits for its slowest
// rank less (per-sample path lengths vary, and one busy core stalls every rank at the
// next allreduce).
//
// Each rank publishes its samples, D^T X and ||x||^2 in node shared memory
// (NodeSharedMemory) and claims chunks of samples through one atomic word per rank:
//   generation (24 bits) | front (20 bits) | back (20 bits).
// The owner takes chunks from the front, the others from the back; a claim is one
// compare-and-swap, valid only for the round (generation) the claimer is in, so a rank
// never codes samples of a round it has not reached or that has moved on. Codes go back
// into the owner's shared buffer; the owner waits until all of its samples are done.
//
// A code depends on its own sample, G and D only, and every rank codes with its own copy
// of G and D: who codes a sample does not change a bit of the result, provided that all
// ranks of the node go through the same rounds with the same dictionary (round k of every
// rank uses the same D), as MinibatchCoder::share_coding requires and the trainer's ranks
// do. A rank never waits for another to publish: one that looks before another has
// published simply does not help it in that round.
#include <atomic>
#include <cstdint>
#include <memory>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

class Communicator;
class NodeSharedMemory;

template <typename Scalar>
class NodeCodingTeam {
 public:
  /// Collective over `node`. `capacity`: the most samples this rank will publish at once
  /// (at most kMaxSamples).
  NodeCodingTeam(const Communicator& node, Index dim, Index atoms, Index capacity);
  ~NodeCodingTeam();
  NodeCodingTeam(const NodeCodingTeam&) = delete;
  NodeCodingTeam& operator=(const NodeCodingTeam&) = delete;

  static constexpr Index kMaxSamples = (Index(1) << 20) - 1;
  /// Samples per claim: small enough to even out the end of a minibatch, large enough
  /// that claiming costs nothing next to coding.
  static constexpr Index kChunk = 4;

  /// A rank's published samples (d x n, K x n, n) and their results (K x n codes, n
  /// residual norms ||x - D a||^2, in double) in shared memory.
  struct Samples {
    Eigen::Map<MatrixT<Scalar>> x, dtx;
    Eigen::Map<VectorT<Scalar>> x_sqnorms;
    Eigen::Map<MatrixT<Scalar>> codes;
    Eigen::Map<Vector> residual_sqnorms;
  };
  /// This rank's buffers for n <= capacity samples: fill x, dtx and x_sqnorms, then publish.
  Samples mine(Index n);
  /// Starts a round: this rank's n samples become claimable (by itself first).
  void publish(Index n);

  struct Claim {
    int owner = -1;
    Index begin = 0, end = 0;
  };
  /// Claims a chunk of this round: of this rank's samples while any are left, otherwise of
  /// another rank's. False when nothing is left to claim anywhere (for now).
  bool claim(Claim& claim);
  /// The buffers of a claim's owner (columns begin .. end - 1 are the claim's).
  Samples samples_of(const Claim& claim) const;
  /// Marks a claimed chunk coded (its codes written), with its number of nonzeros.
  void complete(const Claim& claim, Index nonzeros);
  /// All of this rank's samples of the round are coded (by whichever rank).
  bool mine_done() const;
  /// After mine_done(): nonzeros of this rank's codes.
  Index mine_nonzeros() const;
  /// Samples of other ranks this rank has coded, over all rounds. Thread-safe, as are
  /// claim(), samples_of() and complete() (OpenMP threads of a rank claim concurrently).
  Index coded_for_others() const { return coded_for_others_.load(); }
  int ranks() const;

 private:
  Samples view(int rank, Index n) const;

  std::unique_ptr<NodeSharedMemory> memory_;
  Index dim_, atoms_, capacity_;
  std::uint64_t generation_ = 0;
  Index published_ = 0;
  std::atomic<Index> coded_for_others_{0};
};

extern template class NodeCodingTeam<double>;
extern template class NodeCodingTeam<float>;

}  // namespace dictlearn
