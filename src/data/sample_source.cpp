// Hdf5SampleSource is header-only; this file anchors the vtable of SampleSource.
#include "dictlearn/data/sample_source.hpp"
