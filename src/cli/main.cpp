// The `dictlearn` command: a thin shell over the library. Only this file initialises and
// finalises MPI. Errors agreed by all ranks are printed once by rank 0 and end every rank
// with status 1; an error raised on one rank alone (which could leave others waiting in a
// collective) is printed by that rank and ends the job with MPI_Abort, the last resort.
#include <glob.h>
#include <malloc.h>
#include <mpi.h>
#include <sys/resource.h>

#include <omp.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/encode/encode.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/io/montage.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/checkpoint.hpp"
#include "dictlearn/train/config.hpp"
#include "dictlearn/train/train_output.hpp"

namespace {

using namespace dictlearn;

// Exit status of a run that stopped early on request (signal or stop-after) after writing
// its checkpoint: rerun with --resume (Slurm: requeue) to continue.
constexpr int kExitInterrupted = 3;

volatile std::sig_atomic_t stop_requested = 0;
extern "C" void request_stop(int) { stop_requested = 1; }

double program_start = 0.0;  // MPI_Wtime() right after MPI_Init

// One machine-readable line at the end of a run (rank 0 prints it): the whole process's
// wall time split into its stages, and the peak resident memory of every rank.
void print_run_summary(const Communicator& comm, double train_start, double train_end,
                       double output_end) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mib = double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
  double extremes[2] = {peak_mib, -peak_mib};                // max, -min
  MPI_Allreduce(MPI_IN_PLACE, extremes, 2, MPI_DOUBLE, MPI_MAX, comm.get());
  if (comm.is_root())
    std::printf(
        "run: ranks %d, wall %.3f s (set-up %.3f s, training %.3f s, output %.3f s), peak RSS "
        "per rank %.1f-%.1f MiB\n",
        comm.size(), output_end - program_start, train_start - program_start,
        train_end - train_start, output_end - train_end, -extremes[1], extremes[0]);
}

// Keys whose change alters the mathematics: a checkpoint made with other values is refused
// (unless --force). epochs, threads, output and the checkpoint cadence may change freely.
const char* const kMathKeys[] = {"input",
                                 "atoms",
                                 "coder",
                                 "lambda",
                                 "positive-codes",
                                 "nonzeros",
                                 "tolerance",
                                 "coder-tol",
                                 "coder-max-iter",
                                 "lca-threshold",
                                 "lca-tau",
                                 "lca-dt",
                                 "lca-steps",
                                 "lca-tol",
                                 "elastic-penalty",
                                 "loss",
                                 "huber-delta",
                                 "loss-power",
                                 "update",
                                 "update-every",
                                 "hebbian-rate",
                                 "hebbian-decay",
                                 "batch-size",
                                 "seed",
                                 "normalize",
                                 "read-chunk",
                                 "virtual-shards",
                                 "forget-rate",
                                 "update-passes",
                                 "mod-ridge",
                                 "positive-dict",
                                 "replace-atoms",
                                 "replace-duplicate-cosine",
                                 "replace-min-usage",
                                 "replace-period",
                                 "synthetic-samples",
                                 "synthetic-dim",
                                 "synthetic-atoms",
                                 "synthetic-sparsity",
                                 "synthetic-snr-db",
                                 "synthetic-seed",
                                 "samples",
                                 "features"};

constexpr const char* kUsage =
    "usage: dictlearn <command> [options]\n"
    "\n"
    "Sparse dictionary learning over MPI ranks (run with mpirun -n P).\n"
    "\n"
    "commands:\n"
    "  train [CONFIG.yaml] [--key value ...]   learn a dictionary (online or MOD)\n"
    "  encode [CONFIG.yaml] --dictionary D.h5 --input X.h5[:/X] --output codes.h5\n"
    "                                          sparse codes of a dataset (CSR in HDF5)\n"
    "  montage --dictionary D.h5 --shape HxW --output atoms.png\n"
    "                                          the atoms as a picture (PNG)\n"
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
      "\nexit status: 0 success, 1 error (bad input or parameters; one line on stderr),\n"
      "3 stopped early on SIGTERM/SIGINT/SIGUSR1 or stop-after, after writing the checkpoint\n"
      "(rerun with --resume yes, or --resume auto as a requeued Slurm job does).\n");
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
    if (!config.input.empty() && DatasetLocation::parse(config.input).file == config.output)
      throw Error(cat("output '", config.output, "' is the input file; choose another path"));
    if (!(config.read_chunk_mib > 0.0)) throw Error("read-chunk must be > 0 (MiB)");
    if (config.resume != "no" && config.resume != "yes" && config.resume != "auto")
      throw Error(cat("resume: unknown value '", config.resume, "' (expected no, yes or auto)"));
    if (config.resume != "no" && config.train.checkpoint.path.empty())
      throw Error("resume needs --checkpoint PATH");
    if (config.train.checkpoint.keep < 1) throw Error("checkpoint-keep must be >= 1");
    if (config.train.checkpoint.every < 0 || !(config.train.checkpoint.seconds >= 0.0))
      throw Error("checkpoint-every and checkpoint-seconds must be >= 0");
    if (config.train.stop_after < 0) throw Error("stop-after must be >= 0");
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
        throw Error(cat("dictionary-init '", reader.location().describe(), "' has ", reader.cols(),
                        " features per atom; the data have ", d));
    });
    initial = reader.read_all();
  }

  if (comm.is_root()) {
    std::printf(
        "dictlearn %s: %s, N=%lld d=%lld, K=%lld, coder %s%s, update %s, %d rank%s x %d "
        "thread%s\n",
        DICTLEARN_VERSION, data.describe().c_str(), (long long)data.samples(), (long long)d,
        (long long)config.train.atoms, to_string(config.train.coder.kind).c_str(),
        config.train.precision == Precision::float32 ? " (float)" : "",
        to_string(config.train.update).c_str(), comm.size(), comm.size() == 1 ? "" : "s",
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
  // Everything that defines the run goes into checkpoints, to be checked on resume.
  config.train.checkpoint.parameters = config_values(config, Command::train);
  config.train.checkpoint.parameters.emplace_back("samples", std::to_string(data.samples()));
  config.train.checkpoint.parameters.emplace_back("features", std::to_string(d));
  std::unique_ptr<LoadedCheckpoint> resumed;
  if (config.resume == "yes" ||
      (config.resume == "auto" &&
       checkpoint_exists(comm, config.train.checkpoint.path, config.train.checkpoint.keep))) {
    resumed = std::make_unique<LoadedCheckpoint>(
        load_checkpoint(comm, config.train.checkpoint.path, config.train.checkpoint.keep));
    comm.agree([&] {
      for (const char* key : kMathKeys) {
        std::string stored = "(absent)", current = "(absent)";
        for (const auto& [k, v] : resumed->parameters)
          if (k == key) stored = v;
        for (const auto& [k, v] : config.train.checkpoint.parameters)
          if (k == key) current = v;
        if (stored != current && !config.force)
          throw Error(cat("checkpoint '", resumed->path, "' was made with ", key, " = ", stored,
                          ", this run has ", key, " = ", current,
                          " (use --force to resume anyway)"));
      }
    });
    if (comm.is_root()) {
      for (const std::string& reason : resumed->skipped)
        std::printf("skipping a checkpoint: %s\n", reason.c_str());
      if (resumed->state.epoch >= config.train.epochs)
        std::printf("checkpoint %s: the run is complete (%lld epochs); writing the output\n",
                    resumed->path.c_str(), (long long)resumed->state.history.size());
      else
        std::printf(
            "resuming from %s: epoch %lld, minibatch %lld (%lld done in all), %d rank%s then, %d "
            "now\n",
            resumed->path.c_str(), (long long)resumed->state.epoch + 1,
            (long long)resumed->state.next_minibatch, (long long)resumed->state.step,
            resumed->ranks, resumed->ranks == 1 ? "" : "s", comm.size());
    }
  } else if (comm.is_root() && config.resume == "auto") {
    std::printf("no checkpoint at %s: starting afresh\n", config.train.checkpoint.path.c_str());
  }
  stop_requested = 0;
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  std::signal(SIGUSR1, request_stop);
  config.train.stop_request = &stop_requested;
  std::unique_ptr<Hdf5SampleSource> initial_codes;
  if (!config.code_init.empty())
    initial_codes = std::make_unique<Hdf5SampleSource>(
        comm, DatasetLocation::parse(config.code_init, "/codes_dense"));
  const double train_start = MPI_Wtime();
  const TrainResult result = train(comm, data, config.train, initial, progress, initial_codes.get(),
                                   resumed ? &resumed->state : nullptr);
  const double train_end = MPI_Wtime();
  if (result.interrupted) {
    if (comm.is_root()) {
      if (config.train.checkpoint.path.empty())
        std::printf(
            "stopped on request after minibatch %lld of epoch %lld (no --checkpoint: "
            "nothing saved)\n",
            (long long)result.state.next_minibatch, (long long)result.state.epoch + 1);
      else
        std::printf(
            "stopped on request; checkpoint %s holds epoch %lld, minibatch %lld: rerun "
            "with --resume yes to continue\n",
            config.train.checkpoint.path.c_str(), (long long)result.state.epoch + 1,
            (long long)result.state.next_minibatch);
    }
    return kExitInterrupted;
  }

  TrainSummary summary;
  summary.ranks = comm.size();
  summary.samples = data.samples();
  summary.dim = d;
  if (synthetic) {
    summary.true_dictionary = &synthetic->true_dictionary();
    summary.recovered_fraction =
        fraction_recovered(synthetic->true_dictionary(), result.dictionary);
  }
  comm.agree([&] {
    if (comm.is_root()) write_train_output(config.output, config, result, summary);
  });
  const double output_end = MPI_Wtime();
  if (comm.is_root()) {
    const PhaseTimes& t = result.times;
    std::printf(
        "time (rank 0): read %.2f s, code %.2f s, statistics %.2f s, allreduce %.2f s, "
        "update %.2f s, checkpoint %.2f s\n",
        t.read, t.code, t.statistics, t.reduce, t.update, t.checkpoint);
    if (Index(result.history.size()) < epochs)
      std::printf("stopped after epoch %lld: the objective changed by less than tol = %g\n",
                  (long long)result.history.size(), config.train.tol);
    if (synthetic)
      std::printf("recovered %.1f%% of the %lld true atoms (|cos| > 0.99)\n",
                  100.0 * summary.recovered_fraction,
                  (long long)synthetic->true_dictionary().cols());
    std::printf("wrote %s\n", config.output.c_str());
  }
  print_run_summary(comm, train_start, train_end, output_end);
  return 0;
}

constexpr const char* kMontageHelp =
    "usage: dictlearn montage --dictionary FILE[:/DATASET] --shape HxW --output PICTURE.png\n"
    "                         [--columns N] [--padding P]\n"
    "\n"
    "Draws the atoms of a dictionary as a grid of H x W tiles, each scaled to its own range\n"
    "(white = largest value), and writes an 8-bit grey PNG.\n"
    "  --dictionary  dictionary file (dataset /dictionary by default, K x d, H * W = d)\n"
    "  --shape       tile height x width, e.g. 8x8 or 28x28\n"
    "  --output      the PNG to write (written to PATH.tmp.png, then renamed)\n"
    "  --columns     tiles per row (default: ceil(sqrt(K)))\n"
    "  --padding     background pixels between tiles (default 1)\n";

int run_montage(const Communicator& comm, const std::vector<std::string>& arguments) {
  std::string dictionary_path, output;
  MontageOptions options;
  comm.agree([&] {
    const auto integer = [](const std::string& key, const std::string& text) {
      char* end = nullptr;
      const long long value = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || value < 0)
        throw Error(cat("--", key, ": expected a number >= 0, got '", text, "'"));
      return Index(value);
    };
    for (size_t i = 0; i < arguments.size(); i += 2) {
      const std::string& key = arguments[i];
      if (i + 1 >= arguments.size()) throw Error(cat(key, ": missing value"));
      const std::string& value = arguments[i + 1];
      if (key == "--dictionary") {
        dictionary_path = value;
      } else if (key == "--output") {
        output = value;
      } else if (key == "--columns") {
        options.columns = integer("columns", value);
      } else if (key == "--padding") {
        options.padding = integer("padding", value);
      } else if (key == "--shape") {
        const size_t x = value.find('x');
        if (x == std::string::npos)
          throw Error(cat("--shape: expected HxW (e.g. 28x28), got '", value, "'"));
        options.height = integer("shape", value.substr(0, x));
        options.width = integer("shape", value.substr(x + 1));
      } else {
        throw Error(cat("montage: unknown option '", key, "' (see dictlearn montage --help)"));
      }
    }
    if (dictionary_path.empty()) throw Error("montage needs --dictionary FILE[:/DATASET]");
    if (output.empty()) throw Error("montage needs --output PICTURE.png");
    if (options.height < 1 || options.width < 1) throw Error("montage needs --shape HxW");
  });
  DatasetReader dictionary_file(comm, DatasetLocation::parse(dictionary_path, "/dictionary"));
  const Matrix atoms = dictionary_file.read_all();  // d x K
  comm.agree([&] {
    if (comm.is_root()) write_montage_png(atoms, options, output);
  });
  if (comm.is_root())
    std::printf("wrote %s: %lld atoms as %lldx%lld tiles\n", output.c_str(),
                (long long)atoms.cols(), (long long)options.height, (long long)options.width);
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
  options.precision = config.train.precision;
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
    std::printf(
        "encoded %lld samples with %lld atoms (%s): mean nnz %.2f, mean objective %.6g, "
        "%.0f samples/s\nwrote %s\n",
        (long long)source.samples(), (long long)dictionary.cols(),
        to_string(options.coder.kind).c_str(), sums[0] / N, sums[1] / N,
        N / std::max(seconds, 1e-9), config.output.c_str());
  }
  return 0;
}

// Open MPI's default point-to-point layer first tries PSM/PSM2 (Omni-Path, TrueScale)
// and, on a node without that hardware, spends ~0.2 s per start probing for it (measured
// on Debian 12's Open MPI 4.1: `mpirun -n 2 dictlearn --help` 0.48 s -> 0.29 s with
// ob1). Without such a device the cm layer has nothing to drive, so ob1 (shared memory,
// TCP) is what would be chosen anyway. A pml chosen by the user (mpirun --mca pml ...,
// OMPI_MCA_pml) is left alone; other MPI libraries ignore the variable.
void prefer_ob1_without_psm_hardware() {
  if (std::getenv("OMPI_MCA_pml") != nullptr) return;
  glob_t devices{};
  const bool has_psm_device = glob("/dev/hfi1*", 0, nullptr, &devices) == 0 ||
                              glob("/dev/ipath*", GLOB_APPEND, nullptr, &devices) == 0;
  globfree(&devices);
  if (!has_psm_device) setenv("OMPI_MCA_pml", "ob1", 0);
}

}  // namespace

int main(int argc, char** argv) {
  // Minibatch buffers change size from one minibatch to the next (shards contribute
  // unequal counts). By default glibc serves such blocks with mmap and hands them back on
  // free, so every minibatch paid for fresh zeroed pages (page faults were ~20% of a run);
  // keep them on the heap and keep the heap.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  prefer_ob1_without_psm_hardware();
  MPI_Init(&argc, &argv);
  program_start = MPI_Wtime();
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
    } else if (command == "montage") {
      if (wants_help) {
        if (rank == 0) std::printf("%s", kMontageHelp);
      } else {
        status = run_montage(comm, rest);
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
