#include "dictlearn/encode/encode.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/io/collective_writer.hpp"
#include "dictlearn/io/output_writer.hpp"

namespace dictlearn {

namespace {
// Rank and chunk boundaries fall on multiples of this many rows. OpenBLAS computes a
// column of D^T X with the same instruction sequence only when the column sits at the same
// place in its micro-tile; aligned boundaries put every sample in the same place for any
// rank count, so the codes are bitwise identical whatever P.
constexpr Index kRowAlignment = 64;
Index align_down(Index rows) { return rows / kRowAlignment * kRowAlignment; }
}  // namespace

std::pair<Index, Index> encode_rows(Index samples, int rank, int ranks) {
  const auto boundary = [&](int r) {
    return r == ranks ? samples : std::min(samples, align_down(samples * r / ranks));
  };
  return {boundary(rank), boundary(rank + 1)};
}

LocalCodes encode_samples(const Communicator& comm, SampleSource& source, const Matrix& dictionary,
                          const EncodeOptions& options, const SoftmaxAttributor* attributor) {
  const Index N = source.samples(), d = source.dim(), K = dictionary.cols();
  comm.agree([&] {
    if (dictionary.rows() != d)
      throw Error(cat("the dictionary has ", dictionary.rows(), " features per atom; input '",
                      source.describe(), "' has ", d));
  });
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  blas::set_num_threads(1);  // one thread pool, OpenMP (see train/trainer.cpp)
  const auto [first, last] = encode_rows(N, comm.rank(), comm.size());
  const Index chunk = std::max(kRowAlignment, align_down(options.chunk_rows));
  // Every rank issues as many collective reads as the rank with the most chunks.
  Index most_reads = 0;
  for (int r = 0; r < comm.size(); ++r) {
    const auto [lo, hi] = encode_rows(N, r, comm.size());
    most_reads = std::max(most_reads, (hi - lo + chunk - 1) / chunk);
  }

  LocalCodes out;
  out.row_begin = first;
  out.rows = last - first;
  out.atoms = K;
  out.row_offsets.assign(1, 0);
  Matrix x, codes, residual;
  comm.agree([&] { validate(options.coder); });
  MinibatchCoder coder(options.coder, options.precision, K, d, threads);
  coder.set_dictionary(dictionary);
  Vector reconstruction, penalty;
  if (attributor != nullptr) {  // dense codes: K values per row, known in advance
    out.values.reserve(size_t(out.rows * K));
    out.columns.reserve(size_t(out.rows * K));
  }
  std::string failure;
  double unused = 0.0;
  for (Index read = 0; read < most_reads; ++read) {
    const Index begin = first + read * chunk;
    const Index count = std::max<Index>(0, std::min(chunk, last - begin));
    if (count == 0) {
      source.read_rows(0, 0, &unused);
      continue;
    }
    x.resize(d, count);
    source.read_rows(begin, count, x.data());
    if (failure.empty() && !x.allFinite()) {
      for (Index j = 0; j < count && failure.empty(); ++j)
        for (Index i = 0; i < d; ++i)
          if (!std::isfinite(x(i, j))) {
            failure = cat("input '", source.describe(), "' has a non-finite value (", x(i, j),
                          ") at row ", begin + j, ", column ", i, " (0-based)");
            break;
          }
    }
    if (!failure.empty()) continue;  // keep reading so the collective reads still match
    normalize_samples(options.normalize, x);
    if (attributor != nullptr) {
      attributor_codes(*attributor, x, codes);
      residual = x;
      blas::gemm(false, false, -1.0, dictionary, codes, 1.0, residual);
      reconstruction = residual.colwise().squaredNorm().transpose();
      penalty = Vector::Zero(count);
      // Every entry (softmax codes are dense), in bulk: a column is a CSR row.
      const size_t stored = out.values.size();
      out.values.insert(out.values.end(), codes.data(), codes.data() + count * K);
      for (Index j = 0; j < count; ++j) {
        for (Index k = 0; k < K; ++k) out.columns.push_back(k);
        out.row_offsets.push_back(std::int64_t(stored + size_t((j + 1) * K)));
        out.reconstruction.push_back(reconstruction(j));
        out.penalty.push_back(0.0);
      }
      continue;
    }
    coder.encode(x, codes);
    residual = x;
    blas::gemm(false, false, -1.0, dictionary, codes, 1.0, residual);
    sample_objectives(options.coder, residual, codes, reconstruction, penalty);
    for (Index j = 0; j < count; ++j) {
      for (Index k = 0; k < K; ++k)
        if (codes(k, j) != 0.0) {
          out.values.push_back(codes(k, j));
          out.columns.push_back(k);
        }
      out.row_offsets.push_back(std::int64_t(out.values.size()));
      out.reconstruction.push_back(reconstruction(j));
      out.penalty.push_back(penalty(j));
    }
  }
  comm.agree([&] {
    if (!failure.empty()) throw Error(failure);
  });
  return out;
}

static void write_codes_to(const Communicator& comm, const std::string& temporary,
                           const std::string& path, const LocalCodes& codes, Index total_rows,
                           bool dense,
                           const std::vector<std::pair<std::string, std::string>>& attributes,
                           long long offset, long long total_nnz);

void write_codes(const Communicator& comm, const std::string& path, const LocalCodes& codes,
                 Index total_rows, bool dense,
                 const std::vector<std::pair<std::string, std::string>>& attributes) {
  h5::silence_library_errors();
  // Everyone agrees on the temporary name (rank 0's pid) so the collective create matches.
  double pid = comm.is_root() ? double(getpid()) : 0.0;
  comm.broadcast(&pid, 1, 0);
  const std::string temporary = path + ".tmp." + std::to_string((long long)pid);

  // Global offsets: exclusive scan of the nonzero counts.
  long long local_nnz = (long long)codes.values.size(), offset = 0, total_nnz = 0;
  check_mpi(MPI_Exscan(&local_nnz, &offset, 1, MPI_LONG_LONG, MPI_SUM, comm.get()), "MPI_Exscan");
  if (comm.is_root()) offset = 0;  // MPI_Exscan leaves rank 0's result undefined
  check_mpi(MPI_Allreduce(&local_nnz, &total_nnz, 1, MPI_LONG_LONG, MPI_SUM, comm.get()),
            "MPI_Allreduce");

  try {
    write_codes_to(comm, temporary, path, codes, total_rows, dense, attributes, offset, total_nnz);
  } catch (...) {
    if (comm.is_root()) std::remove(temporary.c_str());  // never leave a partial file behind
    throw;
  }
}

static void write_codes_to(const Communicator& comm, const std::string& temporary,
                           const std::string& path, const LocalCodes& codes, Index total_rows,
                           bool dense,
                           const std::vector<std::pair<std::string, std::string>>& attributes,
                           long long offset, long long total_nnz) {
  h5::Handle file = create_collective_file(comm, temporary, "output file");
  comm.agree([&] {
    h5::Handle transfer = collective_transfer();
    h5::Handle group = h5::Handle(
        h5::check(H5Gcreate2(file.get(), "/codes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  "cannot create /codes"),
        H5Gclose);
    h5::Handle objective = h5::Handle(
        h5::check(H5Gcreate2(file.get(), "/objective", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  "cannot create /objective"),
        H5Gclose);
    const hsize_t nnz = hsize_t(total_nnz), N = hsize_t(total_rows);
    write_rows_collective(file.get(), transfer.get(), "/codes/data", H5T_IEEE_F64LE,
                          H5T_NATIVE_DOUBLE, {nnz}, hsize_t(offset), codes.values.size(),
                          codes.values.data());
    write_rows_collective(file.get(), transfer.get(), "/codes/indices", H5T_STD_I64LE,
                          H5T_NATIVE_INT64, {nnz}, hsize_t(offset), codes.columns.size(),
                          codes.columns.data());
    // indptr has N + 1 entries: rank r writes rows [row_begin, row_begin + rows), the last
    // rank also the closing entry.
    std::vector<std::int64_t> indptr(codes.row_offsets.begin(), codes.row_offsets.end());
    for (auto& value : indptr) value += offset;
    const bool last_rank = comm.rank() == comm.size() - 1;
    write_rows_collective(file.get(), transfer.get(), "/codes/indptr", H5T_STD_I64LE,
                          H5T_NATIVE_INT64, {N + 1}, hsize_t(codes.row_begin),
                          hsize_t(codes.rows) + (last_rank ? 1 : 0), indptr.data());
    std::vector<double> total(codes.reconstruction.size());
    for (size_t i = 0; i < total.size(); ++i) total[i] = codes.reconstruction[i] + codes.penalty[i];
    write_rows_collective(file.get(), transfer.get(), "/objective/reconstruction", H5T_IEEE_F64LE,
                          H5T_NATIVE_DOUBLE, {N}, hsize_t(codes.row_begin), hsize_t(codes.rows),
                          codes.reconstruction.data());
    write_rows_collective(file.get(), transfer.get(), "/objective/penalty", H5T_IEEE_F64LE,
                          H5T_NATIVE_DOUBLE, {N}, hsize_t(codes.row_begin), hsize_t(codes.rows),
                          codes.penalty.data());
    write_rows_collective(file.get(), transfer.get(), "/objective/total", H5T_IEEE_F64LE,
                          H5T_NATIVE_DOUBLE, {N}, hsize_t(codes.row_begin), hsize_t(codes.rows),
                          total.data());
    if (dense) {
      Matrix block = Matrix::Zero(codes.atoms, codes.rows);  // K x rows = rows x K row-major
      for (Index j = 0; j < codes.rows; ++j)
        for (auto e = codes.row_offsets[size_t(j)]; e < codes.row_offsets[size_t(j) + 1]; ++e)
          block(codes.columns[size_t(e)], j) = codes.values[size_t(e)];
      write_rows_collective(file.get(), transfer.get(), "/codes_dense", H5T_IEEE_F64LE,
                            H5T_NATIVE_DOUBLE, {N, hsize_t(codes.atoms)}, hsize_t(codes.row_begin),
                            hsize_t(codes.rows), block.data());
    }
    group.close("cannot close /codes");
    objective.close("cannot close /objective");
    file.close(cat("cannot close '", temporary, "'"));
  });
  // Attributes and the final rename, by one process on the complete file.
  comm.agree([&] {
    if (!comm.is_root()) return;
    OutputWriter writer = OutputWriter::reopen(temporary, path);
    writer.set_attribute("/codes", "shape", std::vector<long long>{total_rows, codes.atoms});
    writer.set_attribute("/codes", "encoding-type", std::string("csr_matrix"));
    writer.set_attribute("/codes", "encoding-version", std::string("0.1.0"));
    writer.set_attributes("/", attributes);
    writer.set_attribute("/", "ranks", (long long)comm.size());
    writer.set_attribute("/", "dictlearn_version", std::string(DICTLEARN_VERSION));
    writer.commit();
  });
}

}  // namespace dictlearn
