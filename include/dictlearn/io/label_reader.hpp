#pragma once
// Collective parallel-HDF5 readers for the inputs that are not an N x d float matrix, and
// small serial writers for 1-D outputs:
//
//   LabelReader   integer class labels y (N, or N x 1), any HDF5 integer type, or a float
//                 type holding whole numbers; labels must be >= 0.
//   CsrReader     a sparse N x K matrix stored as scipy.sparse / anndata CSR, the layout
//                 `dictlearn encode` writes: group /codes with data (float), indices (int,
//                 column of each value, in [0, K)), indptr (int, N + 1 offsets, starts at
//                 0, non-decreasing) and attribute shape = (N, K). A row block of it is
//                 returned as a K x count Eigen column-major sparse matrix: a sample is a
//                 column, as everywhere in dictlearn (core/types.hpp).
//
// As with DatasetReader, every rank opens the file together and makes the same number of
// read calls (a rank with nothing to read passes count = 0). Every failure (missing file
// or dataset, wrong type or shape, a negative label, an out-of-range index) is agreed
// across ranks: all ranks throw the same AgreedError naming the file and dataset.
#include <Eigen/SparseCore>
#include <cstdint>
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/io/hdf5_handle.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// K x n sparse features, one sample per column (compressed sparse columns = the CSR rows
/// of the N x K matrix on disk). 32-bit indices: at most 2^31 - 1 nonzeros per block.
using SparseMatrix = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;

class LabelReader {
 public:
  /// Collective. Opens and validates: the file exists and is HDF5, the dataset exists, is
  /// 1-D (N) or 2-D (N x 1) with N >= 1 and has an integer or floating-point type.
  LabelReader(const Communicator& comm, const DatasetLocation& location);

  Index rows() const { return rows_; }
  const DatasetLocation& location() const { return location_; }

  /// Collective. Labels of rows [begin, begin + count). Throws AgreedError on every rank if
  /// any rank read a negative label, a non-integer float, or a value beyond INT_MAX.
  std::vector<int> read_rows(Index begin, Index count);
  /// Collective. All N labels on every rank.
  std::vector<int> read_all() { return read_rows(0, rows_); }

 private:
  const Communicator* comm_;
  DatasetLocation location_;
  h5::Handle file_;
  h5::Handle dataset_;
  h5::Handle file_space_;
  h5::Handle transfer_;
  bool floating_ = false;
  Index rows_ = 0;
};

class CsrReader {
 public:
  /// Collective. True if `location` names a group holding data, indices and indptr (so it
  /// should be read with CsrReader); false for anything else, including a dataset. Throws
  /// AgreedError (naming the file) if the file is missing or not HDF5, or the object
  /// does not exist.
  static bool is_csr(const Communicator& comm, const DatasetLocation& location);

  /// Collective. Opens and validates the group: the three datasets are 1-D, indptr has
  /// N + 1 entries, data and indices have indptr[N] entries, shape = (N, K) with N, K >= 1
  /// (without the attribute, K = 1 + the largest index, found by reading all indices).
  CsrReader(const Communicator& comm, const DatasetLocation& location);

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  std::int64_t nonzeros() const { return nonzeros_; }
  const DatasetLocation& location() const { return location_; }

  /// Collective. Rows [begin, begin + count) as a cols() x count sparse matrix (column j =
  /// row begin + j; indices sorted within a column, repeated indices kept, i.e. summed by
  /// products, as in scipy). Throws AgreedError on every rank if a rank's block has
  /// decreasing offsets, an index outside [0, K) or a non-finite value.
  SparseMatrix read_rows(Index begin, Index count);

 private:
  std::vector<std::int64_t> read_integers(hid_t dataset, std::int64_t begin, std::int64_t count,
                                          const std::string& name);

  const Communicator* comm_;
  DatasetLocation location_;
  h5::Handle file_;
  h5::Handle data_;
  h5::Handle indices_;
  h5::Handle indptr_;
  h5::Handle transfer_;
  Index rows_ = 0;
  Index cols_ = 0;
  std::int64_t nonzeros_ = 0;
};

/// Serial (one process). Writes a 1-D int64 dataset `dataset` of `values` into `path`:
/// creates (truncates) the file when `append` is false, else adds to an existing file
/// (intermediate groups are created). Throws Error naming the path.
void write_integer_vector(const std::string& path, const std::string& dataset,
                          const std::vector<long long>& values, bool append);
/// Serial. As write_integer_vector, for a 1-D float64 dataset.
void write_real_vector(const std::string& path, const std::string& dataset,
                       const std::vector<double>& values, bool append);

}  // namespace dictlearn
