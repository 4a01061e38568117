#pragma once
// Helpers shared by the MPI tests: the world rank and size, a bitwise agreement check
// across ranks, and samples held in memory.
#include <mpi.h>

#include <string>
#include <utility>

#include "dictlearn/core/types.hpp"
#include "dictlearn/data/sample_source.hpp"

namespace mpi_test {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

/// True on every rank iff `matrix` is bitwise equal on all ranks of the world.
inline bool identical_on_all_ranks(const dictlearn::Matrix& matrix) {
  dictlearn::Matrix root = matrix;
  MPI_Bcast(root.data(), int(root.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  int same = root == matrix ? 1 : 0, all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_same == 1;
}

/// Samples held in memory (d x N), the same on every rank.
class MatrixSource : public dictlearn::SampleSource {
 public:
  explicit MatrixSource(dictlearn::Matrix data) : data_(std::move(data)) {}
  dictlearn::Index samples() const override { return data_.cols(); }
  dictlearn::Index dim() const override { return data_.rows(); }
  std::string describe() const override { return "matrix"; }
  void read_rows(dictlearn::Index begin, dictlearn::Index count, double* out) override {
    Eigen::Map<dictlearn::Matrix>(out, data_.rows(), count) = data_.middleCols(begin, count);
  }

 private:
  dictlearn::Matrix data_;
};

}  // namespace mpi_test
