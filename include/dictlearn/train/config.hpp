#pragma once
// One configuration schema for `dictlearn train`, shared by YAML files and command-line
// flags: a YAML key and a flag have the same name (`batch-size: 512` == `--batch-size 512`),
// the command line overrides the file, and an unknown key or a bad value is an error
// that names it. Algorithm code never sees text: this layer fills TrainOptions.
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/train/trainer.hpp"

namespace dictlearn {

struct RunConfig {
  RunConfig() { train.coder.lars.lambda = 0.1; }  // suits the embedded synthetic data
  TrainOptions train;
  std::string input;            ///< "FILE[:/DATASET]"; empty: the synthetic generator
  std::string output = "dictionary.h5";
  std::string dictionary_init;  ///< "FILE[:/DATASET]" (K x d), empty: seeded samples
  double read_chunk_mib = 8.0;  ///< per virtual-shard read buffer
  SyntheticOptions synthetic;
};

/// A documented key of the schema.
struct ConfigKey {
  std::string name;
  std::string help;
  bool is_flag = false;  ///< boolean: `--name` alone means true
};

/// All keys, in the order `--help` lists them.
const std::vector<ConfigKey>& config_keys();

/// Sets one key from its text value; `origin` prefixes error messages ("--lambda",
/// "run.yaml:12: lambda"). Throws Error on an unknown key or a bad value.
void set_config_value(RunConfig& config, const std::string& key, const std::string& value,
                      const std::string& origin);

/// Current value of every key as text (for `--help` defaults and output attributes).
std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& config);

/// Applies a YAML mapping of key: scalar. Throws Error with file and line on a syntax
/// error, a non-scalar value or an unknown key.
void apply_yaml_file(RunConfig& config, const std::string& path);

/// Parses `[CONFIG.yaml] [--key value | --key=value | --flag]...`.
RunConfig parse_train_arguments(const std::vector<std::string>& arguments);

}  // namespace dictlearn
