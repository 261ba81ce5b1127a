/* persistent_check (a read-only full consistency check, by the rules of
 * verify.c) and persistent_stats_get (a walk that counts).  Both read only
 * the file, so they work on read-only and private (forensic) mappings; on
 * a space other threads are changing they see a moment that may be torn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* One pass: the header, then the rules of verify.c. */
static void check_once(struct pm_rt *rt, struct persistent_check_report *rep)
{
    struct persistent_check_report hdr;
    memset(&hdr, 0, sizeof hdr);
    const struct pm_header *hd = rt->hdr;
    const char *why = NULL;
    if (pm_fixed_checksum(&hd->fixed) != hd->fixed.checksum)
        why = "header checksum mismatch";
    const struct pm_state *st = &hd->state[rt->cur_slot];
    if (why == NULL && rt->mode == PM_MODE_WRITER &&
        pm_state_checksum(st) != st->checksum)
        why = "current header state slot fails its checksum";
    pm_verify(rt, rep, true);
    if (why != NULL) {
        if (rep->n_errors == 0)
            snprintf(rep->first_error, sizeof rep->first_error, "%s", why);
        rep->n_errors++;
    }
}

int persistent_check(allocator_space_t *space, struct persistent_check_report *rep)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || rep == NULL)
        return pm_err(-EINVAL, "not an open space");
    /* A space that other threads, or a writer in another process, are
     * changing can show a pass a moment in which a step is half done (a
     * root read just before it is removed and its block freed, say, or a
     * reader's page count behind runs the writer made in pages it just
     * added).  A damaged space fails every pass: damage is reported when
     * three passes fail, passes during which the space grew not counting
     * (up to ten in all). */
    int failed = 0;
    for (int pass = 0; pass < 10; pass++) {
        pm_follow(rt);
        uint64_t n = pm_load_acquire(&rt->n_pages);
        check_once(rt, rep);
        if (rep->n_errors == 0)
            break;
        pm_follow(rt);
        if (pm_load_acquire(&rt->n_pages) == n && ++failed == 3)
            break;
    }
    return rep->n_errors ? PERSISTENT_E_CORRUPT : 0;
}

/* ---- stats ---- */

static int stats_run(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct persistent_stats *st = arg;
    uint64_t bytes = (r->last - r->first + 1) << rt->page_shift;
    if (r->h == NULL) {
        st->large_runs++;
        st->large_bytes += bytes;
        st->large_live_bytes += bytes;
        st->live_blocks++;
        return 0;
    }
    uint32_t c = r->h->cls;
    st->superblocks++;
    st->superblock_bytes += bytes;
    st->cls[c].superblocks++;
    pm_atomic_u64 *al = r->h->bits, *rm = r->h->bits + r->h->n_words;
    uint64_t sb_live = 0;
    for (uint32_t w = 0; w < r->h->n_words; w++)
        sb_live += pm_popcount64(pm_load_relaxed(&al[w]) & ~pm_load_relaxed(&rm[w]));
    st->cls[c].live_blocks += sb_live;
    st->live_blocks += sb_live;
    st->small_live_bytes += sb_live * r->h->block_size;
    st->empty_superblocks += sb_live == 0;
    return 0;
}

int persistent_stats_get(allocator_space_t *space, struct persistent_stats *st)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || st == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    memset(st, 0, sizeof *st);
    st->n_classes = rt->n_small;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++)
        st->cls[c].block_size = pm_class_size(c);
    const char *why = NULL;
    uint64_t where = 0;
    int r = pm_walk_runs(rt, stats_run, st, &why, &where);
    if (r < 0)
        return pm_err(r, "stats: page %llu: %s", (unsigned long long)where, why);
    uint64_t n = pm_load_acquire(&rt->n_pages);
    st->capacity = n << rt->page_shift;
    st->file_size = rt->data_off + st->capacity;
    st->live_bytes = st->small_live_bytes + st->large_live_bytes;
    st->free_bytes = st->capacity - st->superblock_bytes - st->large_bytes;
    return 0;
}
