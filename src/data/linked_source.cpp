#include "dictlearn/data/linked_source.hpp"

#include <cmath>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

LinkedSampleSource::LinkedSampleSource(std::vector<Modality> modalities,
                                       Normalization normalization)
    : modalities_(std::move(modalities)), normalization_(normalization) {
  if (modalities_.empty()) throw Error("linked input: no modality given");
  samples_ = modalities_.front().source->samples();
  for (const Modality& modality : modalities_) {
    if (!(modality.weight > 0.0) || !std::isfinite(modality.weight))
      throw Error(cat("modality '", modality.name, "': weight must be > 0, got ", modality.weight));
    if (modality.source->samples() != samples_)
      throw Error(cat("modalities must have the same samples: '", modalities_.front().name,
                      "' has ", samples_, ", '", modality.name, "' has ",
                      modality.source->samples()));
    offsets_.push_back(dim_);
    dim_ += modality.source->dim();
  }
}

std::string LinkedSampleSource::describe() const {
  std::string text;
  for (const Modality& modality : modalities_) text += (text.empty() ? "" : " + ") + modality.name;
  return text;
}

void LinkedSampleSource::read_rows(Index begin, Index count, double* out) {
  for (size_t m = 0; m < modalities_.size(); ++m) {
    Modality& modality = modalities_[m];
    const Index d = modality.source->dim();
    if (scratch_.rows() != d || scratch_.cols() < count)
      scratch_.resize(d, std::max<Index>(count, 1));
    modality.source->read_rows(begin, count, scratch_.data());
    auto block = scratch_.leftCols(count);
    if (!modality.driver && normalization_ != Normalization::none) {
      Matrix samples = block;  // normalize_samples works on whole matrices
      normalize_samples(normalization_, samples);
      block = samples;
    }
    const double scale = std::sqrt(modality.weight);
    for (Index j = 0; j < count; ++j)
      for (Index i = 0; i < d; ++i) out[j * dim_ + offsets_[m] + i] = scale * block(i, j);
  }
}

AtomConstraint LinkedSampleSource::constraint(Index atoms) const {
  std::vector<AtomBlock> blocks;
  for (size_t m = 0; m < modalities_.size(); ++m) {
    const Modality& modality = modalities_[m];
    AtomBlock block;
    block.name = modality.name;
    block.begin = offsets_[m];
    block.size = modality.source->dim();
    block.radius = std::sqrt(modality.weight);
    block.fixed = modality.fixed;
    block.driver = modality.driver;
    if (modality.fixed) {
      if (block.size != atoms)
        throw Error(cat("modality '", modality.name, "' has dimension ", block.size,
                        "; a fixed (identity) dictionary needs dimension = atoms = ", atoms));
      block.values = block.radius * Matrix::Identity(atoms, atoms);
    }
    blocks.push_back(std::move(block));
  }
  return AtomConstraint(std::move(blocks));
}

}  // namespace dictlearn
