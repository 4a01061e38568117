#pragma once
// One configuration schema for the `dictlearn` commands (train, encode), shared by YAML
// files and command-line flags: a YAML key and a flag have the same name (`batch-size: 512` ==
// `--batch-size 512`), the command line overrides the file, and an unknown key or a bad value is an
// error that names it. Algorithm code never sees text: this layer fills TrainOptions.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/gradient/gradient_trainer.hpp"
#include "dictlearn/prior/prior_trainer.hpp"
#include "dictlearn/train/trainer.hpp"

namespace dictlearn {

enum class Command { train, encode };

struct RunConfig {
  RunConfig() {
    train.coder.lambda = 0.1;  // suits the embedded synthetic data
    gradient.objective = Objective::reconstruction;
  }
  TrainOptions train;           ///< train; encode uses its coder and normalize
  std::string dictionary;       ///< encode: FILE[:/DATASET] of the dictionary (K x d)
  bool dense = false;           ///< encode: also write /codes_dense (N x K)
  std::set<std::string> given;  ///< keys set explicitly (file or command line)
  /// "FILE[:/DATASET]" per modality (several: a linked dictionary; empty: the synthetic
  /// generator). Text form: comma-separated; a repeated --input appends.
  std::vector<std::string> inputs;
  std::vector<double> modality_weights;  ///< w_i per input (empty: all 1)
  std::string drivers;           ///< train: labels FILE[:/DATASET] of the class-driver modality
  bool drivers_learned = false;  ///< train: learn the drivers' dictionary (else identity)
  double driver_weight = 0.05;   ///< train: w of the driver modality (the injected current)
  /// encode: the dictionary's modalities that the inputs are, in order (empty: all data
  /// modalities)
  std::vector<Index> modalities;
  std::string output = "dictionary.h5";
  std::string dictionary_init;   ///< "FILE[:/DATASET]" (K x d), empty: seeded samples
  std::string code_init;         ///< "FILE[:/DATASET]" (N x K) warm start of the first epoch
  double read_chunk_mib = 0.25;  ///< per virtual-shard read buffer (MiB)
  std::string resume = "no";     ///< no | yes | auto (resume if a valid checkpoint exists)
  bool force = false;            ///< resume even if the checkpoint's configuration differs
  SyntheticOptions synthetic;
  GradientOptions gradient;  ///< objective task / attributor (gradient/gradient_trainer.hpp)
  std::string labels;        ///< task: targets FILE[:/DATASET] (labels, or N x m outputs)
  std::string prior;         ///< generative-prior: the generator's YAML file
  PriorTrainOptions prior_training;  ///< generative-prior: decode and update settings
};

/// A documented key of the schema.
struct ConfigKey {
  std::string name;
  std::string help;
  bool is_flag = false;  ///< boolean: `--name` alone means true
};

/// All keys, in the order `--help` lists them.
const std::vector<ConfigKey>& config_keys();

/// Whether `key` is meaningful for `command` (others are refused with a clear error).
bool key_applies(const std::string& key, Command command);

/// Sets one key from its text value; `origin` prefixes error messages ("--lambda",
/// "run.yaml:12: lambda"). Throws Error on an unknown key or a bad value.
void set_config_value(RunConfig& config, const std::string& key, const std::string& value,
                      const std::string& origin);

/// Current value of every key as text (for `--help` defaults and output attributes).
std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& config);
/// The same, restricted to the keys of one command.
std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& config,
                                                               Command command);

/// Applies a YAML mapping of key: scalar. Throws Error with file and line on a syntax
/// error, a non-scalar value or an unknown key.
void apply_yaml_file(RunConfig& config, const std::string& path);

/// Parses `[CONFIG.yaml] [--key value | --key=value | --flag]...` for a command; a key
/// that does not apply to the command is an error naming it.
RunConfig parse_arguments(Command command, const std::vector<std::string>& arguments);
inline RunConfig parse_train_arguments(const std::vector<std::string>& arguments) {
  return parse_arguments(Command::train, arguments);
}

}  // namespace dictlearn
