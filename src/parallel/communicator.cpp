#include "dictlearn/parallel/communicator.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(cat("MPI error in ", what, ": ", std::string(text, length)));
}

Communicator::Communicator(MPI_Comm parent) {
  check_mpi(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup");
  // Errors are reported by return code (checked), never by the default abort handler.
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

std::unique_ptr<Communicator> node_communicator(const Communicator& comm) {
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(
      MPI_Comm_split_type(comm.get(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node),
      "MPI_Comm_split_type");
  auto shared = std::make_unique<Communicator>(node);  // duplicates it
  MPI_Comm_free(&node);
  return shared;
}

Communicator::~Communicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void Communicator::agree(const std::function<void()>& local_work) const {
  std::string message;
  bool failed = false;
  try {
    local_work();
  } catch (const std::bad_alloc&) {
    failed = true;
    message = "out of memory";
  } catch (const std::exception& error) {
    failed = true;
    message = error.what();
  }
  long long flag = failed ? 1 : 0;
  allreduce_max(&flag, 1);
  raise_if_any_failed(flag != 0, message);
}

void Communicator::raise_if_any_failed(bool any_failed, const std::string& local_message) const {
  if (!any_failed) return;
  std::string text = lowest_rank_message(local_message);
  if (text.empty()) text = "a rank failed without a message";
  throw AgreedError(text);
}

std::string Communicator::lowest_rank_message(const std::string& local_message) const {
  int candidate = local_message.empty() ? size_ : rank_;
  int reporter = 0;
  check_mpi(MPI_Allreduce(&candidate, &reporter, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
  if (reporter == size_) return std::string();
  int length = rank_ == reporter ? int(local_message.size()) : 0;
  check_mpi(MPI_Bcast(&length, 1, MPI_INT, reporter, comm_), "MPI_Bcast");
  std::string text = rank_ == reporter ? local_message : std::string(std::size_t(length), ' ');
  check_mpi(MPI_Bcast(text.data(), length, MPI_CHAR, reporter, comm_), "MPI_Bcast");
  return text;
}

void Communicator::allreduce_sum(double* data, Index count) const {
  // In segments of 1 MiB: Open MPI's allreduce allocates a temporary as large as the
  // message on every call, and for the tens of MiB of large-K statistics those fresh pages
  // cost 10x the transfer (measured, docs/scaling.md); segments also keep counts in int.
  constexpr Index kSegment = Index(1) << 17;
  for (Index offset = 0; offset < count; offset += kSegment) {
    const int segment = int(std::min(kSegment, count - offset));
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + offset, segment, MPI_DOUBLE, MPI_SUM, comm_),
              "MPI_Allreduce(sum)");
  }
}

void Communicator::allreduce_max(long long* data, int count) const {
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_LONG_LONG, MPI_MAX, comm_),
            "MPI_Allreduce(max)");
}

void Communicator::broadcast(double* data, int count, int root) const {
  check_mpi(MPI_Bcast(data, count, MPI_DOUBLE, root, comm_), "MPI_Bcast");
}

void Communicator::barrier() const { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

}  // namespace dictlearn
