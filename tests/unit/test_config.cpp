// The `dictlearn train` configuration: flags in both spellings, boolean flags, YAML files
// overridden by the command line, error messages that name the culprit (key, flag and
// value, file:line), and the text round trip of config_values.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/train/config.hpp"

namespace {

using dictlearn::Error;
using dictlearn::parse_train_arguments;
using dictlearn::RunConfig;
using Args = std::vector<std::string>;

// A YAML file in the temporary directory, removed at the end of the scope.
class TempYaml {
 public:
  explicit TempYaml(const std::string& text) {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("dictlearn_test_config_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter++) + ".yaml"))
                .string();
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The message of the Error thrown by `f`, or "" (and a failure) if none is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  FAIL_CHECK("no dictlearn::Error thrown");
  return "";
}

std::map<std::string, std::string> values_of(const RunConfig& config) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : dictlearn::config_values(config)) out[key] = value;
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("config: --key value and --key=value set the same fields", "[config]") {
  const RunConfig a = parse_train_arguments(
      {"--atoms",     "17",          "--lambda",    "0.25",       "--coder",        "omp",
       "--nonzeros",  "3",           "--input",     "data.h5:/Y", "--seed",         "42",
       "--normalize", "center-unit", "--update",    "mod",        "--update-every", "epoch",
       "--threads",   "2",           "--mod-ridge", "1e-5"});
  const RunConfig b = parse_train_arguments(
      {"--atoms=17", "--lambda=0.25", "--coder=omp", "--nonzeros=3", "--input=data.h5:/Y",
       "--seed=42", "--normalize=center-unit", "--update=mod", "--update-every=epoch",
       "--threads=2", "--mod-ridge=1e-5"});
  for (const RunConfig* c : {&a, &b}) {
    CHECK(c->train.atoms == 17);
    CHECK(c->train.coder.lambda == 0.25);
    CHECK(c->train.coder.kind == dictlearn::CoderKind::omp);
    CHECK(c->train.coder.nonzeros == 3);
    CHECK(c->inputs == std::vector<std::string>{"data.h5:/Y"});
    CHECK(c->train.seed == 42u);
    CHECK(c->train.normalize == dictlearn::Normalization::center_unit);
    CHECK(c->train.update == dictlearn::UpdateKind::mod);
    CHECK(c->train.update_every == dictlearn::UpdateSchedule::epoch);
    CHECK(c->train.threads == 2);
    CHECK(c->train.mod.ridge == 1e-5);
  }
  CHECK(values_of(a) == values_of(b));
  // A value that itself starts with '=' or contains '=' survives --key=value.
  CHECK(parse_train_arguments({"--output=a=b.h5"}).output == "a=b.h5");
  // Negative numbers are values, not flags.
  CHECK(parse_train_arguments({"--synthetic-snr-db", "-3.5"}).synthetic.snr_db == -3.5);
  // Later occurrences win.
  CHECK(parse_train_arguments({"--atoms", "5", "--atoms=9"}).train.atoms == 9);
}

TEST_CASE("config: boolean flags alone, with a value, and before another flag", "[config]") {
  const RunConfig defaults;
  REQUIRE_FALSE(defaults.train.coder.positive);
  CHECK(parse_train_arguments({"--positive-codes"}).train.coder.positive);
  {
    const RunConfig c = parse_train_arguments({"--positive-codes", "--atoms", "4"});
    CHECK(c.train.coder.positive);
    CHECK(c.train.atoms == 4);
  }
  CHECK_FALSE(parse_train_arguments({"--positive-codes", "false"}).train.coder.positive);
  CHECK(parse_train_arguments({"--positive-codes", "true"}).train.coder.positive);
  CHECK_FALSE(parse_train_arguments({"--positive-codes=false"}).train.coder.positive);
  CHECK(parse_train_arguments({"--positive-codes=yes"}).train.coder.positive);
  REQUIRE(defaults.train.replacement.enabled);
  CHECK_FALSE(parse_train_arguments({"--replace-atoms", "no"}).train.replacement.enabled);
  CHECK_FALSE(parse_train_arguments({"--replace-atoms=off"}).train.replacement.enabled);
  CHECK_FALSE(parse_train_arguments({"--replace-atoms", "0"}).train.replacement.enabled);
  const std::string message = error_of([] {
    parse_train_arguments({"--positive-codes", "maybe"});
  });
  CHECK(contains(message, "--positive-codes"));
  CHECK(contains(message, "'maybe'"));
  // A non-flag key needs its value.
  CHECK(contains(error_of([] { parse_train_arguments({"--atoms"}); }), "--atoms: missing value"));
  // The schema marks exactly the booleans as flags.
  for (const auto& key : dictlearn::config_keys())
    CHECK(key.is_flag == (key.name == "positive-codes" || key.name == "replace-atoms" ||
                          key.name == "dense" || key.name == "positive-dict" ||
                          key.name == "force" || key.name == "drivers-learned" ||
                          key.name == "project-atoms"));
}

TEST_CASE("config: the command line overrides the YAML file", "[config]") {
  const TempYaml yaml(
      "# a comment\n"
      "atoms: 33\n"
      "lambda: 0.5\n"
      "coder: omp\n"
      "nonzeros: 4\n"
      "positive-codes: true\n"
      "input: \"data.h5:/X\"\n"
      "dictionary-init:\n"
      "synthetic-snr-db: 12.5\n");
  const RunConfig file_only = parse_train_arguments({yaml.path()});
  CHECK(file_only.train.atoms == 33);
  CHECK(file_only.train.coder.lambda == 0.5);
  CHECK(file_only.train.coder.kind == dictlearn::CoderKind::omp);
  CHECK(file_only.train.coder.nonzeros == 4);
  CHECK(file_only.train.coder.positive);
  CHECK(file_only.inputs == std::vector<std::string>{"data.h5:/X"});
  CHECK(file_only.dictionary_init.empty());
  CHECK(file_only.synthetic.snr_db == 12.5);
  CHECK(file_only.train.batch_size == RunConfig().train.batch_size);  // untouched default

  const RunConfig both = parse_train_arguments(
      {yaml.path(), "--atoms", "8", "--coder=lars", "--positive-codes", "false"});
  CHECK(both.train.atoms == 8);
  CHECK(both.train.coder.kind == dictlearn::CoderKind::lars);
  CHECK_FALSE(both.train.coder.positive);
  CHECK(both.train.coder.lambda == 0.5);  // from the file
  CHECK(both.train.coder.nonzeros == 4);

  // An empty file sets nothing; a missing one is an error naming it.
  const TempYaml empty("");
  CHECK(values_of(parse_train_arguments({empty.path()})) == values_of(RunConfig()));
  CHECK(contains(error_of([] { parse_train_arguments({"/nonexistent/run.yaml"}); }),
                 "/nonexistent/run.yaml"));
  // The config file must come first.
  CHECK(contains(error_of([&] {
                   parse_train_arguments({"--atoms", "3", yaml.path()});
                 }),
                 "unexpected argument '" + yaml.path() + "'"));
}

TEST_CASE("config: unknown keys are errors that name the key", "[config]") {
  const std::string flag = error_of([] { parse_train_arguments({"--atom", "3"}); });
  CHECK(contains(flag, "unknown key 'atom'"));
  CHECK(contains(error_of([] { parse_train_arguments({"--lamda=0.1"}); }), "'lamda'"));
  const TempYaml yaml("atoms: 3\n\nbatchsize: 10\n");
  const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
  CHECK(contains(message, yaml.path() + ":3"));
  CHECK(contains(message, "'batchsize'"));
  RunConfig config;
  CHECK(contains(error_of([&] { dictlearn::set_config_value(config, "nope", "1", "origin"); }),
                 "origin: unknown key 'nope'"));
}

TEST_CASE("config: bad integers and numbers name the flag and the value", "[config]") {
  struct Bad {
    std::string flag, value;
  };
  const std::vector<Bad> bad = {
      {"atoms", "12x"},
      {"atoms", "1.5"},
      {"atoms", ""},
      {"batch-size", "ten"},
      {"epochs", "99999999999999999999999"},
      {"lambda", "abc"},
      {"lambda", "0.1.2"},
      {"lambda", "nan"},
      {"lambda", "inf"},
      {"lambda", "1e999"},
      {"mod-ridge", "1e-3x"},
      {"forget-rate", ""},
      {"coder", "cholesky"},
      {"update", "sgd"},
      {"update-every", "day"},
      {"normalize", "zscore"},
  };
  for (const Bad& b : bad) {
    INFO("--" << b.flag << " '" << b.value << "'");
    for (const Args& args : {Args{"--" + b.flag, b.value}, Args{"--" + b.flag + "=" + b.value}}) {
      const std::string message = error_of([&] { parse_train_arguments(args); });
      INFO(message);
      CHECK(message.rfind("--" + b.flag + ":", 0) == 0);  // starts with the flag
      CHECK(contains(message, "'" + b.value + "'"));
    }
  }
  // In a YAML file: file:line and the key.
  const TempYaml yaml("atoms: 4\nlambda: lots\n");
  const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
  CHECK(contains(message, yaml.path() + ":2: lambda"));
  CHECK(contains(message, "'lots'"));
}

TEST_CASE("config: YAML syntax errors carry file:line, non-scalar values are rejected",
          "[config]") {
  {
    const TempYaml yaml("atoms: 4\nlambda: 0.1\ncoder: [omp\nepochs: 3\n");
    const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
    INFO(message);
    CHECK(contains(message, yaml.path() + ":"));
    CHECK(contains(message, "YAML syntax error"));
    // The line is the one of the problem (the unclosed list opens on line 3, the parser
    // notices it on line 4 or 5 at the latest).
    const bool near = contains(message, yaml.path() + ":3:") ||
                      contains(message, yaml.path() + ":4:") ||
                      contains(message, yaml.path() + ":5:");
    CHECK(near);
  }
  {
    const TempYaml yaml("atoms: 4\n  lambda: 0.1\n");  // bad indentation on line 2
    const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
    INFO(message);
    CHECK(contains(message, yaml.path() + ":2:"));
  }
  {
    const TempYaml yaml("atoms: 4\nlambda: [0.1, 0.2]\n");
    const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
    CHECK(contains(message, yaml.path() + ":2: lambda"));
    CHECK(contains(message, "single value"));
  }
  {
    const TempYaml yaml("atoms:\n  value: 4\n");
    const std::string message = error_of([&] { parse_train_arguments({yaml.path()}); });
    CHECK(contains(message, yaml.path() + ":1: atoms"));
  }
  {
    const TempYaml yaml("- atoms\n- 4\n");  // a list, not a mapping
    CHECK(contains(error_of([&] { parse_train_arguments({yaml.path()}); }), yaml.path()));
  }
}

TEST_CASE("config: config_values round-trips a non-default configuration exactly", "[config]") {
  RunConfig c;
  c.inputs = {"in put.h5:/group/X", "second.h5:/Y"};
  c.modality_weights = {1.0 / 3.0, 2.0};
  c.drivers = "labels.h5:/y";
  c.drivers_learned = true;
  c.driver_weight = 0.25;
  c.modalities = {1, 0};
  c.gradient.objective = dictlearn::Objective::task;
  c.labels = "labels.h5:/z";
  c.gradient.task.task = dictlearn::TaskKind::multinomial;
  c.gradient.task.lambda2 = 0.03 / 7.0;
  c.gradient.task_l2 = 2e-3;
  c.gradient.task.task_weight = 0.7;
  c.gradient.outputs = 5;
  c.gradient.task_warmup = 3;
  c.prior = "generator.yaml";
  c.prior_training.update = dictlearn::PriorTrainOptions::Update::joint;
  c.prior_training.decode.steps = 77;
  c.prior_training.decode.restarts = 4;
  c.prior_training.decode.optimizer.learning_rate = 0.03;
  c.prior_training.decode.radius = 2.5;
  c.prior_training.joint_steps = 9;
  c.prior_training.radius = 1.5;
  c.prior_training.decode.screen_steps = 20;
  c.prior_training.decode.lr_decay = 0.1;
  c.prior_training.decode.polish = 12;
  c.prior_training.altmin.eps = 1e-3;
  c.prior_training.initializations = 3;
  c.prior_training.initialization_epochs = 4;
  c.prior_training.lr_decay = 0.05;
  c.gradient.optimizer.kind = dictlearn::OptimizerOptions::Kind::gradient;
  c.gradient.optimizer.learning_rate = 0.02;
  c.gradient.optimizer.beta1 = 0.8;
  c.gradient.optimizer.beta2 = 0.99;
  c.gradient.optimizer.epsilon = 1e-7;
  c.gradient.optimizer.weight_decay = 0.01;
  c.gradient.temperature = 0.5;
  c.gradient.project_atoms = false;
  c.output = "out.h5";
  c.dictionary_init = "init.h5:/D";
  c.read_chunk_mib = 0.3;
  c.train.atoms = 77;
  c.train.coder.kind = dictlearn::CoderKind::omp;
  c.train.coder.lambda = 0.1 / 3.0;  // not a short decimal
  c.train.coder.positive = true;
  c.train.coder.nonzeros = 6;
  c.train.coder.tolerance = 1e-7 / 7.0;
  c.train.update = dictlearn::UpdateKind::mod;
  c.train.update_every = dictlearn::UpdateSchedule::epoch;
  c.train.batch_size = 1000;
  c.train.epochs = 3;
  c.train.tol = 1e-5 / 3.0;
  c.train.seed = 1234567890123456789ULL;
  c.train.normalize = dictlearn::Normalization::center;
  c.train.threads = 3;
  c.train.virtual_shards = 48;
  c.train.forget_rate = 2.0 / 3.0;
  c.train.online.passes = 4;
  c.train.sweep_threads = 2;
  c.train.online.split = dictlearn::RowSplit::off;
  c.train.share_coding = false;
  c.train.share_gram = dictlearn::GramSharing::on;
  c.train.mod.ridge = 3.3e-9;
  c.train.mod_solver = dictlearn::ModSolver::scalapack;
  c.train.precision = dictlearn::Precision::float32;
  c.train.coder.lca_threshold = dictlearn::LcaOptions::Threshold::hard;
  c.train.coder.lca_tau = 2.5;
  c.train.coder.lca_dt = 0.25;
  c.train.coder.lca_steps = 77;
  c.train.coder.lca_tol = 3e-9;
  c.train.hebbian.rate = 0.03;
  c.train.hebbian.decay = 0.5;
  c.train.replacement.enabled = false;
  c.train.replacement.duplicate_cosine = 0.975;
  c.train.replacement.min_usage = 0.001;
  c.train.replacement.period = 9;
  c.synthetic.samples = 1234;
  c.synthetic.dim = 9;
  c.synthetic.atoms = 11;
  c.synthetic.sparsity = 2;
  c.synthetic.snr_db = -2.5;
  c.synthetic.seed = 987654321;
  c.dictionary = "dict.h5:/D";
  c.code_init = "codes.h5:/C";
  c.train.positive_dict = true;
  c.train.checkpoint.path = "run.ckpt.h5";
  c.train.checkpoint.every = 12;
  c.train.checkpoint.seconds = 2.5;
  c.train.checkpoint.keep = 3;
  c.resume = "auto";
  c.force = true;
  c.train.stop_after = 8;
  c.train.coder.coder_tol = 1e-9 / 3.0;
  c.train.coder.coder_max_iter = 77;
  c.train.coder.elastic_penalty = 0.5 / 3.0;
  c.train.coder.loss = dictlearn::Loss::huber;
  c.train.coder.huber_delta = 0.7;
  c.train.coder.loss_power = 2.1;
  c.dense = true;

  const auto values = dictlearn::config_values(c);
  const auto defaults = values_of(RunConfig());
  // Every key of the schema appears once and was changed above (else this test does not
  // cover it: give it a non-default value).
  REQUIRE(values.size() == dictlearn::config_keys().size());
  for (size_t i = 0; i < values.size(); ++i) {
    INFO("key " << values[i].first);
    CHECK(values[i].first == dictlearn::config_keys()[i].name);
    CHECK(values[i].second != defaults.at(values[i].first));
  }

  // Through set_config_value ...
  RunConfig back;
  for (const auto& [key, value] : values) dictlearn::set_config_value(back, key, value, key);
  CHECK(dictlearn::config_values(back) == values);
  CHECK(back.train.coder.lambda == c.train.coder.lambda);  // bit for bit
  CHECK(back.train.coder.tolerance == c.train.coder.tolerance);
  CHECK(back.train.forget_rate == c.train.forget_rate);
  CHECK(back.train.seed == c.train.seed);
  // ... through the command line and a YAML file (values quoted: "in put.h5:/group/X"
  // has a ": "), for each command with its own keys.
  for (const auto command : {dictlearn::Command::train, dictlearn::Command::encode}) {
    const auto own = dictlearn::config_values(c, command);
    Args args;
    for (const auto& [key, value] : own) args.push_back("--" + key + "=" + value);
    CHECK(dictlearn::config_values(dictlearn::parse_arguments(command, args), command) == own);
    std::string text;
    for (const auto& [key, value] : own) text += key + ": \"" + value + "\"\n";
    const TempYaml yaml(text);
    CHECK(dictlearn::config_values(dictlearn::parse_arguments(command, {yaml.path()}), command) ==
          own);
  }
}

TEST_CASE("config: a key of another command is refused with its name", "[config]") {
  CHECK_THROWS_WITH(parse_train_arguments({"--dictionary", "d.h5"}),
                    Catch::Contains("key 'dictionary' does not apply to 'dictlearn train'"));
  CHECK_THROWS_WITH(dictlearn::parse_arguments(dictlearn::Command::encode, {"--epochs", "3"}),
                    Catch::Contains("key 'epochs' does not apply to 'dictlearn encode'"));
}

TEST_CASE("config: unsigned seeds round-trip over their whole range", "[config]") {
  // `seed` and `synthetic-seed` are std::uint64_t: a negative seed is refused (it used to
  // wrap to 2^64 - 1), and every printed value, up to 2^64 - 1, parses back.
  CHECK_THROWS_WITH(parse_train_arguments({"--seed", "-1"}), Catch::Contains("--seed"));
  RunConfig back;
  RunConfig big;
  big.train.seed = (std::uint64_t(1) << 63) + 5;
  for (const auto& [key, value] : dictlearn::config_values(big)) {
    INFO(key << " = " << value);
    CHECK_NOTHROW(dictlearn::set_config_value(back, key, value, key));
  }
}

TEST_CASE("config: integer values out of their field's range are rejected", "[config]") {
  // parse_integer returns a long long that integer_key casts to the field type without a
  // range check: "--threads 4294967298" silently sets threads = 2, "--seed -1" and
  // "--synthetic-seed -5" silently wrap to huge unsigned seeds.
  for (const Args& args :
       {Args{"--threads", "4294967298"}, Args{"--seed", "-1"}, Args{"--synthetic-seed", "-5"}}) {
    INFO(args[0] << " " << args[1]);
    const std::string message = error_of([&] { parse_train_arguments(args); });
    CHECK(contains(message, args[0]));
    CHECK(contains(message, "'" + args[1] + "'"));
  }
}

TEST_CASE("config: a non-scalar YAML key is an Error naming the file", "[config]") {
  // apply_yaml_file converts each key with entry.first.as<std::string>(); for a key that
  // is a sequence or a mapping this throws YAML::TypedBadConversion ("yaml-cpp: error at
  // line 1, column 1: bad conversion"), which is not a dictlearn::Error and does not name
  // the file.
  const TempYaml yaml("atoms: 4\n[a, b]: 1\n");
  try {
    parse_train_arguments({yaml.path()});
    FAIL_CHECK("accepted");
  } catch (const Error& error) {
    CHECK(contains(error.what(), yaml.path() + ":2"));
  } catch (const std::exception& error) {
    FAIL_CHECK("not a dictlearn::Error: " << error.what());
  }
}

TEST_CASE("config: repeated --input adds modalities; a YAML list sets inputs and weights",
          "[config]") {
  const RunConfig repeated = parse_train_arguments(
      {"--input", "a.h5:/X", "--input", "b.h5:/X,c.h5", "--modality-weights", "1, 0.5,2"});
  CHECK(repeated.inputs == std::vector<std::string>{"a.h5:/X", "b.h5:/X", "c.h5"});
  CHECK(repeated.modality_weights == std::vector<double>{1.0, 0.5, 2.0});
  CHECK(contains(error_of([] {
                   parse_train_arguments({"--modality-weights", "1,-2"});
                 }),
                 "weights must be > 0"));
  const TempYaml yaml(
      "modalities:\n  - {input: a.h5:/X, weight: 2}\n  - input: b.h5:/Z\natoms: 8\n");
  const RunConfig listed = parse_train_arguments({yaml.path()});
  CHECK(listed.inputs == std::vector<std::string>{"a.h5:/X", "b.h5:/Z"});
  CHECK(listed.modality_weights == std::vector<double>{2.0, 1.0});
  // The command line replaces the file's list.
  const RunConfig overridden = parse_train_arguments({yaml.path(), "--input", "c.h5"});
  CHECK(overridden.inputs == std::vector<std::string>{"c.h5"});
  CHECK(overridden.modality_weights.empty());
  const TempYaml bad("modalities:\n  - {input: a.h5, colour: red}\n");
  CHECK(contains(error_of([&] { parse_train_arguments({bad.path()}); }), "unknown field 'colour'"));
}
