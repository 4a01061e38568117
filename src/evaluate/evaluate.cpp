#include "dictlearn/evaluate/evaluate.hpp"

#include <omp.h>

#include <cmath>
#include <functional>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/encode/encode.hpp"

namespace dictlearn {

double round_significant(double value, int digits) {
  if (digits <= 0 || value == 0.0 || !std::isfinite(value)) return value;
  const double magnitude = std::floor(std::log10(std::abs(value)));
  const double scale = std::pow(10.0, double(digits - 1) - magnitude);
  return std::round(value * scale) / scale;
}

namespace {

// The loop both models share: every rank reads its rows in chunks (all ranks making the
// same number of collective reads), `rebuild` turns a chunk of inputs into their
// reconstructions from k rounded parameters per sample, and the squared errors against the
// reference (clean data, else the input) are summed over all ranks.
using Rebuild = std::function<Matrix(const Matrix& x, Index first_row)>;

EvaluationResult evaluate_rows(const Communicator& comm, SampleSource& input, SampleSource* clean,
                               const EvaluateOptions& options, const Rebuild& rebuild) {
  const Index N = input.samples(), d = input.dim();
  const auto [first, last] = encode_rows(N, comm.rank(), comm.size());
  const Index chunk = std::max<Index>(1, options.chunk_rows);
  long long reads = (last - first + chunk - 1) / chunk;
  comm.allreduce_max(&reads, 1);
  double sums[2] = {0.0, 0.0};  // squared error, reference energy
  Matrix x, reference;
  std::string failure;
  double unused = 0.0;
  for (long long read = 0; read < reads; ++read) {
    const Index begin = std::min(last, first + Index(read) * chunk);
    const Index count = std::min(chunk, last - begin);
    if (count == 0) {  // keep the collective reads matched
      input.read_rows(0, 0, &unused);
      if (clean != nullptr) clean->read_rows(0, 0, &unused);
      continue;
    }
    x.resize(d, count);
    input.read_rows(begin, count, x.data());
    if (clean != nullptr) {
      reference.resize(d, count);
      clean->read_rows(begin, count, reference.data());
    }
    if (!failure.empty()) continue;
    if (!x.allFinite() || (clean != nullptr && !reference.allFinite())) {
      failure = cat("a non-finite value in rows [", begin, ", ", begin + count, ") of '",
                    x.allFinite() ? clean->describe() : input.describe(), "'");
      continue;
    }
    normalize_samples(options.normalize, x);
    if (clean != nullptr) normalize_samples(options.normalize, reference);
    try {
      Matrix residual = clean != nullptr ? reference : x;
      sums[1] += residual.squaredNorm();
      residual -= rebuild(x, begin);
      sums[0] += residual.squaredNorm();
    } catch (const std::exception& error) {
      failure = error.what();
    }
  }
  comm.agree([&] {
    if (!failure.empty()) throw Error(failure);
  });
  comm.allreduce_sum(sums, 2);
  EvaluationResult result;
  result.samples = N;
  result.features = d;
  result.squared_error = sums[0];
  result.reference_energy = sums[1];
  result.mean_squared_error = sums[0] / (double(N) * double(d));
  result.mean_sample_error = sums[0] / double(N);
  result.relative_error = sums[1] > 0.0 ? sums[0] / sums[1] : 0.0;
  if (options.peak > 0.0)
    result.psnr = 10.0 * std::log10(options.peak * options.peak /
                                    std::max(result.mean_squared_error, 1e-300));
  return result;
}

void round_all(Matrix& values, int digits) {
  for (Index i = 0; i < values.size(); ++i)
    values.data()[i] = round_significant(values.data()[i], digits);
}

}  // namespace

EvaluationResult evaluate_sparse(const Communicator& comm, SampleSource& input, SampleSource* clean,
                                 const Matrix& dictionary, const EvaluateOptions& options) {
  const Index N = input.samples(), d = input.dim(), K = dictionary.cols();
  comm.agree([&] {
    if (options.nonzeros < 1) throw Error("nonzeros must be >= 1 (the description budget k)");
    if (dictionary.rows() != d)
      throw Error(cat("the dictionary has ", dictionary.rows(), " features per atom; input '",
                      input.describe(), "' has ", d));
    if (clean != nullptr && (clean->samples() != N || clean->dim() != d))
      throw Error(cat("clean data '", clean->describe(), "' is ", clean->samples(), " x ",
                      clean->dim(), "; the input is ", N, " x ", d));
  });
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  blas::set_num_threads(1);
  CoderOptions coder;
  coder.kind = CoderKind::omp;
  coder.nonzeros = options.nonzeros;
  MinibatchCoder encoder(coder, Precision::float64, K, d, threads);
  encoder.set_dictionary(dictionary);
  Matrix codes;
  return evaluate_rows(comm, input, clean, options, [&](const Matrix& x, Index) {
    encoder.encode(x, codes);
    round_all(codes, options.digits);
    return Matrix(dictionary * codes);
  });
}

EvaluationResult evaluate_generative(const Communicator& comm, SampleSource& input,
                                     SampleSource* clean, const Matrix& dictionary,
                                     const GeneratorNetwork& generator,
                                     const DecodeOptions& settings,
                                     const EvaluateOptions& options) {
  const Index N = input.samples(), d = input.dim();
  comm.agree([&] {
    validate(settings);
    if (dictionary.rows() != d || dictionary.cols() != generator.output_dim())
      throw Error(cat("the dictionary A is ", dictionary.rows(), " x ", dictionary.cols(),
                      "; input '", input.describe(), "' and the generator need ", d, " x ",
                      generator.output_dim()));
    if (clean != nullptr && (clean->samples() != N || clean->dim() != d))
      throw Error(cat("clean data '", clean->describe(), "' is ", clean->samples(), " x ",
                      clean->dim(), "; the input is ", N, " x ", d));
  });
  blas::set_num_threads(1);
  return evaluate_rows(comm, input, clean, options, [&](const Matrix& x, Index first_row) {
    DecodeResult decoded = decode(dictionary, generator, x, first_row, settings);
    round_all(decoded.codes, options.digits);
    return Matrix(dictionary * generator.forward(decoded.codes));
  });
}

}  // namespace dictlearn
