/* A full filesystem shows up as ENOSPC at create or at growth, never as
 * SIGBUS on a later store.  Needs a small filesystem: a 1 MiB tmpfs mounted
 * in a private mount namespace (root only); skipped otherwise. */
#include "check.h"

#include <sched.h>
#include <sys/mount.h>

static char fs_dir[128];
static bool fs_mounted;

/* also on a failed REQUIRE (exit): nothing is left in /tmp */
static void remove_small_fs(void)
{
    if (fs_dir[0] == 0)
        return;
    if (fs_mounted)
        umount2(fs_dir, MNT_DETACH);    /* drops the files on the tmpfs */
    rmdir(fs_dir);
    fs_dir[0] = 0;
}

static void make_small_fs(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/pm-enospc-XXXXXX");
    if (mkdtemp(dir) == NULL)
        t_skip("cannot make a temporary directory");
    snprintf(fs_dir, sizeof fs_dir, "%s", dir);
    atexit(remove_small_fs);
    if (unshare(CLONE_NEWNS) != 0) {
        rmdir(dir);
        t_skip("needs a private mount namespace (unshare(CLONE_NEWNS): run as root)");
    }
    /* keep our mount out of the parent namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        rmdir(dir);
        t_skip("cannot mount a 1 MiB tmpfs (needs CAP_SYS_ADMIN)");
    }
    fs_mounted = true;
}

static int count_entries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

int main(void)
{
    char dir[128], path[256];
    make_small_fs(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/space", dir);

    /* too big for the filesystem: refused at create, nothing left behind */
    errno = 0;
    CHECK(create_persistent_allocator(path, 4u << 20) == NULL);
    CHECK_EQ(errno, ENOSPC);
    CHECK(strstr(persistent_errormsg(), "allocate") != NULL);
    CHECK_EQ(count_entries(dir), 0);

    /* growth that runs into the limit: malloc says ENOMEM, no SIGBUS */
    allocator_space_t *s = t_create(path, 128u << 10, 64u << 20);
    uint64_t got = 0;
    void *b;
    while ((b = persistent_malloc(s, 8000)) != NULL) {
        memset(b, 0x77, 8000);        /* every byte really has a block */
        got += 8000;
    }
    CHECK_EQ(errno, ENOMEM);
    CHECK(got > 512u << 10);
    CHECK(got < 1u << 20);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK((uint64_t)st.st_size <= (1u << 20));
    t_check_clean(s, "after ENOSPC");
    destroy_persistent_allocator(s);
    s = create_persistent_allocator(path, 0);
    CHECK(s != NULL);
    destroy_persistent_allocator(s);
    unlink(path);
    remove_small_fs();
    return t_done();
}
