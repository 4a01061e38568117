#pragma once
// RAII ownership of HDF5 identifiers and checked HDF5 calls. Every HDF5 return code is
// checked (also in release builds); a failure becomes a dictlearn::Error naming the
// operation and the file or dataset involved.
#include <hdf5.h>

#include <string>

namespace dictlearn::h5 {

/// Turns off HDF5's own error-stack printing: dictlearn reports one line per failure.
void silence_library_errors();

/// Throws Error(what) when an HDF5 call returned a negative id or status.
hid_t check(hid_t id, const std::string& what);
void check_status(herr_t status, const std::string& what);

/// An owned hid_t, closed with the matching H5*close on destruction. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset();
  /// Closes now and reports a failed close (a failed flush on close loses data).
  void close(const std::string& what);

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

inline Handle file(hid_t id) { return Handle(id, H5Fclose); }
inline Handle dataset(hid_t id) { return Handle(id, H5Dclose); }
inline Handle dataspace(hid_t id) { return Handle(id, H5Sclose); }
inline Handle datatype(hid_t id) { return Handle(id, H5Tclose); }
inline Handle plist(hid_t id) { return Handle(id, H5Pclose); }
inline Handle attribute(hid_t id) { return Handle(id, H5Aclose); }

}  // namespace dictlearn::h5
