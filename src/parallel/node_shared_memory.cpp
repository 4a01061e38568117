#include "dictlearn/parallel/node_shared_memory.hpp"

#include <sched.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
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
// So the room is checked first, by Open MPI's own rule (shmem/mmap: the directory's free
// space must exceed the request by 5 %), and every rank of the node learns the verdict.
#if defined(OPEN_MPI) && defined(__linux__)
// Open MPI rounds each rank's segment up to whole pages and adds its own state (12 KiB
// for two ranks, measured); this keeps clear of that.
constexpr std::uint64_t kFixedSlack = 64 * 1024, kSlackPerRank = 8 * 1024;

// Where Open MPI puts the backing file: its osc_sm_backing_directory variable from the
// environment (mpirun --mca passes it on so), else from the first parameter file setting
// it, else the Linux default. (MPI_T would read it exactly, but MPI_T_init_thread costs
// 0.21 s here: it opens every component again.)
std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return std::string();
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::string setting_in_file(const std::string& path, const std::string& key) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    // Comments are whole lines: Open MPI keeps a '#' after a value as part of it.
    if (trimmed(line).rfind('#', 0) == 0) continue;
    const auto equals = line.find('=');
    if (equals != std::string::npos && trimmed(line.substr(0, equals)) == key)
      return trimmed(line.substr(equals + 1));
  }
  return std::string();
}

std::string backing_directory() {
  const std::string key = "osc_sm_backing_directory";
  if (const char* value = std::getenv(("OMPI_MCA_" + key).c_str()); value != nullptr && *value)
    return value;
  std::string files;
  if (const char* listed = std::getenv("OMPI_MCA_mca_base_param_files")) {
    files = listed;
  } else {
    const char* home = std::getenv("HOME");
    files = std::string(home != nullptr ? home : "") + "/.openmpi/mca-params.conf," +
            "/etc/openmpi/openmpi-mca-params.conf";
  }
  std::istringstream paths(files);
  for (std::string path; std::getline(paths, path, ',');)
    if (std::string value = setting_in_file(path, key); !value.empty()) return value;
  return "/dev/shm";
}

std::string mebibytes(std::uint64_t bytes) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << double(bytes) / (1024.0 * 1024.0) << " MiB";
  return out.str();
}

void check_backing_room(const Communicator& node, std::size_t bytes) {
  const std::uint64_t page = std::uint64_t(std::max(1L, sysconf(_SC_PAGESIZE)));
  std::uint64_t needed = (padded(bytes) + kAlignment + page - 1) / page * page + kSlackPerRank;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &needed, 1, MPI_UINT64_T, MPI_SUM, node.get()),
            "MPI_Allreduce (node shared memory size)");
  needed += kFixedSlack;
  needed += needed / 20 + page;  // Open MPI's 5 % margin, and rounding
  const std::string directory = backing_directory();
  // Rank 0 creates the file: its view of the directory decides (free bytes, errno).
  std::uint64_t room[2] = {0, 0};
  if (node.rank() == 0) {
    struct statvfs info;
    if (statvfs(directory.c_str(), &info) == 0)
      room[0] = std::uint64_t(info.f_bavail) * std::uint64_t(info.f_frsize);
    else
      room[1] = std::uint64_t(errno);
  }
  check_mpi(MPI_Bcast(room, 2, MPI_UINT64_T, 0, node.get()), "MPI_Bcast (node shared memory room)");
  if (room[1] != 0)
    throw NodeMemoryShortage(cat("node shared memory: cannot inspect ", directory, ": ",
                                 std::strerror(int(room[1])),
                                 " (point OMPI_MCA_osc_sm_backing_directory at an existing "
                                 "local directory such as /tmp)"));
  if (room[0] < needed)
    throw NodeMemoryShortage(cat("node shared memory is short: ", directory, " has ",
                                 mebibytes(room[0]), " free, ", mebibytes(needed),
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
