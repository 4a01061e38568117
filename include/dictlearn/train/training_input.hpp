#pragma once
// What a `train` run reads, built from its configuration: the embedded synthetic
// generator, one HDF5 dataset, or several row-aligned modalities (plus an optional
// class-driver modality) stacked into one linked source (data/linked_source.hpp).
#include <memory>

#include "dictlearn/data/linked_source.hpp"
#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/train/config.hpp"

namespace dictlearn {

struct TrainingInput {
  std::unique_ptr<SampleSource> source;
  const SyntheticSource* synthetic = nullptr;  ///< set when source is the generator
  const LinkedSampleSource* linked = nullptr;  ///< set for linked dictionaries
  /// config.train adjusted for this input: linked runs get the modalities' constraint
  /// and normalize = none (each modality is normalised by the linked source itself).
  TrainOptions options;
};

/// Collective. Throws (agreed) Error naming the input on a missing file or dataset,
/// modalities of different sample counts, or a weight count that does not match.
TrainingInput open_training_input(const Communicator& comm, const RunConfig& config);

/// The stacked dictionary (d x K, blocks scaled by sqrt(w_i)) as the modalities'
/// dictionaries Phi_i stacked unweighted (unit-ball columns per block).
Matrix unweighted_dictionary(const AtomConstraint& constraint, const Matrix& stacked);

}  // namespace dictlearn
