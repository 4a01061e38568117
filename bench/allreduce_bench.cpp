// allreduce_bench: times MPI_Allreduce(MPI_SUM) on MPI_DOUBLE and MPI_FLOAT buffers from a
// few bytes to tens of MiB, the operation dictlearn performs once per minibatch on its packed
// statistics [upper triangle of A | B | extras]. Standalone: plain MPI + C++17.
//
//   mpirun -n 4 allreduce_bench [--min-bytes 8] [--max-bytes 67108864] [--factor 2]
//          [--types double,float] [--budget 0.25] [--min-reps 5] [--max-reps 2000]
//          [--warmup 3] [--in-place | --separate] [--segment BYTES]
//
// For each (type, size): `warmup` untimed calls (at least 1), then `reps` timed calls.
// Before each timed call all ranks meet at a barrier; a call's time is the slowest rank's
// (MPI_Wtime around the call, max over ranks), so it includes the arrival skew the barrier
// leaves (a few us on shared memory). `reps` is chosen from the fastest warm-up call so that
// one size takes about `budget` seconds (clamped to [min-reps, max-reps]), agreed across
// ranks. Each size's result is checked
// once (every rank contributes rank + 1). Rank 0 prints '#' comment lines and one CSV row
// per (type, size):
//
//   type,ranks,bytes,count,reps,min_us,median_us,mean_us,p90_us,algbw_GBps,busbw_GBps
//
// algbw = bytes / median time; busbw = algbw * 2 (P - 1) / P (the bytes a ring allreduce
// moves per rank, as in nccl-tests), comparable across rank counts.
//
// Default in-place (MPI_IN_PLACE, as dictlearn calls it); --separate uses a send buffer.
// --segment BYTES splits each buffer into consecutive MPI_Allreduce calls of at most BYTES
// (0: one call), to test whether segmenting a large reduction pays (the timed unit is still
// the whole buffer).

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  long long min_bytes = 8;
  long long max_bytes = 64LL << 20;
  int factor = 2;
  std::vector<std::string> types{"double", "float"};
  double budget = 0.25;  // seconds per (type, size)
  int min_reps = 5;
  int max_reps = 2000;
  int warmup = 3;
  bool in_place = true;
  long long segment = 0;  // bytes per MPI_Allreduce call; 0: the whole buffer at once
};

[[noreturn]] void usage_error(int rank, const std::string& message) {
  if (rank == 0) std::fprintf(stderr, "allreduce_bench: error: %s\n", message.c_str());
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::exit(2);
}

Options parse(int argc, char** argv, int rank) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(rank, arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--min-bytes")
      o.min_bytes = std::atoll(value().c_str());
    else if (arg == "--max-bytes")
      o.max_bytes = std::atoll(value().c_str());
    else if (arg == "--factor")
      o.factor = std::atoi(value().c_str());
    else if (arg == "--budget")
      o.budget = std::atof(value().c_str());
    else if (arg == "--min-reps")
      o.min_reps = std::atoi(value().c_str());
    else if (arg == "--max-reps")
      o.max_reps = std::atoi(value().c_str());
    else if (arg == "--warmup")
      o.warmup = std::atoi(value().c_str());
    else if (arg == "--in-place")
      o.in_place = true;
    else if (arg == "--separate")
      o.in_place = false;
    else if (arg == "--segment")
      o.segment = std::atoll(value().c_str());
    else if (arg == "--types") {
      o.types.clear();
      std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = list.find(',', start);
        const std::string t =
            list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (t != "double" && t != "float") usage_error(rank, "--types takes double and/or float");
        o.types.push_back(t);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (arg == "-h" || arg == "--help") {
      if (rank == 0)
        std::printf(
            "usage: mpirun -n P allreduce_bench [--min-bytes B] [--max-bytes B] [--factor 2|4]\n"
            "       [--types double,float] [--budget SECONDS] [--min-reps N] [--max-reps N]\n"
            "       [--warmup N] [--in-place | --separate] [--segment BYTES]\n");
      MPI_Finalize();
      std::exit(0);
    } else {
      usage_error(rank, "unknown argument '" + arg + "' (try --help)");
    }
  }
  if (o.min_bytes < 1 || o.max_bytes < o.min_bytes)
    usage_error(rank, "need 1 <= min-bytes <= max-bytes");
  if (o.factor < 2) usage_error(rank, "--factor must be >= 2");
  if (o.min_reps < 1 || o.max_reps < o.min_reps)
    usage_error(rank, "need 1 <= min-reps <= max-reps");
  if (o.warmup < 0 || !(o.budget > 0)) usage_error(rank, "need warmup >= 0 and budget > 0");
  if (o.segment < 0) usage_error(rank, "--segment must be >= 0");
  return o;
}

struct Row {
  long long bytes, count;
  int reps;
  double min, median, mean, p90;
};

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}

// One timed call: barrier, then MPI_Wtime around the allreduce (in segments of at most
// `segment` elements if > 0); returns the local time.
template <typename T>
double timed_call(std::vector<T>& send, std::vector<T>& recv, long long count, bool in_place,
                  long long segment) {
  const long long step = segment > 0 ? segment : count;
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  for (long long first = 0; first < count; first += step) {
    const long long n = std::min(step, count - first);
    MPI_Allreduce(in_place ? MPI_IN_PLACE : static_cast<void*>(send.data() + first),
                  recv.data() + first, int(n), mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD);
  }
  return MPI_Wtime() - t0;
}

template <typename T>
Row measure(const Options& o, long long bytes, int rank, int ranks) {
  const long long count = std::max<long long>(1, bytes / static_cast<long long>(sizeof(T)));
  const long long segment = o.segment / static_cast<long long>(sizeof(T)) > 0
                                ? o.segment / static_cast<long long>(sizeof(T))
                                : (o.segment > 0 ? 1 : 0);
  if ((segment > 0 ? segment : count) > INT_MAX)
    usage_error(rank, "more than INT_MAX elements in one call: use --segment");
  std::vector<T> send(o.in_place ? 0 : size_t(count));
  std::vector<T> recv(static_cast<size_t>(count));

  // Correctness once: every rank contributes rank + 1.
  std::fill(recv.begin(), recv.end(), T(rank + 1));
  if (!o.in_place) std::fill(send.begin(), send.end(), T(rank + 1));
  timed_call(send, recv, count, o.in_place, segment);
  const T expected = T(ranks) * T(ranks + 1) / T(2);
  int bad = 0;
  for (long long i = 0; i < count; ++i)
    if (recv[size_t(i)] != expected) {
      bad = 1;
      break;
    }
  int any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_bad) usage_error(rank, "wrong allreduce result at " + std::to_string(bytes) + " bytes");

  // Zeros from here on: sums stay 0 (no overflow to inf over thousands of in-place calls).
  std::fill(recv.begin(), recv.end(), T(0));
  std::fill(send.begin(), send.end(), T(0));
  // The fastest warm-up call sizes `reps` (one preempted call must not cut them to min-reps).
  double warm = timed_call(send, recv, count, o.in_place, segment);
  for (int w = 1; w < o.warmup; ++w)
    warm = std::min(warm, timed_call(send, recv, count, o.in_place, segment));
  double slowest = 0.0;
  MPI_Allreduce(&warm, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  const int reps = int(
      std::clamp<double>(std::ceil(o.budget / std::max(slowest, 1e-7)), o.min_reps, o.max_reps));

  std::vector<double> local(static_cast<size_t>(reps));
  std::vector<double> global(static_cast<size_t>(reps));
  for (int r = 0; r < reps; ++r)
    local[size_t(r)] = timed_call(send, recv, count, o.in_place, segment);
  MPI_Reduce(local.data(), global.data(), reps, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

  Row row{bytes, count, reps, 0, 0, 0, 0};
  if (rank == 0) {
    std::sort(global.begin(), global.end());
    row.min = global.front();
    row.median = reps % 2 ? global[size_t(reps / 2)]
                          : 0.5 * (global[size_t(reps / 2 - 1)] + global[size_t(reps / 2)]);
    double sum = 0.0;
    for (double t : global) sum += t;
    row.mean = sum / reps;
    row.p90 = global[std::min(size_t(reps - 1), size_t(std::ceil(0.9 * reps)) - 1)];
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const Options o = parse(argc, argv, rank);

  if (rank == 0) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string first_line(version, size_t(length));
    first_line = first_line.substr(0, first_line.find('\n'));
    char host[MPI_MAX_PROCESSOR_NAME];
    int host_length = 0;
    MPI_Get_processor_name(host, &host_length);
    std::printf(
        "# allreduce_bench: ranks=%d host=%s mpi=\"%s\" %s budget=%gs warmup=%d segment=%lld\n",
        ranks, host, first_line.c_str(), o.in_place ? "in-place" : "separate-buffers", o.budget,
        o.warmup, o.segment);
    std::printf("# times: slowest rank per call, barrier before each call; us = microseconds\n");
    std::printf(
        "type,ranks,bytes,count,reps,min_us,median_us,mean_us,p90_us,algbw_GBps,busbw_GBps\n");
    std::fflush(stdout);
  }
  for (const std::string& type : o.types) {
    for (long long bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
      const Row row = type == "double" ? measure<double>(o, bytes, rank, ranks)
                                       : measure<float>(o, bytes, rank, ranks);
      if (rank == 0) {
        const double actual = double(row.count) * (type == "double" ? 8.0 : 4.0);
        const double algbw = actual / row.median / 1e9;
        const double busbw = algbw * 2.0 * (ranks - 1) / std::max(ranks, 1);
        std::printf("%s,%d,%.0f,%lld,%d,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f\n", type.c_str(), ranks,
                    actual, row.count, row.reps, row.min * 1e6, row.median * 1e6, row.mean * 1e6,
                    row.p90 * 1e6, algbw, busbw);
        std::fflush(stdout);
      }
      if (bytes > o.max_bytes / o.factor) break;
    }
  }
  MPI_Finalize();
  return 0;
}
