#pragma once
// Collective parallel-HDF5 reads of row blocks (hyperslabs) of a 2-D dataset whose rows
// are samples (N x d), through the MPI-IO driver. Each rank asks for its own rows; all
// ranks of the communicator make the same number of read calls (a rank with nothing to
// read passes count = 0), as collective I/O requires.
#include <string>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/io/hdf5_handle.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// "file.h5:/group/data" or "file.h5" (dataset `default_dataset`).
struct DatasetLocation {
  std::string file;
  std::string dataset;
  static DatasetLocation parse(const std::string& spec, const std::string& default_dataset = "/X");
  std::string describe() const { return file + ":" + dataset; }
};

class DatasetReader {
 public:
  /// Collective. Opens and validates (the file exists and is HDF5, the dataset exists, is
  /// 2-D with at least one row, and has a floating-point type); throws Error on every rank
  /// otherwise, naming the file and dataset.
  DatasetReader(const Communicator& comm, const DatasetLocation& location);

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  const DatasetLocation& location() const { return location_; }

  /// Collective. Reads rows [begin, begin + count) into `out` (count * cols values, row
  /// after row, i.e. a column-major cols x count matrix), converting to double.
  void read_rows(Index begin, Index count, double* out);

  /// A string attribute of the file's root group, or `fallback` if there is none.
  std::string root_attribute(const std::string& name, const std::string& fallback) const;
  /// A numeric attribute (scalar or 1-D) of the root group as doubles; empty if absent.
  std::vector<double> root_attribute_numbers(const std::string& name) const;

  /// Reads the whole dataset on every rank (for small data such as a dictionary):
  /// a cols x rows column-major matrix.
  Matrix read_all();

 private:
  DatasetLocation location_;
  h5::Handle file_;
  h5::Handle dataset_;
  h5::Handle file_space_;
  h5::Handle transfer_;
  Index rows_ = 0;
  Index cols_ = 0;
};

}  // namespace dictlearn
