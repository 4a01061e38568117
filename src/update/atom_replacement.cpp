#include "dictlearn/update/atom_replacement.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

std::vector<Index> atoms_to_replace(const Matrix& gram, const Vector& usage, double window_samples,
                                    const ReplacementOptions& options) {
  const Index K = gram.rows();
  std::vector<char> replace(size_t(K), 0);
  if (!options.enabled) return {};
  const double usage_floor = options.min_usage * window_samples;
  for (Index k = 0; k < K; ++k)
    if (usage(k) <= usage_floor || !(gram(k, k) > 0.0)) replace[size_t(k)] = 1;
  // Of a near-duplicate pair keep the more used atom (the lower index on a tie).
  for (Index j = 0; j < K; ++j) {
    if (replace[size_t(j)]) continue;
    for (Index i = 0; i < j; ++i) {
      if (replace[size_t(i)]) continue;
      const double cosine = std::abs(gram(i, j)) / std::sqrt(gram(i, i) * gram(j, j));
      if (cosine > options.duplicate_cosine) {
        replace[size_t(usage(j) > usage(i) ? i : j)] = 1;
        if (replace[size_t(j)]) break;
      }
    }
  }
  std::vector<Index> atoms;
  for (Index k = 0; k < K; ++k)
    if (replace[size_t(k)]) atoms.push_back(k);
  return atoms;
}

Matrix worst_represented_samples(const Communicator& comm, const Matrix& x, const Vector& residuals,
                                 const std::vector<Index>& rows, Index count) {
  const Index d = x.rows(), n = x.cols();
  DICTLEARN_ASSERT(residuals.size() == n && Index(rows.size()) == n && count >= 0);
  // This rank's best candidates: largest residual first, then lowest global row.
  std::vector<Index> order(static_cast<size_t>(n), 0);
  std::iota(order.begin(), order.end(), Index(0));
  // Zero samples cannot become atoms: they rank below every usable sample.
  const auto usable = [&](Index j) { return x.col(j).squaredNorm() > 0.0; };
  const auto worse = [&](Index p, Index q) {
    if (usable(p) != usable(q)) return usable(p);
    if (residuals(p) != residuals(q)) return residuals(p) > residuals(q);
    return rows[size_t(p)] < rows[size_t(q)];
  };
  const Index local = std::min(count, n);
  std::partial_sort(order.begin(), order.begin() + local, order.end(), worse);

  // Record: [residual, global row, sample (d)]; unused records have residual -1.
  const Index width = d + 2;
  std::vector<double> mine(size_t(count * width), -1.0);
  for (Index c = 0; c < local; ++c) {
    const Index j = order[size_t(c)];
    double* record = mine.data() + c * width;
    record[0] = usable(j) ? std::max(residuals(j), 0.0) : -1.0;
    record[1] = double(rows[size_t(j)]);
    Eigen::Map<Vector>(record + 2, d) = x.col(j);
  }
  std::vector<double> all(mine.size() * size_t(comm.size()));
  check_mpi(MPI_Allgather(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), int(mine.size()),
                          MPI_DOUBLE, comm.get()),
            "MPI_Allgather");
  std::vector<Index> records(size_t(count) * size_t(comm.size()));
  std::iota(records.begin(), records.end(), Index(0));
  const auto record_worse = [&](Index p, Index q) {
    const double* a = all.data() + p * width;
    const double* b = all.data() + q * width;
    if (a[0] != b[0]) return a[0] > b[0];
    return a[1] < b[1];
  };
  std::sort(records.begin(), records.end(), record_worse);
  Matrix chosen(d, count);
  Index taken = 0;
  for (Index r : records) {
    if (taken == count) break;
    const double* record = all.data() + r * width;
    if (record[0] < 0.0) break;
    chosen.col(taken) = Eigen::Map<const Vector>(record + 2, d).normalized();
    ++taken;
  }
  return chosen.leftCols(taken);
}

}  // namespace dictlearn
