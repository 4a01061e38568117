#include "dictlearn/prior/prior_trainer.hpp"

#include <mpi.h>

#include <cmath>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/data/minibatch_loader.hpp"

namespace dictlearn {

PriorTrainOptions::Update parse_prior_update(const std::string& name) {
  if (name == "altmin") return PriorTrainOptions::Update::altmin;
  if (name == "joint") return PriorTrainOptions::Update::joint;
  throw Error(cat("prior-update: unknown value '", name, "' (expected altmin or joint)"));
}

std::string to_string(PriorTrainOptions::Update update) {
  return update == PriorTrainOptions::Update::altmin ? "altmin" : "joint";
}

void validate(const PriorTrainOptions& o) {
  validate(o.decode);
  validate(o.altmin);
  validate(o.joint);
  if (o.joint_steps < 1) throw Error("joint-steps must be >= 1");
  if (!(o.radius >= 0.0)) throw Error("prior-radius must be >= 0");
}

TrainResult train_generative_prior(const Communicator& comm, SampleSource& data,
                                   const GeneratorNetwork& generator, const TrainOptions& options,
                                   const PriorTrainOptions& prior, const Matrix& initial,
                                   const EpochCallback& on_epoch) {
  const Index N = data.samples(), m = data.dim(), n = generator.output_dim();
  const Index k = generator.input_dim();
  comm.agree([&] {
    validate(prior);
    if (options.epochs < 0) throw Error("epochs must be >= 0");
    if (options.batch_size < 1 || options.batch_size > N)
      throw Error(cat("batch-size must be in [1, ", N, "]"));
    if (std::min(options.virtual_shards, N) < comm.size())
      throw Error(cat("virtual-shards (", options.virtual_shards,
                      ") must be >= the number of ranks (", comm.size(), ")"));
    if (initial.size() > 0 && (initial.rows() != m || initial.cols() != n))
      throw Error(cat("dictionary-init is ", initial.rows(), " x ", initial.cols(),
                      "; the generative prior needs m x n = ", m, " x ", n));
  });
  blas::set_num_threads(1);
  const double start = MPI_Wtime();
  const MinibatchSchedule schedule(
      N, {options.batch_size, options.virtual_shards, options.chunk_rows, options.seed});
  MinibatchLoader loader(data, schedule, comm.rank(), comm.size());
  TrainResult result;
  TrainState& state = result.state;
  Matrix a = initial;
  if (a.size() == 0) {
    Random random(derive_seed({options.seed, 0x4131}));  // "A1"
    a.resize(m, n);
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < m; ++i) a(i, j) = random.uniform();
  }
  const Matrix a0 = a;
  // Each sample's latest code, for warm starts (only this rank's samples are ever set).
  Matrix codes_of_rows = Matrix::Zero(k, N);
  std::vector<char> has_code(size_t(N), 0);
  Optimizer a_optimizer(
      prior.update == PriorTrainOptions::Update::joint ? prior.joint : prior.altmin.optimizer,
      {a.size()});
  Matrix y, z;
  std::vector<Index> rows;
  for (Index epoch = 0; epoch < options.epochs; ++epoch) {
    const double epoch_start = MPI_Wtime();
    loader.start_epoch(epoch);
    double sums[2] = {0.0, 0.0};  // error, samples
    for (Index t = 0; t < schedule.batches_per_epoch(); ++t) {
      std::string failure;
      const Index count = loader.load(t, y, rows, failure);
      comm.agree([&] {
        if (!failure.empty()) throw Error(failure);
      });
      // Decode: warm start where this sample has a code, plus the random restarts.
      Matrix warm(k, count);
      bool all_warm = count > 0;
      for (Index j = 0; j < count; ++j) {
        if (has_code[size_t(rows[size_t(j)])])
          warm.col(j) = codes_of_rows.col(rows[size_t(j)]);
        else
          all_warm = false;
      }
      DecodeResult decoded;
      if (count > 0) {
        DecodeOptions settings = prior.decode;
        if (!all_warm) settings.restarts = std::max<Index>(1, settings.restarts);
        decoded = decode(a, generator, y, rows, settings, all_warm ? &warm : nullptr);
        z = decoded.codes;
      } else {
        z.resize(k, 0);
      }
      double batch_sums[2] = {count > 0 ? decoded.loss.sum() : 0.0, double(count)};
      if (prior.update == PriorTrainOptions::Update::altmin) {
        AltminStatistics statistics(m, n);
        if (count > 0) accumulate_altmin_statistics(generator, y, z, statistics);
        std::vector<double> buffer(size_t(m * n + n * n + 2));
        std::copy_n(statistics.b.data(), m * n, buffer.data());
        std::copy_n(statistics.c.data(), n * n, buffer.data() + m * n);
        buffer[size_t(m * n + n * n)] = batch_sums[0];
        buffer[size_t(m * n + n * n + 1)] = batch_sums[1];
        comm.allreduce_sum(buffer.data(), Index(buffer.size()));
        std::copy_n(buffer.data(), m * n, statistics.b.data());
        std::copy_n(buffer.data() + m * n, n * n, statistics.c.data());
        batch_sums[0] = buffer[size_t(m * n + n * n)];
        batch_sums[1] = buffer[size_t(m * n + n * n + 1)];
        if (batch_sums[1] > 0.0) {
          if (prior.altmin.update == AltminOptions::Update::least_squares) {
            comm.agree([&] { a = solve_altmin(statistics.b, statistics.c, prior.altmin.eps); });
          } else {
            Matrix gradient = altmin_gradient(a, statistics.b, statistics.c) / batch_sums[1];
            a_optimizer.step({a.data()}, {gradient.data()});
          }
        }
      } else {  // joint: Adam on (A, Z) together; Z's optimizer is per minibatch
        comm.allreduce_sum(batch_sums, 2);
        Optimizer z_optimizer(prior.decode.optimizer, {z.size()});
        Matrix grad_a, grad_z;
        std::vector<double> buffer(size_t(m * n));
        for (Index step = 0; step < prior.joint_steps && batch_sums[1] > 0.0; ++step) {
          grad_a = Matrix::Zero(m, n);
          grad_z = Matrix::Zero(k, z.cols());
          if (count > 0) joint_loss_gradient(a, generator, y, z, &grad_a, &grad_z);
          std::copy_n(grad_a.data(), m * n, buffer.data());
          comm.allreduce_sum(buffer.data(), m * n);
          for (Index i = 0; i < m * n; ++i) grad_a.data()[i] = buffer[size_t(i)] / batch_sums[1];
          a_optimizer.step({a.data()}, {grad_a.data()});
          if (count > 0) z_optimizer.step({z.data()}, {grad_z.data()});
        }
      }
      if (prior.radius > 0.0) project_to_ball(a, a0, prior.radius);
      for (Index j = 0; j < count; ++j) {
        codes_of_rows.col(rows[size_t(j)]) = z.col(j);
        has_code[size_t(rows[size_t(j)])] = 1;
      }
      sums[0] += batch_sums[0];
      sums[1] += batch_sums[1];
    }
    EpochRecord record;
    record.epoch = epoch + 1;
    record.objective = sums[0] / std::max(sums[1], 1.0);
    record.mean_nonzeros = double(k);
    const double now = MPI_Wtime();
    record.seconds = agreed_seconds(comm, now - epoch_start);
    record.elapsed = agreed_seconds(comm, now - start);
    record.samples_per_second = sums[1] / std::max(record.seconds, 1e-9);
    state.history.push_back(record);
    if ((on_epoch && !on_epoch(record)) || objective_converged(state.history, options.tol)) break;
  }
  state.epoch = options.epochs;
  state.dictionary = a;
  result.dictionary = a;
  result.history = state.history;
  return result;
}

}  // namespace dictlearn
