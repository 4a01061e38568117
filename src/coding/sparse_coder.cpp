#include "dictlearn/coding/sparse_coder.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include "dictlearn/coding/node_coding_team.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/nonzero_rows.hpp"

namespace dictlearn {
namespace {

const char* const kCoderNames[] = {"lars", "lar", "cd", "omp", "threshold", "fista", "lca"};

LarsOptions lars_options(const CoderOptions& o) {
  LarsOptions lars;
  if (o.kind == CoderKind::lar) {  // plain LAR from lambda = infinity to `nonzeros` atoms
    lars.lambda = 0.0;
    lars.lasso = false;
    lars.max_active = o.nonzeros;
  } else {
    lars.lambda = o.lambda;
    lars.positive = o.positive;
  }
  return lars;
}

CoordinateDescentOptions cd_options(const CoderOptions& o) {
  CoordinateDescentOptions cd;
  cd.lambda = o.lambda;
  cd.positive = o.positive;
  if (o.coder_tol > 0) cd.tol = o.coder_tol;
  cd.max_iter = o.coder_max_iter;
  return cd;
}

FistaOptions fista_options(const CoderOptions& o) {
  FistaOptions fista;
  fista.lambda = o.lambda;
  fista.gamma = o.elastic_penalty;
  fista.loss = o.loss;
  fista.huber_delta = o.huber_delta;
  fista.power = o.loss_power;
  fista.positive = o.positive;
  if (o.coder_tol > 0) fista.tol = o.coder_tol;
  fista.max_iter = o.coder_max_iter;
  return fista;
}

LcaOptions lca_options(const CoderOptions& o) {
  LcaOptions lca;
  lca.lambda = o.lambda;
  lca.threshold = o.lca_threshold;
  lca.tau = o.lca_tau;
  lca.dt = o.lca_dt;
  lca.steps = o.lca_steps;
  lca.tol = o.lca_tol;
  lca.positive = o.positive;
  return lca;
}

}  // namespace

LcaOptions::Threshold parse_lca_threshold(const std::string& name) {
  if (name == "soft") return LcaOptions::Threshold::soft;
  if (name == "hard") return LcaOptions::Threshold::hard;
  throw Error(cat("lca-threshold: unknown value '", name, "' (expected soft or hard)"));
}

std::string to_string(LcaOptions::Threshold threshold) {
  return threshold == LcaOptions::Threshold::soft ? "soft" : "hard";
}

CoderKind parse_coder(const std::string& name) {
  for (int k = 0; k < 7; ++k)
    if (name == kCoderNames[k]) return CoderKind(k);
  throw Error(cat("coder: unknown value '", name,
                  "' (expected lars, lar, cd, omp, threshold, fista or lca)"));
}

std::string to_string(CoderKind kind) { return kCoderNames[int(kind)]; }

Loss parse_loss(const std::string& name) {
  if (name == "squared") return Loss::squared;
  if (name == "huber") return Loss::huber;
  if (name == "power") return Loss::power;
  throw Error(cat("loss: unknown value '", name, "' (expected squared, huber or power)"));
}

std::string to_string(Loss loss) {
  return loss == Loss::squared ? "squared" : loss == Loss::huber ? "huber" : "power";
}

void validate(const CoderOptions& o) {
  if (!(o.lambda >= 0.0) || !std::isfinite(o.lambda))
    throw Error(cat("lambda must be a finite number >= 0 (got ", o.lambda, ")"));
  if (o.positive && (o.kind == CoderKind::omp || o.kind == CoderKind::lar))
    throw Error(cat("positive-codes is not available with coder ", to_string(o.kind),
                    " (as in scikit-learn); use lars, cd, threshold or fista"));
  if (o.nonzeros < 0) throw Error("nonzeros must be >= 0");
  if (!(o.tolerance >= 0.0)) throw Error("tolerance must be >= 0");
  if (o.kind == CoderKind::omp && o.nonzeros == 0 && o.tolerance == 0.0)
    throw Error("coder omp needs nonzeros > 0 or tolerance > 0");
  if (o.kind == CoderKind::lar && o.nonzeros < 1) throw Error("coder lar needs nonzeros >= 1");
  if (!(o.coder_tol >= 0.0)) throw Error("coder-tol must be >= 0");
  if (o.coder_max_iter < 1) throw Error("coder-max-iter must be >= 1");
  if (!(o.elastic_penalty >= 0.0) || !std::isfinite(o.elastic_penalty))
    throw Error("elastic-penalty must be a finite number >= 0");
  if (!(o.huber_delta > 0.0)) throw Error("huber-delta must be > 0");
  if (!(o.loss_power > 1.0) || !std::isfinite(o.loss_power))
    throw Error("loss-power must be a finite number > 1");
  if (!(o.lca_tau > 0.0) || !std::isfinite(o.lca_tau))
    throw Error("lca-tau must be a finite number > 0");
  if (!(o.lca_dt > 0.0) || !(o.lca_dt <= o.lca_tau))
    throw Error(cat("lca-dt must be in (0, lca-tau] (got ", o.lca_dt, " with lca-tau ", o.lca_tau,
                    "); larger Euler steps diverge"));
  if (o.lca_steps < 1) throw Error("lca-steps must be >= 1");
  if (!(o.lca_tol >= 0.0)) throw Error("lca-tol must be >= 0");
  if (o.kind != CoderKind::fista && (o.loss != Loss::squared || o.elastic_penalty != 0.0))
    throw Error("loss and elastic-penalty need coder fista");
}

Precision parse_precision(const std::string& name) {
  if (name == "double") return Precision::float64;
  if (name == "float") return Precision::float32;
  throw Error(cat("precision: unknown value '", name, "' (expected double or float)"));
}

std::string to_string(Precision precision) {
  return precision == Precision::float64 ? "double" : "float";
}

template <typename Scalar>
BatchEncoderT<Scalar>::BatchEncoderT(const CoderOptions& options, Index n_atoms, Index dim,
                                     int threads)
    : options_(options),
      threads_(threads > 0 ? threads : omp_get_max_threads()),
      support_(static_cast<std::size_t>(threads_), std::vector<Index>(std::size_t(n_atoms))) {
  for (int t = 0; t < threads_; ++t) {
    switch (options.kind) {
      case CoderKind::lars:
      case CoderKind::lar:
        lars_.emplace_back(n_atoms);
        break;
      case CoderKind::cd:
        cd_.emplace_back(n_atoms);
        break;
      case CoderKind::omp:
        omp_.emplace_back(n_atoms);
        break;
      case CoderKind::threshold:
        threshold_.emplace_back(n_atoms);
        break;
      case CoderKind::fista:
        fista_.emplace_back(n_atoms, dim);
        break;
      case CoderKind::lca:
        lca_.emplace_back(n_atoms);
        break;
    }
  }
}

template <typename Scalar>
typename BatchEncoderT<Scalar>::Settings BatchEncoderT<Scalar>::settings(
    const MatrixT<Scalar>& gram, bool warm) const {
  Settings s;
  s.lars = lars_options(options_);
  s.cd = cd_options(options_);
  s.fista = fista_options(options_);
  s.lca = lca_options(options_);
  s.cd.warm_start = s.fista.warm_start = s.lca.warm_start = warm;
  s.threshold.lambda = options_.lambda;
  s.threshold.positive = options_.positive;
  s.omp.nonzeros = options_.nonzeros;
  s.omp.tolerance = options_.tolerance;
  // The step size of FISTA depends on the dictionary only: once per call, not per sample.
  if (options_.kind == CoderKind::fista)
    s.fista.lipschitz = double(lipschitz_constant<Scalar>(gram));
  return s;
}

template <typename Scalar>
Index BatchEncoderT<Scalar>::solve_one(std::size_t t, const Settings& s,
                                       const MatrixT<Scalar>& dictionary,
                                       const MatrixT<Scalar>& gram,
                                       const Eigen::Ref<const VectorT<Scalar>>& dtx,
                                       const Eigen::Ref<const VectorT<Scalar>>& x, Scalar x_sqnorm,
                                       Eigen::Ref<VectorT<Scalar>> code) {
  switch (options_.kind) {
    case CoderKind::lars:
    case CoderKind::lar:
      return lars_[t].solve(gram, dtx, s.lars, code);
    case CoderKind::cd:
      return cd_[t].solve(gram, dtx, x_sqnorm, s.cd, code);
    case CoderKind::omp:
      return omp_[t].solve(gram, dtx, x_sqnorm, s.omp, code);
    case CoderKind::threshold:
      return threshold_[t].solve(gram, dtx, s.threshold, code);
    case CoderKind::fista:
      return fista_[t].solve(gram, dtx, x, dictionary, s.fista, code);
    case CoderKind::lca:
      return lca_[t].solve(gram, dtx, s.lca, code);
  }
  return 0;
}

template <typename Scalar>
double BatchEncoderT<Scalar>::residual_sqnorm(std::size_t t, const MatrixT<Scalar>& gram,
                                              const Eigen::Ref<const VectorT<Scalar>>& dtx,
                                              Scalar x_sqnorm,
                                              const Eigen::Ref<const VectorT<Scalar>>& code) {
  // LARS keeps the terms of its final solve; otherwise from G and D^T x, while the code is
  // in cache.
  if (options_.kind == CoderKind::lars || options_.kind == CoderKind::lar) {
    const double from_solve = lars_[t].residual_sqnorm(double(x_sqnorm));
    if (from_solve >= 0.0) return from_solve;
  }
  return residual_sqnorm_from_gram<Scalar>(gram, dtx, x_sqnorm, code, support_[t].data());
}

template <typename Scalar>
Index BatchEncoderT<Scalar>::encode(const MatrixT<Scalar>& dictionary, const MatrixT<Scalar>& gram,
                                    const MatrixT<Scalar>& x, const MatrixT<Scalar>& dtx,
                                    const VectorT<Scalar>& x_sqnorms, MatrixT<Scalar>& codes,
                                    const MatrixT<Scalar>* warm_codes, Vector* residual_sqnorms,
                                    const std::function<void()>& beside,
                                    const std::function<void(Index, Index)>& prepare) {
  const Index n = dtx.cols();
  DICTLEARN_ASSERT(gram.rows() == dtx.rows() && x_sqnorms.size() == n && x.cols() == n);
  if (warm_codes != nullptr)
    DICTLEARN_ASSERT(warm_codes->rows() == dtx.rows() && warm_codes->cols() == n);
  if (solver_clears_code())
    codes.resize(dtx.rows(), n);  // no serial pass over K x n values that LARS zeroes anyway
  else if (warm_codes != nullptr)
    codes = *warm_codes;
  else
    codes.setZero(dtx.rows(), n);
  const Settings s = settings(gram, warm_codes != nullptr);
  if (residual_sqnorms != nullptr) residual_sqnorms->resize(n);
  Index nonzeros = 0;
  std::exception_ptr beside_error;  // exceptions must not leave the OpenMP region
  // Each code depends on its own sample only, so dynamic scheduling (path lengths vary)
  // keeps results bitwise reproducible whatever thread computes them; the thread that
  // runs `beside` first joins late.
#pragma omp parallel num_threads(threads_) reduction(+ : nonzeros)
  {
    const std::size_t t = std::size_t(omp_get_thread_num());
    if (beside && t == 0) beside_error = run_caught(beside);
    // Chunks of 8 samples, each coded by one thread (the dynamic schedule of 8 samples).
    constexpr Index kChunk = 8;
#pragma omp for schedule(dynamic, 1) nowait
    for (Index chunk = 0; chunk < (n + kChunk - 1) / kChunk; ++chunk) {
      const Index begin = chunk * kChunk, end = std::min(n, begin + kChunk);
      if (prepare) prepare(begin, end);
      for (Index j = begin; j < end; ++j) {
        nonzeros +=
            solve_one(t, s, dictionary, gram, dtx.col(j), x.col(j), x_sqnorms(j), codes.col(j));
        if (residual_sqnorms != nullptr)
          (*residual_sqnorms)(j) = residual_sqnorm(t, gram, dtx.col(j), x_sqnorms(j), codes.col(j));
      }
    }
  }
  if (beside_error) std::rethrow_exception(beside_error);
  return nonzeros;
}

template <typename Scalar>
Index BatchEncoderT<Scalar>::encode_shared(NodeCodingTeam<Scalar>& team,
                                           const MatrixT<Scalar>& dictionary,
                                           const MatrixT<Scalar>& gram,
                                           const std::function<void()>& beside) {
  const Settings s = settings(gram, false);
  std::exception_ptr beside_error;
#pragma omp parallel num_threads(threads_)
  {
    const std::size_t t = std::size_t(omp_get_thread_num());
    if (beside && t == 0) beside_error = run_caught(beside);
    typename NodeCodingTeam<Scalar>::Claim claim;
    for (;;) {
      if (team.claim(claim)) {
        auto samples = team.samples_of(claim);
        Index nonzeros = 0;
        for (Index j = claim.begin; j < claim.end; ++j) {
          auto code = samples.codes.col(j);
          if (!solver_clears_code()) code.setZero();
          nonzeros += solve_one(t, s, dictionary, gram, samples.dtx.col(j), samples.x.col(j),
                                samples.x_sqnorms(j), code);
          samples.residual_sqnorms(j) =
              residual_sqnorm(t, gram, samples.dtx.col(j), samples.x_sqnorms(j), code);
        }
        team.complete(claim, nonzeros);
      } else if (team.mine_done()) {
        break;
      } else {
        // Another rank is still coding a chunk of mine: give the core away (ranks may
        // outnumber cores).
        sched_yield();
      }
    }
  }
  if (beside_error) std::rethrow_exception(beside_error);
  return team.mine_nonzeros();
}

template class BatchEncoderT<double>;
template class BatchEncoderT<float>;

template <typename Scalar>
double residual_sqnorm_from_gram(const MatrixT<Scalar>& gram,
                                 const Eigen::Ref<const VectorT<Scalar>>& dtx, Scalar x_sqnorm,
                                 const Eigen::Ref<const VectorT<Scalar>>& code, Index* support) {
  const Index count = nonzero_rows(code.data(), code.size(), support);
  double cross = 0.0, quadratic = 0.0;  // a^T D^T x and a^T G a
  for (Index q = 0; q < count; ++q) {
    const Index k = support[q];
    const double a_k = double(code(k));
    const Scalar* gram_k = gram.data() + k * gram.rows();
    double earlier = 0.0;  // sum over the nonzeros before k of a_p G(p, k)
    for (Index p = 0; p < q; ++p) earlier += double(code(support[p])) * double(gram_k[support[p]]);
    cross += a_k * double(dtx(k));
    quadratic += a_k * (2.0 * earlier + a_k * double(gram_k[k]));
  }
  return std::max(0.0, double(x_sqnorm) - 2.0 * cross + quadratic);
}

template double residual_sqnorm_from_gram<double>(const Matrix&, const Eigen::Ref<const Vector>&,
                                                  double, const Eigen::Ref<const Vector>&, Index*);
template double residual_sqnorm_from_gram<float>(const MatrixT<float>&,
                                                 const Eigen::Ref<const VectorT<float>>&, float,
                                                 const Eigen::Ref<const VectorT<float>>&, Index*);

void code_penalties(const CoderOptions& options, const Matrix& codes, Vector& penalty) {
  const Index n = codes.cols();
  if (options.kind == CoderKind::fista) {
    const FistaOptions fista = fista_options(options);
    penalty.resize(n);
    for (Index j = 0; j < n; ++j) penalty(j) = fista_penalty<double>(codes.col(j), fista);
  } else if (options.kind == CoderKind::omp || options.kind == CoderKind::lar) {
    penalty = Vector::Zero(n);
  } else if (options.kind == CoderKind::lca &&
             options.lca_threshold == LcaOptions::Threshold::hard) {
    // The energy the hard-threshold LCA descends: lambda^2 / 2 per active neuron.
    const double per_atom = 0.5 * options.lambda * options.lambda;
    penalty = per_atom * (codes.array() != 0.0).cast<double>().colwise().sum().transpose();
  } else {
    penalty = options.lambda * codes.cwiseAbs().colwise().sum().transpose();
  }
}

void sample_objectives(const CoderOptions& options, const Matrix& residual, const Matrix& codes,
                       Vector& reconstruction, Vector& penalty) {
  DICTLEARN_ASSERT(residual.cols() == codes.cols());
  const Index n = codes.cols();
  if (options.kind == CoderKind::fista) {
    const FistaOptions fista = fista_options(options);
    reconstruction.resize(n);
    for (Index j = 0; j < n; ++j) reconstruction(j) = fista_loss<double>(residual.col(j), fista);
  } else {
    reconstruction = 0.5 * residual.colwise().squaredNorm().transpose();
  }
  code_penalties(options, codes, penalty);
}

}  // namespace dictlearn
