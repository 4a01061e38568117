#include "dictlearn/parallel/node_shared_memory.hpp"

#include <sched.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "dictlearn/core/error.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {
namespace {
// Every segment starts on its own cache lines: the atomic words of one rank never share a
// line with another rank's data.
constexpr std::size_t kAlignment = 64;
std::size_t padded(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// Open MPI (4.1) backs a shared window with one file, which the node's first rank creates.
// If its file system lacks the room, that rank returns an error while the others wait
// for it in a broadcast that never comes: the job hangs (seen with a 16 MiB /dev/shm).
// So the room is checked first, by Open MPI's own rule (the directory's free blocks
// against the whole request), and every rank of the node learns the verdict.
#if defined(OPEN_MPI) && defined(__linux__)
// Open MPI adds its own state and page alignment per rank to the segments (12 KiB for
// two ranks, measured); this keeps clear of that.
constexpr std::uint64_t kFixedSlack = 64 * 1024, kSlackPerRank = 8 * 1024;

// Where Open MPI puts the backing file: its MCA parameter (mpirun --mca passes it on as
// this variable), else the Linux default.
std::string backing_directory() {
  const char* configured = std::getenv("OMPI_MCA_osc_sm_backing_directory");
  return configured != nullptr && *configured != '\0' ? configured : "/dev/shm";
}

std::string mebibytes(std::uint64_t bytes) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << double(bytes) / (1024.0 * 1024.0) << " MiB";
  return out.str();
}

void check_backing_room(const Communicator& node, std::size_t bytes) {
  std::uint64_t needed = padded(bytes) + kAlignment + kSlackPerRank;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &needed, 1, MPI_UINT64_T, MPI_SUM, node.get()),
            "MPI_Allreduce (node shared memory size)");
  needed += kFixedSlack;
  const std::string directory = backing_directory();
  std::uint64_t available = UINT64_MAX;  // unknown: let MPI try
  if (node.rank() == 0) {
    struct statvfs room;
    if (statvfs(directory.c_str(), &room) == 0)
      available = std::uint64_t(room.f_bavail) * std::uint64_t(room.f_frsize);
  }
  check_mpi(MPI_Bcast(&available, 1, MPI_UINT64_T, 0, node.get()),
            "MPI_Bcast (node shared memory room)");
  if (available < needed)
    throw NodeMemoryShortage(cat("node shared memory is short: ", directory, " has ",
                                 mebibytes(available), " free, ", mebibytes(needed),
                                 " needed (enlarge it, e.g. docker run --shm-size, or point "
                                 "OMPI_MCA_osc_sm_backing_directory at a larger local "
                                 "directory such as /tmp)"));
}
#else
void check_backing_room(const Communicator&, std::size_t) {}
#endif
}  // namespace

NodeSharedMemory::NodeSharedMemory(const Communicator& node, std::size_t bytes)
    : ranks_(node.size()), rank_(node.rank()), unwinding_at_start_(std::uncaught_exceptions()) {
  check_backing_room(node, bytes);
  MPI_Info info = MPI_INFO_NULL;
  // Contiguous segments are not needed (each is addressed on its own); letting MPI place
  // them per rank allows NUMA-local pages.
  check_mpi(MPI_Info_create(&info), "MPI_Info_create");
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  void* mine = nullptr;
  const int code = MPI_Win_allocate_shared(MPI_Aint(padded(bytes) + kAlignment), 1, info,
                                           node.get(), &mine, &window_);
  MPI_Info_free(&info);
  check_mpi(code, "MPI_Win_allocate_shared (node shared memory)");
  // As on the communicators: errors come back as codes (checked), never abort.
  MPI_Win_set_errhandler(window_, MPI_ERRORS_RETURN);
  segments_.resize(std::size_t(ranks_));
  sizes_.resize(std::size_t(ranks_));
  for (int r = 0; r < ranks_; ++r) {
    MPI_Aint size = 0;
    int unit = 0;
    void* base = nullptr;
    check_mpi(MPI_Win_shared_query(window_, r, &size, &unit, &base), "MPI_Win_shared_query");
    // Segments are mapped page-aligned in every process, so rounding up gives every rank
    // the same offset into each segment.
    const auto address = reinterpret_cast<std::uintptr_t>(base);
    const std::uintptr_t aligned = (address + kAlignment - 1) / kAlignment * kAlignment;
    segments_[std::size_t(r)] = reinterpret_cast<void*>(aligned);
    sizes_[std::size_t(r)] = size > 0 ? std::size_t(size) - kAlignment : 0;
  }
  check_mpi(MPI_Win_lock_all(MPI_MODE_NOCHECK, window_), "MPI_Win_lock_all");
  // MPI leaves the contents unspecified; users keep counters in their segments, and a rank
  // must never see another's before it is zero. Zero-fill, then synchronise (the pattern
  // of MPI's separate memory model: sync, barrier, sync).
  if (sizes_[std::size_t(rank_)] > 0)
    std::memset(segments_[std::size_t(rank_)], 0, sizes_[std::size_t(rank_)]);
  MPI_Win_sync(window_);
  node.barrier();
  MPI_Win_sync(window_);
}

NodeSharedMemory::~NodeSharedMemory() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized || window_ == MPI_WIN_NULL) return;
  if (std::uncaught_exceptions() > unwinding_at_start_) return;  // see the header
  MPI_Win_unlock_all(window_);
  MPI_Win_free(&window_);
}

namespace {
std::uint64_t* counter_of(const NodeSharedMemory& shared, int rank, std::size_t offset) {
  return reinterpret_cast<std::uint64_t*>(static_cast<char*>(shared.segment(rank)) + offset);
}
}  // namespace

std::uint64_t last_published(const NodeSharedMemory& shared, std::size_t offset) {
  return __atomic_load_n(counter_of(shared, shared.rank(), offset), __ATOMIC_RELAXED);
}

void publish_and_wait(const NodeSharedMemory& shared, std::size_t offset, std::uint64_t sequence) {
  __atomic_store_n(counter_of(shared, shared.rank(), offset), sequence, __ATOMIC_RELEASE);
  for (int r = 0; r < shared.ranks(); ++r) {
    const std::uint64_t* counter = counter_of(shared, r, offset);
    // The partners are usually microseconds away: spin a little before yielding.
    for (int spins = 0; __atomic_load_n(counter, __ATOMIC_ACQUIRE) < sequence; ++spins)
      if (spins > 200) sched_yield();
  }
}

}  // namespace dictlearn
