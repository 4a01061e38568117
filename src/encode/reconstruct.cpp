#include "dictlearn/encode/reconstruct.hpp"

#include <unistd.h>

#include <cstdio>

#include "dictlearn/encode/encode.hpp"
#include "dictlearn/io/collective_writer.hpp"
#include "dictlearn/io/output_writer.hpp"

namespace dictlearn {

Matrix reconstruct_rows(const Communicator& comm, const LinkedDictionary& dictionary,
                        Index modality, CsrReader& codes, Index chunk_rows) {
  comm.agree([&] {
    if (modality < 0 || modality >= Index(dictionary.modalities.size()))
      throw Error(cat("modality ", modality, " does not exist: the dictionary has ",
                      dictionary.modalities.size(), " (0..", dictionary.modalities.size() - 1,
                      ")"));
    if (codes.cols() != dictionary.phi.cols())
      throw Error(cat("codes '", codes.location().describe(), "' have ", codes.cols(),
                      " atoms; the dictionary has ", dictionary.phi.cols()));
  });
  const Matrix phi = dictionary.block(modality);  // d_i x K
  const Index N = codes.rows();
  const auto [first, last] = encode_rows(N, comm.rank(), comm.size());
  // Every rank makes the same number of collective reads.
  long long reads = (last - first + chunk_rows - 1) / chunk_rows;
  comm.allreduce_max(&reads, 1);
  Matrix out(phi.rows(), last - first);
  for (long long i = 0; i < reads; ++i) {
    const Index begin = std::min(last, first + Index(i) * chunk_rows);
    const Index count = std::min(chunk_rows, last - begin);
    const SparseMatrix block = codes.read_rows(begin, count);  // K x count
    if (count > 0) out.middleCols(begin - first, count) = phi * block;
  }
  return out;
}

void write_reconstruction(const Communicator& comm, const std::string& path, const Matrix& rows,
                          Index total_rows,
                          const std::vector<std::pair<std::string, std::string>>& attributes) {
  write_row_datasets(comm, path, {{"/X", &rows}}, total_rows, attributes);
}

void write_row_datasets(const Communicator& comm, const std::string& path,
                        const std::vector<std::pair<std::string, const Matrix*>>& datasets,
                        Index total_rows,
                        const std::vector<std::pair<std::string, std::string>>& attributes) {
  const Matrix& rows = *datasets.front().second;
  h5::silence_library_errors();
  double pid = comm.is_root() ? double(getpid()) : 0.0;
  comm.broadcast(&pid, 1, 0);
  const std::string temporary = path + ".tmp." + std::to_string((long long)pid);
  long long local = (long long)rows.cols(), begin = 0;
  check_mpi(MPI_Exscan(&local, &begin, 1, MPI_LONG_LONG, MPI_SUM, comm.get()), "MPI_Exscan");
  if (comm.is_root()) begin = 0;  // MPI_Exscan leaves rank 0's result undefined
  try {
    h5::Handle file = create_collective_file(comm, temporary, "output file");
    comm.agree([&] {
      h5::Handle transfer = collective_transfer();
      // A d x n column-major block is n x d row-major: one sample per row.
      for (const auto& [name, block] : datasets)
        write_rows_collective(file.get(), transfer.get(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                              {hsize_t(total_rows), hsize_t(block->rows())}, hsize_t(begin),
                              hsize_t(block->cols()), block->data());
      file.close(cat("cannot close '", temporary, "'"));
    });
    comm.agree([&] {
      if (!comm.is_root()) return;
      OutputWriter writer = OutputWriter::reopen(temporary, path);
      writer.set_attributes("/", attributes);
      writer.set_attribute("/", "ranks", (long long)comm.size());
      writer.set_attribute("/", "dictlearn_version", std::string(DICTLEARN_VERSION));
      writer.commit();
    });
  } catch (...) {
    if (comm.is_root()) std::remove(temporary.c_str());  // never leave a partial file behind
    throw;
  }
}

}  // namespace dictlearn
