#pragma once
// Writes result files that h5py and scikit-learn users read directly: matrices as
// row-major datasets with one atom or sample per row, parameters as attributes.
// The file is written under a temporary name and renamed over the target only by
// commit(), so an existing output is never half-overwritten; a writer destroyed without
// commit() removes its temporary file.
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/io/hdf5_handle.hpp"

namespace dictlearn {

class OutputWriter {
 public:
  /// Serial (one process): creates `path`.tmp.<pid>; throws Error if it cannot.
  explicit OutputWriter(const std::string& path);
  /// Serial: reopens a complete temporary file (written collectively by all ranks) to add
  /// attributes before commit() renames it onto `path`.
  static OutputWriter reopen(const std::string& temporary_path, const std::string& path);
  OutputWriter(OutputWriter&& other) noexcept;
  ~OutputWriter();
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  /// Stores a d x n column-major matrix as an n x d dataset (row i = column i).
  void write_columns_as_rows(const std::string& name, const Matrix& columns);
  /// A table of named double columns as a compound dataset (a numpy structured array).
  void write_table(const std::string& name, const std::vector<std::string>& column_names,
                   const std::vector<std::vector<double>>& columns);
  void set_attribute(const std::string& object, const std::string& key, const std::string& value);
  void set_attribute(const std::string& object, const std::string& key, double value);
  void set_attribute(const std::string& object, const std::string& key, long long value);
  void set_attribute(const std::string& object, const std::string& key,
                     const std::vector<long long>& values);
  void set_attribute(const std::string& object, const std::string& key,
                     const std::vector<double>& values);
  /// Text values that parse as integers or numbers are stored as numbers (so h5py returns
  /// them ready to use), the others as strings.
  void set_attributes(const std::string& object,
                      const std::vector<std::pair<std::string, std::string>>& values);

  /// Flushes, closes and atomically renames the temporary file onto the target path.
  void commit();

 private:
  OutputWriter() = default;
  std::string path_;
  std::string temporary_path_;
  h5::Handle file_;
  bool committed_ = false;
};

/// Writes one matrix (d x n columns -> n x d rows) to a new file; for tests and tools.
void write_matrix_file(const std::string& path, const std::string& dataset, const Matrix& columns);

}  // namespace dictlearn
