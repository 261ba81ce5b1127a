// pmbench backend: Boost.Interprocess managed_mapped_file with its default
// memory algorithm (rbtree_best_fit guarded by an interprocess mutex).
// Growth by realloc uses allocation_command(expand_fwd | allocate_new), as
// boost::interprocess containers do: in place when the next block is free,
// else a new block and a copy.  The file is created sparse (ftruncate), so
// its physical size is the footprint.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <unistd.h>

#include <boost/interprocess/managed_mapped_file.hpp>

extern "C" {
#include "bench.h"
}

namespace bip = boost::interprocess;

namespace {

bip::managed_mapped_file *seg;
char path[512];

int bi_open(const struct bench_config *cfg)
{
    backend_path(path, sizeof path, cfg->dir, "boost");
    unlink(path);
    size_t size = cfg->max_size > cfg->pool_size ? cfg->max_size : cfg->pool_size;
    try {
        seg = new bip::managed_mapped_file(bip::create_only, path, size);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "managed_mapped_file %s: %s\n", path, e.what());
        return -1;
    }
    return 0;
}

void bi_close()
{
    delete seg;
    seg = nullptr;
    unlink(path);
}

void *bi_alloc(size_t n)
{
    return seg->allocate(n, std::nothrow);
}

void bi_free(void *p)
{
    if (p)
        seg->deallocate(p);
}

void *bi_realloc(void *p, size_t old_size, size_t n)
{
    if (p == nullptr)
        return bi_alloc(n);
    if (n <= old_size) {
        // shrink_in_place: limit is the old size, the preferred (and
        // received) size the new one
        bip::managed_mapped_file::size_type got = n;
        char *reuse = static_cast<char *>(p);
        char *r = seg->allocation_command<char>(
            bip::shrink_in_place | bip::nothrow_allocation, old_size, got, reuse);
        (void)r;
        return p;           // in place or unchanged: the block stays valid
    }
    bip::managed_mapped_file::size_type got = n;
    char *reuse = static_cast<char *>(p);
    char *r = seg->allocation_command<char>(
        bip::expand_fwd | bip::allocate_new | bip::nothrow_allocation, n, got, reuse);
    if (r == nullptr)
        return nullptr;
    if (r != p) {
        std::memcpy(r, p, old_size);
        seg->deallocate(p);
    }
    return r;
}

uint64_t bi_file_bytes()
{
    return file_physical_bytes(path);
}

struct bench_backend make_backend()
{
    struct bench_backend b;
    std::memset(&b, 0, sizeof b);
    b.name = "boost";
    b.note = "managed_mapped_file, rbtree_best_fit";
    b.open = bi_open;
    b.close = bi_close;
    b.alloc = bi_alloc;
    b.free = bi_free;
    b.realloc = bi_realloc;
    b.file_bytes = bi_file_bytes;
    b.file_footprint = true;
    return b;
}

}   // namespace

extern "C" const struct bench_backend backend_boost;
const struct bench_backend backend_boost = make_backend();
