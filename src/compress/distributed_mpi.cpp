// The MPI communicator (compiled only when CMake finds MPI; PBS2P_WITH_MPI). MPI is initialised when a
// launcher started this process and finalised with the communicator.
// The C API only (OpenMPI and MPICH would otherwise pull in their deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "compress/distributed.h"
#include "core/error.h"

namespace pbs2p {

namespace {

// MPI counts are int: large buffers go in pieces of at most 1 GiB.
constexpr size_t kMaxPiece = size_t{1} << 30;

void check_mpi(int status, const char* what) {
    if (status == MPI_SUCCESS) return;
    char message[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, message, &length);
    fail("MPI {} failed: {}", what, std::string(message, static_cast<size_t>(length)));
}

class MpiCommunicator final : public Communicator {
  public:
    MpiCommunicator() {
        int provided = 0;
        check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
    ~MpiCommunicator() override {
        // Leaving on an exception: the other ranks may be waiting in a collective; end them all.
        if (std::uncaught_exceptions() > 0) {
            std::fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Finalize();
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }

    void send(const void* data, size_t bytes, int destination) override {
        const auto* p = static_cast<const char*>(data);
        for (size_t done = 0; done < bytes; done += kMaxPiece) {
            const int n = static_cast<int>(std::min(kMaxPiece, bytes - done));
            check_mpi(MPI_Send(p + done, n, MPI_BYTE, destination, 0, MPI_COMM_WORLD), "send");
        }
        traffic_.bytes_sent += static_cast<int64_t>(bytes);
    }
    void receive(void* data, size_t bytes, int source) override {
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < bytes; done += kMaxPiece) {
            const int n = static_cast<int>(std::min(kMaxPiece, bytes - done));
            check_mpi(MPI_Recv(p + done, n, MPI_BYTE, source, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                      "receive");
        }
        traffic_.bytes_received += static_cast<int64_t>(bytes);
    }
    void broadcast(void* data, size_t bytes, int root) override {
        auto* p = static_cast<char*>(data);
        for (size_t done = 0; done < bytes; done += kMaxPiece) {
            const int n = static_cast<int>(std::min(kMaxPiece, bytes - done));
            check_mpi(MPI_Bcast(p + done, n, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
        }
        if (rank_ == root)
            traffic_.bytes_sent += static_cast<int64_t>(bytes) * (size_ - 1);
        else
            traffic_.bytes_received += static_cast<int64_t>(bytes);
    }
    void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier"); }
    void abort(int code) override {
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }

  private:
    int rank_ = 0;
    int size_ = 1;
};

}  // namespace

bool built_with_mpi() {
    return true;
}

std::unique_ptr<Communicator> make_world_communicator() {
    if (launcher_world_size() <= 1) return std::make_unique<SingleProcessCommunicator>();
    return std::make_unique<MpiCommunicator>();
}

}  // namespace pbs2p
