#pragma once
// Several row-aligned modalities (same N samples, dimensions d_i, possibly in different
// files) seen as one stacked sample source for linked dictionaries:
//
//   x = [sqrt(w_1) n(I_1); sqrt(w_2) n(I_2); ...]     (n: the per-sample normalisation)
//
// so that 0.5 ||x - D a||^2 = 0.5 sum_i w_i ||n(I_i) - Phi_i a||^2 with the stacked
// D = [sqrt(w_i) Phi_i] (see update/atom_constraint.hpp). Each modality is normalised on
// its own; class-driver modalities (data/class_driver_source.hpp) are never normalised.
#include <memory>
#include <string>
#include <vector>

#include "dictlearn/data/preprocess.hpp"
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/update/atom_constraint.hpp"

namespace dictlearn {

struct Modality {
  std::string name;  ///< e.g. the input "file.h5:/X" or "drivers"
  std::unique_ptr<SampleSource> source;
  double weight = 1.0;
  bool driver = false;  ///< labels turned into class currents: not normalised
  bool fixed = false;   ///< its dictionary block is fixed (identity for drivers)
};

class LinkedSampleSource : public SampleSource {
 public:
  /// Throws Error (naming both modalities) if the sample counts differ, a weight is not
  /// positive and finite, or there is no modality.
  LinkedSampleSource(std::vector<Modality> modalities, Normalization normalization);

  Index samples() const override { return samples_; }
  Index dim() const override { return dim_; }
  std::string describe() const override;
  /// Collective like its modalities: every one is read for every call.
  void read_rows(Index begin, Index count, double* out) override;

  const std::vector<Modality>& modalities() const { return modalities_; }
  Index offset(size_t modality) const { return offsets_[modality]; }
  /// The row blocks of the stacked dictionary with radius sqrt(w_i); fixed blocks hold
  /// sqrt(w_i) I (K rows: only driver modalities of dimension K can be fixed).
  AtomConstraint constraint(Index atoms) const;

 private:
  std::vector<Modality> modalities_;
  std::vector<Index> offsets_;
  Normalization normalization_;
  Index samples_ = 0, dim_ = 0;
  Matrix scratch_;
};

}  // namespace dictlearn
