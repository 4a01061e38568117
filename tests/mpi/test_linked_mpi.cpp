// Linked dictionaries on 1, 2 and 3 ranks: two modalities plus class drivers read from an
// HDF5 label file; every rank holds the same dictionary, and rank counts agree.
#include <catch2/catch.hpp>
#include <cstdio>

#include "dictlearn/data/class_driver_source.hpp"
#include "dictlearn/data/linked_source.hpp"
#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/io/label_reader.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/trainer.hpp"

using namespace dictlearn;

namespace {

constexpr Index kSamples = 1200, kAtoms = 12;
const char* const kLabels = "linked_mpi_labels.h5";

SyntheticOptions modality(Index dim, std::uint64_t seed) {
  SyntheticOptions data;
  data.samples = kSamples;
  data.dim = dim;
  data.atoms = kAtoms;
  data.sparsity = 2;
  data.snr_db = 30;
  data.seed = seed;
  return data;
}

// Trains on the first `ranks` ranks; world rank 0's dictionary, broadcast to all.
Matrix train_linked(int ranks, UpdateKind update) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank < ranks ? 0 : MPI_UNDEFINED, rank, &sub);
  Matrix dictionary(16 + 10 + kAtoms, kAtoms);
  if (sub != MPI_COMM_NULL) {
    Communicator comm(sub);
    std::vector<Modality> modalities(3);
    modalities[0].name = "first";
    modalities[0].source = std::make_unique<SyntheticSource>(modality(16, 21));
    modalities[1].name = "second";
    modalities[1].source = std::make_unique<SyntheticSource>(modality(10, 22));
    modalities[1].weight = 0.5;
    modalities[2].name = "drivers";
    modalities[2].source =
        std::make_unique<ClassDriverSource>(comm, DatasetLocation{kLabels, "/y"}, kAtoms);
    modalities[2].weight = 0.05;
    modalities[2].driver = modalities[2].fixed = true;
    LinkedSampleSource source(std::move(modalities), Normalization::unit);
    TrainOptions options;
    options.atoms = kAtoms;
    options.coder.kind = CoderKind::lars;
    options.coder.lambda = 0.05;
    options.update = update;
    options.batch_size = 64;
    options.epochs = 2;
    options.threads = 1;
    options.virtual_shards = 12;
    options.chunk_rows = 100;
    options.constraint = source.constraint(kAtoms);
    dictionary = train(comm, source, options).dictionary;
    MPI_Comm_free(&sub);
  }
  MPI_Bcast(dictionary.data(), int(dictionary.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return dictionary;
}

}  // namespace

TEST_CASE("linked dictionaries with class drivers agree across ranks and rank counts",
          "[mpi][linked]") {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0) {
    std::vector<long long> labels(kSamples);
    for (Index i = 0; i < kSamples; ++i) labels[size_t(i)] = (i * 7) % 4;
    write_integer_vector(kLabels, "/y", labels, false);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  for (const UpdateKind update : {UpdateKind::online, UpdateKind::mod}) {
    const Matrix reference = train_linked(1, update);
    // The driver block stays the scaled identity; the data blocks in their balls.
    CHECK((reference.bottomRows(kAtoms) - std::sqrt(0.05) * Matrix::Identity(kAtoms, kAtoms))
              .cwiseAbs()
              .maxCoeff() == 0.0);
    for (Index k = 0; k < kAtoms; ++k) {
      CHECK(reference.col(k).head(16).norm() <= 1.0 + 1e-12);
      CHECK(reference.col(k).segment(16, 10).norm() <= std::sqrt(0.5) + 1e-12);
    }
    for (int ranks = 2; ranks <= size; ++ranks) {
      const Matrix other = train_linked(ranks, update);
      const double difference = (other - reference).cwiseAbs().maxCoeff();
      if (rank == 0)
        std::printf("linked %s: %d ranks vs 1 rank: max |D_P - D_1| = %.3g\n",
                    to_string(update).c_str(), ranks, difference);
      CHECK(difference < 1e-8);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::remove(kLabels);
}
