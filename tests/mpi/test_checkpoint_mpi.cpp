// Checkpoint and resume: a run stopped and resumed with the same rank count ends bitwise
// identical to an uninterrupted one; with another rank count within the cross-rank
// tolerance; a corrupt newest checkpoint falls back to the previous one of the ring.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/checkpoint.hpp"
#include "dictlearn/train/trainer.hpp"

using namespace dictlearn;

namespace {

SyntheticOptions checkpoint_data() {
  SyntheticOptions data;
  data.samples = 2500;
  data.dim = 12;
  data.atoms = 20;
  data.sparsity = 3;
  data.seed = 4;
  return data;
}

TrainOptions checkpoint_training(UpdateKind update, UpdateSchedule every, const std::string& path) {
  TrainOptions options;
  options.atoms = 20;
  options.coder.kind = update == UpdateKind::online ? CoderKind::lars : CoderKind::omp;
  options.coder.lambda = 0.05;
  options.coder.nonzeros = 3;
  options.update = update;
  options.update_every = every;
  options.batch_size = 50;
  options.epochs = 3;
  options.seed = 9;
  options.threads = 1;
  options.virtual_shards = 6;
  options.chunk_rows = 64;
  options.checkpoint.path = path;
  options.checkpoint.keep = 2;
  return options;
}

std::string unique_path(const Communicator& comm, const char* stem) {
  return std::string(stem) + "_" + std::to_string(comm.size()) + ".h5";
}

void remove_ring(const std::string& path) {
  for (const std::string& p : {path, path + ".1", path + ".tmp"}) std::remove(p.c_str());
}

}  // namespace

TEST_CASE("stop and resume with the same rank count is bitwise identical", "[mpi][checkpoint]") {
  Communicator comm(MPI_COMM_WORLD);
  const std::string path = unique_path(comm, "mpi_checkpoint");
  SyntheticSource source(checkpoint_data());
  for (auto [update, every] : {std::pair{UpdateKind::online, UpdateSchedule::minibatch},
                               std::pair{UpdateKind::mod, UpdateSchedule::epoch}}) {
    // 50 minibatches per epoch: stop inside epoch 1, then inside epoch 2, then finish.
    for (Index stop_at : {Index(37), Index(50), Index(73)}) {
      if (comm.is_root()) remove_ring(path);
      comm.barrier();
      TrainOptions options = checkpoint_training(update, every, "");
      const TrainResult full = train(comm, source, options);
      options.checkpoint.path = path;
      options.stop_after = stop_at;
      const TrainResult first = train(comm, source, options);
      REQUIRE(first.interrupted);
      LoadedCheckpoint loaded = load_checkpoint(comm, path, 2);
      CHECK(loaded.state.step == stop_at);
      options.stop_after = 0;
      const TrainResult resumed =
          train(comm, source, options, Matrix(), nullptr, nullptr, &loaded.state);
      CHECK_FALSE(resumed.interrupted);
      INFO("stop after " << stop_at << " minibatches");
      CHECK(resumed.dictionary == full.dictionary);  // bit for bit
      REQUIRE(resumed.history.size() == full.history.size());
      for (size_t e = 0; e < full.history.size(); ++e)
        CHECK(resumed.history[e].objective == full.history[e].objective);
    }
  }
  comm.barrier();
  if (comm.is_root()) remove_ring(path);
}

TEST_CASE("a row-split update's checkpoint holds all of B, and resumes bitwise",
          "[mpi][checkpoint]") {
  // Split over the ranks, each rank keeps only its own rows of B current; the checkpoint
  // must still hold every row, bitwise those of an unsplit run (which learns the same D).
  Communicator comm(MPI_COMM_WORLD);
  const std::string path = unique_path(comm, "mpi_checkpoint_split");
  SyntheticOptions data = checkpoint_data();
  data.dim = 64;  // 4 blocks of 16 rows to split
  SyntheticSource source(data);
  TrainOptions options = checkpoint_training(UpdateKind::online, UpdateSchedule::minibatch, "");
  options.online.split = RowSplit::on;
  const TrainResult full = train(comm, source, options);
  options.checkpoint.path = path;
  options.stop_after = 37;
  Matrix b_by_split[2];
  LoadedCheckpoint split_checkpoint;
  for (const RowSplit split : {RowSplit::off, RowSplit::on}) {
    if (comm.is_root()) remove_ring(path);
    comm.barrier();
    options.online.split = split;
    REQUIRE(train(comm, source, options).interrupted);
    LoadedCheckpoint loaded = load_checkpoint(comm, path, 2);
    REQUIRE(loaded.state.step == 37);
    b_by_split[split == RowSplit::on ? 1 : 0] = loaded.state.b;
    if (split == RowSplit::on) split_checkpoint = std::move(loaded);
  }
  CHECK(b_by_split[1] == b_by_split[0]);
  options.stop_after = 0;
  const TrainResult resumed =
      train(comm, source, options, Matrix(), nullptr, nullptr, &split_checkpoint.state);
  CHECK(resumed.dictionary == full.dictionary);
  comm.barrier();
  if (comm.is_root()) remove_ring(path);
}

TEST_CASE("resume with another rank count agrees within the cross-rank tolerance",
          "[mpi][checkpoint]") {
  Communicator world(MPI_COMM_WORLD);
  if (world.size() < 2) return;  // needs a second rank count
  const std::string path = unique_path(world, "mpi_checkpoint_reshard");
  SyntheticSource source(checkpoint_data());
  if (world.is_root()) remove_ring(path);
  world.barrier();
  TrainOptions options = checkpoint_training(UpdateKind::online, UpdateSchedule::minibatch, path);
  const TrainResult full = train(world, source, options);
  options.stop_after = 61;
  REQUIRE(train(world, source, options).interrupted);
  options.stop_after = 0;
  // Continue on one rank fewer.
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world.rank() < world.size() - 1 ? 0 : MPI_UNDEFINED, world.rank(),
                 &sub);
  Matrix resumed(full.dictionary.rows(), full.dictionary.cols());
  if (sub != MPI_COMM_NULL) {
    Communicator fewer(sub);
    LoadedCheckpoint loaded = load_checkpoint(fewer, path, 2);
    CHECK(loaded.ranks == world.size());
    resumed = train(fewer, source, options, Matrix(), nullptr, nullptr, &loaded.state).dictionary;
    MPI_Comm_free(&sub);
  }
  MPI_Bcast(resumed.data(), int(resumed.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  const double difference = (resumed - full.dictionary).cwiseAbs().maxCoeff();
  if (world.is_root())
    std::printf("resume on %d ranks of a %d-rank run: max |D - D_full| = %.3g\n", world.size() - 1,
                world.size(), difference);
  CHECK(difference < 1e-8);
  world.barrier();
  if (world.is_root()) remove_ring(path);
}

TEST_CASE("a corrupt newest checkpoint falls back to the previous one of the ring",
          "[mpi][checkpoint]") {
  Communicator comm(MPI_COMM_WORLD);
  const std::string path = unique_path(comm, "mpi_checkpoint_ring");
  SyntheticSource source(checkpoint_data());
  if (comm.is_root()) remove_ring(path);
  comm.barrier();
  TrainOptions options = checkpoint_training(UpdateKind::online, UpdateSchedule::minibatch, path);
  options.checkpoint.every = 10;
  options.stop_after = 25;  // checkpoints after 10, 20 and at the stop (25): ring = 25, 20
  REQUIRE(train(comm, source, options).interrupted);
  comm.barrier();
  if (comm.is_root()) {  // flip bytes in the middle of the newest file
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(std::streamoff(std::filesystem::file_size(path) / 2));
    file.write("corrupt!corrupt!", 16);
  }
  comm.barrier();
  LoadedCheckpoint loaded = load_checkpoint(comm, path, 2);
  CHECK(loaded.path == path + ".1");
  CHECK(loaded.state.step == 20);
  REQUIRE(loaded.skipped.size() == 1);
  CHECK(loaded.skipped[0].find(path) != std::string::npos);
  // Both members corrupt: a clear error naming them.
  comm.barrier();
  if (comm.is_root()) std::filesystem::resize_file(path + ".1", 100);
  comm.barrier();
  CHECK_THROWS_WITH(load_checkpoint(comm, path, 2), Catch::Contains("no valid checkpoint"));
  comm.barrier();
  if (comm.is_root()) remove_ring(path);
}
