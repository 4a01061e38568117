#pragma once
// Integer labels (N, or N x 1) as a one-feature sample source, so that the minibatch
// loader hands out each sample's label next to the sample itself (same schedule, same
// rows). Values are the class indices as doubles.
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/io/label_reader.hpp"

namespace dictlearn {

class LabelSource : public SampleSource {
 public:
  LabelSource(const Communicator& comm, const DatasetLocation& location)
      : reader_(comm, location) {}
  Index samples() const override { return reader_.rows(); }
  Index dim() const override { return 1; }
  std::string describe() const override { return reader_.location().describe(); }
  void read_rows(Index begin, Index count, double* out) override {
    const std::vector<int> labels = reader_.read_rows(begin, count);
    for (Index i = 0; i < count; ++i) out[i] = double(labels[size_t(i)]);
  }

 private:
  LabelReader reader_;
};

}  // namespace dictlearn
