// Distributed K-SVD on 1, 2 and 3 ranks: every rank holds the same dictionary bitwise, a
// run is reproducible, and runs on different rank counts agree up to the summation order
// of the per-atom allreduce (also through the replacement of unused atoms); file input
// (collective reads) equals in-process input, and a bad row fails on every rank.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/io/output_writer.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/ksvd.hpp"

#include "mpi_helpers.hpp"

using namespace dictlearn;
using namespace mpi_test;

namespace {

// Well separated: few atoms in a comfortable dimension, strong signal, so that OMP's atom
// choices do not flip with last-bit differences between rank counts.
SyntheticOptions separated_data() {
  SyntheticOptions data;
  data.samples = 2000;
  data.dim = 16;
  data.atoms = 24;
  data.sparsity = 3;
  data.snr_db = 30;
  data.seed = 17;
  return data;
}

TrainOptions ksvd_training() {
  TrainOptions options;
  options.atoms = 24;
  options.coder.kind = CoderKind::omp;
  options.coder.nonzeros = 3;
  options.epochs = 8;
  options.seed = 9;
  options.threads = 1;
  options.virtual_shards = 12;
  options.chunk_rows = 150;  // several reads per rank, unequal numbers of reads per rank
  return options;
}

// An initial dictionary with duplicated atoms: OMP never picks the later copy (ties go to
// the lower index), so the first sweep replaces those atoms by agreed samples.
Matrix duplicated_initial(const TrainOptions& options) {
  Communicator self(MPI_COMM_SELF);
  SyntheticSource source(separated_data());
  TrainOptions one = options;
  one.epochs = 1;
  Matrix init = train_ksvd(self, source, one).dictionary;
  init.col(5) = init.col(2);
  init.col(11) = init.col(2);
  init.col(20) = init.col(7);
  return init;
}

struct Run {
  Matrix dictionary;
  std::vector<EpochRecord> history;
};

// Trains on the first `ranks` ranks of the world; returns world rank 0's result everywhere.
Run train_on_first(int ranks, const TrainOptions& options, const Matrix& init) {
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() < ranks ? 0 : MPI_UNDEFINED, world_rank(), &sub);
  Run run;
  run.dictionary.resize(separated_data().dim, options.atoms);
  std::vector<double> objectives(size_t(options.epochs), 0.0), replaced(objectives);
  if (sub != MPI_COMM_NULL) {
    Communicator comm(sub);
    SyntheticSource source(separated_data());
    const TrainResult result = train_ksvd(comm, source, options, init);
    run.dictionary = result.dictionary;
    for (size_t e = 0; e < result.history.size(); ++e) {
      objectives[e] = result.history[e].objective;
      replaced[e] = double(result.history[e].replaced_atoms);
    }
    MPI_Comm_free(&sub);
  }
  MPI_Bcast(run.dictionary.data(), int(run.dictionary.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Bcast(objectives.data(), int(objectives.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Bcast(replaced.data(), int(replaced.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  for (size_t e = 0; e < objectives.size(); ++e) {
    EpochRecord record;
    record.objective = objectives[e];
    record.replaced_atoms = Index(replaced[e]);
    run.history.push_back(record);
  }
  return run;
}

}  // namespace

TEST_CASE("K-SVD: bitwise identical dictionaries on every rank, reproducible runs", "[mpi][ksvd]") {
  const TrainOptions options = ksvd_training();
  for (const Matrix& init : {Matrix(), duplicated_initial(options)}) {
    Communicator comm(MPI_COMM_WORLD);
    SyntheticSource source(separated_data());
    const TrainResult first = train_ksvd(comm, source, options, init);
    const TrainResult second = train_ksvd(comm, source, options, init);
    CHECK(first.dictionary == second.dictionary);
    CHECK(identical_on_all_ranks(first.dictionary));
    CHECK(first.dictionary.allFinite());
    CHECK((first.dictionary.colwise().norm().array() - 1.0).abs().maxCoeff() < 1e-12);
    CHECK(first.history.size() == 8);
    CHECK(first.state.epoch == 8);
    if (init.size() > 0) CHECK(first.history[0].replaced_atoms == 3);
  }
}

TEST_CASE("K-SVD: 1, 2 and 3 ranks learn the same dictionary within tolerance", "[mpi][ksvd]") {
  const TrainOptions options = ksvd_training();
  const Matrix duplicated = duplicated_initial(options);
  for (const Matrix& init : {Matrix(), duplicated}) {
    const Run reference = train_on_first(1, options, init);
    for (int ranks = 2; ranks <= world_size(); ++ranks) {
      const Run other = train_on_first(ranks, options, init);
      const double difference = (other.dictionary - reference.dictionary).cwiseAbs().maxCoeff();
      double objective_difference = 0.0;
      for (size_t e = 0; e < reference.history.size(); ++e) {
        objective_difference =
            std::max(objective_difference,
                     std::abs(other.history[e].objective - reference.history[e].objective) /
                         reference.history[e].objective);
        CHECK(other.history[e].replaced_atoms == reference.history[e].replaced_atoms);
      }
      if (world_rank() == 0)
        std::printf(
            "ksvd (%s init): %d ranks vs 1 rank after %lld epochs: max |D_P - D_1| = %.3g,"
            " max relative objective difference = %.3g\n",
            init.size() > 0 ? "duplicated" : "sampled", ranks,
            static_cast<long long>(options.epochs), difference, objective_difference);
      CHECK(difference < 1e-8);
      CHECK(objective_difference < 1e-10);
    }
  }
}

TEST_CASE("K-SVD: an HDF5 input (collective reads, unequal counts) equals in-process rows",
          "[mpi][ksvd][hdf5]") {
  Communicator comm(MPI_COMM_WORLD);
  const std::string path = "mpi_test_ksvd_input_" + std::to_string(world_size()) + ".h5";
  SyntheticSource source(separated_data());
  if (comm.is_root()) {
    Matrix all(source.dim(), source.samples());
    source.read_rows(0, source.samples(), all.data());
    all(4, 1345) = std::nan("");  // in the second file only
    write_matrix_file(path + ".nan", "/X", all);
    source.read_rows(0, source.samples(), all.data());
    write_matrix_file(path, "/X", all);
  }
  comm.barrier();
  TrainOptions options = ksvd_training();
  options.epochs = 2;
  options.chunk_rows = 333;  // 3 ranks hold 666, 667, 667 rows: 2, 3, 3 reads
  {
    Hdf5SampleSource file(comm, DatasetLocation::parse(path));
    const Matrix from_file = train_ksvd(comm, file, options).dictionary;
    const Matrix in_process = train_ksvd(comm, source, options).dictionary;
    CHECK(from_file == in_process);
  }
  {
    Hdf5SampleSource file(comm, DatasetLocation::parse(path + ".nan"));
    try {
      train_ksvd(comm, file, options);
      FAIL("K-SVD on a file with a NaN did not fail");
    } catch (const AgreedError& error) {
      const std::string message = error.what();
      CHECK(message.find("row 1345") != std::string::npos);
      CHECK(message.find("column 4") != std::string::npos);
    }
  }
  comm.barrier();
  if (comm.is_root()) {
    std::remove(path.c_str());
    std::remove((path + ".nan").c_str());
  }
}
