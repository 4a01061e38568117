#pragma once
// Memory that the ranks of one node can all read and write (MPI-3 shared-memory window,
// MPI_Win_allocate_shared): each rank allocates its own segment, and every rank can
// address every segment of the node directly, without messages. Segments start
// zero-filled on every rank (the constructor ends with a barrier).
//
// The window stays in a passive-target epoch (MPI_Win_lock_all) for its whole life, so
// loads, stores and atomic operations on it need no MPI call; the users order them with
// acquire/release atomics (see coding/node_coding_team.hpp).
//
// Freeing the window is collective. When the destructor runs because an exception is
// unwinding the stack, the other ranks may never arrive: the window is then left to
// MPI_Finalize (or MPI_Abort) instead of risking a hang.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

class Communicator;

/// Thrown by the NodeSharedMemory constructor, on every rank of the node alike, when the
/// file system backing the window (Open MPI: /dev/shm by default) has too little room:
/// callers can fall back to per-rank work. what() names the directory and both sizes.
class NodeMemoryShortage : public Error {
 public:
  using Error::Error;
};

class NodeSharedMemory {
 public:
  /// Collective over `node`, whose ranks must share memory (node_communicator()).
  /// `bytes` is this rank's segment (ranks may ask for different sizes, 0 included).
  /// Throws NodeMemoryShortage (on all the node's ranks) if the node cannot hold them.
  NodeSharedMemory(const Communicator& node, std::size_t bytes);
  ~NodeSharedMemory();
  NodeSharedMemory(const NodeSharedMemory&) = delete;
  NodeSharedMemory& operator=(const NodeSharedMemory&) = delete;

  /// The segment of `rank` (of the node communicator), 64-byte aligned, and its size.
  void* segment(int rank) const { return segments_[std::size_t(rank)]; }
  std::size_t segment_bytes(int rank) const { return sizes_[std::size_t(rank)]; }
  int ranks() const { return ranks_; }
  int rank() const { return rank_; }

 private:
  MPI_Win window_ = MPI_WIN_NULL;
  int ranks_ = 0, rank_ = 0;
  int unwinding_at_start_ = 0;
  std::vector<void*> segments_;
  std::vector<std::size_t> sizes_;
};

/// A step counter per rank at byte `offset` of every segment (a 64-bit word): stores
/// `sequence` into this rank's (release: what it wrote before is visible to the others)
/// and waits until every rank's has reached `sequence` (acquire). Waits spin briefly, then
/// yield the core, as ranks may outnumber cores.
void publish_and_wait(const NodeSharedMemory& shared, std::size_t offset, std::uint64_t sequence);

/// The last value this rank published at `offset` (0 in a new window): where a user that
/// outlives one call continues its sequence.
std::uint64_t last_published(const NodeSharedMemory& shared, std::size_t offset);

}  // namespace dictlearn
