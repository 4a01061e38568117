// `dictlearn classify`: multinomial logistic regression (l2) on the sparse codes that
// `dictlearn encode` writes, or on raw N x d data. A thin shell: it reads each rank's
// contiguous block of samples and labels, calls fit_logistic_regression (which does the
// distributed work), and reports accuracy and the confusion matrix (rank 0 prints).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "dictlearn/classify/logistic_regression.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/io/dataset_reader.hpp"
#include "dictlearn/io/label_reader.hpp"
#include "dictlearn/io/output_writer.hpp"

namespace dictlearn::cli {

const char* const kClassifyHelp =
    "usage: mpirun -n P dictlearn classify --train FILE[:/codes] --train-labels FILE[:/y]\n"
    "                     [--test FILE[:/codes] [--test-labels FILE[:/y]]] [--l2 VALUE]\n"
    "                     [--max-iter N] [--tolerance T] [--classes C] [--output MODEL.h5]\n"
    "                     [--predictions PRED.h5]\n"
    "\n"
    "Trains a multinomial logistic regression (softmax, l2 penalty on the weights) on the\n"
    "sparse codes written by 'dictlearn encode' or on raw samples, by L-BFGS:\n"
    "  minimise (1/N) sum_i [logsumexp(W x_i + b) - (W x_i + b)_(y_i)] + (l2/2) ||W||_F^2\n"
    "Each rank holds a contiguous block of samples; all ranks hold the same model, which is\n"
    "the same for any number of ranks up to rounding.\n"
    "  --train         features: a CSR group (data, indices, indptr, attribute shape = (N, K),\n"
    "                  as 'dictlearn encode' writes /codes; the default) or a 2-D float\n"
    "                  dataset of N samples x d features, e.g. FILE:/X\n"
    "  --train-labels  integer class labels 0..C-1, one per sample (1-D, or N x 1; dataset\n"
    "                  /y by default)\n"
    "  --test          features to evaluate, with as many features as --train\n"
    "  --test-labels   labels of --test: prints the test accuracy and confusion matrix\n"
    "  --l2            weight of (1/2) ||W||_F^2, >= 0 (default 1e-4; bias not penalised)\n"
    "  --max-iter      L-BFGS iterations (default 500)\n"
    "  --tolerance     converged when every gradient entry is <= this in size (default 1e-6)\n"
    "  --classes       number of classes C (default: the largest train or test label + 1)\n"
    "  --output        model file: /weights (C x d), /bias (C), confusion matrices, and the\n"
    "                  run as attributes (written to a temporary file, then renamed)\n"
    "  --predictions   predicted class of every --test sample: /predictions (int64)\n"
    "\n"
    "exit status: 0 success (also when --max-iter ends the solver first), 1 error (one line\n"
    "on stderr).\n";

namespace {

struct ClassifyArguments {
  std::string train, train_labels, test, test_labels, output, predictions;
  LogisticRegressionOptions solver;  // solver.classes = 0 until known
};

ClassifyArguments parse_arguments(const std::vector<std::string>& arguments) {
  ClassifyArguments parsed;
  for (const auto& [key, value] : option_pairs(arguments, "classify")) {
    if (key == "--train") {
      parsed.train = value;
    } else if (key == "--train-labels") {
      parsed.train_labels = value;
    } else if (key == "--test") {
      parsed.test = value;
    } else if (key == "--test-labels") {
      parsed.test_labels = value;
    } else if (key == "--output") {
      parsed.output = value;
    } else if (key == "--predictions") {
      parsed.predictions = value;
    } else if (key == "--l2") {
      parsed.solver.l2 = parse_real(key, value);
      if (parsed.solver.l2 < 0) throw Error(cat("--l2 must be >= 0, got ", value));
    } else if (key == "--tolerance") {
      parsed.solver.tolerance = parse_real(key, value);
      if (parsed.solver.tolerance < 0) throw Error(cat("--tolerance must be >= 0, got ", value));
    } else if (key == "--max-iter") {
      parsed.solver.max_iterations = Index(parse_integer(key, value, 1));
    } else if (key == "--classes") {
      parsed.solver.classes = Index(parse_integer(key, value, 2));
    } else {
      throw Error(cat("classify: unknown option '", key, "' (see dictlearn classify --help)"));
    }
  }
  if (parsed.train.empty()) throw Error("classify needs --train FILE[:/codes]");
  if (parsed.train_labels.empty()) throw Error("classify needs --train-labels FILE[:/y]");
  if (!parsed.test_labels.empty() && parsed.test.empty())
    throw Error("--test-labels needs --test FILE[:/codes]");
  if (!parsed.predictions.empty() && parsed.test.empty())
    throw Error("--predictions needs --test FILE[:/codes]");
  // An output must not overwrite an input (nor the other output).
  std::vector<std::pair<std::string, std::string>> inputs = {
      {"--train", DatasetLocation::parse(parsed.train, "/codes").file},
      {"--train-labels", DatasetLocation::parse(parsed.train_labels, "/y").file}};
  if (!parsed.test.empty())
    inputs.emplace_back("--test", DatasetLocation::parse(parsed.test, "/codes").file);
  if (!parsed.test_labels.empty())
    inputs.emplace_back("--test-labels", DatasetLocation::parse(parsed.test_labels, "/y").file);
  for (const auto& [option, output] :
       {std::pair{"--output", parsed.output}, std::pair{"--predictions", parsed.predictions}}) {
    if (output.empty()) continue;
    for (const auto& [input_option, file] : inputs)
      if (file == output)
        throw Error(
            cat(option, " '", output, "' is the ", input_option, " file; choose another path"));
  }
  if (!parsed.output.empty() && parsed.output == parsed.predictions)
    throw Error(cat("--output and --predictions are the same file '", parsed.output, "'"));
  return parsed;
}

/// Rank r's contiguous block of rows [r N / P, (r + 1) N / P).
std::pair<Index, Index> shard(Index rows, int rank, int ranks) {
  return {rows * rank / ranks, rows * (rank + 1) / ranks};
}

/// One rank's block of a feature file (dense d x n, or sparse K x n).
struct LocalFeatures {
  DatasetLocation location;
  bool sparse = false;
  Index rows = 0;      ///< N, all ranks
  Index features = 0;  ///< d or K
  Index begin = 0;     ///< first global row held here
  std::int64_t nonzeros = 0;
  Matrix dense;
  SparseMatrix codes;
  Index local() const { return sparse ? codes.cols() : dense.cols(); }
  std::string kind() const { return sparse ? "sparse CSR" : "dense"; }
};

/// Errors of a step re-thrown on every rank with the option prefixed ("--train: ...").
template <typename Work>
auto with_option(const std::string& option, Work work) {
  try {
    return work();
  } catch (const AgreedError& error) {
    throw AgreedError(cat(option, ": ", error.what()));
  }
}

LocalFeatures load_features(const Communicator& comm, const std::string& spec,
                            const std::string& option) {
  return with_option(option, [&] {
    LocalFeatures out;
    out.location = DatasetLocation::parse(spec, "/codes");
    out.sparse = CsrReader::is_csr(comm, out.location);
    if (out.sparse) {
      CsrReader reader(comm, out.location);
      out.rows = reader.rows();
      out.features = reader.cols();
      out.nonzeros = reader.nonzeros();
      const auto [begin, end] = shard(out.rows, comm.rank(), comm.size());
      out.begin = begin;
      out.codes = reader.read_rows(begin, end - begin);
      return out;
    }
    DatasetReader reader(comm, out.location);
    out.rows = reader.rows();
    out.features = reader.cols();
    const auto [begin, end] = shard(out.rows, comm.rank(), comm.size());
    out.begin = begin;
    out.dense.resize(out.features, end - begin);
    double unused = 0.0;
    reader.read_rows(begin, end - begin, end > begin ? out.dense.data() : &unused);
    comm.agree([&] {
      if (out.dense.allFinite()) return;
      for (Index j = 0; j < out.dense.cols(); ++j)
        for (Index i = 0; i < out.features; ++i)
          if (!std::isfinite(out.dense(i, j)))
            throw Error(cat("'", out.location.describe(), "' has a non-finite value (",
                            out.dense(i, j), ") at row ", begin + j, ", column ", i, " (0-based)"));
    });
    return out;
  });
}

/// This rank's labels for the rows of `features`; the file must have one per sample.
std::vector<int> load_labels(const Communicator& comm, const std::string& spec,
                             const std::string& option, const LocalFeatures& features,
                             const std::string& features_option) {
  return with_option(option, [&] {
    LabelReader reader(comm, DatasetLocation::parse(spec, "/y"));
    comm.agree([&] {
      if (reader.rows() != features.rows)
        throw Error(cat("'", reader.location().describe(), "' has ", reader.rows(), " labels but ",
                        features_option, " '", features.location.describe(), "' has ",
                        features.rows, " samples"));
    });
    return reader.read_rows(features.begin, features.local());
  });
}

/// Every label in [0, classes), else one line naming the option, file and row.
void check_label_range(const Communicator& comm, const std::vector<int>& labels, Index begin,
                       Index classes, const std::string& option, const std::string& spec) {
  comm.agree([&] {
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] >= classes)
        throw Error(cat(option, " '", DatasetLocation::parse(spec, "/y").describe(), "': label ",
                        labels[i], " at row ", begin + Index(i), " is outside [0, ", classes,
                        ") (--classes ", classes, ")"));
  });
}

std::vector<int> predict_local(const LogisticModel& model, const LocalFeatures& features) {
  return features.sparse ? predict(model, features.codes) : predict(model, features.dense);
}

void print_confusion(const ClassificationReport& report, const char* which) {
  const Index C = report.confusion.rows();
  if (C > 30) {
    std::printf("confusion matrix (%s): %lld x %lld, too wide to print (see --output)\n", which,
                (long long)C, (long long)C);
    return;
  }
  const long long largest = std::max<long long>(report.confusion.maxCoeff(), C - 1);
  const int width = std::max(5, int(std::to_string(largest).size()) + 2);
  std::printf("confusion matrix (%s; rows = true class, columns = predicted class):\n", which);
  std::printf("%10s", "true\\pred");
  for (Index p = 0; p < C; ++p) std::printf("%*lld", width, (long long)p);
  std::printf("\n");
  for (Index t = 0; t < C; ++t) {
    std::printf("%10lld", (long long)t);
    for (Index p = 0; p < C; ++p) std::printf("%*lld", width, report.confusion(t, p));
    std::printf("\n");
  }
}

/// The confusion matrix as a C x C float64 dataset, rows = true class.
Matrix confusion_columns(const ClassificationReport& report) {
  return report.confusion.cast<double>().transpose();  // write_columns_as_rows transposes back
}

void write_model(const std::string& path, const ClassifyArguments& arguments,
                 const LocalFeatures& train, const LogisticFit& fit,
                 const ClassificationReport& train_report, const ClassificationReport* test_report,
                 int ranks) {
  const std::string temporary = path + ".tmp." + std::to_string((long long)getpid());
  try {
    const Vector& bias = fit.model.bias;
    write_real_vector(temporary, "/bias",
                      std::vector<double>(bias.data(), bias.data() + bias.size()), false);
    OutputWriter writer = OutputWriter::reopen(temporary, path);
    writer.write_columns_as_rows("/weights", Matrix(fit.model.weights.transpose()));  // C x d
    writer.write_columns_as_rows("/train_confusion", confusion_columns(train_report));
    if (test_report != nullptr)
      writer.write_columns_as_rows("/test_confusion", confusion_columns(*test_report));
    writer.set_attribute("/", "model",
                         std::string("multinomial logistic regression (softmax), "
                                     "l2 penalty on the weights"));
    writer.set_attribute("/", "l2", arguments.solver.l2);
    writer.set_attribute("/", "tolerance", arguments.solver.tolerance);
    writer.set_attribute("/", "max_iter", (long long)arguments.solver.max_iterations);
    writer.set_attribute("/", "iterations", (long long)fit.iterations);
    writer.set_attribute("/", "evaluations", (long long)fit.evaluations);
    writer.set_attribute("/", "converged", (long long)(fit.converged() ? 1 : 0));
    writer.set_attribute("/", "stop", to_string(fit.stop));
    writer.set_attribute("/", "final_loss", fit.loss);
    writer.set_attribute("/", "gradient_norm", fit.gradient_norm);
    writer.set_attribute("/", "train_accuracy", train_report.accuracy);
    if (test_report != nullptr) writer.set_attribute("/", "test_accuracy", test_report->accuracy);
    writer.set_attribute("/", "classes", (long long)fit.model.classes());
    writer.set_attribute("/", "features", (long long)fit.model.features());
    writer.set_attribute("/", "samples", (long long)fit.samples);
    writer.set_attribute("/", "feature_kind", train.sparse ? std::string("sparse") : "dense");
    writer.set_attribute("/", "train", train.location.describe());
    writer.set_attribute("/", "train_labels",
                         DatasetLocation::parse(arguments.train_labels, "/y").describe());
    if (!arguments.test.empty())
      writer.set_attribute("/", "test",
                           DatasetLocation::parse(arguments.test, "/codes").describe());
    if (!arguments.test_labels.empty())
      writer.set_attribute("/", "test_labels",
                           DatasetLocation::parse(arguments.test_labels, "/y").describe());
    writer.set_attribute("/", "ranks", (long long)ranks);
    writer.set_attribute("/", "dictlearn_version", std::string(DICTLEARN_VERSION));
    writer.commit();
  } catch (...) {
    std::remove(temporary.c_str());  // never leave a partial file behind
    throw;
  }
}

void write_predictions(const std::string& path, const std::vector<long long>& predicted,
                       const LocalFeatures& test, const std::string& model_output) {
  const std::string temporary = path + ".tmp." + std::to_string((long long)getpid());
  try {
    write_integer_vector(temporary, "/predictions", predicted, false);
    OutputWriter writer = OutputWriter::reopen(temporary, path);
    writer.set_attribute("/", "test", test.location.describe());
    if (!model_output.empty()) writer.set_attribute("/", "model", model_output);
    writer.set_attribute("/", "dictlearn_version", std::string(DICTLEARN_VERSION));
    writer.commit();
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
}

}  // namespace

int run_classify(const Communicator& comm, const std::vector<std::string>& args) {
  ClassifyArguments arguments;
  comm.agree([&] { arguments = parse_arguments(args); });

  // Features and labels: rank r holds rows [r N / P, (r + 1) N / P) of each set.
  const LocalFeatures train = load_features(comm, arguments.train, "--train");
  const std::vector<int> train_labels =
      load_labels(comm, arguments.train_labels, "--train-labels", train, "--train");
  LocalFeatures test;
  std::vector<int> test_labels;
  const bool has_test = !arguments.test.empty();
  const bool has_test_labels = !arguments.test_labels.empty();
  if (has_test) {
    test = load_features(comm, arguments.test, "--test");
    comm.agree([&] {
      if (test.features != train.features)
        throw Error(cat("--test '", test.location.describe(), "' has ", test.features,
                        " features per sample; --train '", train.location.describe(), "' has ",
                        train.features));
    });
    if (has_test_labels)
      test_labels = load_labels(comm, arguments.test_labels, "--test-labels", test, "--test");
  }

  // C: given, or 1 + the largest label of the train and test sets.
  long long largest = -1;
  for (int y : train_labels) largest = std::max<long long>(largest, y);
  for (int y : test_labels) largest = std::max<long long>(largest, y);
  comm.allreduce_max(&largest, 1);
  if (arguments.solver.classes == 0) {
    arguments.solver.classes = Index(largest + 1);
    comm.agree([&] {
      if (arguments.solver.classes < 2)
        throw Error(cat("--train-labels '",
                        DatasetLocation::parse(arguments.train_labels, "/y").describe(),
                        "': every label is ", largest, "; classification needs 2 classes or more"));
    });
  }
  const Index C = arguments.solver.classes;
  check_label_range(comm, train_labels, train.begin, C, "--train-labels", arguments.train_labels);
  check_label_range(comm, test_labels, test.begin, C, "--test-labels", arguments.test_labels);
  Vector class_counts = Vector::Zero(C);
  for (int y : train_labels) class_counts(y) += 1.0;
  comm.allreduce_sum(class_counts.data(), C);

  if (comm.is_root()) {
    std::printf("dictlearn classify: train %s (%s, N=%lld, %lld features",
                train.location.describe().c_str(), train.kind().c_str(), (long long)train.rows,
                (long long)train.features);
    if (train.sparse)
      std::printf(", %.2f nonzeros per sample", double(train.nonzeros) / double(train.rows));
    std::printf("), %lld classes, l2 %g, %d rank%s\n", (long long)C, arguments.solver.l2,
                comm.size(), comm.size() == 1 ? "" : "s");
    if (has_test)
      std::printf("test %s (%s, N=%lld)%s\n", test.location.describe().c_str(), test.kind().c_str(),
                  (long long)test.rows, has_test_labels ? "" : ", no labels: predictions only");
    for (Index c = 0; c < C; ++c)
      if (class_counts(c) == 0)
        std::printf("note: class %lld has no training samples\n", (long long)c);
    std::fflush(stdout);
  }

  // The fit; progress every 10 iterations and at the end.
  Index last_printed = -1;
  const auto print_progress = [&](const LogisticProgress& p) {
    if (!comm.is_root()) return;
    std::printf("iteration %5lld  loss %.10g  |grad|_inf %.3e  evaluations %lld\n",
                (long long)p.iteration, p.loss, p.gradient_norm, (long long)p.evaluations);
    std::fflush(stdout);
    last_printed = p.iteration;
  };
  const auto progress = [&](const LogisticProgress& p) {
    if (p.iteration % 10 == 0) print_progress(p);
  };
  const double start = MPI_Wtime();
  const LogisticFit fit =
      train.sparse
          ? fit_logistic_regression(comm, train.codes, train_labels, arguments.solver, progress)
          : fit_logistic_regression(comm, train.dense, train_labels, arguments.solver, progress);
  const double seconds = MPI_Wtime() - start;
  if (comm.is_root()) {
    if (last_printed != fit.iterations)
      print_progress({fit.iterations, fit.evaluations, fit.loss, fit.gradient_norm});
    switch (fit.stop) {
      case LogisticStop::converged:
        std::printf("converged after %lld iterations (|grad|_inf %.2e <= tolerance %g), %.2f s\n",
                    (long long)fit.iterations, fit.gradient_norm, arguments.solver.tolerance,
                    seconds);
        break;
      case LogisticStop::max_iterations:
        std::printf(
            "not converged: stopped at --max-iter %lld (|grad|_inf %.2e > tolerance %g), "
            "%.2f s\n",
            (long long)fit.iterations, fit.gradient_norm, arguments.solver.tolerance, seconds);
        break;
      case LogisticStop::line_search_failed:
        std::printf(
            "stopped after %lld iterations: the loss cannot decrease further in double "
            "precision (|grad|_inf %.2e > tolerance %g), %.2f s\n",
            (long long)fit.iterations, fit.gradient_norm, arguments.solver.tolerance, seconds);
        break;
    }
  }

  const ClassificationReport train_report =
      evaluate_predictions(comm, predict_local(fit.model, train), train_labels, C);
  if (comm.is_root())
    std::printf("train accuracy %.4f (%lld samples)\n", train_report.accuracy,
                (long long)train_report.samples);
  std::vector<int> test_predicted;
  ClassificationReport test_report;
  if (has_test) {
    test_predicted = predict_local(fit.model, test);
    if (has_test_labels) {
      test_report = evaluate_predictions(comm, test_predicted, test_labels, C);
      if (comm.is_root())
        std::printf("test accuracy %.4f (%lld samples)\n", test_report.accuracy,
                    (long long)test_report.samples);
    }
  }
  if (comm.is_root()) {
    if (has_test_labels)
      print_confusion(test_report, "test set");
    else
      print_confusion(train_report, "training set");
    std::fflush(stdout);
  }

  if (!arguments.output.empty()) {
    comm.agree([&] {
      if (comm.is_root())
        write_model(arguments.output, arguments, train, fit, train_report,
                    has_test_labels ? &test_report : nullptr, comm.size());
    });
    if (comm.is_root()) std::printf("wrote %s\n", arguments.output.c_str());
  }
  if (!arguments.predictions.empty()) {
    // Gather the predictions on rank 0: each rank fills its rows of a zero vector, summed.
    std::vector<double> all(size_t(test.rows), 0.0);
    for (size_t i = 0; i < test_predicted.size(); ++i)
      all[size_t(test.begin) + i] = double(test_predicted[i]);
    comm.allreduce_sum(all.data(), Index(all.size()));
    comm.agree([&] {
      if (comm.is_root())
        write_predictions(arguments.predictions, std::vector<long long>(all.begin(), all.end()),
                          test, arguments.output);
    });
    if (comm.is_root()) std::printf("wrote %s\n", arguments.predictions.c_str());
  }
  return 0;
}

}  // namespace dictlearn::cli
