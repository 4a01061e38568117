// Learns a small dictionary through the installed library's public API on one rank.
#include <mpi.h>

#include <cstdio>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/train/trainer.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 1;
  {
    dictlearn::Communicator comm(MPI_COMM_SELF);
    dictlearn::SyntheticOptions data;
    data.samples = 6000;
    data.dim = 32;
    data.atoms = 48;
    data.sparsity = 3;
    dictlearn::SyntheticSource source(data);
    dictlearn::TrainOptions options;
    options.atoms = 48;
    options.coder.lambda = 0.1;
    options.epochs = 10;
    options.threads = 1;
    const auto result = dictlearn::train(comm, source, options);
    const double recovered =
        dictlearn::fraction_recovered(source.true_dictionary(), result.dictionary);
    std::printf("consumer: recovered %.1f%% of the atoms\n", 100 * recovered);
    status = recovered >= 0.9 ? 0 : 1;
  }
  MPI_Finalize();
  return status;
}
