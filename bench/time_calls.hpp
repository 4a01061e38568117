#pragma once
// Timing shared by the MPI benchmark programs in bench/.
#include <mpi.h>

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "dictlearn/parallel/communicator.hpp"

namespace bench {

/// Best and median of `reps` timed calls (after one untimed), each the slowest rank's and
/// each started after a barrier.
inline std::pair<double, double> time_calls(const dictlearn::Communicator& comm, int reps,
                                            const std::function<void()>& call) {
  call();
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    comm.barrier();
    const double start = MPI_Wtime();
    call();
    double elapsed = MPI_Wtime() - start;
    MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, comm.get());
    times.push_back(elapsed);
  }
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

}  // namespace bench
