/* The free entry point: finds whether a pointer is a small block (through
 * the page map), a large run (through the run bits) or neither, and checks
 * it is a live block before anything is changed.  Misuse goes to the error
 * hook and changes nothing. */
#include "internal.h"

void pm_free_block(struct pm_rt *rt, struct pm_trec *rec, void *ptr)
{
    uint32_t s, idx;
    struct pm_sb_header *h;
    int r = sb_locate(rt, ptr, &s, &h, &idx);
    if (r == 0) {
        pm_free_small(rt, rec, s, h, idx);
        return;
    }
    if (r == 1)
        r = lg_free(rt, ptr);
    if (r != 0)
        pm_misuse(rt, r, ptr, "persistent_free");
}

void persistent_free(allocator_space_t *space, void *ptr)
{
    if (ptr == NULL)
        return;
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL) {
        pm_misuse(pm_rt_of(space), PERSISTENT_E_BAD_POINTER, ptr,
                  "persistent_free (space not open for writing here)");
        return;
    }
    pm_free_block(rt, rec, ptr);
}
