// lars_bench: times the LARS-lasso coder alone on real data, one thread, to compare
// builds of src/coding/lars.cpp (the coder is half of a patches epoch).
//
//   lars_bench --data F.h5:/X --dictionary D.h5:/dictionary [--samples 20000]
//              [--lambda 0.15] [--reps 5] [--precision double|float]
//              [--positive]
//
// The dictionary is a K x d dataset (as `dictlearn train` writes it), its rows are
// normalised; the first --samples rows of the data are coded from G = D^T D and D^T X
// (formed once, untimed). Prints the best and median microseconds per sample over --reps
// passes, the mean nonzeros, and a checksum of the codes (the same checksum from two
// builds: the same codes, bit for bit).

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dictlearn/coding/lars.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace {

using dictlearn::Index;

struct Options {
  std::string data, dictionary;
  Index samples = 20000;
  double lambda = 0.15;
  int reps = 5;
  bool single = false;
  bool positive = false;
};

[[noreturn]] void usage(int code, const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "lars_bench: error: %s\n", message.c_str());
  std::FILE* out = code == 0 ? stdout : stderr;
  std::fprintf(
      out,
      "usage: lars_bench --data F.h5:/X --dictionary D.h5:/dictionary "
      "[--samples 20000]\n"
      "                  [--lambda 0.15] [--reps 5] [--precision double|float] [--positive]\n"
      "Times LarsLasso::solve per sample (one thread) on the first --samples rows.\n");
  MPI_Finalize();
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(0, "");
    if (arg == "--positive") {
      options.positive = true;
      continue;
    }
    if (i + 1 >= argc) usage(2, arg + " needs a value");
    const std::string value = argv[++i];
    try {
      if (arg == "--data") {
        options.data = value;
      } else if (arg == "--dictionary") {
        options.dictionary = value;
      } else if (arg == "--samples") {
        options.samples = std::stol(value);
      } else if (arg == "--lambda") {
        options.lambda = std::stod(value);
      } else if (arg == "--reps") {
        options.reps = std::stoi(value);
      } else if (arg == "--precision") {
        if (value != "double" && value != "float") usage(2, "--precision: double or float");
        options.single = value == "float";
      } else {
        usage(2, "unknown option " + arg);
      }
    } catch (const std::logic_error&) {
      usage(2, "bad value '" + value + "' for " + arg);
    }
  }
  if (options.data.empty() || options.dictionary.empty())
    usage(2, "--data and --dictionary are required");
  if (options.samples < 1 || options.reps < 1 || !(options.lambda >= 0))
    usage(2, "--samples and --reps must be >= 1, --lambda >= 0");
  return options;
}

template <typename Scalar>
void run(const Options& options, const dictlearn::Matrix& dictionary, const dictlearn::Matrix& x) {
  using Mat = dictlearn::MatrixT<Scalar>;
  using Vec = dictlearn::VectorT<Scalar>;
  const Mat d = dictionary.cast<Scalar>();
  const Mat gram = d.transpose() * d;
  const Mat dtx = d.transpose() * x.cast<Scalar>();
  const Index K = d.cols(), n = x.cols();
  dictlearn::LarsLasso<Scalar> lars(K);
  dictlearn::LarsOptions lars_options;
  lars_options.lambda = options.lambda;
  lars_options.positive = options.positive;
  Vec code(K);
  std::vector<double> per_sample;
  double nonzeros = 0, checksum = 0;
  for (int rep = 0; rep < options.reps + 1; ++rep) {  // the first pass warms up, untimed
    nonzeros = 0;
    checksum = 0;
    const auto start = std::chrono::steady_clock::now();
    for (Index s = 0; s < n; ++s) {
      nonzeros += double(lars.solve(gram, dtx.col(s), lars_options, code));
      checksum += double(code.cwiseAbs().sum()) * double(1 + s % 7);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) per_sample.push_back(seconds / double(n) * 1e6);
  }
  std::sort(per_sample.begin(), per_sample.end());
  std::printf("| %s | %ld x %ld | %ld | %.3f | %.3f | %.2f | %.17g |\n",
              sizeof(Scalar) == 4 ? "float" : "double", long(d.rows()), long(K), long(n),
              per_sample.front(), per_sample[per_sample.size() / 2], nonzeros / double(n),
              checksum);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const Options options = parse(argc, argv);
  int status = 0;
  try {
    dictlearn::Communicator comm(MPI_COMM_SELF);
    dictlearn::DatasetReader atoms(
        comm, dictlearn::DatasetLocation::parse(options.dictionary, "/dictionary"));
    dictlearn::Matrix dictionary(atoms.cols(), atoms.rows());  // d x K
    atoms.read_rows(0, atoms.rows(), dictionary.data());
    dictionary.colwise().normalize();
    dictlearn::DatasetReader data(comm, dictlearn::DatasetLocation::parse(options.data));
    if (data.cols() != dictionary.rows())
      throw std::runtime_error("data has " + std::to_string(data.cols()) +
                               " features, the dictionary " + std::to_string(dictionary.rows()));
    const Index n = std::min(options.samples, data.rows());
    dictlearn::Matrix x(data.cols(), n);
    data.read_rows(0, n, x.data());
    std::printf(
        "| precision | d x K | samples | best us/sample | median us/sample | nonzeros "
        "| checksum |\n|---|---|---|---|---|---|---|\n");
    if (options.single)
      run<float>(options, dictionary, x);
    else
      run<double>(options, dictionary, x);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lars_bench: error: %s\n", error.what());
    status = 1;
  }
  MPI_Finalize();
  return status;
}
