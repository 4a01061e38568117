#include "dictlearn/train/train_output.hpp"

#include <cstdlib>

#include "dictlearn/io/output_writer.hpp"
#include "dictlearn/train/training_input.hpp"

namespace dictlearn {

void write_train_output(const std::string& path, const RunConfig& config, const TrainResult& result,
                        const TrainSummary& summary) {
  OutputWriter writer(path);
  const bool linked = summary.modalities != nullptr && !summary.modalities->plain();
  if (linked) {
    const Matrix phi = unweighted_dictionary(*summary.modalities, result.dictionary);
    writer.write_columns_as_rows("/dictionary", phi);
    std::string names;
    std::vector<long long> dims, offsets, fixed, drivers;
    std::vector<double> weights;
    const auto& blocks = summary.modalities->blocks();
    for (size_t i = 0; i < blocks.size(); ++i) {
      writer.write_columns_as_rows(cat("/modality_", i),
                                   phi.middleRows(blocks[i].begin, blocks[i].size));
      names += (i ? "\n" : "") + blocks[i].name;
      dims.push_back(blocks[i].size);
      offsets.push_back(blocks[i].begin);
      fixed.push_back(blocks[i].fixed ? 1 : 0);
      drivers.push_back(blocks[i].driver ? 1 : 0);
      weights.push_back(blocks[i].radius * blocks[i].radius);
    }
    writer.set_attribute("/", "modality_names", names);
    writer.set_attribute("/", "modality_dims", dims);
    writer.set_attribute("/", "modality_offsets", offsets);
    writer.set_attribute("/", "modality_fixed", fixed);
    writer.set_attribute("/", "modality_drivers", drivers);
    writer.set_attribute("/", "modality_weights", weights);
  } else {
    writer.write_columns_as_rows("/dictionary", result.dictionary);
  }
  const bool gradient = config.gradient.objective != Objective::reconstruction;
  std::vector<std::vector<double>> columns(gradient ? 10 : 7);
  for (const EpochRecord& r : result.history) {
    columns[0].push_back(double(r.epoch));
    columns[1].push_back(r.objective);
    columns[2].push_back(r.mean_nonzeros);
    columns[3].push_back(r.seconds);
    columns[4].push_back(r.elapsed);
    columns[5].push_back(r.samples_per_second);
    columns[6].push_back(double(r.replaced_atoms));
    if (gradient) {
      columns[7].push_back(r.task_loss);
      columns[8].push_back(r.accuracy);
      columns[9].push_back(r.reconstruction);
    }
  }
  std::vector<std::string> names = {"epoch",   "objective",          "mean_nonzeros", "seconds",
                                    "elapsed", "samples_per_second", "replaced_atoms"};
  if (gradient) {
    names.push_back(config.gradient.objective == Objective::task ? "task_loss" : "loss");
    names.push_back("accuracy");
    names.push_back("reconstruction");
  }
  // The other learned parameters, one row per output / atom as in scikit-learn.
  for (const auto& [name, matrix] : result.state.extras) {
    if (name == "task_weights" || name == "encoder")
      writer.write_columns_as_rows("/" + name, matrix.transpose());
    else if (name == "task_bias" || name == "encoder_bias")
      writer.write_columns_as_rows("/" + name, matrix);
  }
  writer.write_table("/history", names, columns);
  if (summary.true_dictionary != nullptr)
    writer.write_columns_as_rows("/true_dictionary", *summary.true_dictionary);
  writer.set_attributes("/", config_values(config, Command::train));
  writer.set_attribute("/", "dictlearn_version", std::string(DICTLEARN_VERSION));
  writer.set_attribute("/", "ranks", (long long)summary.ranks);
  writer.set_attribute("/", "samples", (long long)summary.samples);
  writer.set_attribute("/", "features", (long long)summary.dim);
  writer.set_attribute(
      "/", "layout",
      std::string("dictionary rows are atoms (K x d), as scikit-learn's components_"));
  if (summary.recovered_fraction >= 0.0)
    writer.set_attribute("/", "recovered_fraction", summary.recovered_fraction);
  writer.commit();
}

}  // namespace dictlearn
