#include "dictlearn/train/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dictlearn/core/error.hpp"
#include "dictlearn/io/collective_writer.hpp"

namespace dictlearn {
namespace {

constexpr int kFormatVersion = 3;  // 3: task loss, accuracy, reconstruction; extras
constexpr Index kHistoryColumns = 10;

std::string ring_member(const std::string& path, Index i) {
  return i == 0 ? path : path + "." + std::to_string(i);
}

// FNV-1a over the bytes of the numeric state: detects truncation and bit rot.
std::uint64_t fnv1a(std::uint64_t hash, const double* data, Index count) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size_t(count) * sizeof(double); ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

Matrix history_matrix(const std::vector<EpochRecord>& history) {
  Matrix table(kHistoryColumns, Index(history.size()));  // one record per column = per row on disk
  for (size_t e = 0; e < history.size(); ++e) {
    const EpochRecord& r = history[e];
    table.col(Index(e)) << double(r.epoch), r.objective, r.mean_nonzeros, r.seconds, r.elapsed,
        r.samples_per_second, double(r.replaced_atoms), r.task_loss, r.accuracy, r.reconstruction;
  }
  return table;
}

std::uint64_t state_checksum(const TrainState& s) {
  std::uint64_t hash = 0xCBF29CE484222325ULL;
  hash = fnv1a(hash, s.dictionary.data(), s.dictionary.size());
  hash = fnv1a(hash, s.a.data(), s.a.size());
  hash = fnv1a(hash, s.b.data(), s.b.size());
  hash = fnv1a(hash, s.usage.data(), s.usage.size());
  for (const auto& [name, matrix] : s.extras) hash = fnv1a(hash, matrix.data(), matrix.size());
  const Matrix history = history_matrix(s.history);
  return fnv1a(hash, history.data(), history.size());
}

// The scalars of the state, stored as one attribute array in a fixed order.
std::vector<double> state_scalars(const TrainState& s) {
  return {double(s.epoch),          double(s.next_minibatch), double(s.step), s.window_samples,
          double(s.window_batches), s.objective_sum,          s.nonzero_sum,  s.sample_sum,
          double(s.replaced),       s.epoch_seconds,          s.elapsed,      s.correct_sum,
          s.task_loss_sum,          s.reconstruction_sum};
}

void write_double_attribute_array(hid_t object, const char* name, const std::vector<double>& v) {
  const hsize_t dims[1] = {hsize_t(v.size())};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(1, dims, nullptr), "H5Screate"));
  h5::Handle attr = h5::attribute(h5::check(
      H5Acreate2(object, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), name));
  h5::check_status(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, v.data()), name);
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
  h5::Handle type = h5::datatype(h5::check(H5Tcopy(H5T_C_S1), "H5Tcopy"));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  h5::Handle space = h5::dataspace(h5::check(H5Screate(H5S_SCALAR), "H5Screate"));
  h5::Handle attr = h5::attribute(h5::check(
      H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), name));
  const char* text = value.c_str();
  h5::check_status(H5Awrite(attr.get(), type.get(), &text), name);
}

// A (rows x cols) row-major dataset from a column-major cols x rows matrix; each rank
// writes its block of rows collectively.
void write_matrix(const Communicator& comm, hid_t file, hid_t transfer, const char* name,
                  const Matrix& columns) {
  const hsize_t rows = hsize_t(columns.cols()), cols = hsize_t(columns.rows());
  const hsize_t begin = rows * hsize_t(comm.rank()) / hsize_t(comm.size());
  const hsize_t end = rows * hsize_t(comm.rank() + 1) / hsize_t(comm.size());
  write_rows_collective(file, transfer, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {rows, cols},
                        begin, end - begin, columns.data() + begin * cols);
}

// Reads a whole 2-D dataset (rows x cols on disk) into a cols x rows matrix.
Matrix read_matrix(hid_t file, const char* name, Index rows, Index cols, const std::string& where) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
    throw Error(cat(where, ": dataset ", name, " is missing"));
  h5::Handle set =
      h5::dataset(h5::check(H5Dopen2(file, name, H5P_DEFAULT), cat(where, ": ", name)));
  h5::Handle space = h5::dataspace(H5Dget_space(set.get()));
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(space.get()) != 2)
    throw Error(cat(where, ": ", name, " is not 2-D"));
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  if (Index(dims[0]) != rows || (cols >= 0 && Index(dims[1]) != cols))
    throw Error(
        cat(where, ": ", name, " is ", dims[0], " x ", dims[1], ", expected ", rows, " x ", cols));
  const Index disk_rows = Index(dims[0]), disk_cols = Index(dims[1]);
  Matrix out(disk_cols, disk_rows);
  if (out.size() > 0)
    h5::check_status(
        H5Dread(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
        cat(where, ": cannot read ", name, " (truncated file?)"));
  return out;
}

std::vector<double> read_double_attribute_array(hid_t object, const char* name,
                                                const std::string& where) {
  if (H5Aexists(object, name) <= 0) throw Error(cat(where, ": attribute ", name, " is missing"));
  h5::Handle attr = h5::attribute(H5Aopen(object, name, H5P_DEFAULT));
  h5::Handle space = h5::dataspace(H5Aget_space(attr.get()));
  std::vector<double> values(size_t(H5Sget_simple_extent_npoints(space.get())));
  h5::check_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data()), cat(where, ": ", name));
  return values;
}

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& where) {
  if (H5Aexists(object, name.c_str()) <= 0)
    throw Error(cat(where, ": attribute ", name, " is missing"));
  h5::Handle attr = h5::attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  h5::Handle type = h5::datatype(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  char* text = nullptr;
  h5::check_status(H5Aread(attr.get(), type.get(), &text), cat(where, ": ", name));
  std::string value = text != nullptr ? text : "";
  H5free_memory(text);
  return value;
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(cat("cannot open '", path, "' to sync it: ", std::strerror(errno)));
  const int status = ::fsync(fd);
  ::close(fd);
  if (status != 0) throw Error(cat("cannot sync '", path, "': ", std::strerror(errno)));
}

TrainState read_state(const Communicator& comm, const std::string& file_path,
                      std::vector<std::pair<std::string, std::string>>& parameters, int& ranks) {
  h5::Handle access = h5::plist(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"));
  h5::check_status(H5Pset_fapl_mpio(access.get(), comm.get(), MPI_INFO_NULL), "H5Pset_fapl_mpio");
  if (H5Fis_hdf5(file_path.c_str()) <= 0)
    throw Error(cat(file_path, ": not an HDF5 file (truncated?)"));
  h5::Handle file = h5::file(H5Fopen(file_path.c_str(), H5F_ACC_RDONLY, access.get()));
  if (!file) throw Error(cat(file_path, ": cannot open"));
  const hid_t root = file.get();
  if (H5Aexists(root, "format") <= 0 ||
      read_string_attribute(root, "format", file_path) != "dictlearn-checkpoint")
    throw Error(cat(file_path, ": not a dictlearn checkpoint"));
  const std::vector<double> version =
      read_double_attribute_array(root, "format_version", file_path);
  if (version.size() != 1 || int(version[0]) != kFormatVersion)
    throw Error(cat(file_path, ": checkpoint format ", version.empty() ? -1 : version[0],
                    " is not the supported format ", kFormatVersion));
  const std::vector<double> scalars = read_double_attribute_array(root, "state", file_path);
  if (scalars.size() != 14) throw Error(cat(file_path, ": malformed state attribute"));
  const std::vector<double> shape = read_double_attribute_array(root, "shape", file_path);
  if (shape.size() != 3) throw Error(cat(file_path, ": malformed shape attribute"));
  const Index K = Index(shape[0]), d = Index(shape[1]), epochs_done = Index(shape[2]);
  TrainState s;
  s.epoch = Index(scalars[0]);
  s.next_minibatch = Index(scalars[1]);
  s.step = Index(scalars[2]);
  s.window_samples = scalars[3];
  s.window_batches = Index(scalars[4]);
  s.objective_sum = scalars[5];
  s.nonzero_sum = scalars[6];
  s.sample_sum = scalars[7];
  s.replaced = Index(scalars[8]);
  s.epoch_seconds = scalars[9];
  s.elapsed = scalars[10];
  s.correct_sum = scalars[11];
  s.task_loss_sum = scalars[12];
  s.reconstruction_sum = scalars[13];
  s.dictionary = read_matrix(root, "/dictionary", K, d, file_path);
  s.a = read_matrix(root, "/A", K, K, file_path);
  s.b = read_matrix(root, "/B", K, d, file_path);
  const Matrix usage = read_matrix(root, "/usage", 1, K, file_path);
  s.usage = usage.col(0);
  const Matrix history = read_matrix(root, "/history", epochs_done, kHistoryColumns, file_path);
  for (Index e = 0; e < history.cols(); ++e) {
    EpochRecord r;
    r.epoch = Index(history(0, e));
    r.objective = history(1, e);
    r.mean_nonzeros = history(2, e);
    r.seconds = history(3, e);
    r.elapsed = history(4, e);
    r.samples_per_second = history(5, e);
    r.replaced_atoms = Index(history(6, e));
    r.task_loss = history(7, e);
    r.accuracy = history(8, e);
    r.reconstruction = history(9, e);
    s.history.push_back(r);
  }
  // Extras: names in one attribute, shapes (rows, cols) in another.
  if (H5Aexists(root, "extra_names") > 0) {
    const std::string names = read_string_attribute(root, "extra_names", file_path);
    const std::vector<double> shapes = read_double_attribute_array(root, "extra_shapes", file_path);
    size_t start = 0, i = 0;
    while (start < names.size()) {
      const size_t end = std::min(names.find('\n', start), names.size());
      const std::string name = names.substr(start, end - start);
      if (2 * i + 1 >= shapes.size()) throw Error(cat(file_path, ": malformed extra_shapes"));
      s.extras.emplace_back(name,
                            read_matrix(root, ("/extra_" + name).c_str(), Index(shapes[2 * i + 1]),
                                        Index(shapes[2 * i]), file_path));
      start = end + 1;
      ++i;
    }
  }
  const std::string stored = read_string_attribute(root, "checksum", file_path);
  char computed[32];
  std::snprintf(computed, sizeof computed, "%016llx", (unsigned long long)state_checksum(s));
  if (stored != computed)
    throw Error(cat(file_path, ": checksum mismatch (stored ", stored, ", computed ", computed,
                    "): the checkpoint is corrupt"));
  ranks = int(read_double_attribute_array(root, "ranks", file_path).at(0));
  const std::string keys = read_string_attribute(root, "parameter_keys", file_path);
  size_t begin = 0;
  while (begin < keys.size()) {
    const size_t end = std::min(keys.find('\n', begin), keys.size());
    const std::string key = keys.substr(begin, end - begin);
    parameters.emplace_back(key, read_string_attribute(root, "param:" + key, file_path));
    begin = end + 1;
  }
  return s;
}

void write_contents(const Communicator& comm, h5::Handle& file, const CheckpointOptions& options,
                    const TrainState& state) {
  h5::Handle transfer = collective_transfer();
  const hid_t root = file.get();
  const Index K = state.dictionary.cols(), d = state.dictionary.rows();
  write_matrix(comm, root, transfer.get(), "/dictionary", state.dictionary);
  write_matrix(comm, root, transfer.get(), "/A", state.a);
  write_matrix(comm, root, transfer.get(), "/B", state.b);
  write_matrix(comm, root, transfer.get(), "/usage", Matrix(state.usage));
  write_matrix(comm, root, transfer.get(), "/history", history_matrix(state.history));
  std::string extra_names;
  std::vector<double> extra_shapes;
  for (const auto& [name, matrix] : state.extras) {
    write_matrix(comm, root, transfer.get(), ("/extra_" + name).c_str(), matrix);
    extra_names += (extra_names.empty() ? "" : "\n") + name;
    extra_shapes.push_back(double(matrix.rows()));
    extra_shapes.push_back(double(matrix.cols()));
  }
  // Attributes are collective metadata: every rank passes the same values.
  write_string_attribute(root, "format", "dictlearn-checkpoint");
  write_double_attribute_array(root, "format_version", {double(kFormatVersion)});
  write_string_attribute(root, "dictlearn_version", DICTLEARN_VERSION);
  write_double_attribute_array(root, "state", state_scalars(state));
  write_double_attribute_array(root, "shape", {double(K), double(d), double(state.history.size())});
  write_double_attribute_array(root, "ranks", {double(comm.size())});
  char checksum[32];
  std::snprintf(checksum, sizeof checksum, "%016llx", (unsigned long long)state_checksum(state));
  write_string_attribute(root, "checksum", checksum);
  if (!state.extras.empty()) {
    write_string_attribute(root, "extra_names", extra_names);
    write_double_attribute_array(root, "extra_shapes", extra_shapes);
  }
  std::string keys;
  for (const auto& [key, value] : options.parameters) {
    keys += (keys.empty() ? "" : "\n") + key;
    write_string_attribute(root, "param:" + key, value);
  }
  write_string_attribute(root, "parameter_keys", keys);
}

}  // namespace

void write_checkpoint(const Communicator& comm, const CheckpointOptions& options,
                      const TrainState& state) {
  h5::silence_library_errors();
  const std::string& path = options.path;
  const std::string temporary = path + ".tmp";
  try {
    h5::Handle file = create_collective_file(comm, temporary, "checkpoint");
    comm.agree([&] {
      try {
        write_contents(comm, file, options, state);
      } catch (const Error& error) {
        throw Error(cat("writing checkpoint '", temporary, "' failed (", error.what(),
                        "): disk full or quota exceeded? The previous checkpoint is kept"));
      }
      file.close(cat("cannot close checkpoint '", temporary, "' (disk full?)"));
    });

    // One process makes it durable and moves it into place, the ring shifting down.
    comm.agree([&] {
      if (!comm.is_root()) return;
      fsync_path(temporary);
      namespace fs = std::filesystem;
      const Index keep = std::max<Index>(1, options.keep);
      std::error_code ignored;
      fs::remove(ring_member(path, keep - 1), ignored);
      for (Index i = keep - 1; i >= 1; --i)
        if (fs::exists(ring_member(path, i - 1)))
          fs::rename(ring_member(path, i - 1), ring_member(path, i));
      fs::rename(temporary, path);
      const fs::path directory = fs::absolute(path).parent_path();
      fsync_path(directory.string());
    });
  } catch (...) {
    if (comm.is_root()) std::remove(temporary.c_str());
    throw;
  }
}

bool checkpoint_exists(const Communicator& comm, const std::string& path, Index keep) {
  double found = 0.0;
  if (comm.is_root())
    for (Index i = 0; i < std::max<Index>(1, keep); ++i)
      if (std::filesystem::exists(ring_member(path, i))) found = 1.0;
  comm.broadcast(&found, 1, 0);
  return found > 0.0;
}

LoadedCheckpoint load_checkpoint(const Communicator& comm, const std::string& path, Index keep) {
  h5::silence_library_errors();
  LoadedCheckpoint loaded;
  for (Index i = 0; i < std::max<Index>(1, keep); ++i) {
    const std::string member = ring_member(path, i);
    double exists = comm.is_root() && std::filesystem::exists(member) ? 1.0 : 0.0;
    comm.broadcast(&exists, 1, 0);
    if (exists == 0.0) continue;
    try {
      comm.agree([&] { loaded.state = read_state(comm, member, loaded.parameters, loaded.ranks); });
      loaded.path = member;
      return loaded;
    } catch (const Error& error) {
      loaded.skipped.push_back(error.what());
      loaded.parameters.clear();
    }
  }
  std::string why = loaded.skipped.empty() ? cat("no checkpoint at '", path, "'")
                                           : cat("no valid checkpoint at '", path, "'");
  for (const std::string& reason : loaded.skipped) why += "; " + reason;
  throw AgreedError(why);  // every rank took the same (agreed) steps to get here
}

}  // namespace dictlearn
