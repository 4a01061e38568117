#pragma once
// The one owner of an MPI communicator in dictlearn (as Elemental's Grid): it duplicates
// the caller's communicator, so library traffic never mixes with the caller's, and frees
// the duplicate only while MPI is still initialised. Non-copyable.
//
// Error discipline: work that can fail on some ranks only (reading a file, finding a NaN)
// runs inside `agree(...)`; afterwards every rank knows whether any rank failed, and all
// of them throw the same dictlearn::Error carrying the lowest failing rank's message.
// So a failure never leaves other ranks waiting in a collective.
#include <mpi.h>

#include <functional>
#include <memory>
#include <string>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/types.hpp"

namespace dictlearn {

/// An Error that every rank of the communicator has agreed on and throws together: the
/// caller can report it (from rank 0) and exit normally, no rank is left in a collective.
class AgreedError : public Error {
 public:
  using Error::Error;
};

/// Throws dictlearn::Error naming `what` if an MPI call did not return MPI_SUCCESS.
void check_mpi(int code, const char* what);

class Communicator;

/// The ranks of `comm` that share this rank's memory (MPI_COMM_TYPE_SHARED): a node.
std::unique_ptr<Communicator> node_communicator(const Communicator& comm);

class Communicator {
 public:
  /// Duplicates `parent` (MPI_COMM_WORLD in the CLI, MPI_COMM_SELF for serial use).
  explicit Communicator(MPI_Comm parent);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  /// Runs `local_work` (which may throw) and then agrees across ranks: if it threw on any
  /// rank, every rank throws AgreedError with the message of the lowest failing rank.
  void agree(const std::function<void()>& local_work) const;

  /// The agreement step alone, for callers that already carried a failure flag through
  /// another collective: `any_failed` must be the same on every rank; `local_message` is
  /// empty on ranks that did not fail. Throws AgreedError on every rank when any_failed.
  void raise_if_any_failed(bool any_failed, const std::string& local_message) const;

  /// Collective: the `local_message` of the lowest rank whose message is not empty, on
  /// every rank (empty if all are), so that all ranks report the same line.
  std::string lowest_rank_message(const std::string& local_message) const;

  /// In-place elementwise sums over all ranks (any count: sent in segments).
  void allreduce_sum(double* data, Index count) const;
  void allreduce_max(long long* data, int count) const;
  void broadcast(double* data, int count, int root) const;
  void barrier() const;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace dictlearn
