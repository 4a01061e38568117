#include "dictlearn/data/class_driver_source.hpp"

#include <algorithm>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

ClassDriverSource::ClassDriverSource(const Communicator& comm, const DatasetLocation& labels,
                                     Index atoms, Index classes)
    : location_(labels), reader_(comm, labels), atoms_(atoms), classes_(classes) {
  {
    // Every label is checked here, once, so that reading during training cannot fail.
    // Each rank scans its share in chunks; all ranks make the same number of reads.
    const Index N = reader_.rows(), P = comm.size(), r = comm.rank();
    const Index begin = r * N / P, end = (r + 1) * N / P;
    const Index chunk = Index(1) << 20;
    const Index reads = ((N + P - 1) / P + chunk - 1) / chunk;
    long long extremes[2] = {-1, 0};  // max label, -min label
    for (Index i = 0; i < reads; ++i) {
      const Index first = std::min(end, begin + i * chunk);
      const Index count = std::min(chunk, end - first);
      for (const int label : reader_.read_rows(first, count)) {
        extremes[0] = std::max<long long>(extremes[0], label);
        extremes[1] = std::max<long long>(extremes[1], -label);
      }
    }
    comm.allreduce_max(extremes, 2);
    comm.agree([&] {
      if (extremes[1] > 0)
        throw Error(
            cat("drivers '", labels.describe(), "': labels must be >= 0, found ", -extremes[1]));
    });
    if (classes_ <= 0) classes_ = Index(extremes[0]) + 1;
    comm.agree([&] {
      if (extremes[0] >= classes_)
        throw Error(cat("drivers '", labels.describe(), "': label ", extremes[0],
                        " is outside [0, ", classes_, ")"));
    });
  }
  comm.agree([&] {
    if (classes_ < 1) throw Error(cat("drivers '", labels.describe(), "': no labels"));
    if (atoms_ < classes_)
      throw Error(cat("drivers '", labels.describe(), "': ", classes_,
                      " classes need at least as many atoms, have ", atoms_));
  });
}

void ClassDriverSource::read_rows(Index begin, Index count, double* out) {
  const std::vector<int> labels = reader_.read_rows(begin, count);
  std::fill(out, out + count * atoms_, 0.0);
  for (Index j = 0; j < count; ++j) {
    const Index c = std::clamp<Index>(labels[size_t(j)], 0, classes_ - 1);  // checked above
    for (Index k = block_begin(c); k < block_end(c); ++k) out[j * atoms_ + k] = 1.0;
  }
}

}  // namespace dictlearn
