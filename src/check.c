/* persistent_check (a read-only full consistency check, by the rules of
 * verify.c) and persistent_stats_get (a walk that counts).  Both read only
 * the file, so they work on read-only and private (forensic) mappings; on
 * a space other threads are changing they see a moment that may be torn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* One pass: the header, then the rules of verify.c; true when a rollback
 * the view would judge the heap after could not be judged (a writer had
 * the space or waited for it). */
static bool check_once(struct pm_rt *rt, struct persistent_check_report *rep)
{
    struct persistent_check_report hdr;
    memset(&hdr, 0, sizeof hdr);
    const struct pm_header *hd = rt->hdr;
    const char *why = NULL;
    bool unjudged = false;
    if (pm_fixed_checksum(&hd->fixed) != hd->fixed.checksum)
        why = "header checksum mismatch";
    const struct pm_state *st = &hd->state[rt->cur_slot];
    if (why == NULL && rt->mode == PM_MODE_WRITER &&
        pm_state_checksum(st) != st->checksum)
        why = "current header state slot fails its checksum";
    pm_verify(rt, rep, true);
    if (why == NULL) {
        /* a view of a space in which a writer's open would roll a
         * transaction back: judged as that open judges it, after the
         * rollback (whose page images may be what makes the heap whole
         * again, or what would damage it) */
        struct persistent_check_report after;
        memset(&after, 0, sizeof after);
        int j = pm_rollback_judge(rt, &after);
        if (j == 1 || j == PERSISTENT_E_CORRUPT)
            *rep = after;
        unjudged = j == PM_JUDGE_REFUSED;
    }
    if (why != NULL) {
        if (rep->n_errors == 0)
            snprintf(rep->first_error, sizeof rep->first_error, "%s", why);
        rep->n_errors++;
    }
    return unjudged;
}

/* Whether the space holds still: a view that cannot allocate (a private
 * one that recovered is a heap of its own, which its threads change: a
 * review found one called corrupt) of a file that no writer has open (nor
 * opened and closed meanwhile: each writer's open and close commits a
 * header state slot with the next sequence number, see *seq). */
static bool holds_still(struct pm_rt *rt, uint64_t *seq)
{
    const struct pm_header *hd = rt->hdr;
    uint64_t a = pm_load_acquire((pm_atomic_u64 *)&hd->state[0].seq);
    uint64_t b = pm_load_acquire((pm_atomic_u64 *)&hd->state[1].seq);
    *seq = a > b ? a : b;
    return rt->mode != PM_MODE_WRITER && !rt->can_alloc && rt->fd >= 0 &&
           pm_load_acquire(&rt->fd_lost) == 0 && os_no_writer(rt->fd, &rt->fid);
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
     * added), and a slow pass (a loaded machine, a sanitizer) overlaps
     * thousands of steps.  A file nobody writes gives the same verdict on
     * every pass, so one pass is the verdict when no writer had the space
     * before or after it.  Otherwise damage is reported when the same
     * error is found by three passes in a row, or some error by six, the
     * passes apart by a pause that lets the writer finish its step; passes
     * during which the space grew do not count (a writer's growth is
     * geometric, so they are few), nor do passes of a view that could not
     * try the rollback it judges the heap after (a writer waits, or has
     * not recovered yet what a crash left).  After 64 passes, or 16 of
     * those, with no verdict the space is called busy. */
    uint64_t seq0, seq1;
    bool still = holds_still(rt, &seq0);
    char last[sizeof rep->first_error] = "";
    int failed = 0, same = 0, unjudged = 0;
    for (int pass = 0; pass < 64; pass++) {
        pm_follow(rt);
        uint64_t n = pm_load_acquire(&rt->n_pages);
        pm_hook(PM_HOOK_CHECK_PASS);
        bool refused = check_once(rt, rep);
        if (rep->n_errors == 0)
            return 0;
        if (still && !refused && holds_still(rt, &seq1) && seq1 == seq0)
            return pm_err(PERSISTENT_E_CORRUPT, "check: %s", rep->first_error);
        still = false;
        pm_follow(rt);
        if (pm_load_acquire(&rt->n_pages) != n)
            continue;
        if (refused) {
            /* damage as the heap is, but a rollback to judge it after
             * that a writer keeps from being tried: no verdict yet (a
             * writer that has not rolled back what a crash left, or a
             * live one whose transactions are open) */
            if (++unjudged == 16)
                break;
            os_sleep_us(1000u << (unjudged < 5 ? unjudged : 5));
            continue;
        }
        same = failed > 0 && strcmp(last, rep->first_error) == 0 ? same + 1 : 1;
        memcpy(last, rep->first_error, sizeof last);
        if (same == 3 || ++failed == 6)
            return pm_err(PERSISTENT_E_CORRUPT, "check: %s", rep->first_error);
        os_sleep_us(1000u << failed);
    }
    char why[sizeof rep->first_error];
    snprintf(why, sizeof why, "no verdict: a writer kept changing the space, or kept a "
             "transaction to roll back from being judged (the last pass found: %.120s)",
             rep->first_error);
    memcpy(rep->first_error, why, sizeof why);
    return pm_err(PERSISTENT_E_BUSY, "check: %s", rep->first_error);
}

int persistent_check_progress(allocator_space_t *space, struct persistent_check_report *rep,
                              void (*progress)(uint64_t done, uint64_t total, void *arg),
                              void *arg)
{
    pm_walk_progress = progress;
    pm_walk_progress_arg = arg;
    int r = persistent_check(space, rep);
    pm_walk_progress = NULL;
    pm_walk_progress_arg = NULL;
    return r;
}

/* ---- stats ---- */

/* Live blocks of a superblock: allocated, not freed by another thread. */
static uint64_t live_in(const struct pm_sb_header *h)
{
    const pm_atomic_u64 *al = h->bits, *rm = h->bits + h->n_words;
    uint64_t n = 0;
    for (uint32_t w = 0; w < h->n_words; w++)
        n += pm_popcount64(pm_load_relaxed((pm_atomic_u64 *)&al[w]) &
                           ~pm_load_relaxed((pm_atomic_u64 *)&rm[w]));
    return n;
}

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
    uint64_t sb_live = live_in(r->h);
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

/* ---- fragmentation ---- */

struct frag_walk {
    struct persistent_frag *fr;
    uint64_t next;                /* the first page after the last run */
};

static void free_run(struct persistent_frag *fr, uint64_t len)
{
    if (len == 0)
        return;
    uint32_t b = 63 - (uint32_t)__builtin_clzll(len);
    fr->free_runs[b < PERSISTENT_RUN_BUCKETS ? b : PERSISTENT_RUN_BUCKETS - 1]++;
    fr->n_free_runs++;
    fr->free_pages += len;
    if (len > fr->largest_free_run)
        fr->largest_free_run = len;
}

static int frag_run(struct pm_rt *rt, const struct pm_run *r, void *arg)
{
    struct frag_walk *w = arg;
    free_run(w->fr, r->first - w->next);
    w->next = r->last + 1;
    if (r->h != NULL) {
        uint32_t c = r->h->cls;
        w->fr->cls[c].superblocks++;
        w->fr->cls[c].capacity_blocks += r->h->n_blocks;
        w->fr->cls[c].live_blocks += live_in(r->h);
    }
    (void)rt;
    return 0;
}

int persistent_frag_get(allocator_space_t *space, struct persistent_frag *fr)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || fr == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    memset(fr, 0, sizeof *fr);
    fr->n_classes = rt->n_small;
    fr->page_size = (uint32_t)rt->page_size;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++)
        fr->cls[c].block_size = pm_class_size(c);
    struct frag_walk w = {fr, 0};
    const char *why = NULL;
    uint64_t where = 0;
    int r = pm_walk_runs(rt, frag_run, &w, &why, &where);
    if (r < 0)
        return pm_err(r, "frag: page %llu: %s", (unsigned long long)where, why);
    fr->pages = pm_load_acquire(&rt->n_pages);
    if (fr->pages > w.next)
        free_run(fr, fr->pages - w.next);
    return 0;
}
