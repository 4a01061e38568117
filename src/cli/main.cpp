// The `dictlearn` command: a thin shell over the library. Only this file initialises and
// finalises MPI. Errors agreed by all ranks are printed once by rank 0 and end every rank
// with status 1; an error raised on one rank alone (which could leave others waiting in a
// collective) is printed by that rank and ends the job with MPI_Abort, the last resort.
#include <mpi.h>

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <cstring>
#include <string>
#include <vector>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/encode/encode.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/config.hpp"
#include "dictlearn/train/train_output.hpp"

namespace {

using namespace dictlearn;

constexpr const char* kUsage =
    "usage: dictlearn <command> [options]\n"
    "\n"
    "Sparse dictionary learning over MPI ranks (run with mpirun -n P).\n"
    "\n"
    "commands:\n"
    "  train [CONFIG.yaml] [--key value ...]   learn a dictionary (online or MOD)\n"
    "  encode [CONFIG.yaml] --dictionary D.h5 --input X.h5[:/X] --output codes.h5\n"
    "                                          sparse codes of a dataset (CSR in HDF5)\n"
    "\n"
    "options:\n"
    "  -h, --help      this text; 'dictlearn <command> --help' lists the command's keys\n"
    "  --version       print the version\n";

void print_keys(Command command) {
  const RunConfig defaults;
  const auto values = config_values(defaults);
  const auto& keys = config_keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!key_applies(keys[i].name, command)) continue;
    const std::string shown = values[i].second.empty() ? "\"\"" : values[i].second;
    std::printf("  --%-26s %s [%s]\n", keys[i].name.c_str(), keys[i].help.c_str(), shown.c_str());
  }
}

void print_encode_help() {
  std::printf(
      "usage: mpirun -n P dictlearn encode [CONFIG.yaml] --dictionary D.h5[:/dictionary]\n"
      "                                  --input X.h5[:/X] --output codes.h5 [--key value ...]\n"
      "\n"
      "Sparse-codes every sample (row) of the input with a fixed dictionary. Each rank codes\n"
      "a contiguous block of rows; the ranks write one file collectively:\n"
      "  /codes/data, /codes/indices (int64), /codes/indptr (int64, N + 1), attribute\n"
      "  shape = (N, K): scipy.sparse.csr_matrix((data, indices, indptr), shape)\n"
      "  /codes_dense (N x K, with --dense)\n"
      "  /objective/reconstruction, /objective/penalty, /objective/total (per sample)\n"
      "The result is the same for any number of ranks. Unless --normalize is given, the\n"
      "preprocessing recorded in the dictionary file (attribute 'normalize') is applied.\n"
      "\n"
      "keys (current value in brackets):\n");
  print_keys(Command::encode);
  std::printf("\nexit status: 0 success, 1 error (one line on stderr).\n");
}

void print_train_help() {
  std::printf(
      "usage: mpirun -n P dictlearn train [CONFIG.yaml] [--key value | --key=value ...]\n"
      "\n"
      "Learns D (K atoms of dimension d) minimising, per sample,\n"
      "  0.5 ||x - D a||^2 + lambda ||a||_1   (coder lars)   or\n"
      "  ||x - D a||^2 with ||a||_0 <= nonzeros (coder omp),\n"
      "from samples sharded across the MPI ranks. Keys of a YAML config file and flags are\n"
      "the same names; flags override the file. Without --input it trains on an embedded\n"
      "synthetic dataset with a known dictionary and reports how much of it was recovered.\n"
      "\n"
      "keys (current value in brackets):\n");
  print_keys(Command::train);
  std::printf(
      "\nexit status: 0 success, 1 error (bad input or parameters; one line on stderr).\n");
}

std::string format_seconds(double seconds) {
  char text[32];
  if (seconds < 120)
    std::snprintf(text, sizeof text, "%.1fs", seconds);
  else if (seconds < 7200)
    std::snprintf(text, sizeof text, "%.1fmin", seconds / 60);
  else
    std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

int run_train(const Communicator& comm, const std::vector<std::string>& arguments) {
  RunConfig config;
  comm.agree([&] {
    config = parse_arguments(Command::train, arguments);
    validate(config.train);
    if (config.output.empty()) throw Error("output must not be empty");
    if (!config.input.empty() &&
        DatasetLocation::parse(config.input).file == config.output)
      throw Error(cat("output '", config.output, "' is the input file; choose another path"));
    if (!(config.read_chunk_mib > 0.0)) throw Error("read-chunk must be > 0 (MiB)");
  });

  std::unique_ptr<SampleSource> source;
  std::unique_ptr<SyntheticSource> synthetic;
  if (config.input.empty()) {
    comm.agree([&] { synthetic = std::make_unique<SyntheticSource>(config.synthetic); });
  } else {
    source = std::make_unique<Hdf5SampleSource>(comm, DatasetLocation::parse(config.input));
  }
  SampleSource& data = synthetic ? static_cast<SampleSource&>(*synthetic) : *source;
  const Index d = data.dim();
  config.train.chunk_rows =
      std::max<Index>(1, Index(config.read_chunk_mib * 1048576.0 / (8.0 * double(d))));

  Matrix initial;
  if (!config.dictionary_init.empty()) {
    DatasetReader reader(comm, DatasetLocation::parse(config.dictionary_init, "/dictionary"));
    comm.agree([&] {
      if (reader.cols() != d)
        throw Error(cat("dictionary-init '", reader.location().describe(), "' has ",
                        reader.cols(), " features per atom; the data have ", d));
    });
    initial = reader.read_all();
  }

  if (comm.is_root()) {
    std::printf("dictlearn %s: %s, N=%lld d=%lld, K=%lld, coder %s, update %s, %d rank%s x %d thread%s\n",
                DICTLEARN_VERSION, data.describe().c_str(), (long long)data.samples(),
                (long long)d, (long long)config.train.atoms,
                to_string(config.train.coder.kind).c_str(), to_string(config.train.update).c_str(),
                comm.size(), comm.size() == 1 ? "" : "s",
                config.train.threads > 0 ? config.train.threads : omp_get_max_threads(),
                (config.train.threads > 0 ? config.train.threads : omp_get_max_threads()) == 1 ? "" : "s");
    std::fflush(stdout);
  }
  const Index epochs = config.train.epochs;
  const auto progress = [&](const EpochRecord& r) {
    if (!comm.is_root()) return true;
    const double eta = r.elapsed / double(r.epoch) * double(epochs - r.epoch);
    std::printf("epoch %lld/%lld  objective %.6g  nnz %.2f  samples/s %.0f  elapsed %s  ETA %s",
                (long long)r.epoch, (long long)epochs, r.objective, r.mean_nonzeros,
                r.samples_per_second, format_seconds(r.elapsed).c_str(),
                format_seconds(eta).c_str());
    if (r.replaced_atoms > 0) std::printf("  replaced %lld", (long long)r.replaced_atoms);
    std::printf("\n");
    std::fflush(stdout);
    return true;
  };
  std::unique_ptr<Hdf5SampleSource> initial_codes;
  if (!config.code_init.empty())
    initial_codes = std::make_unique<Hdf5SampleSource>(
        comm, DatasetLocation::parse(config.code_init, "/codes_dense"));
  const TrainResult result = train(comm, data, config.train, initial, progress, initial_codes.get());

  TrainSummary summary;
  summary.ranks = comm.size();
  summary.samples = data.samples();
  summary.dim = d;
  if (synthetic) {
    summary.true_dictionary = &synthetic->true_dictionary();
    summary.recovered_fraction = fraction_recovered(synthetic->true_dictionary(), result.dictionary);
  }
  comm.agree([&] {
    if (comm.is_root()) write_train_output(config.output, config, result, summary);
  });
  if (comm.is_root()) {
    if (Index(result.history.size()) < epochs)
      std::printf("stopped after epoch %lld: the objective changed by less than tol = %g\n",
                  (long long)result.history.size(), config.train.tol);
    if (synthetic)
      std::printf("recovered %.1f%% of the %lld true atoms (|cos| > 0.99)\n",
                  100.0 * summary.recovered_fraction, (long long)synthetic->true_dictionary().cols());
    std::printf("wrote %s\n", config.output.c_str());
  }
  return 0;
}

int run_encode(const Communicator& comm, const std::vector<std::string>& arguments) {
  RunConfig config;
  comm.agree([&] {
    config = parse_arguments(Command::encode, arguments);
    validate(config.train.coder);
    if (config.dictionary.empty()) throw Error("encode needs --dictionary FILE[:/DATASET]");
    if (config.input.empty()) throw Error("encode needs --input FILE[:/DATASET]");
    if (config.output.empty() || config.given.count("output") == 0)
      throw Error("encode needs --output FILE");
    const std::string output = config.output;
    if (DatasetLocation::parse(config.input).file == output ||
        DatasetLocation::parse(config.dictionary, "/dictionary").file == output)
      throw Error(cat("output '", output, "' is an input file; choose another path"));
    if (!(config.read_chunk_mib > 0.0)) throw Error("read-chunk must be > 0 (MiB)");
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(config.dictionary, "/dictionary"));
  const Matrix dictionary = dictionary_file.read_all();  // d x K
  if (config.given.count("normalize") == 0)
    config.train.normalize =
        parse_normalization(dictionary_file.root_attribute("normalize", "none"));
  Hdf5SampleSource source(comm, DatasetLocation::parse(config.input));
  EncodeOptions options;
  options.coder = config.train.coder;
  options.normalize = config.train.normalize;
  options.threads = config.train.threads;
  options.chunk_rows =
      std::max<Index>(1, Index(config.read_chunk_mib * 1048576.0 / (8.0 * double(source.dim()))));
  const double start = MPI_Wtime();
  const LocalCodes codes = encode_samples(comm, source, dictionary, options);
  double sums[3] = {double(codes.values.size()), 0.0, 0.0};
  for (size_t i = 0; i < codes.reconstruction.size(); ++i)
    sums[1] += codes.reconstruction[i] + codes.penalty[i];
  comm.allreduce_sum(sums, 2);
  const double seconds = MPI_Wtime() - start;
  auto attributes = config_values(config, Command::encode);
  attributes.emplace_back("normalize", to_string(options.normalize));
  write_codes(comm, config.output, codes, source.samples(), config.dense, attributes);
  if (comm.is_root()) {
    const double N = double(source.samples());
    std::printf("encoded %lld samples with %lld atoms (%s): mean nnz %.2f, mean objective %.6g, "
                "%.0f samples/s\nwrote %s\n",
                (long long)source.samples(), (long long)dictionary.cols(),
                to_string(options.coder.kind).c_str(), sums[0] / N, sums[1] / N,
                N / std::max(seconds, 1e-9), config.output.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<std::string> arguments(argv + 1, argv + argc);
  int status = 0;
  try {
    const Communicator comm(MPI_COMM_WORLD);
    const std::string command = arguments.empty() ? "" : arguments[0];
    const std::vector<std::string> rest(arguments.begin() + (arguments.empty() ? 0 : 1),
                                        arguments.end());
    const bool wants_help = std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
                            std::find(rest.begin(), rest.end(), "-h") != rest.end();
    if (command.empty() || command == "--help" || command == "-h" || command == "help") {
      if (rank == 0) std::printf("%s", kUsage);
      status = command.empty() ? 1 : 0;
    } else if (command == "--version") {
      if (rank == 0) std::printf("dictlearn %s\n", DICTLEARN_VERSION);
    } else if (command == "train") {
      if (wants_help) {
        if (rank == 0) print_train_help();
      } else {
        status = run_train(comm, rest);
      }
    } else if (command == "encode") {
      if (wants_help) {
        if (rank == 0) print_encode_help();
      } else {
        status = run_encode(comm, rest);
      }
    } else {
      if (rank == 0)
        std::fprintf(stderr, "dictlearn: error: unknown command '%s' (see dictlearn --help)\n",
                     command.c_str());
      status = 1;
    }
  } catch (const AgreedError& error) {
    if (rank == 0) std::fprintf(stderr, "dictlearn: error: %s\n", error.what());
    status = 1;
  } catch (const std::exception& error) {
    // Raised on this rank alone: the others may be inside a collective, so end the job.
    std::fprintf(stderr, "dictlearn: error (rank %d): %s\n", rank, error.what());
    std::fflush(stderr);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    status = 1;
  }
  MPI_Finalize();
  return status;
}
