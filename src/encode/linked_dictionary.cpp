#include "dictlearn/encode/linked_dictionary.hpp"

#include <cmath>
#include <set>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

std::vector<Index> LinkedDictionary::data_modalities() const {
  std::vector<Index> selected;
  for (size_t i = 0; i < modalities.size(); ++i)
    if (!modalities[i].driver) selected.push_back(Index(i));
  return selected;
}

Matrix LinkedDictionary::weighted_stack(const std::vector<Index>& selected) const {
  Index rows = 0;
  std::set<Index> seen;
  for (const Index i : selected) {
    if (i < 0 || i >= Index(modalities.size()))
      throw Error(cat("modality ", i, " does not exist: the dictionary has ", modalities.size(),
                      " (0..", modalities.size() - 1, ")"));
    if (!seen.insert(i).second) throw Error(cat("modality ", i, " is selected twice"));
    rows += modalities[size_t(i)].dim;
  }
  Matrix stacked(rows, phi.cols());
  Index row = 0;
  for (const Index i : selected) {
    const LinkedModalityInfo& m = modalities[size_t(i)];
    stacked.middleRows(row, m.dim) = std::sqrt(m.weight) * phi.middleRows(m.offset, m.dim);
    row += m.dim;
  }
  return stacked;
}

LinkedDictionary read_linked_dictionary(DatasetReader& reader) {
  LinkedDictionary result;
  result.phi = reader.read_all();  // d x K
  const std::vector<double> dims = reader.root_attribute_numbers("modality_dims");
  if (dims.empty()) {
    result.modalities.push_back({reader.location().describe(), 0, result.phi.rows(), 1.0, false});
    return result;
  }
  const std::vector<double> offsets = reader.root_attribute_numbers("modality_offsets");
  const std::vector<double> weights = reader.root_attribute_numbers("modality_weights");
  std::vector<double> drivers = reader.root_attribute_numbers("modality_drivers");
  if (drivers.empty()) drivers.assign(dims.size(), 0.0);
  const std::string names = reader.root_attribute("modality_names", "");
  if (offsets.size() != dims.size() || weights.size() != dims.size() ||
      drivers.size() != dims.size())
    throw Error(
        cat("dictionary '", reader.location().describe(), "': inconsistent modality_* attributes"));
  size_t start = 0;
  Index next = 0;
  for (size_t i = 0; i < dims.size(); ++i) {
    LinkedModalityInfo m;
    const size_t end = std::min(names.find('\n', start), names.size());
    m.name = start < names.size() ? names.substr(start, end - start) : cat("modality ", i);
    start = end + 1;
    m.offset = Index(offsets[i]);
    m.dim = Index(dims[i]);
    m.weight = weights[i];
    m.driver = drivers[i] != 0.0;
    if (m.offset != next || m.dim < 1 || !(m.weight > 0.0))
      throw Error(cat("dictionary '", reader.location().describe(), "': modality ", i,
                      " has an invalid layout (offset ", m.offset, ", dim ", m.dim, ")"));
    next += m.dim;
    result.modalities.push_back(m);
  }
  if (next != result.phi.rows())
    throw Error(cat("dictionary '", reader.location().describe(), "': the modalities cover ", next,
                    " of its ", result.phi.rows(), " features"));
  return result;
}

}  // namespace dictlearn
