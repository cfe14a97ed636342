#include "compress/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace pbs2p {

IndexRange share_of(int64_t count, int parts, int part) {
    PBS2P_CHECK(parts > 0 && part >= 0 && part < parts && count >= 0, "share_of: part {} of {} of {} items",
                part, parts, count);
    return {count * part / parts, count * (part + 1) / parts};
}

std::vector<int> balanced_owners(const std::vector<int64_t>& costs, int parts) {
    PBS2P_CHECK(parts > 0, "balanced_owners: {} parts", parts);
    std::vector<size_t> order(costs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
    std::vector<int64_t> load(static_cast<size_t>(parts), 0);
    std::vector<int> owner(costs.size(), 0);
    for (size_t i : order) {
        const auto least = std::min_element(load.begin(), load.end());  // the first of equal loads
        owner[i] = static_cast<int>(least - load.begin());
        *least += costs[i];
    }
    return owner;
}

void Communicator::broadcast_bytes(std::vector<uint8_t>& data, int root) {
    uint64_t n = data.size();
    broadcast(&n, sizeof n, root);
    data.resize(static_cast<size_t>(n));
    if (n > 0) broadcast(data.data(), data.size(), root);
}

std::vector<double> Communicator::gather_to_root(const std::vector<double>& values) {
    const size_t bytes = values.size() * sizeof(double);
    if (!is_root()) {
        if (bytes > 0) send(values.data(), bytes, 0);
        return {};
    }
    std::vector<double> all = values;
    all.resize(values.size() * static_cast<size_t>(size()));
    for (int r = 1; r < size() && bytes > 0; ++r)
        receive(all.data() + values.size() * static_cast<size_t>(r), bytes, r);
    return all;
}

void SingleProcessCommunicator::send(const void*, size_t, int destination) {
    fail("internal: send to rank {} in a single-process run", destination);
}

void SingleProcessCommunicator::receive(void*, size_t, int source) {
    fail("internal: receive from rank {} in a single-process run", source);
}

void SingleProcessCommunicator::broadcast(void*, size_t, int root) {
    PBS2P_CHECK(root == 0, "internal: broadcast from rank {} in a single-process run", root);
}

Communicator& single_process_communicator() {
    static SingleProcessCommunicator communicator;
    return communicator;
}

// ---- ordered sum -------------------------------------------------------------------------------------

OrderedSum::OrderedSum(Communicator& communicator, size_t length)
    : communicator_(communicator), length_(length) {}

void OrderedSum::fold(const std::vector<double>& part) {
    if (!started_) {
        sum_ = part;
        started_ = true;
        return;
    }
    for (size_t i = 0; i < length_; ++i) sum_[i] += part[i];
}

void OrderedSum::add(std::vector<double> part) {
    PBS2P_CHECK(part.size() == length_, "internal: ordered sum of parts of {} values given one of {}",
                length_, part.size());
    if (!communicator_.is_root()) {
        kept_.push_back(std::move(part));
    } else if (!started_) {
        sum_ = std::move(part);
        started_ = true;
    } else {
        fold(part);
    }
}

std::vector<double> OrderedSum::finish() {
    // A chain in rank order: rank r receives the sum of every part before its own from rank r - 1, folds
    // its parts onto it and passes it on; the last rank holds the total and broadcasts it.
    Communicator& c = communicator_;
    const int last = c.size() - 1;
    const size_t bytes = length_ * sizeof(double);
    if (c.rank() > 0) {
        uint64_t started = 0;
        c.receive(&started, sizeof started, c.rank() - 1);
        started_ = started != 0;
        if (started_) {
            sum_.resize(length_);
            if (bytes > 0) c.receive(sum_.data(), bytes, c.rank() - 1);
        }
        for (const std::vector<double>& part : kept_) fold(part);
        kept_.clear();
    }
    if (c.rank() < last) {
        const uint64_t started = started_ ? 1 : 0;
        c.send(&started, sizeof started, c.rank() + 1);
        if (started_ && bytes > 0) c.send(sum_.data(), bytes, c.rank() + 1);
    }
    if (c.rank() == last && !started_) sum_.assign(length_, 0.0);
    sum_.resize(length_);
    if (c.size() > 1 && bytes > 0) c.broadcast(sum_.data(), bytes, last);
    started_ = false;
    return std::move(sum_);
}

// ---- how this process was started ------------------------------------------------------------------

int launcher_world_size() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
        const char* value = std::getenv(name);
        if (value && *value) {
            const int n = std::atoi(value);
            if (n > 0) return n;
        }
    }
    return 1;
}

#if !PBS2P_WITH_MPI
bool built_with_mpi() {
    return false;
}

std::unique_ptr<Communicator> make_world_communicator() {
    const int launched = launcher_world_size();
    PBS2P_CHECK(
        launched <= 1,
        "started as one of {} ranks, but this pbs2p was built without MPI (install libopenmpi-dev and "
        "reconfigure with -DPBS2P_WITH_MPI=ON)",
        launched);
    return std::make_unique<SingleProcessCommunicator>();
}
#endif

}  // namespace pbs2p
