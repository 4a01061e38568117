// Option parsing shared by the sub-commands that take only `--key value` options
// (classify, evaluate, montage, reconstruct).
#include <cmath>
#include <cstdlib>

#include "commands.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn::cli {

std::vector<std::pair<std::string, std::string>> option_pairs(
    const std::vector<std::string>& arguments, const std::string& command) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t i = 0; i < arguments.size(); ++i) {
    std::string key = arguments[i], value;
    if (key.rfind("--", 0) != 0)
      throw Error(cat(command, ": unexpected argument '", key, "' (options are --key value; see ",
                      "dictlearn ", command, " --help)"));
    if (const size_t equals = key.find('='); equals != std::string::npos) {
      value = key.substr(equals + 1);  // --key=value
      key = key.substr(0, equals);
    } else {
      if (i + 1 >= arguments.size()) throw Error(cat(key, ": missing value"));
      value = arguments[++i];
    }
    pairs.emplace_back(key, value);
  }
  return pairs;
}

double parse_real(const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value))
    throw Error(cat(key, ": expected a number, got '", text, "'"));
  return value;
}

long long parse_integer(const std::string& key, const std::string& text, long long least) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < least)
    throw Error(cat(key, ": expected an integer >= ", least, ", got '", text, "'"));
  return value;
}

void apply_recorded_decode(const DatasetReader& model, DecodeOptions& decode,
                           const std::function<bool(const std::string&)>& given) {
  const std::pair<const char*, double*> reals[] = {{"decode-lr", &decode.optimizer.learning_rate},
                                                   {"decode-radius", &decode.radius},
                                                   {"decode-lr-decay", &decode.lr_decay}};
  for (const auto& [key, field] : reals) {
    const std::vector<double> value = model.root_attribute_numbers(key);
    if (!given(key) && !value.empty()) *field = value[0];
  }
  const std::pair<const char*, Index*> counts[] = {{"decode-steps", &decode.steps},
                                                   {"decode-restarts", &decode.restarts},
                                                   {"decode-screen", &decode.screen_steps},
                                                   {"decode-polish", &decode.polish}};
  for (const auto& [key, field] : counts) {
    const std::vector<double> value = model.root_attribute_numbers(key);
    if (!given(key) && !value.empty()) *field = Index(value[0]);
  }
}

}  // namespace dictlearn::cli
