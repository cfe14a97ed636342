// Compression across processes (MPI ranks) behind one small interface. The calibration driver splits
// its calibration windows and its layer solves over the ranks of a Communicator and reduces what they
// compute in one fixed order, so a run on K ranks writes the same bytes as a run in one process.
// The single-process implementation is the default; only distributed_*.cpp know about MPI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace pbs2p {

// Items [begin, end) of a contiguous split.
struct IndexRange {
    int64_t begin = 0;
    int64_t end = 0;
    int64_t size() const { return end - begin; }
};

// Share `part` of `count` items split contiguously into `parts` shares: [count * part / parts,
// count * (part + 1) / parts), sizes differing by at most one, the longer ones spread out.
IndexRange share_of(int64_t count, int parts, int part);

// The part (0 .. parts-1) that does each item: largest cost first onto the least loaded part (the
// lowest-numbered of equally loaded ones); a deterministic function of the costs.
std::vector<int> balanced_owners(const std::vector<int64_t>& costs, int parts);

// Payload bytes this process sent to and received from the others (a broadcast counts once per
// receiving rank on the root).
struct TrafficCounters {
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
};

class Communicator {
  public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    bool is_root() const { return rank() == 0; }

    // Point to point and collective byte transfers (blocking). broadcast: `bytes` from `root` to every
    // rank; every rank passes the same size.
    virtual void send(const void* data, size_t bytes, int destination) = 0;
    virtual void receive(void* data, size_t bytes, int source) = 0;
    virtual void broadcast(void* data, size_t bytes, int root) = 0;
    virtual void barrier() = 0;
    // Ends every rank of the run at once with `code` (after an error on one rank; the others would
    // wait for it forever). One process: does nothing.
    virtual void abort(int code) = 0;

    // A byte vector whose size only the root knows: the size is broadcast first.
    void broadcast_bytes(std::vector<uint8_t>& data, int root);
    // Every rank's `values` (the same length on every rank), concatenated in rank order, on the root;
    // empty on the other ranks.
    std::vector<double> gather_to_root(const std::vector<double>& values);

    const TrafficCounters& traffic() const { return traffic_; }

  protected:
    TrafficCounters traffic_;
};

// The process alone: rank 0 of 1; transfers to itself never happen.
class SingleProcessCommunicator final : public Communicator {
  public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void send(const void* data, size_t bytes, int destination) override;
    void receive(void* data, size_t bytes, int source) override;
    void broadcast(void* data, size_t bytes, int root) override;
    void barrier() override {}
    void abort(int code) override {}
};

// Elementwise fp64 sum of equal-length parts in one order that does not depend on the number of ranks:
// the parts of rank 0 in the order added, then those of rank 1, and so on, folded left to right:
// ((p0 + p1) + p2) + ... With the parts numbered by calibration window, every split of the windows over
// contiguous ranks gives the same bits. Rank 0 folds its parts as they come (they are the prefix); the
// other ranks keep theirs until finish(), where the running sum passes along the ranks in order (each
// folds its parts onto it) and the last rank broadcasts the total.
class OrderedSum {
  public:
    OrderedSum(Communicator& communicator, size_t length);
    void add(std::vector<double> part);
    // Collective: every rank calls it once. The sum on every rank (zeros when no rank added a part).
    std::vector<double> finish();

  private:
    void fold(const std::vector<double>& part);
    Communicator& communicator_;
    size_t length_;
    std::vector<double> sum_;
    bool started_ = false;
    std::vector<std::vector<double>> kept_;  // ranks other than 0
};

// The process-wide single-process communicator.
Communicator& single_process_communicator();

// True when this binary was built with MPI (PBS2P_WITH_MPI).
bool built_with_mpi();

// The ranks this process was started among: an MPI communicator when started by mpirun (or another
// MPI launcher) in a build with MPI, else the single-process one. Throws pbs2p::Error when started by a
// launcher with more than one rank in a build without MPI. MPI is initialised here and finalised when
// the returned object is destroyed.
std::unique_ptr<Communicator> make_world_communicator();

// Ranks the process launcher says this process runs among (OpenMPI's mpirun, or a PMI launcher such as
// MPICH's); 1 when it was not started by one.
int launcher_world_size();

}  // namespace pbs2p
