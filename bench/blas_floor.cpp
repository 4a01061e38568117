// blas_floor: times the dense work that one epoch of online dictionary learning cannot avoid,
// done as plain BLAS-3 calls (OpenBLAS through dictlearn::blas), on random data. Per
// minibatch of n samples (d features, K atoms):
//
//   dtx    D^T X         GEMM  K x d times d x n      (correlations for the coder)
//   A      A += C C^T    SYRK  K x n, upper triangle  (statistics)
//   B      B += X C^T    GEMM  d x n times n x K      (statistics)
//   gram   G = D^T D     GEMM  K x d times d x K      (once per minibatch, after the update)
//
// Reported beside the floor, not in it: the product the online (block-coordinate) update
// needs, D A (GEMM d x K times K x K, once per minibatch: each atom's step reads D a_k).
// The floor leaves the update out; with d K^2 per minibatch it is as large as the
// rest when K ~ n, so "floor + D A" is what an exact one-pass update cannot go below.
//
// C (K x n) is stored dense with `nonzeros` random non-zeros per column, as a coder's output
// copied into a dense matrix would be (BLAS does not exploit the zeros). An epoch is
// ceil(N / batch) minibatches, the last one holding the remainder. The sparse coding itself,
// the dictionary update and all data movement are NOT included: the total is a lower bound
// (a floor) on the time of one epoch, to which dictlearn's measured time can be compared.
//
//   blas_floor --samples N --dim d --atoms K [--batch-size 256] [--threads 2[,1,...]]
//              [--nonzeros s] [--precision double|float] [--repeats 3] [--seed 1] [--json]
//
// OpenBLAS gets `threads` threads (openblas_set_num_threads) in this one process; with a list
// every count is timed and the floor is the best total. Each count runs one untimed warm-up
// epoch, then `repeats` timed epochs; every part reports its best epoch (min over repeats)
// and the total is the best per-epoch sum. Output: a readable table, or with --json one JSON
// object per line (one per thread count, then a summary line with "floor_seconds").

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/types.hpp"

namespace {

using dictlearn::Index;
using Clock = std::chrono::steady_clock;

struct Options {
  long long samples = 0, dim = 0, atoms = 0, batch = 256;
  std::vector<int> threads{2};
  double nonzeros = 10;
  std::string precision = "double";
  int repeats = 3;
  unsigned seed = 1;
  bool json = false;
};

const char* kUsage =
    "usage: blas_floor --samples N --dim d --atoms K [--batch-size B] [--threads T[,T2...]]\n"
    "                  [--nonzeros s] [--precision double|float] [--repeats R] [--seed S] "
    "[--json]\n\n"
    "Times the unavoidable dense BLAS-3 work of one epoch of online dictionary learning\n"
    "(per minibatch: D^T X, A += C C^T, B += X C^T, G = D^T D) on random data; the online\n"
    "update's D A (d x K x K) is timed beside it, not counted in the floor.\n"
    "Defaults: --batch-size 256 --threads 2 --nonzeros 10 --precision double --repeats 3.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "blas_floor: error: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

long long parse_int(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const long long v = std::stoll(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
    return v;
  } catch (const std::exception&) {
    usage_error(key + " needs an integer, got '" + value + "'");
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i], value;
    if (key == "-h" || key == "--help") {
      std::printf("%s", kUsage);
      std::exit(0);
    }
    if (key == "--json") {
      o.json = true;
      continue;
    }
    const size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else {
      if (i + 1 >= argc) usage_error(key + " needs a value");
      value = argv[++i];
    }
    if (key == "--samples" || key == "-N")
      o.samples = parse_int(key, value);
    else if (key == "--dim" || key == "-d")
      o.dim = parse_int(key, value);
    else if (key == "--atoms" || key == "-K")
      o.atoms = parse_int(key, value);
    else if (key == "--batch-size" || key == "-b")
      o.batch = parse_int(key, value);
    else if (key == "--repeats")
      o.repeats = int(parse_int(key, value));
    else if (key == "--seed")
      o.seed = unsigned(parse_int(key, value));
    else if (key == "--precision")
      o.precision = value;
    else if (key == "--nonzeros" || key == "-s") {
      try {
        o.nonzeros = std::stod(value);
      } catch (const std::exception&) {
        usage_error("--nonzeros needs a number");
      }
    } else if (key == "--threads" || key == "-t") {
      o.threads.clear();
      std::stringstream list(value);
      std::string item;
      while (std::getline(list, item, ','))
        if (!item.empty()) o.threads.push_back(int(parse_int(key, item)));
    } else {
      usage_error("unknown option '" + key + "'");
    }
  }
  if (o.samples < 1 || o.dim < 1 || o.atoms < 1) usage_error("need --samples, --dim, --atoms >= 1");
  if (o.batch < 1) usage_error("--batch-size must be >= 1");
  if (o.repeats < 1) usage_error("--repeats must be >= 1");
  if (o.threads.empty()) usage_error("--threads is empty");
  for (int t : o.threads)
    if (t < 1) usage_error("--threads must be >= 1");
  if (o.nonzeros < 0 || o.nonzeros > double(o.atoms))
    usage_error("--nonzeros must be in [0, atoms]");
  if (o.precision != "double" && o.precision != "float")
    usage_error("--precision must be double or float");
  return o;
}

struct Times {
  double dtx = 0, a = 0, b = 0, gram = 0;
  double update = 0;  // D A: not part of the floor (see the top of the file)
  double total() const { return dtx + a + b + gram; }
};

template <typename Scalar>
class Floor {
 public:
  using Mat = dictlearn::MatrixT<Scalar>;

  explicit Floor(const Options& o) : o_(o), rng_(o.seed) {
    const Index d = o.dim, K = o.atoms, B = std::min<long long>(o.batch, o.samples);
    batches_ = (o.samples + B - 1) / B;
    last_ = o.samples - (batches_ - 1) * B;
    D_ = random(d, K);
    A_ = Mat::Zero(K, K);
    B_ = Mat::Zero(d, K);
    G_ = Mat::Zero(K, K);
    DA_ = Mat::Zero(d, K);
    // A small pool of distinct minibatches, cycled (enough to defeat a warm L1/L2 for the
    // data; an epoch of fresh random data would only add the time to generate it).
    const Index pool = std::min<Index>(batches_, 8);
    for (Index p = 0; p < pool; ++p) {
      xs_.push_back(random(d, B));
      cs_.push_back(codes(K, B));
    }
    dtx_ = Mat::Zero(K, B);
    if (last_ != B) {
      x_last_ = random(d, last_);
      c_last_ = codes(K, last_);
    }
  }

  Index batches() const { return batches_; }

  Times epoch(Index limit = -1) {
    Times t;
    const Index n_batches = limit >= 0 ? std::min(limit, batches_) : batches_;
    for (Index i = 0; i < n_batches; ++i) {
      const bool last = i == batches_ - 1 && last_ != Index(xs_[0].cols());
      const Mat& x = last ? x_last_ : xs_[i % xs_.size()];
      const Mat& c = last ? c_last_ : cs_[i % cs_.size()];
      Mat& dtx = last ? dtx_last_ : dtx_;
      if (last && dtx.cols() != x.cols()) dtx = Mat::Zero(D_.cols(), x.cols());
      auto t0 = Clock::now();
      dictlearn::blas::gemm<Scalar>(true, false, Scalar(1), D_, x, Scalar(0), dtx);
      auto t1 = Clock::now();
      dictlearn::blas::syrk_upper<Scalar>(Scalar(1), c, Scalar(1), A_);
      auto t2 = Clock::now();
      dictlearn::blas::gemm<Scalar>(false, true, Scalar(1), x, c, Scalar(1), B_);
      auto t3 = Clock::now();
      dictlearn::blas::gemm<Scalar>(true, false, Scalar(1), D_, D_, Scalar(0), G_);
      auto t4 = Clock::now();
      dictlearn::blas::gemm<Scalar>(false, false, Scalar(1), D_, A_, Scalar(0), DA_);
      auto t5 = Clock::now();
      t.dtx += seconds(t0, t1);
      t.a += seconds(t1, t2);
      t.b += seconds(t2, t3);
      t.gram += seconds(t3, t4);
      t.update += seconds(t4, t5);
    }
    // Keep the results observable so that nothing is optimised away.
    sink_ += double(dtx_(0, 0)) + double(A_(0, 0)) + double(B_(0, 0)) + double(G_(0, 0)) +
             double(DA_(0, 0));
    return t;
  }

  double sink() const { return sink_; }

 private:
  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }
  Mat random(Index rows, Index cols) {
    std::normal_distribution<double> normal;
    Mat m(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) m(i, j) = Scalar(normal(rng_));
    return m;
  }
  // K x n with round(s) (or s rounded randomly between floor and ceil) non-zeros per column.
  Mat codes(Index K, Index n) {
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform;
    std::vector<Index> rows(K);
    Mat c = Mat::Zero(K, n);
    for (Index j = 0; j < n; ++j) {
      const double s = o_.nonzeros;
      Index nnz = Index(std::floor(s)) + (uniform(rng_) < s - std::floor(s) ? 1 : 0);
      nnz = std::min(nnz, K);
      for (Index k = 0; k < K; ++k) rows[k] = k;
      for (Index k = 0; k < nnz; ++k) {  // partial Fisher-Yates: a uniform nnz-subset
        std::uniform_int_distribution<Index> pick(k, K - 1);
        std::swap(rows[k], rows[pick(rng_)]);
        c(rows[k], j) = Scalar(normal(rng_));
      }
    }
    return c;
  }

  const Options& o_;
  std::mt19937_64 rng_;
  Index batches_ = 0, last_ = 0;
  Mat D_, A_, B_, G_, DA_, dtx_, dtx_last_, x_last_, c_last_;
  std::vector<Mat> xs_, cs_;
  double sink_ = 0;
};

struct Result {
  int threads;
  Times best;         // per part: min over repeats
  double best_total;  // min over repeats of the per-epoch sum
  double median_total;
};

template <typename Scalar>
std::vector<Result> run(const Options& o, Index& batches, double& sink) {
  Floor<Scalar> floor(o);
  batches = floor.batches();
  std::vector<Result> results;
  for (int threads : o.threads) {
    dictlearn::blas::set_num_threads(threads);
    floor.epoch(std::min<Index>(floor.batches(), 20));  // warm-up: thread pool, caches
    Result r{threads, {}, std::numeric_limits<double>::infinity(), 0};
    const double inf = std::numeric_limits<double>::infinity();
    r.best = Times{inf, inf, inf, inf, inf};
    std::vector<double> totals;
    for (int rep = 0; rep < o.repeats; ++rep) {
      const Times t = floor.epoch();
      r.best.dtx = std::min(r.best.dtx, t.dtx);
      r.best.a = std::min(r.best.a, t.a);
      r.best.b = std::min(r.best.b, t.b);
      r.best.gram = std::min(r.best.gram, t.gram);
      r.best.update = std::min(r.best.update, t.update);
      r.best_total = std::min(r.best_total, t.total());
      totals.push_back(t.total());
    }
    std::sort(totals.begin(), totals.end());
    r.median_total = totals[totals.size() / 2];
    results.push_back(r);
  }
  sink = floor.sink();
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Index batches = 0;
  double sink = 0;
  const auto results =
      o.precision == "float" ? run<float>(o, batches, sink) : run<double>(o, batches, sink);
  const double N = double(o.samples), d = double(o.dim), K = double(o.atoms);
  // Flops of one epoch (multiply-add = 2): dtx 2KdN, A K(K+1)N, B 2dKN, gram 2K^2 d per batch.
  const double flops =
      2 * K * d * N + K * (K + 1) * N + 2 * d * K * N + 2 * K * K * d * double(batches);
  double floor_seconds = std::numeric_limits<double>::infinity();
  int floor_threads = 0;
  for (const Result& r : results)
    if (r.best_total < floor_seconds) floor_seconds = r.best_total, floor_threads = r.threads;

  if (o.json) {
    for (const Result& r : results)
      std::printf(
          "{\"threads\": %d, \"samples\": %lld, \"dim\": %lld, \"atoms\": %lld, \"batch_size\": "
          "%lld, \"minibatches\": %lld, \"nonzeros\": %g, \"precision\": \"%s\", \"repeats\": %d, "
          "\"dtx_seconds\": %.6g, \"a_seconds\": %.6g, \"b_seconds\": %.6g, \"gram_seconds\": "
          "%.6g, \"total_seconds\": %.6g, \"median_total_seconds\": %.6g, \"gflops\": %.4g, "
          "\"update_product_seconds\": %.6g}\n",
          r.threads, o.samples, o.dim, o.atoms, o.batch, (long long)batches, o.nonzeros,
          o.precision.c_str(), o.repeats, r.best.dtx, r.best.a, r.best.b, r.best.gram, r.best_total,
          r.median_total, flops / r.best_total * 1e-9, r.best.update);
    std::printf(
        "{\"floor_seconds\": %.6g, \"floor_threads\": %d, \"flops\": %.6g, \"check\": %g}\n",
        floor_seconds, floor_threads, flops, sink == sink ? 0.0 : 1.0);
    return 0;
  }
  std::printf(
      "blas_floor: one epoch of N=%lld d=%lld K=%lld, batch %lld (%lld minibatches), "
      "%g nonzeros per code, %s, best of %d\n",
      o.samples, o.dim, o.atoms, o.batch, (long long)batches, o.nonzeros, o.precision.c_str(),
      o.repeats);
  std::printf("%8s %12s %12s %12s %12s %12s %9s %14s\n", "threads", "D^T X s", "A+=CC^T s",
              "B+=XC^T s", "D^T D s", "total s", "GFLOP/s", "(D A s)");
  for (const Result& r : results)
    std::printf("%8d %12.5f %12.5f %12.5f %12.5f %12.5f %9.1f %14.5f\n", r.threads, r.best.dtx,
                r.best.a, r.best.b, r.best.gram, r.best_total, flops / r.best_total * 1e-9,
                r.best.update);
  std::printf("floor: %.5f s (%d thread%s)\n", floor_seconds, floor_threads,
              floor_threads == 1 ? "" : "s");
  std::printf("(D A s): the online update's product D A, timed alongside but not in the floor\n");
  return 0;
}
