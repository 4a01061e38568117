// Catch2 runner for tests that run under mpiexec: every rank runs the whole session, and
// the process exits nonzero on every rank if any rank saw a failure (so CTest sees it
// whichever rank failed). Only rank 0 prints the report unless a test fails elsewhere.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>

int main(int argc, char** argv) {
  // Funneled: the online update's master thread calls MPI inside its OpenMP team.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Catch::Session session;
  if (const int status = session.applyCommandLine(argc, argv); status != 0) {
    MPI_Finalize();
    return status;
  }
  const int failed = session.run();
  int any_failed = 0;
  int local = failed != 0 ? 1 : 0;
  MPI_Allreduce(&local, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
