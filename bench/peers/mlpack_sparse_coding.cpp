// Head-to-head peer: mlpack 1.0.10's SparseCoding (Lee et al. 2007: LARS codes for all
// samples, then a Newton step on the Lagrange dual for the dictionary), the C++ dictionary
// learner that Debian 12 ships (inside r-cran-rcppmlpack). Built and called by
// bench/run_peer.py through Rcpp::sourceCpp; not part of dictlearn.
//
// The timed loop is mlpack's own Encode() loop, unrolled so that every dictionary can be
// saved: code all samples (LARS), then per iteration one dictionary step and one coding
// step. The clock stops while mlpack's training objective is computed and a dictionary is
// written.
// [[Rcpp::depends(RcppMLPACK)]]
// [[Rcpp::depends(RcppArmadillo)]]
#include <RcppMLPACK.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <mlpack/methods/sparse_coding/sparse_coding.hpp>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void write_raw(const arma::mat& m, const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) Rcpp::stop("cannot write " + path);
  const size_t written = std::fwrite(m.memptr(), sizeof(double), m.n_elem, file);
  std::fclose(file);
  if (written != m.n_elem) Rcpp::stop("short write to " + path);
}

}  // namespace

// train_path: n samples of d doubles each, sample after sample (an N x d C-order array,
// i.e. d x N column-major). Writes dictionary k (d x K, column-major) to
// <prefix>-<k>.bin after k dictionary steps; returns per k the training seconds so far
// and mlpack's objective (summed over the samples). Stops after `iterations` dictionary
// steps or at the first one that ends past `max_seconds` of training.
// [[Rcpp::export]]
Rcpp::DataFrame mlpack_fit(std::string train_path, int samples, int dim, int atoms, double lambda,
                           int iterations, double max_seconds, int seed, std::string prefix) {
  arma::mat data(dim, samples);
  {
    std::ifstream in(train_path, std::ios::binary);
    in.read(reinterpret_cast<char*>(data.memptr()), std::streamsize(data.n_elem * sizeof(double)));
    if (!in)
      Rcpp::stop("cannot read " + std::to_string(data.n_elem) + " doubles from " + train_path);
  }
  mlpack::math::RandomSeed(seed);
  std::vector<double> seconds, objective;
  std::vector<int> step;
  double elapsed = 0.0;
  auto start = std::chrono::steady_clock::now();
  mlpack::sparse_coding::SparseCoding<> coder(data, atoms, lambda, 0.0);  // lambda2 = 0: lasso
  elapsed += seconds_since(start);
  const auto record = [&](int k) {
    step.push_back(k);
    seconds.push_back(elapsed);
    objective.push_back(coder.Objective());
    write_raw(coder.Dictionary(), prefix + "-" + std::to_string(k) + ".bin");
  };
  record(0);
  start = std::chrono::steady_clock::now();
  coder.OptimizeCode();
  arma::uvec adjacencies = arma::find(coder.Codes());
  elapsed += seconds_since(start);
  for (int k = 1; k <= iterations; ++k) {
    start = std::chrono::steady_clock::now();
    coder.OptimizeDictionary(adjacencies, 1e-6);
    elapsed += seconds_since(start);
    record(k);
    // A last coding step would not change the dictionary.
    if (k == iterations || elapsed > max_seconds) break;
    start = std::chrono::steady_clock::now();
    coder.OptimizeCode();
    adjacencies = arma::find(coder.Codes());
    elapsed += seconds_since(start);
  }
  return Rcpp::DataFrame::create(Rcpp::Named("step") = step, Rcpp::Named("seconds") = seconds,
                                 Rcpp::Named("objective") = objective);
}
