#include "dictlearn/train/training_input.hpp"

#include "dictlearn/data/class_driver_source.hpp"

namespace dictlearn {

TrainingInput open_training_input(const Communicator& comm, const RunConfig& config) {
  TrainingInput input;
  input.options = config.train;
  const bool linked = config.inputs.size() > 1 || !config.drivers.empty();
  comm.agree([&] {
    if (!config.modality_weights.empty() && config.modality_weights.size() != config.inputs.size())
      throw Error(cat("modality-weights has ", config.modality_weights.size(), " values for ",
                      config.inputs.size(), " inputs"));
    if (!config.drivers.empty() && config.inputs.empty())
      throw Error("drivers need at least one data --input");
    for (const std::string& spec : config.inputs)
      if (DatasetLocation::parse(spec).file == config.output)
        throw Error(cat("output '", config.output, "' is ",
                        config.inputs.size() == 1 ? "the input file" : "an input file",
                        "; choose another path"));
  });
  if (config.inputs.empty()) {
    std::unique_ptr<SyntheticSource> synthetic;
    comm.agree([&] { synthetic = std::make_unique<SyntheticSource>(config.synthetic); });
    input.synthetic = synthetic.get();
    input.source = std::move(synthetic);
    return input;
  }
  if (!linked) {
    input.source =
        std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(config.inputs[0]));
    return input;
  }
  std::vector<Modality> modalities;
  for (size_t i = 0; i < config.inputs.size(); ++i) {
    Modality modality;
    modality.name = config.inputs[i];
    modality.source =
        std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(config.inputs[i]));
    modality.weight = config.modality_weights.empty() ? 1.0 : config.modality_weights[i];
    modalities.push_back(std::move(modality));
  }
  if (!config.drivers.empty()) {
    Modality drivers;
    drivers.name = "drivers " + DatasetLocation::parse(config.drivers, "/y").describe();
    drivers.source = std::make_unique<ClassDriverSource>(
        comm, DatasetLocation::parse(config.drivers, "/y"), config.train.atoms);
    drivers.weight = config.driver_weight;
    drivers.driver = true;
    drivers.fixed = !config.drivers_learned;
    modalities.push_back(std::move(drivers));
  }
  std::unique_ptr<LinkedSampleSource> source;
  comm.agree([&] {
    source = std::make_unique<LinkedSampleSource>(std::move(modalities), config.train.normalize);
    input.options.constraint = source->constraint(config.train.atoms);
  });
  input.options.normalize = Normalization::none;
  input.linked = source.get();
  input.source = std::move(source);
  return input;
}

Matrix unweighted_dictionary(const AtomConstraint& constraint, const Matrix& stacked) {
  Matrix out = stacked;
  for (const AtomBlock& block : constraint.blocks())
    out.middleRows(block.begin, block.size) /= block.radius;
  return out;
}

}  // namespace dictlearn
