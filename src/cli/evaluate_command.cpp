// `dictlearn evaluate`: compression quality of a dictionary at a fixed description budget.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>

#include "commands.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/evaluate/evaluate.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/io/output_writer.hpp"

namespace dictlearn::cli {

const char* const kEvaluateHelp =
    "usage: dictlearn evaluate --dictionary FILE[:/DATASET] --input FILE[:/DATASET]\n"
    "                          [--clean FILE[:/DATASET]] [--nonzeros K] [--digits D]\n"
    "                          [--peak P] [--normalize MODE] [--threads T] [--output R.h5]\n"
    "\n"
    "Describes every sample by K numbers (the coefficients of K-sparse OMP), rounds them to\n"
    "D significant digits, reconstructs, and reports the error against the clean samples\n"
    "(--clean, e.g. the noiseless test set) or else the input itself.\n"
    "  --dictionary  dictionary file (dataset /dictionary by default, K x d)\n"
    "  --input       the (noisy) test samples, N x d\n"
    "  --clean       the reference samples, N x d (default: the input)\n"
    "  --nonzeros    K, coefficients per sample (default 5)\n"
    "  --digits      significant digits kept per coefficient (default 4; 0: no rounding)\n"
    "  --peak        peak value for PSNR, e.g. 1 or 255 (default: no PSNR)\n"
    "  --normalize   per-sample preprocessing (default: the dictionary's)\n"
    "  --threads     OpenMP threads per rank (default: OpenMP's)\n"
    "  --output      also write the figures as attributes of an HDF5 file\n"
    "A generative-prior model (train --objective generative-prior) is described by its k\n"
    "latent values z instead (decoded by Adam, rounded the same way):\n"
    "  --prior       the generator YAML (default: the one recorded in the dictionary)\n"
    "  --decode-steps, --decode-restarts, --decode-lr, --decode-lr-decay, --decode-screen,\n"
    "  --decode-polish, --decode-radius\n"
    "                the decode (default: the model's, else 1000, 1, 0.01, 1, 0, 0, 0)\n";

int run_evaluate(const Communicator& comm, const std::vector<std::string>& arguments) {
  std::string dictionary_path, input, clean, output, normalize, prior;
  EvaluateOptions options;
  DecodeOptions decode;
  std::set<std::string> given;
  comm.agree([&] {
    for (const auto& [key, value] : option_pairs(arguments, "evaluate")) {
      given.insert(key);
      if (key == "--dictionary")
        dictionary_path = value;
      else if (key == "--input")
        input = value;
      else if (key == "--clean")
        clean = value;
      else if (key == "--output")
        output = value;
      else if (key == "--normalize")
        normalize = value;
      else if (key == "--nonzeros")
        options.nonzeros = Index(parse_integer(key, value, 0));
      else if (key == "--digits")
        options.digits = int(parse_integer(key, value, 0));
      else if (key == "--peak")
        options.peak = parse_real(key, value);
      else if (key == "--threads")
        options.threads = int(parse_integer(key, value, 0));
      else if (key == "--prior")
        prior = value;
      else if (key == "--decode-steps")
        decode.steps = Index(parse_integer(key, value, 1));
      else if (key == "--decode-restarts")
        decode.restarts = Index(parse_integer(key, value, 1));
      else if (key == "--decode-screen")
        decode.screen_steps = Index(parse_integer(key, value, 0));
      else if (key == "--decode-lr-decay")
        decode.lr_decay = parse_real(key, value);
      else if (key == "--decode-polish")
        decode.polish = Index(parse_integer(key, value, 0));
      else if (key == "--decode-radius")
        decode.radius = parse_real(key, value);
      else if (key == "--decode-lr")
        decode.optimizer.learning_rate = parse_real(key, value);
      else
        throw Error(cat("evaluate: unknown option '", key, "' (see dictlearn evaluate --help)"));
    }
    if (dictionary_path.empty()) throw Error("evaluate needs --dictionary FILE[:/DATASET]");
    if (input.empty()) throw Error("evaluate needs --input FILE[:/DATASET]");
    if (options.nonzeros < 1) throw Error("--nonzeros must be >= 1");
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(dictionary_path, "/dictionary"));
  const Matrix dictionary = dictionary_file.read_all();
  comm.agree([&] {
    options.normalize = parse_normalization(
        normalize.empty() ? dictionary_file.root_attribute("normalize", "none") : normalize);
  });
  Hdf5SampleSource samples(comm, DatasetLocation::parse(input));
  std::unique_ptr<Hdf5SampleSource> reference;
  if (!clean.empty())
    reference = std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(clean));
  options.chunk_rows =
      std::max<Index>(64, Index(1048576 / (8 * std::max<Index>(1, samples.dim()))));
  // A generative-prior model (train --objective generative-prior) is described by its z.
  if (prior.empty() &&
      dictionary_file.root_attribute("objective", "reconstruction") == "generative-prior")
    prior = dictionary_file.root_attribute("prior", "");
  // The decode the model was trained with, unless given here.
  apply_recorded_decode(dictionary_file, decode,
                        [&](const std::string& key) { return given.count("--" + key) > 0; });
  std::unique_ptr<GeneratorNetwork> generator;
  if (!prior.empty()) generator = std::make_unique<GeneratorNetwork>(load_generator(comm, prior));
  if (generator) options.nonzeros = generator->input_dim();
  const EvaluationResult r =
      generator ? evaluate_generative(comm, samples, reference.get(), dictionary, *generator,
                                      decode, options)
                : evaluate_sparse(comm, samples, reference.get(), dictionary, options);
  if (comm.is_root()) {
    std::printf(
        "evaluate: %lld samples of %lld features, %lld coefficients each at %d significant "
        "digits, against %s\n"
        "mean squared error %.6g per value, %.6g per sample; relative error %.6g",
        (long long)r.samples, (long long)r.features, (long long)options.nonzeros, options.digits,
        clean.empty() ? "the input" : clean.c_str(), r.mean_squared_error, r.mean_sample_error,
        r.relative_error);
    if (options.peak > 0.0) std::printf("; PSNR %.2f dB (peak %g)", r.psnr, options.peak);
    std::printf("\n");
  }
  if (!output.empty()) {
    comm.agree([&] {
      if (!comm.is_root()) return;
      OutputWriter writer(output);
      writer.set_attributes("/", {{"dictionary", dictionary_path},
                                  {"input", input},
                                  {"clean", clean},
                                  {"nonzeros", std::to_string(options.nonzeros)},
                                  {"digits", std::to_string(options.digits)}});
      writer.set_attribute("/", "samples", (long long)r.samples);
      writer.set_attribute("/", "mean_squared_error", r.mean_squared_error);
      writer.set_attribute("/", "mean_sample_error", r.mean_sample_error);
      writer.set_attribute("/", "relative_error", r.relative_error);
      if (options.peak > 0.0) writer.set_attribute("/", "psnr", r.psnr);
      writer.commit();
    });
    if (comm.is_root()) std::printf("wrote %s\n", output.c_str());
  }
  return 0;
}

}  // namespace dictlearn::cli
