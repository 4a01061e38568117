#pragma once
// The ordinal-linked ("driver") modality of Barari & Kim: a label y in 0..C-1 becomes a
// binary vector of length K that switches on the block of neurons [y K / C, (y+1) K / C).
// Stacked with the data modalities and given the identity as its (fixed) dictionary, it
// acts as a current injected into the class's neurons during training.
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/io/label_reader.hpp"

namespace dictlearn {

class ClassDriverSource : public SampleSource {
 public:
  /// Collective. Reads the labels' range to find C = max label + 1 (agreed over ranks)
  /// unless `classes` > 0. Throws Error naming the dataset if a label is negative or
  /// >= C, or if atoms < C.
  ClassDriverSource(const Communicator& comm, const DatasetLocation& labels, Index atoms,
                    Index classes = 0);

  Index samples() const override { return reader_.rows(); }
  Index dim() const override { return atoms_; }
  std::string describe() const override { return "drivers " + location_.describe(); }
  void read_rows(Index begin, Index count, double* out) override;

  Index classes() const { return classes_; }
  /// Neurons [first, last) driven by class c.
  Index block_begin(Index c) const { return c * atoms_ / classes_; }
  Index block_end(Index c) const { return (c + 1) * atoms_ / classes_; }

 private:
  DatasetLocation location_;
  LabelReader reader_;
  Index atoms_ = 0;
  Index classes_ = 0;
};

}  // namespace dictlearn
