// The generative-prior trainer on 1, 2 and 3 ranks: A bitwise identical on every rank, and
// with several initialisations the trial with the lowest objective after its trial epochs
// is the one that goes on, the same on every rank.
#include <catch2/catch.hpp>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/prior/prior_trainer.hpp"

#include "mpi_helpers.hpp"

using namespace dictlearn;
using namespace mpi_test;

namespace {

// The paper's setting 1 on a small scale: y = A* G(z) + noise, G(z) = [z; z^2; sin z].
Matrix setting_one(const GeneratorNetwork& net, Index m, Index samples) {
  Random rng(21);
  Matrix a(m, net.output_dim()), z(net.input_dim(), samples);
  for (Index j = 0; j < a.cols(); ++j)
    for (Index i = 0; i < m; ++i) a(i, j) = rng.uniform();
  for (Index j = 0; j < samples; ++j)
    for (Index i = 0; i < z.rows(); ++i) z(i, j) = rng.normal();
  Matrix y = a * net.forward(z);
  for (Index j = 0; j < samples; ++j)
    for (Index i = 0; i < m; ++i) y(i, j) += 0.1 * rng.normal();
  return y;
}

}  // namespace

TEST_CASE("generative prior: initialisation trials pick the lowest objective on every rank",
          "[mpi][prior]") {
  const GeneratorNetwork net = poly_sin_generator(3);
  MatrixSource source(setting_one(net, 10, 240));
  Communicator comm(MPI_COMM_WORLD);
  TrainOptions options;
  options.epochs = 4;
  options.batch_size = 60;
  options.seed = 3;
  options.virtual_shards = 12;
  PriorTrainOptions prior;
  prior.decode.steps = 60;
  prior.decode.restarts = 3;
  prior.decode.optimizer.learning_rate = 3e-2;
  prior.initializations = 3;
  prior.initialization_epochs = 2;
  std::vector<std::vector<EpochRecord>> trials(3);
  prior.on_trial_epoch = [&](Index trial, const EpochRecord& record) {
    trials[size_t(trial)].push_back(record);
  };
  const TrainResult result = train_generative_prior(comm, source, net, options, prior);
  REQUIRE(result.history.size() == 4);
  for (const auto& trial : trials) REQUIRE(trial.size() == 2);
  // The run's first two epochs are the best trial's, bitwise.
  size_t best = 0;
  for (size_t t = 1; t < trials.size(); ++t)
    if (trials[t].back().objective < trials[best].back().objective) best = t;
  CHECK(result.history[0].objective == trials[best][0].objective);
  CHECK(result.history[1].objective == trials[best][1].objective);
  CHECK(result.history[1].epoch == 2);
  CHECK(result.history[3].epoch == 4);
  // Trials differ (different starts of A), and the objective keeps falling after the choice.
  CHECK(trials[0].back().objective != trials[1].back().objective);
  CHECK(result.history[3].objective < result.history[0].objective);
  CHECK(identical_on_all_ranks(result.dictionary));
  // One initialisation reproduces trial 0 exactly (its stream is the single run's).
  prior.initializations = 1;
  prior.on_trial_epoch = nullptr;
  options.epochs = 2;
  const TrainResult single = train_generative_prior(comm, source, net, options, prior);
  CHECK(single.history[1].objective == trials[0][1].objective);
  // A given initial dictionary and several initialisations exclude each other.
  prior.initializations = 2;
  CHECK_THROWS_WITH(train_generative_prior(comm, source, net, options, prior, result.dictionary),
                    Catch::Contains("several initialisations need random ones"));
}
