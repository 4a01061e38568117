// Serial unit tests. MPI is initialised because some library objects (communicator
// wrappers, the trainer on one rank) are exercised here on MPI_COMM_SELF.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <catch2/catch.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int failed = Catch::Session().run(argc, argv);
  MPI_Finalize();
  return failed == 0 ? 0 : 1;
}
