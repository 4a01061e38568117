#include "dictlearn/update/initialization.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {
namespace {
constexpr std::uint64_t kInitStream = 0x1417;
}

Matrix initialize_from_samples(const Communicator& comm, SampleSource& source,
                               const MinibatchSchedule& schedule, Index atoms,
                               Normalization normalization, std::uint64_t seed) {
  const Index d = source.dim(), N = source.samples();
  Random random(derive_seed({seed, kInitStream}));
  // K distinct rows (Floyd-like rejection; K << N in practice, and at most N are drawn).
  const Index drawn = std::min(atoms, N);
  std::vector<Index> rows;
  std::unordered_set<Index> seen;
  while (Index(rows.size()) < drawn) {
    const Index row = Index(random.below(std::uint64_t(N)));
    if (seen.insert(row).second) rows.push_back(row);
  }
  // Which ranks own which drawn rows: rank r owns rows of its virtual shards.
  const auto owner_range = [&](int rank) {
    const auto [first, last] = schedule.owned_shards(rank, comm.size());
    return std::pair<Index, Index>(schedule.shard_begin(first), schedule.shard_begin(last));
  };
  Index most = 0;
  for (int r = 0; r < comm.size(); ++r) {
    const auto [lo, hi] = owner_range(r);
    most = std::max<Index>(
        most, std::count_if(rows.begin(), rows.end(), [&](Index i) { return i >= lo && i < hi; }));
  }
  const auto [lo, hi] = owner_range(comm.rank());
  Matrix dictionary = Matrix::Zero(d, atoms);
  Matrix sample(d, 1);
  Index reads = 0;
  for (Index k = 0; k < drawn; ++k) {
    const Index row = rows[size_t(k)];
    if (row < lo || row >= hi) continue;
    source.read_rows(row, 1, sample.data());
    ++reads;
    normalize_samples(normalization, sample);
    dictionary.col(k) = sample;
  }
  double unused = 0.0;
  for (; reads < most; ++reads) source.read_rows(0, 0, &unused);  // matching collective reads
  comm.allreduce_sum(dictionary.data(), dictionary.size());
  for (Index k = 0; k < atoms; ++k) {
    const double norm = dictionary.col(k).norm();
    if (std::isfinite(norm) && norm > 0.0) {
      dictionary.col(k) /= norm;
      continue;
    }
    // No usable sample: a seeded random direction, the same on every rank.
    Random fallback(derive_seed({seed, kInitStream, std::uint64_t(k)}));
    for (Index i = 0; i < d; ++i) dictionary(i, k) = fallback.normal();
    dictionary.col(k).normalize();
  }
  return dictionary;
}

void validate_initial_dictionary(Matrix& dictionary, Index dim, Index atoms,
                                 const std::string& origin) {
  if (dictionary.rows() != dim || dictionary.cols() != atoms)
    throw Error(cat("dictionary '", origin, "' is ", dictionary.cols(), " x ", dictionary.rows(),
                    " (atoms x features); expected ", atoms, " x ", dim));
  for (Index k = 0; k < atoms; ++k) {
    if (!dictionary.col(k).allFinite())
      throw Error(cat("dictionary '", origin, "' has a non-finite value in atom ", k));
    const double norm = dictionary.col(k).norm();
    if (!(norm > 0.0)) throw Error(cat("dictionary '", origin, "' has an all-zero atom ", k));
    dictionary.col(k) /= norm;
  }
}

}  // namespace dictlearn
