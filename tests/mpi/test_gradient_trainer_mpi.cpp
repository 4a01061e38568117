// The gradient trainer on 1, 2 and 3 ranks: parameters bitwise identical on every rank,
// rank counts agreeing within rounding, for the task-driven and the attributor objectives.
#include <catch2/catch.hpp>
#include <cstdio>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/gradient/gradient_trainer.hpp"
#include "dictlearn/parallel/communicator.hpp"

#include "mpi_helpers.hpp"

using namespace dictlearn;
using namespace mpi_test;

namespace {

SyntheticOptions data_options() {
  SyntheticOptions data;
  data.samples = 600;
  data.dim = 10;
  data.atoms = 6;
  data.sparsity = 2;
  data.snr_db = 30;
  data.seed = 4;
  return data;
}

// Labels: whether the sample's first coordinate is positive (a learnable task).
Matrix labels_of(SyntheticSource& source) {
  Matrix x(source.dim(), source.samples());
  source.read_rows(0, source.samples(), x.data());
  Matrix y(1, x.cols());
  for (Index j = 0; j < x.cols(); ++j) y(0, j) = x(0, j) > 0.0 ? 1.0 : 0.0;
  return y;
}

struct Parameters {
  Matrix dictionary, extra;
};

Parameters train_on_first(int ranks, Objective objective) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank < ranks ? 0 : MPI_UNDEFINED, rank, &sub);
  TrainOptions options;
  options.atoms = 6;
  options.coder.lambda = 0.05;
  options.batch_size = 40;
  options.epochs = 2;
  options.seed = 2;
  options.threads = 1;
  options.virtual_shards = 6;
  options.chunk_rows = 50;
  GradientOptions gradient;
  gradient.objective = objective;
  gradient.task.lambda1 = 0.05;
  gradient.task.lambda2 = 0.01;
  gradient.optimizer.learning_rate = 1e-2;
  Parameters out{Matrix::Zero(10, 6), Matrix::Zero(objective == Objective::task ? 1 : 6,
                                                   objective == Objective::task ? 6 : 10)};
  if (sub != MPI_COMM_NULL) {
    Communicator comm(sub);
    SyntheticSource data(data_options());
    MatrixSource targets(labels_of(data));
    const TrainResult result = train_gradient(
        comm, data, objective == Objective::task ? &targets : nullptr, options, gradient);
    out.dictionary = result.dictionary;
    out.extra =
        state_extra(result.state, objective == Objective::task ? "task_weights" : "encoder");
    MPI_Comm_free(&sub);
  }
  MPI_Bcast(out.dictionary.data(), int(out.dictionary.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Bcast(out.extra.data(), int(out.extra.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return out;
}

}  // namespace

TEST_CASE("gradient trainer: same parameters on every rank, rank counts agree", "[mpi][gradient]") {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (const Objective objective : {Objective::task, Objective::attributor}) {
    {  // all ranks together: bitwise identical parameters everywhere
      Communicator comm(MPI_COMM_WORLD);
      SyntheticSource data(data_options());
      MatrixSource targets(labels_of(data));
      TrainOptions options;
      options.atoms = 6;
      options.coder.lambda = 0.05;
      options.batch_size = 40;
      options.epochs = 1;
      options.threads = 1;
      options.virtual_shards = 6;
      GradientOptions gradient;
      gradient.objective = objective;
      gradient.task.lambda1 = 0.05;
      const TrainResult result = train_gradient(
          comm, data, objective == Objective::task ? &targets : nullptr, options, gradient);
      CHECK(identical_on_all_ranks(result.dictionary));
      CHECK(result.dictionary.allFinite());
    }
    const Parameters reference = train_on_first(1, objective);
    for (int ranks = 2; ranks <= size; ++ranks) {
      const Parameters other = train_on_first(ranks, objective);
      const double difference =
          std::max((other.dictionary - reference.dictionary).cwiseAbs().maxCoeff(),
                   (other.extra - reference.extra).cwiseAbs().maxCoeff());
      if (rank == 0)
        std::printf("gradient %s: %d ranks vs 1 rank: max difference %.3g\n",
                    to_string(objective).c_str(), ranks, difference);
      CHECK(difference < 1e-8);
    }
  }
}
