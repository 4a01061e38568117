#pragma once
// A linked dictionary as written by `dictlearn train` with several modalities (see
// train/train_output.hpp): the modalities' Phi_i side by side in /dictionary and their
// layout in root attributes. Used to encode from some modalities only and to reconstruct
// one modality from codes.
#include <string>
#include <vector>

#include "dictlearn/io/dataset_reader.hpp"

namespace dictlearn {

struct LinkedModalityInfo {
  std::string name;
  Index offset = 0, dim = 0;
  double weight = 1.0;
  bool driver = false;
};

struct LinkedDictionary {
  Matrix phi;  ///< d_total x K, the modalities' dictionaries stacked unweighted
  std::vector<LinkedModalityInfo> modalities;  ///< one entry (weight 1) for a plain dictionary
  bool linked() const { return modalities.size() > 1; }

  /// The data modalities (not drivers), in order: the default selection.
  std::vector<Index> data_modalities() const;
  /// Phi_i of modality i (d_i x K).
  Matrix block(Index i) const {
    return phi.middleRows(modalities[size_t(i)].offset, modalities[size_t(i)].dim);
  }
  /// The stacked dictionary [sqrt(w_i) Phi_i] of the selected modalities, for coding from
  /// them alone. Throws Error naming a modality index out of range or given twice.
  Matrix weighted_stack(const std::vector<Index>& selected) const;
};

/// Collective. Reads /dictionary (or the dataset named in `location`) and the layout.
LinkedDictionary read_linked_dictionary(DatasetReader& reader);

}  // namespace dictlearn
