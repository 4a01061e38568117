#pragma once
// The result file of `dictlearn train`, laid out for h5py and scikit-learn users:
//   /dictionary       K x d float64, one atom per row (scikit-learn's components_)
//   /history          one record per epoch: epoch, objective, mean_nonzeros, seconds,
//                     elapsed, samples_per_second, replaced_atoms
//   /true_dictionary  K_true x d (synthetic runs only)
//   linked dictionaries: /dictionary holds the modalities' Phi_i side by side (unweighted,
//   each block of an atom in the unit ball), /modality_<i> each one alone (K x d_i), and
//   attributes modality_names, modality_dims, modality_offsets, modality_weights,
//   modality_fixed, modality_drivers describe the blocks (the driver modality is the last)
//   attributes of /   every configuration key, ranks, threads, version, N, d, and for
//                     synthetic runs the fraction of true atoms recovered
// Written by one process to a temporary file renamed into place when complete.
#include "dictlearn/train/config.hpp"

namespace dictlearn {

struct TrainSummary {
  int ranks = 1;
  Index samples = 0;
  Index dim = 0;
  const Matrix* true_dictionary = nullptr;  ///< d x K_true, synthetic runs
  double recovered_fraction = -1.0;         ///< < 0: not applicable
  /// Linked dictionaries: the modalities' row blocks (null or plain: one modality).
  const AtomConstraint* modalities = nullptr;
};

void write_train_output(const std::string& path, const RunConfig& config, const TrainResult& result,
                        const TrainSummary& summary);

}  // namespace dictlearn
