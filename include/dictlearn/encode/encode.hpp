#pragma once
// `dictlearn encode`: sparse codes of a whole dataset with a fixed dictionary.
//
//   read shard    rank r owns rows [r N / P, (r + 1) N / P) (boundaries rounded down to
//                 a multiple of 64 rows), read in chunks (collective)
//   code          D^T X per chunk (GEMM), BatchEncoder on G = D^T D (computed once)
//   write         CSR in the scipy.sparse / anndata layout, written collectively:
//                 /codes/data, /codes/indices (int64), /codes/indptr (int64, N + 1),
//                 attribute shape = (N, K); each rank's offsets come from an exclusive
//                 scan of the nonzero counts. Optional /codes_dense (N x K).
//                 /objective/reconstruction, /objective/penalty, /objective/total per sample.
// Each code depends only on its own sample, so the file is the same for any rank count.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/data/preprocess.hpp"
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/gradient/softmax_attributor.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

struct EncodeOptions {
  CoderOptions coder;
  Precision precision = Precision::float64;  ///< arithmetic of the coders
  Normalization normalize = Normalization::none;
  int threads = 0;          ///< OpenMP threads per rank (0: OpenMP default)
  Index chunk_rows = 4096;  ///< rows per read
};

/// One rank's codes, rows [row_begin, row_begin + rows) of the dataset, in CSR.
struct LocalCodes {
  Index row_begin = 0;
  Index rows = 0;
  Index atoms = 0;
  std::vector<double> values;
  std::vector<std::int64_t> columns;
  std::vector<std::int64_t> row_offsets;  ///< rows + 1 entries, starting at 0
  std::vector<double> reconstruction;     ///< per sample, the coder's data term
  std::vector<double> penalty;            ///< per sample, the coder's regulariser
};

/// The contiguous rows [first, last) of the dataset that `rank` of `ranks` encodes (may be
/// empty for small data on many ranks).
std::pair<Index, Index> encode_rows(Index samples, int rank, int ranks);

/// Collective. `dictionary` is d x K with d = source.dim(). With `attributor`, the codes
/// come from its encoder, softmax((W x + b) / T) (one GEMM per chunk, no solver; every
/// entry is stored), and the per-sample reconstruction term is ||x - D^T a||^2.
LocalCodes encode_samples(const Communicator& comm, SampleSource& source, const Matrix& dictionary,
                          const EncodeOptions& options,
                          const SoftmaxAttributor* attributor = nullptr);

/// Collective. Writes all ranks' codes to `path` (through a temporary file renamed when
/// complete) with the given root attributes.
void write_codes(const Communicator& comm, const std::string& path, const LocalCodes& codes,
                 Index total_rows, bool dense,
                 const std::vector<std::pair<std::string, std::string>>& attributes);

}  // namespace dictlearn
