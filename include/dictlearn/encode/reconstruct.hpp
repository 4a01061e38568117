#pragma once
// `dictlearn reconstruct`: one modality of the samples rebuilt from their codes,
// x_i = Phi_i a (cross-modal reconstruction when the codes came from other modalities:
// an MNIST digit's code, through the printed-digit dictionary, gives its printed digit).
//
//   read     rank r owns the code rows encode_rows(N, r, P) (CSR, read in chunks)
//   compute  Phi_i A_chunk (sparse product)
//   write    /X (N x d_i float64, one sample per row) collectively, through a temporary
//            file renamed when complete; root attributes record the dictionary, the
//            codes and the modality.
// Each rank holds its own rows of the output (N/P x d_i values) until the write.
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/encode/linked_dictionary.hpp"
#include "dictlearn/io/label_reader.hpp"

namespace dictlearn {

/// Collective. Returns this rank's reconstructions (d_i x rows) of its code rows
/// [first, last) = encode_rows(N, rank, ranks).
Matrix reconstruct_rows(const Communicator& comm, const LinkedDictionary& dictionary,
                        Index modality, CsrReader& codes, Index chunk_rows = 4096);

/// Collective. Writes all ranks' rows (d x rows each, in rank order) as /X of `path`.
void write_reconstruction(const Communicator& comm, const std::string& path, const Matrix& rows,
                          Index total_rows,
                          const std::vector<std::pair<std::string, std::string>>& attributes);

/// Collective. The same for several datasets at once (every block has this rank's rows as
/// columns, the same count in each).
void write_row_datasets(const Communicator& comm, const std::string& path,
                        const std::vector<std::pair<std::string, const Matrix*>>& datasets,
                        Index total_rows,
                        const std::vector<std::pair<std::string, std::string>>& attributes);

}  // namespace dictlearn
