#pragma once
// Where samples come from: an N x d HDF5 dataset read by hyperslab, or the in-process
// synthetic generator. Both hand out rows by global index, so the minibatch schedule and
// everything after it do not care which one is behind.
#include <memory>
#include <string>

#include "dictlearn/core/types.hpp"
#include "dictlearn/io/dataset_reader.hpp"

namespace dictlearn {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual Index samples() const = 0;
  virtual Index dim() const = 0;
  /// Names the source in messages ("file.h5:/X", "synthetic").
  virtual std::string describe() const = 0;
  /// Rows [begin, begin + count) as a column-major dim x count block. Collective for file
  /// sources: every rank calls equally often, with count = 0 when it needs nothing.
  virtual void read_rows(Index begin, Index count, double* out) = 0;
};

/// Samples stored as the rows of a 2-D HDF5 dataset, read collectively through MPI-IO.
class Hdf5SampleSource : public SampleSource {
 public:
  Hdf5SampleSource(const Communicator& comm, const DatasetLocation& location)
      : reader_(comm, location) {}
  Index samples() const override { return reader_.rows(); }
  Index dim() const override { return reader_.cols(); }
  std::string describe() const override { return reader_.location().describe(); }
  void read_rows(Index begin, Index count, double* out) override {
    reader_.read_rows(begin, count, out);
  }

 private:
  DatasetReader reader_;
};

}  // namespace dictlearn
