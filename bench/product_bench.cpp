// product_bench: times the two dense products of a minibatch, D^T X and G = D^T D, both
// ways dictlearn can form them: Eigen's GEMM on D, and the register tiles on a row-major
// copy of D (core/transposed_dictionary.hpp), one thread, to re-measure where the copy
// pays (TransposedDictionary::pays_off: an AVX-512 build, d <= 256 and d K <= 128 x 512).
//
//   product_bench [--shapes 64x256,128x512,784x256] [--samples 256] [--reps 500]
//
// Everything stays in cache between calls here; inside a training run the products
// compete with the coder for the caches, and at d = 784 the copy lost there although it
// won here. Prints a Markdown table of best microseconds per call (D^T X in the trainer's
// 64-sample blocks; G by the trainer's tiles, the copy's time including the transposition)
// and the largest difference between the two ways (0: bitwise).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/core/gram_tiles.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/core/transposed_dictionary.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;

struct Options {
  std::vector<std::pair<Index, Index>> shapes = {{64, 256}, {128, 512}, {784, 256}};
  Index samples = 256;
  int reps = 500;
};

[[noreturn]] void usage(int code, const std::string& message) {
  if (!message.empty()) std::fprintf(stderr, "product_bench: error: %s\n", message.c_str());
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: product_bench [--shapes 64x256,128x512,784x256] [--samples 256] "
               "[--reps 500]\n"
               "Times D^T X and D^T D from D (Eigen) and from its transposed copy, one "
               "thread.\n");
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(0, "");
    if (i + 1 >= argc) usage(2, arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--shapes") {
      options.shapes.clear();
      std::size_t start = 0;
      while (start <= value.size()) {
        const std::size_t comma = std::min(value.find(',', start), value.size());
        const std::string shape = value.substr(start, comma - start);
        const std::size_t x = shape.find('x');
        char* end = nullptr;
        const long d = x == std::string::npos ? 0 : std::strtol(shape.c_str(), &end, 10);
        const long K = x == std::string::npos ? 0 : std::strtol(shape.c_str() + x + 1, &end, 10);
        if (d <= 0 || K <= 0 || *end != '\0') usage(2, "--shapes: '" + shape + "' is not DxK");
        options.shapes.emplace_back(Index(d), Index(K));
        start = comma + 1;
      }
    } else if (arg == "--samples" || arg == "--reps") {
      char* end = nullptr;
      const long number = std::strtol(value.c_str(), &end, 10);
      if (number <= 0 || *end != '\0') usage(2, arg + " must be a positive integer");
      if (arg == "--samples")
        options.samples = Index(number);
      else
        options.reps = int(number);
    } else {
      usage(2, "unknown option " + arg);
    }
  }
  return options;
}

// Best microseconds of `reps` calls (after one untimed).
double best_microseconds(int reps, const std::function<void()>& call) {
  call();
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  return best * 1e6;
}

Matrix gaussian(Index rows, Index columns, dictlearn::Random& random) {
  Matrix m(rows, columns);
  for (Index j = 0; j < columns; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = random.normal();
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  std::printf(
      "| d x K | D^T X (%ld samples): Eigen us | copy us | G: Eigen us | copy us | "
      "copy pays here (pays_off) | largest difference |\n",
      long(options.samples));
  std::printf("|---|---|---|---|---|---|---|\n");
  dictlearn::Random random(7);
  for (const auto& [d, K] : options.shapes) {
    const Matrix dictionary = gaussian(d, K, random), x = gaussian(d, options.samples, random);
    const Index n = options.samples;
    constexpr Index kColumnBlock = 64;  // the trainer's blocks of D^T X
    Matrix by_eigen(K, n), by_copy(K, n), gram_eigen, gram_copy;
    dictlearn::TransposedDictionary transposed;
    const double dtx_eigen = best_microseconds(options.reps, [&] {
      for (Index begin = 0; begin < n; begin += kColumnBlock) {
        const Index width = std::min(kColumnBlock, n - begin);
        by_eigen.middleCols(begin, width).noalias() =
            dictionary.transpose() * x.middleCols(begin, width);
      }
    });
    transposed.assign(dictionary);
    const double dtx_copy = best_microseconds(
        options.reps, [&] { transposed.multiply(0, K, x.data(), d, n, by_copy.data(), K); });
    const double gram_by_eigen = best_microseconds(
        options.reps, [&] { dictlearn::gram_matrix(dictionary, nullptr, gram_eigen, 1); });
    const double gram_by_copy = best_microseconds(options.reps, [&] {
      transposed.assign(dictionary);
      dictlearn::gram_matrix(dictionary, &transposed, gram_copy, 1);
    });
    const double difference = std::max((by_eigen - by_copy).cwiseAbs().maxCoeff(),
                                       (gram_eigen - gram_copy).cwiseAbs().maxCoeff());
    std::printf("| %ld x %ld | %.1f | %.1f | %.1f | %.1f | %s | %.3g |\n", long(d), long(K),
                dtx_eigen, dtx_copy, gram_by_eigen, gram_by_copy,
                dictlearn::TransposedDictionary::pays_off(d, K) ? "yes" : "no", difference);
  }
  return 0;
}
