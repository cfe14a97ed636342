// Atomic files and the output-folder lock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

struct Scratch {
    fs::path dir;
    Scratch() {
        std::string pattern = (fs::path(::testing::TempDir()) / "pbs2p-files-XXXXXX").string();
        dir = ::mkdtemp(pattern.data());
    }
    ~Scratch() { fs::remove_all(dir); }
};

std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

size_t entries(const fs::path& dir) {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, AppearsOnlyWhenCommitted) {
    Scratch s;
    const fs::path path = s.dir / "out.bin";
    write_file_atomically(path.string(), "first");
    {
        AtomicFileWriter writer(path.string());
        writer.write("second", 6);
        EXPECT_EQ(slurp(path), "first");  // not yet committed: the old file is still there
        EXPECT_EQ(entries(s.dir), 2u);    // and the temporary beside it
    }
    EXPECT_EQ(slurp(path), "first");  // abandoned without commit: the temporary is gone
    EXPECT_EQ(entries(s.dir), 1u);
    write_file_atomically(path.string(), "third");
    EXPECT_EQ(slurp(path), "third");
    copy_file_atomically(path.string(), (s.dir / "copy.bin").string());
    EXPECT_EQ(slurp(s.dir / "copy.bin"), "third");
}

TEST(AtomicFile, ErrorsNameTheFile) {
    Scratch s;
    const std::string missing = (s.dir / "no" / "such" / "x.bin").string();
    try {
        write_file_atomically(missing, "x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
    }
}

TEST(AtomicFile, StaleTemporariesOfKilledWritersAreRemoved) {
    Scratch s;
    for (const char* name : {"a.safetensors.tmp-123", "state.json.tmp-9", "keep.tmp-x", "keep.txt"})
        std::ofstream(s.dir / name) << "x";
    EXPECT_EQ(remove_stale_temporaries(s.dir.string()), 2);
    EXPECT_TRUE(fs::exists(s.dir / "keep.tmp-x"));
    EXPECT_TRUE(fs::exists(s.dir / "keep.txt"));
}

TEST(DirectoryLock, SecondHolderIsRefusedUntilTheFirstReleases) {
    Scratch s;
    {
        DirectoryLock first(s.dir.string(), "test writer");
        // flock locks belong to the open file description: a second open in this process conflicts too.
        try {
            DirectoryLock second(s.dir.string(), "test writer");
            FAIL() << "second lock granted";
        } catch (const Error& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find("another test writer is writing this folder"), std::string::npos)
                << message;
            EXPECT_NE(message.find("pid " + std::to_string(::getpid())), std::string::npos) << message;
        }
    }
    EXPECT_NO_THROW(DirectoryLock again(s.dir.string(), "test writer"));
}

}  // namespace
}  // namespace pbs2p
