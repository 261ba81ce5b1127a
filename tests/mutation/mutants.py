"""Single injected bugs for tests/mutation/run.py.

Each mutant is one plausible mistake in the library: a persist or a fence
dropped, two persists in the wrong order, a publishing store weakened, a
recovery step skipped or cut short, a validation rule dropped, a G1/G5b
mechanism removed.  `find` must occur exactly once in `file` (run.py refuses
the list otherwise); `replace` is what it becomes.  `what` says what breaks.

A pm_persist(rt, p, n) "split so the drain is lost" becomes a flush alone:
    if (rt->flush) rt->flush->flush(p, n);
the line is written back, but nothing waits for it, so the next step can be
durable before this one (under the power model the line lands only at the
thread's next fence, or torn at the crash).
"""

MUTANTS = [
    # ------------------------------------------------------------ publish.c
    dict(id="pub-lane-set-nopersist", file="src/publish.c",
         find="""    pm_store_release(&l->op, op | pm_lane_check(op, dest, blk, old, size) << 8);
    pm_persist(rt, l, sizeof *l);""",
         replace="""    pm_store_release(&l->op, op | pm_lane_check(op, dest, blk, old, size) << 8);""",
         what="lane record not persisted before the block is committed"),
    dict(id="pub-lane-set-nofence", file="src/publish.c",
         find="""    pm_store_release(&l->op, op | pm_lane_check(op, dest, blk, old, size) << 8);
    pm_persist(rt, l, sizeof *l);""",
         replace="""    pm_store_release(&l->op, op | pm_lane_check(op, dest, blk, old, size) << 8);
    if (rt->flush) rt->flush->flush(l, sizeof *l);""",
         what="lane record flushed but not fenced: the commit can be durable first"),
    dict(id="pub-lane-clear-nopersist", file="src/publish.c",
         find="""    pm_store_release(&l->op, (uint64_t)PM_LANE_IDLE);
    pm_persist(rt, &l->op, sizeof l->op);""",
         replace="""    pm_store_release(&l->op, (uint64_t)PM_LANE_IDLE);""",
         what="retired lane not persisted: a stale record survives the call"),
    dict(id="pub-commit-nopersist", file="src/publish.c",
         find="""        pm_store_relaxed(rv->aword, pm_load_relaxed(rv->aword) | rv->bit);
        pm_persist(rt, rv->aword, sizeof *rv->aword);""",
         replace="""        pm_store_relaxed(rv->aword, pm_load_relaxed(rv->aword) | rv->bit);""",
         what="a small block's commit (alloc bit) not persisted before *dest"),
    dict(id="pub-alloc-commit-before-lane", file="src/publish.c",
         find="""    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);
    pub_commit(rt, &rv);
    pm_store_release(dest_word(dest), boff);""",
         replace="""    pub_commit(rt, &rv);
    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);
    pm_store_release(dest_word(dest), boff);""",
         what="alloc-into commits the block before its lane record (leak window)"),
    dict(id="pub-alloc-dest-nopersist", file="src/publish.c",
         find="""    pm_store_release(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);
    lane_clear(rt, l);""",
         replace="""    pm_store_release(dest_word(dest), boff);
    pm_hook(PM_HOOK_PUB_PUBLISHED);
    lane_clear(rt, l);""",
         what="alloc-into retires the lane before *dest is durable"),
    dict(id="pub-alloc-dest-relaxed", file="src/publish.c",
         find="""    pm_store_release(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);""",
         replace="""    pm_store_relaxed(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);""",
         what="alloc-into's publishing store to *dest weakened to relaxed",
         equivalent=(
             "on x86-64 a release store and a relaxed store are the same mov, "
             "and gcc moves neither across the persist calls around it (on "
             "AArch64 they would differ: stlr vs str)")),
    dict(id="pub-free-dest-nopersist", file="src/publish.c",
         find="""        pm_persist(rt, dest, sizeof *dest);
        pm_vg_unuser(rt, rt->base + boff);
        free_taken(rt, rec, l, boff, &pf);""",
         replace="""        pm_vg_unuser(rt, rt->base + boff);
        free_taken(rt, rec, l, boff, &pf);""",
         what="free-from frees the block before *dest = 0 is durable"),
    dict(id="pub-free-lane-clear-early", file="src/publish.c",
         find="""    pub_free_do(rt, pf);
    lane_clear(rt, l);
    if (!pinned""",
         replace="""    lane_clear(rt, l);
    pub_free_do(rt, pf);
    if (!pinned""",
         what="a publishing free (free_from, root_remove, realloc_into's old block) "
              "retires its lane before the block is freed (leak window)"),
    dict(id="pub-free-cas-relaxed", file="src/publish.c",
         find="""        if (!pm_cas_strong_seq_cst(dest_word(dest), &boff, (uint64_t)0)) {""",
         replace="""        if (!atomic_compare_exchange_strong_explicit(dest_word(dest), &boff, (uint64_t)0,
                memory_order_relaxed, memory_order_relaxed)) {""",
         what="free-from's CAS that takes the block out of *dest weakened to relaxed",
         equivalent=(
             "on x86-64 every CAS is a lock cmpxchg, a full barrier whatever the"
             " order argument")),
    dict(id="pub-npub-not-raised", file="src/publish.c",
         find="""    if (!pf->local)   /* before the remote bit: see collect() */
        pm_fetch_add_seq_cst(&rt->ctl[pf->s].n_pub, 1u);""",
         replace="""        (void)0;""",
         what="n_pub not raised: a collect may reuse a block an in-flight free lane names"),
    dict(id="pub-realloc-copy-nopersist", file="src/publish.c",
         find="""    pm_persist(rt, rv.blk, size < us ? size : us);""",
         replace="""    (void)0;""",
         what="realloc-into's copy not persisted before *dest names the new block"),
    dict(id="pub-realloc-copy-len", file="src/publish.c",
         find="""    pm_persist(rt, rv.blk, size < us ? size : us);""",
         replace="""    pm_persist(rt, rv.blk, sizeof rv.blk);""",
         what="realloc-into's copy persisted with the wrong length (sizeof a pointer)"),
    dict(id="pub-realloc-commit-before-lane", file="src/publish.c",
         find="""    lane_set(rt, l, PM_LANE_REALLOC, doff, noff, ooff, size);
    pub_commit(rt, &rv);""",
         replace="""    pub_commit(rt, &rv);
    lane_set(rt, l, PM_LANE_REALLOC, doff, noff, ooff, size);""",
         what="realloc-into commits the new block before its lane record"),
    dict(id="pub-realloc-dest-nopersist", file="src/publish.c",
         find="""    pm_persist(rt, dest, sizeof *dest);
    pm_vg_forget(rt, old, us);
    /* the old block""",
         replace="""    pm_vg_forget(rt, old, us);
    /* the old block""",
         what="realloc-into frees the old block before *dest = new is durable"),
    dict(id="lanes-rescan-clears-first", file="src/publish.c",
         find="""    uint32_t found;
    (void)chunks_walk(rt, &found);""",
         replace="""    uint32_t found;
    for (uint32_t k = 0; k < LANE_MAX_CHUNKS; k++)
        pm_store_relaxed(&rt->lane_chunk[k], (struct pm_lane_table *)NULL);
    (void)chunks_walk(rt, &found);""",
         what="the lane table cache cleared before the rescan finds the tables again: "
              "a thread's lookup of its kept lane beside an automatic transaction's "
              "abort reads a NULL table"),
    dict(id="pub-free-flush-end-bit-dropped", file="src/publish.c",
         find="""        clear_bit(rt, &rt->end_bits[pf->last >> 6], UINT64_C(1) << (pf->last & 63), fence);""",
         replace="""        if (fence) clear_bit(rt, &rt->end_bits[pf->last >> 6], UINT64_C(1) << (pf->last & 63), fence);
        else pm_fetch_and_acq_rel(&rt->end_bits[pf->last >> 6], ~(UINT64_C(1) << (pf->last & 63)));""",
         what="a transaction's free of a run (written back, fenced by the next commit) "
              "clears its end bit without writing it back: a longer run allocated from "
              "the same page ends there after a power failure"),
    dict(id="pub-realloc-nomem-frees-old", file="src/publish.c",
         find="""        pm_op_end(rec);
        return pm_err(-ENOMEM, "realloc_into: out of space");""",
         replace="""        pm_op_end(rec);
        pm_free_block(rt, rec, old);
        return pm_err(-ENOMEM, "realloc_into: out of space");""",
         what="a realloc-into that finds no room frees the old block its location "
              "still names"),
    dict(id="pub-realloc-fail-keeps-run", file="src/publish.c",
         find="""        if (rv.large)
            pg_release(rt, rv.first, rv.n);
        pm_op_end(rec);
        pm_misuse(rt, r, old, "persistent_realloc_into");""",
         replace="""        pm_op_end(rec);
        pm_misuse(rt, r, old, "persistent_realloc_into");""",
         what="a realloc-into whose old block was freed meanwhile keeps the page run "
              "it reserved claimed until a reopen"),
    dict(id="pub-chunk-nopersist", file="src/publish.c",
         find="""    chunk_init(rv.blk, NULL);
    pm_persist(rt, rv.blk, size);""",
         replace="""    chunk_init(rv.blk, NULL);""",
         what="an overflow lane table added without the chunk lane is linked before its "
              "contents are durable"),
    dict(id="pub-recover-first-lane", file="src/publish.c",
         find="""    for (uint32_t i = 0; i < total; i++) {
        int r = lane_recover(rt, lane_at(rt, i), i);""",
         replace="""    for (uint32_t i = 1; i < total; i++) {
        int r = lane_recover(rt, lane_at(rt, i), i);""",
         what="off by one: lane recovery starts at lane 1"),
    dict(id="pub-recover-alloc-keep", file="src/publish.c",
         find="""        pub_ensure(rt, l->block_off, cur == l->block_off);""",
         replace="""        pub_ensure(rt, l->block_off, true);""",
         what="recovery keeps an alloc-into's block that *dest never named"),
    dict(id="pub-recover-free-dest", file="src/publish.c",
         find="""        if (cur == l->block_off) {
            pm_snap_forget(rt, dest, sizeof *dest);
            pm_store_release(dest, (uint64_t)0);
            pm_persist(rt, dest, sizeof *dest);
        }""",
         replace="""        (void)cur;""",
         what="recovery of a free-from skips clearing *dest"),
    dict(id="pub-recover-realloc-old", file="src/publish.c",
         find="""        if (forward)
            pub_ensure(rt, l->old_off, false);""",
         replace="""        (void)forward;""",
         what="recovery of a realloc-into rolled forward keeps the old block"),
    dict(id="pub-recover-torn-kept", file="src/publish.c",
         find="""        if (word != PM_LANE_IDLE) {
            pm_snap_forget(rt, l, sizeof *l);
            lane_clear(rt, l);          /* torn: its call never started */
        }""",
         replace="""        (void)word;""",
         what="recovery leaves a torn lane record in place"),

    # ------------------------------------------------------------ roots.c
    dict(id="roots-table-nopersist", file="src/publish.c",
         find="""    init(rv.blk, arg);
    pm_persist(rt, rv.blk, size);""",
         replace="""    init(rv.blk, arg);""",
         what="an overflow root or lane table is linked before its contents are durable"),
    dict(id="roots-table-link-nopersist", file="src/publish.c",
         find="""    if (pm_cas_strong_seq_cst(link, &cur, boff)) {
        pm_persist(rt, link, sizeof *link);""",
         replace="""    if (pm_cas_strong_seq_cst(link, &cur, boff)) {""",
         what="the link to a new overflow root or lane table is not persisted"),
    dict(id="roots-table-no-lane", file="src/publish.c",
         find="""    pin_new(rec, boff);
    lane_set(rt, l, PM_LANE_ALLOC, loff, boff, 0, size);
    pub_commit(rt, &rv);
    uint64_t cur = 0;""",
         replace="""    pin_new(rec, boff);
    (void)loff;
    pub_commit(rt, &rv);
    uint64_t cur = 0;""",
         what="an overflow root or lane table is allocated and linked with no lane record: "
              "a crash between the two leaves a table nobody names, live for good (G2)"),
    dict(id="roots-key-nopersist", file="src/roots.c",
         find="""                    pm_persist(rt, &s->key, sizeof s->key);""",
         replace="""                    (void)0;""",
         what="a root slot's key is not persisted on its own"),
    dict(id="roots-publish-nopersist", file="src/roots.c",
         find="""    if (pm_cas_strong_acq_rel(val, &cur, off)) {
        pm_persist(rt, val, sizeof *val);
        return block;""",
         replace="""    if (pm_cas_strong_acq_rel(val, &cur, off)) {
        return block;""",
         what="root_publish does not persist the root's value"),
    dict(id="roots-publish-no-mark", file="src/roots.c",
         find="""    if (!pm_root_mark(rt, off)) {
        *bad = PERSISTENT_E_ROOT_BLOCK;""",
         replace="""    if ((pm_root_mark(rt, off), false)) {
        *bad = PERSISTENT_E_ROOT_BLOCK;""",
         what="root_publish accepts a block that is already another tag's root"),
    dict(id="pub-root-create-nopersist", file="src/publish.c",
         find="""    if (pm_cas_strong_seq_cst(val, &cur, boff)) {
        pm_persist(rt, val, sizeof *val);
        lane_clear(rt, l);""",
         replace="""    if (pm_cas_strong_seq_cst(val, &cur, boff)) {
        lane_clear(rt, l);""",
         what="a new root's value is not durable before its lane is retired"),
    dict(id="pub-root-zero-nopersist", file="src/publish.c",
         find="""    memset(rv.blk, 0, size ? size : 1);
    pm_persist(rt, rv.blk, size ? size : 1);""",
         replace="""    memset(rv.blk, 0, size ? size : 1);""",
         what="a new root's zeroed block is published before the zeros are durable"),
    dict(id="pub-root-remove-nopersist", file="src/publish.c",
         find="""    pm_persist(rt, val, sizeof *val);
    pm_root_unmark(rt, v);""",
         replace="""    pm_root_unmark(rt, v);""",
         what="root removal frees the block before the cleared value is durable"),

    # ------------------------------------------------------------ superblock.c
    dict(id="sb-word-valid-all", file="src/internal.h",
         find="""    return ~UINT64_C(0) >> ((uint32_t)(w + 1u == h->n_words) * ((0u - h->n_blocks) & 63u));""",
         replace="""    return ~UINT64_C(0) >> ((uint32_t)(w + 1u == h->n_words) * ((0u - h->n_blocks) & 31u));""",
         what="the last bitmap word's mask is too wide where a superblock's block count leaves 33-63 of its bits unused: blocks past the superblock's last are handed out"),
    dict(id="sb-format-bitmap-len", file="src/superblock.c",
         find="""    pm_persist(rt, h, sizeof *h + 16u * n_words);""",
         replace="""    pm_persist(rt, h, sizeof *h + 8u * n_words);""",
         what="carve persists the header and alloc bitmap only, not the remote bitmap"),
    dict(id="sb-format-nopersist", file="src/superblock.c",
         find="""    pm_persist(rt, h, sizeof *h + 16u * n_words);""",
         replace="""    (void)0;""",
         what="carve commits a superblock whose header is not durable"),
    dict(id="sb-format-start-first", file="src/superblock.c",
         find="""    pg_bit_set(rt, rt->kind_bits, first);
    pg_bit_set(rt, rt->end_bits, first + n_pages - 1);
    pg_bit_set(rt, rt->start_bits, first);      /* commit */""",
         replace="""    pg_bit_set(rt, rt->start_bits, first);      /* commit */
    pg_bit_set(rt, rt->kind_bits, first);
    pg_bit_set(rt, rt->end_bits, first + n_pages - 1);""",
         what="carve sets START (the commit) before KIND and END"),
    dict(id="sb-release-end-first", file="src/superblock.c",
         find="""    pg_bit_clear(rt, rt->start_bits, s);        /* commit */
    pg_bit_clear(rt, rt->end_bits, s + n - 1);
    pg_bit_clear(rt, rt->kind_bits, s);""",
         replace="""    pg_bit_clear(rt, rt->end_bits, s + n - 1);
    pg_bit_clear(rt, rt->start_bits, s);        /* commit */
    pg_bit_clear(rt, rt->kind_bits, s);""",
         what="release clears END before START (the commit)"),
    dict(id="sb-collect-remote-first", file="src/superblock.c",
         find="""        pm_store_relaxed(&al[w], a & ~r[w]);
        pm_persist(rt, &al[w], sizeof al[w]);
        pm_fetch_and_acq_rel(&rm[w], ~r[w]);
        pm_persist(rt, &rm[w], sizeof rm[w]);""",
         replace="""        pm_fetch_and_acq_rel(&rm[w], ~r[w]);
        pm_persist(rt, &rm[w], sizeof rm[w]);
        pm_store_relaxed(&al[w], a & ~r[w]);
        pm_persist(rt, &al[w], sizeof al[w]);""",
         what="collect clears the remote bits before the alloc bits are durable"),
    dict(id="sb-collect-alloc-nopersist", file="src/superblock.c",
         find="""        pm_store_relaxed(&al[w], a & ~r[w]);
        pm_persist(rt, &al[w], sizeof al[w]);""",
         replace="""        pm_store_relaxed(&al[w], a & ~r[w]);""",
         what="collect's cleared alloc bits not persisted"),
    dict(id="sb-collect-ignores-npub", file="src/superblock.c",
         find="""    if (pm_load_acquire(&ctl->n_pub) != 0) {
        pm_fetch_or_acq_rel(&ctl->summary, sum);
        return false;
    }""",
         replace="""    (void)0;""",
         what="collect reuses blocks that an in-flight publishing free still names"),
    dict(id="sb-refill-alloc-nopersist", file="src/superblock.c",
         find="""    pm_store_relaxed(w, pm_load_relaxed(w) | bit);
    pm_persist(rt, w, sizeof *w);
    pm_op_end(rec);
    return p;""",
         replace="""    pm_store_relaxed(w, pm_load_relaxed(w) | bit);
    pm_op_end(rec);
    return p;""",
         what="malloc's slow path returns a block whose alloc bit is not durable"),
    dict(id="sb-local-free-nopersist", file="src/superblock.c",
         find="""    pm_store_relaxed(aw, a & ~bit);
    pm_persist(rt, aw, sizeof *aw);
    sb_after_local_free(rt, rec, s, h, idx);""",
         replace="""    pm_store_relaxed(aw, a & ~bit);
    sb_after_local_free(rt, rec, s, h, idx);""",
         what="the owner's slow-path free is not persisted before the superblock may be released"),
    dict(id="sb-remote-nopersist", file="src/superblock.c",
         find="""    pm_persist(rt, rw, sizeof *rw);
    pm_hook(PM_HOOK_REMOTE_PUSH);""",
         replace="""    pm_hook(PM_HOOK_REMOTE_PUSH);""",
         what="a remote free's bit is not persisted"),
    dict(id="sb-valid-min-not-floor", file="src/superblock.c",
         find="""h->block_size == k->block_size && h->n_pages >= k->floor_pages &&""",
         replace="""h->block_size == k->block_size && h->n_pages >= k->min_pages &&""",
         what="a superblock cut to the old rule's minimum (files written before the "
              "targets grew) is judged damaged: such a file no longer opens"),
    dict(id="classes-no-budget", file="src/sizeclass.c",
         find="""    uint64_t budget = max_bytes / PM_SB_BUDGET;""",
         replace="""    uint64_t budget = max_bytes;""",
         what="G5b: the classes above 16 KiB and the longer superblocks come in "
              "small spaces too: a thread holding one block of every class is "
              "refused the biggest in a 1-4 MiB space"),
    dict(id="classes-budget-one-thread", file="src/sizeclass.c",
         find="""    uint64_t budget = max_bytes / PM_SB_BUDGET;""",
         replace="""    uint64_t budget = max_bytes / 4;""",
         what="G5b: the classes' budget counts one thread's superblocks: four "
              "threads holding one block of every class leave a 16 MiB space "
              "no room for a quarter of it"),
    dict(id="pages-kept-past-classes", file="src/sizeclass.c",
         find="""    uint64_t keep = ((uint64_t)rt->max_small * 4) >> rt->page_shift;""",
         replace="""    uint64_t keep = ((uint64_t)rt->max_small * 16) >> rt->page_shift;""",
         what="threads keep freed runs four times as long as meant: runs past the "
              "large blocks just above the classes stay away from other threads"),
    dict(id="sb-detach-no-recheck", file="src/superblock.c",
         find="""    if (pm_load_seq_cst(&ctl->summary) == 0 || pm_load_seq_cst(&ctl->n_pub) != 0)
        return;     /* nothing pending, or a publishing free lists it later */""",
         replace="""    (void)ctl;
    return;""",
         what="G5b: detach does not re-check the remote summary (Dekker with a remote free)"),
    dict(id="sb-own-no-reclaim", file="src/superblock.c",
         find="""        if (pm_anchor_owner(old) != rec->id || pm_anchor_state(old) != PM_SB_REVOKING)
            break;""",
         replace="""        break;""",
         what="G1/G5b: the owner does not take back a superblock a thief is revoking"),
    dict(id="sb-take-larger-any-align", file="src/superblock.c",
         find="""        if (rt->cls[d].align >= align && refill(rt, rec, d, false))""",
         replace="""        if (refill(rt, rec, d, false))""",
         what="G5b fallback to a larger class ignores the requested alignment"),
    dict(id="sb-orphan-not-listed", file="src/superblock.c",
         find="""    if (pm_cas_strong_seq_cst(&ctl->anchor, &a, pm_anchor_make(a, PM_SB_LISTED, 0)))
        partial_push(rt, c, s);""",
         replace="""    (void)c;""",
         what="G5b: a remote free into a detached superblock does not list it"),
    dict(id="sb-revoke-ignores-busy", file="src/superblock.c",
         find="""            if (!fenced || busy_keeps(rt, pm_load_acquire(&rt->recs[v].busy), s)) {""",
         replace="""            if (!fenced) {""",
         what="a thief takes a superblock from an owner inside an operation"),
    dict(id="sb-no-revoke", file="src/superblock.c",
         find="""    freed += revoke_others(rt, rec, NULL, reowned);""",
         replace="""    (void)revoke_others;""",
         what="G5b: scavenging never revokes other threads' superblocks"),
    dict(id="sb-revoke-no-help", file="src/superblock.c",
         find="""            } else if (pm_anchor_state(a) != PM_SB_REVOKING) {
                continue;
            }""",
         replace="""            } else {
                continue;
            }""",
         what="G5b/G1: a thief stopped between its REVOKING CAS and its decision strands "
              "another thread's superblocks: no other thief goes on with them"),
    dict(id="sb-starve-no-retry", file="src/superblock.c",
         find="""        if (!st->pressing || os_mono_ns() >= st->until)
            return false;""",
         replace="""        return false;""",
         what="G5b: malloc reports ENOMEM after one scavenge while an owner inside a call "
              "keeps superblocks full of free blocks"),
    dict(id="thread-key-waits", file="src/thread.c",
         find="""    return s == KEY_MADE;
}

/* (a GNU attribute, in gcc and clang) */
__attribute__((constructor)) static void key_at_load(void)
{
    (void)key_ready();
}""",
         replace="""    while (s == KEY_MAKING)
        s = pm_load_acquire(&key_state);
    return s == KEY_MADE;
}

__attribute__((constructor)) static void key_at_load(void)
{
}""",
         what="G1: the exit destructor's key is made at a thread's first call and other "
              "threads' first calls wait for it (as pthread_once would): one stopped inside "
              "pthread_key_create holds them all up"),
    dict(id="thread-exit-releases-orphan", file="src/thread.c",
         find="""        if (rt != NULL && pm_load_acquire(&rec->orphan_tid) != 0) {""",
         replace="""        if (rt != NULL && pm_load_acquire(&rec->orphan_tid) != 0 && rt == NULL) {""",
         what="a thread's exit destructor also releases a record it took as an orphan: freed "
              "with its tag, a later claim hands it back again under the thread that took it"),
    dict(id="auto-install-waits", file="src/os_posix.c",
         find="""        return zero == 2 ? 0 : -EBUSY;""",
         replace="""    {
        while (pm_load_acquire(&faults_state) != 2)
            sched_yield();
        return 0;
    }""",
         what="G7: the process's first automatic transaction's begin, installing the handler "
              "that catches writes, is waited for by every other begin: one stopped there "
              "holds them all up"),
    dict(id="auto-install-failed-kept", file="src/os_posix.c",
         find="""    pm_store_release(&faults_state, r == 0 ? 2u : 0u);""",
         replace="""    pm_store_release(&faults_state, 2u);""",
         what="a failed install of the automatic transactions' fault handler is taken as done: "
              "later begins go on without it"),
    dict(id="auto-install-fork-kept", file="src/space.c",
         find="""    os_faults_after_fork();
""",
         replace="",
         what="a fork's child whose parent was installing the fault handler refuses every "
              "automatic transaction for good"),
    dict(id="tx-state-in-c-heap", file="src/tx.c",
         find="""        rec->tx = vol_grow(NULL, 0, &bytes);""",
         replace="""        rec->tx = calloc(1, bytes);""",
         what="a thread's transaction structure comes from the C heap: a thread stopped "
              "inside a malloc that locks holds up other threads' first begins"),
    dict(id="auto-begin-no-own-scan", file="src/tx.c",
         find="""    if (r == 0 && sb_others_own(rt, rec))
        r = -EBUSY;""",
         replace="""    (void)sb_others_own;""",
         what="an automatic transaction begins while another thread, outside a call, owns a "
              "superblock it took back after the begin's revocation: its fast paths use it "
              "during the transaction"),
    dict(id="auto-begin-no-room-check", file="src/tx.c",
         find="""    if ((uint64_t)(tx->end - tx->at) < ENT + page_of_os() &&
        !log_room_slow(rt, tx, ENT + page_of_os())) {""",
         replace="""    if (false) {""",
         what="an automatic transaction begins on a log with no room for one page's image "
              "and no pages to continue it in: its first write stops the process"),
    dict(id="free-check-no-marks", file="src/free.c",
         find="""        int r = pm_block_held(rt, s, off);
        if (r != 0)
            return r;
        /* not live""",
         replace="""        /* not live""",
         what="persistent_free_check says a root's block, or one an open transaction holds, "
              "may be freed: the C++ layer's free runs ~T and the free is then refused"),
    dict(id="free-check-no-remote", file="src/free.c",
         find="""        if (!(pm_load_acquire(&h->bits[w]) & bit) ||
            (pm_load_acquire(&h->bits[n_words + w]) & bit))""",
         replace="""        if (!(pm_load_acquire(&h->bits[w]) & bit))""",
         what="persistent_free_check says a block another thread has freed (its remote free "
              "not yet collected) may be freed again"),
    dict(id="free-check-header-count", file="src/free.c",
         find="""uint32_t w = idx >> 6, n_words = (n + 63) >> 6;""",
         replace="""uint32_t w = idx >> 6, n_words = (h->n_blocks + 63) >> 6;""",
         what="persistent_free_check sizes the bitmap by the header's block count, which a "
              "stray write can change: it reads far past the bitmap, or calls a live block "
              "freed"),
    dict(id="auto-begin-no-cache-reclaim", file="src/tx.c",
         find="""    if ((uint64_t)(tx->end - tx->at) < ENT + page_of_os())
        (void)pg_cache_reclaim(rt);""",
         replace="""    (void)pg_cache_reclaim;""",
         what="an automatic transaction's begin on a log short of one page's image counts "
              "the pages threads keep in their caches as in use: it refuses with free pages "
              "in the space"),
    dict(id="sb-adopt-offbyone", file="src/superblock.c",
         find="""    if (n_used < h->n_blocks) {""",
         replace="""    if (n_used + 1 < h->n_blocks) {""",
         what="off by one: a recovered superblock with one free block is not listed"),
    dict(id="sb-spare-not-kept", file="src/superblock.c",
         find="""        if (i < t->n_owned && rec->spare_pages + pages <= rt->spare_max &&""",
         replace="""        if (i < t->n_owned && false &&""",
         what="a set-aside superblock its owner's frees empty is released at once: the "
              "next malloc of its class carves one again (with two threads, the other's)"),
    dict(id="sb-spare-unbounded", file="src/superblock.c",
         find="""        if (i < t->n_owned && rec->spare_pages + pages <= rt->spare_max &&
            rec->spare_pages + pages <= now) {""",
         replace="""        if (i < t->n_owned) {""",
         what="a thread keeps every superblock it empties, past its spares' bound"),
    dict(id="sb-spare-not-uncounted", file="src/superblock.c",
         find="""        rec->spare_pages -= rt->cls[t - rec->cls].n_pages;""",
         replace="""        rec->spare_pages -= 0u * rt->cls[t - rec->cls].n_pages;""",
         what="a spare taken back into use stays counted: after a round or two the "
              "thread keeps none"),
    dict(id="sb-spare-counted-twice", file="src/superblock.c",
         find="""        if (i < t->n_owned && (t->spare & (1u << i)))""",
         replace="""        if (false)""",
         what="a spare's pages are counted again by every free finished with it (an "
              "aborted transaction's): the thread's bound is used up by one superblock"),
    dict(id="sb-spare-by-max-only", file="src/superblock.c",
         find="""            rec->spare_pages + pages <= now) {""",
         replace="""            true) {""",
         what="a growable space far below its maximum: its threads' spares are bounded "
              "by the maximum, not by the space as it is"),
    dict(id="sb-spare-blocks-readopt", file="src/superblock.c",
         find="""    if (t->n_owned >= PM_OWNED_MAX && t->spare != 0) {""",
         replace="""    if (false) {""",
         what="spares fill the owned set: the thread's frees into superblocks it "
              "detached go the remote way and leave them listed, empty"),
    dict(id="sb-spare-kept-at-growth", file="src/superblock.c",
         find="""            if (sb_release_spares(rt, rec) || runs)""",
         replace="""            if (runs)""",
         what="a thread grows the space for a superblock while its spares of other "
              "classes hold free pages"),

    dict(id="sb-scavenge-stale-books", file="src/superblock.c",
         find="""    if (pm_load_relaxed(&rec->revokes) != rec->seen_revokes)
        sb_owner_sync(rt, rec);
    uint32_t freed = sort_lists(rt, rec);""",
         replace="""    uint32_t freed = sort_lists(rt, rec);""",
         what="a scavenge collects the superblocks in the thread's books without "
              "re-validating them: one a thief took while the thread was between calls "
              "is collected under its new owner's plain stores"),
    dict(id="malloc-fast-names-none", file="src/alloc.c",
         find="""        pm_op_begin_word(rec, w);""",
         replace="""        pm_op_begin_as(rec, PM_BUSY_NONE);""",
         what="malloc's fast path names no superblock: a thief takes the one it takes a bit from"),
    dict(id="free-fast-names-current", file="src/free.c",
         find="""    pm_op_begin_word(rec, aw);""",
         replace="""    pm_op_begin_word(rec, t->aword);""",
         what="a local free's fast path names the class's current word, not the block's: "
              "a thief takes the set-aside superblock it clears a bit in"),
    dict(id="walk-hands-mapping", file="src/verify.c",
         find="""            r.h = &copy.h;""",
         replace="""            r.h = m;""",
         what="a walk of the runs hands its callbacks the mapping's header, not the copy it "
              "judged: a view's stats or frag reads a class changed under it since and "
              "writes past its table (G8)"),
    dict(id="busy-word-keeps-all", file="src/superblock.c",
         find="""    if (b == PM_BUSY_ANY)
        return true;""",
         replace="""    if (b != 0)
        return true;""",
         what="a thief gives back every superblock of an owner inside a fast path's "
              "operation, not only the one its busy flag names: a thread stopped there "
              "keeps all of its free blocks from everyone (G5b)"),
    dict(id="busy-word-keeps-none", file="src/superblock.c",
         find="""    return pm_pagemap_first1(pm_load_relaxed(&rt->pagemap[off >> rt->page_shift])) == s + 1;""",
         replace="""    return false;""",
         what="a thief takes the superblock a fast path's operation is writing, under "
              "the owner's plain stores (G2: a block handed out twice)"),
    dict(id="malloc-next-word-narrow", file="src/alloc.c",
         find="""    pm_op_widen_to(rec, PM_BUSY_CLASS(c));
    if (PM_LIKELY(pm_load_relaxed(&rec->revokes) == rec->seen_revokes &&
                  sb_next_word(rt, t))) {""",
         replace="""    (void)c;
    if (PM_LIKELY(pm_load_relaxed(&rec->revokes) == rec->seen_revokes &&
                  sb_next_word(rt, t))) {""",
         what="malloc's move to the next word keeps the fast path's flag, naming a word "
              "of the current superblock only because set_current put t->aword there",
         equivalent="set_current leaves t->aword in the new current superblock, so the "
                     "fast path's flag names the superblock malloc_next_word works on; the "
                     "widening keeps that from resting on this one store"),
    dict(id="alloc-slow-names-any", file="src/alloc.c",
         find="""    pm_op_begin_as(rec, PM_BUSY_CLASS(c));
    uint64_t m = t->mask;""",
         replace="""    pm_op_begin(rec);
    uint64_t m = t->mask;""",
         what="a small malloc's slow half names every superblock of the thread, as before "
              "2026-12-07 (afternoon): a thread stopped in its refill keeps all of them (G5b)"),
    dict(id="free-slow-names-any", file="src/superblock.c",
         find="""    else
        pm_op_enter_as(rt, rec, PM_BUSY_CLASS(c));""",
         replace="""    else
        pm_op_enter(rt, rec);""",
         what="an owner's free on the general way names every superblock of the thread: "
              "a thread stopped there keeps all of them (G5b)"),
    dict(id="busy-class-keeps-all", file="src/superblock.c",
         find="""        return pm_load_relaxed(&ctl_of(rt, s)->cls) == pm_busy_class(b);""",
         replace="""        return true;""",
         what="a thief gives back every superblock of an owner inside a class's slow path"),
    dict(id="busy-class-keeps-none", file="src/superblock.c",
         find="""        return pm_load_relaxed(&ctl_of(rt, s)->cls) == pm_busy_class(b);""",
         replace="""        return false;""",
         what="a thief takes the superblocks of the class an owner's slow path works on"),
    dict(id="busy-class-other", file="src/superblock.c",
         find="""        return pm_load_relaxed(&ctl_of(rt, s)->cls) == pm_busy_class(b);""",
         replace="""        return pm_load_relaxed(&ctl_of(rt, s)->cls) != pm_busy_class(b);""",
         what="a thief keeps the classes the owner's slow path does not work on and takes "
              "the one it does"),
    dict(id="reclaim-not-widened", file="src/superblock.c",
         find="""        if (sb_widen_any(rt, rec, c))
            continue;""",
         replace="""        (void)sb_widen_any;""",
         what="a refill that gives every class's spares back (and grows, and scavenges) "
              "keeps its class's flag: a thief takes a spare the owner is releasing"),
    dict(id="widen-any-no-store", file="src/superblock.c",
         find="""        return false;
    pm_op_widen(rec);
    if (pm_load_relaxed(&rec->revokes) == rec->seen_revokes)""",
         replace="""        return false;
    if (pm_load_relaxed(&rec->revokes) == rec->seen_revokes)""",
         what="widening reads the revocation counter but leaves the class's flag up"),
    dict(id="refill-sync-narrow", file="src/superblock.c",
         find="""        pm_op_widen(rec);       /* the sync looks at every class's books */
        owner_sync_pressed(rt, rec, c);""",
         replace="""        owner_sync_pressed(rt, rec, c);""",
         what="a refill that saw a revocation syncs every class's books (and gives them "
              "back under pressure) under its class's flag"),
    dict(id="free-sync-narrow", file="src/superblock.c",
         find="""        pm_op_widen(rec);       /* the sync looks at every class's books */
        owner_sync_pressed(rt, rec, UINT32_MAX);""",
         replace="""        owner_sync_pressed(rt, rec, UINT32_MAX);""",
         what="an owner's free that saw a revocation syncs every class's books under the "
              "block's class's flag"),
    dict(id="take-larger-narrow", file="src/superblock.c",
         find="""    /* other classes' books: refill_in reads the counter after this */
    pm_op_widen(rec);""",
         replace="""    /* other classes' books: refill_in reads the counter after this */""",
         what="a malloc that takes a block of a larger class refills that class under its "
              "own class's flag",
         equivalent="sb_refill_alloc calls take_larger only after refill(c, true) failed, "
                    "and refill_in with may_carve fails only past sb_widen_any: the flag is "
                    "PM_BUSY_ANY by then; the widening keeps that from resting on it"),
    dict(id="free-class-trusted", file="src/superblock.c",
         find="""    if (c != UINT32_MAX && pm_load_relaxed(&ctl_of(rt, s)->cls) != c) {""",
         replace="""    if (0) {""",
         what="an owner's free trusts the class its lookup found, before the operation, "
              "without asking the control word inside it",
         equivalent="a superblock the thread owns, or an orphan it owned last, was carved "
                    "by it before the call and keeps its class until it releases it; any "
                    "other is freed into with atomic remote bits, which touch nothing of "
                    "the thread's, and its re-adoption's CAS fails: the check guards what "
                    "that argument rests on"),
    dict(id="large-alloc-names-any", file="src/alloc.c",
         find="""     * room (lg_reserve widens the flag before its reclaim and scavenge) */
    pm_op_enter_as(rt, rec, PM_BUSY_NONE);""",
         replace="""     * room (lg_reserve widens the flag before its reclaim and scavenge) */
    pm_op_enter(rt, rec);""",
         what="a large malloc names every superblock of the thread, as before 2026-12-07 "
              "(afternoon): a thread stopped in it keeps all of them (G5b)"),
    dict(id="large-free-names-any", file="src/free.c",
         find="""            pm_op_enter_as(rt, rec, PM_BUSY_NONE);
            r = lg_free(rt, rec, ptr);""",
         replace="""            pm_op_enter(rt, rec);
            r = lg_free(rt, rec, ptr);""",
         what="a large free names every superblock of the thread: a thread stopped in it "
              "keeps all of them (G5b)"),
    dict(id="large-reclaim-not-widened", file="src/large.c",
         find="""        (void)sb_widen_any(rt, rec, UINT32_MAX);
        /* runs kept by threads""",
         replace="""        /* runs kept by threads""",
         what="a large malloc that finds no room gives the thread's spares back (and "
              "scavenges) under a flag that names none of its superblocks"),
    dict(id="large-shrink-names-any", file="src/alloc.c",
         find="""        /* pages only: none of this thread's superblocks */
        pm_op_enter_as(rt, rec, PM_BUSY_NONE);""",
         replace="""        /* pages only: none of this thread's superblocks */
        pm_op_enter(rt, rec);""",
         what="a realloc that resizes a large block in place names every superblock of "
              "the thread: a thread stopped in it keeps all of them (G5b)"),
    dict(id="free-block-names-any", file="src/free.c",
         find="""            pm_free_small(rt, rec, s, h, idx, h->cls);""",
         replace="""            pm_free_small(rt, rec, s, h, idx, UINT32_MAX);""",
         what="the free of a realloc's move (and of an automatic transaction) names every "
              "superblock of the thread: a thread stopped there keeps all of them (G5b)"),
    dict(id="remote-general-names-any", file="src/free.c",
         find="""         * none of this thread's superblocks, as in the fast path */
        pm_op_enter_as(rt, rec, PM_BUSY_NONE);""",
         replace="""         * none of this thread's superblocks, as in the fast path */
        pm_op_enter(rt, rec);""",
         build="asan",
         what="a remote free on free's general way (the only way under ASan and memcheck) "
              "names every superblock of the thread: a thread stopped there keeps all of "
              "them (G5b)"),
    dict(id="own-ignores-class", file="src/superblock.c",
         find="""    if (pm_load_relaxed(&ctl_of(rt, s)->cls) != c)
        return false;
    pm_atomic_u64 *a = &ctl_of(rt, s)->anchor;""",
         replace="""    (void)c;
    pm_atomic_u64 *a = &ctl_of(rt, s)->anchor;""",
         what="own() trusts the anchor alone: an entry of one class's books whose pages a "
              "thief released and the owner's same operation carved again for its own class "
              "stays in both classes' books, and one block goes out twice (the first "
              "version of PM_BUSY_CLASS, found by a review)"),
    dict(id="remote-fast-busy-any", file="src/free.c",
         find="""            pm_op_begin_as(rec, PM_BUSY_NONE);
            if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt)) {""",
         replace="""            pm_op_begin(rec);
            if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt)) {""",
         what="the remote free's fast path names every superblock of the thread: one "
              "stopped inside it keeps all of their free blocks from everyone (G5b)"),
    dict(id="fill-busy-any", file="src/internal.h",
         find="""    pm_op_begin_as(rec, PM_BUSY_NONE);
    pm_auto_gate(rt, rec);""",
         replace="""    pm_op_begin(rec);
    pm_auto_gate(rt, rec);""",
         what="a calloc's or realloc's fill names every superblock of the thread: one "
              "stopped inside it keeps all of their free blocks from everyone (G5b)"),
    dict(id="sb-scavenge-private-chain", file="src/superblock.c",
         find="""            for (uint64_t taken = 0; taken < bound; taken++) {
                /* raised before the take and after the put: a pop that
                 * looked at both sides in between looks again (an empty
                 * side is left alone, so that a scavenge does not send
                 * every class's pops round again) */
                if ((uint32_t)pm_load_acquire(&rt->partial[c][from]) == 0)
                    break;
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
                uint32_t s = pop_side(rt, c, from);
                if (s == PM_NO_SB)
                    break;
                if (!anchor_move(rt, s, PM_SB_LISTED, 0, true, PM_SB_OWNED, rec->id))
                    continue;
                pm_hook(PM_HOOK_SCAVENGE_HELD);
                collect(rt, s);
                if (all_clear(sb_header(rt, s)) && release(rt, rec, s)) {
                    freed++;
                    continue;
                }
                if (own_move(rt, rec, s, PM_SB_LISTED, 0))
                    push_side(rt, c, 1 - from, s);
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
            }""",
         replace="""            uint32_t chain = PM_NO_SB;
            for (uint64_t taken = 0; taken < bound; taken++) {
                if ((uint32_t)pm_load_acquire(&rt->partial[c][from]) == 0)
                    break;
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
                uint32_t s = pop_side(rt, c, from);
                if (s == PM_NO_SB)
                    break;
                if (!anchor_move(rt, s, PM_SB_LISTED, 0, true, PM_SB_OWNED, rec->id))
                    continue;
                pm_hook(PM_HOOK_SCAVENGE_HELD);
                collect(rt, s);
                if (all_clear(sb_header(rt, s)) && release(rt, rec, s)) {
                    freed++;
                    continue;
                }
                pm_store_relaxed(&ctl_of(rt, s)->next, chain == PM_NO_SB ? 0u : chain + 1);
                chain = s;
            }
            while (chain != PM_NO_SB) {
                uint32_t next = pm_load_relaxed(&ctl_of(rt, chain)->next);
                if (own_move(rt, rec, chain, PM_SB_LISTED, 0))
                    push_side(rt, c, 1 - from, chain);
                chain = next ? next - 1 : PM_NO_SB;
            }
            pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);""",
         what="a scavenge keeps the superblocks it looked at on a private chain until "
              "the class is done: stopped there, it holds the class's partial superblocks "
              "and the others' mallocs of that class report ENOMEM"),
    dict(id="sb-pop-no-second-look", file="src/superblock.c",
         find="""        if (pm_load_seq_cst(&rt->sort_moves[c]) == seen)
            return PM_NO_SB;""",
         replace="""        (void)seen;
        return PM_NO_SB;""",
         what="a pop that found both partial lists empty gives up although a scavenge "
              "moved a superblock from one to the other across its looks: the refill "
              "carves beside it, or with no page left reports ENOMEM"),
    dict(id="sb-sort-no-take-count", file="src/superblock.c",
         find="""                    break;
                pm_fetch_add_seq_cst(&rt->sort_moves[c], 1);
                uint32_t s = pop_side(rt, c, from);""",
         replace="""                    break;
                uint32_t s = pop_side(rt, c, from);""",
         what="a scavenge counts its puts but not its takes: one that takes a "
              "superblock between a pop's looks and puts it on the list the pop looked "
              "at first leaves the pop giving up beside it"),

    # ------------------------------------------------------------ alloc.c
    dict(id="alloc-fast-nopersist", file="src/alloc.c",
         find="""    pm_persist(rt, w, sizeof *w);
    pm_op_end(rec);
    return p;""",
         replace="""    pm_op_end(rec);
    return p;""",
         what="malloc's fast path returns a block whose alloc bit is not durable"),
    dict(id="alloc-fast-no-revokes", file="src/alloc.c",
         find="""        if (PM_LIKELY(m != 0 && pm_load_relaxed(&rec->revokes) == rec->seen_revokes)) {
            void *p = take_cached(t, m, w);
            p = taken_end(rt, rec, w, p);""",
         replace="""        if (PM_LIKELY(m != 0)) {
            void *p = take_cached(t, m, w);
            p = taken_end(rt, rec, w, p);""",
         what="malloc's fast path hands out a block of a superblock a thief is revoking"),
    dict(id="alloc-next-word-no-revokes", file="src/alloc.c",
         find="""    if (PM_LIKELY(pm_load_relaxed(&rec->revokes) == rec->seen_revokes &&
                  sb_next_word(rt, t))) {""",
         replace="""    if (PM_LIKELY(sb_next_word(rt, t))) {""",
         what="malloc's step to the next word hands out a block of a superblock a thief is revoking"),
    dict(id="alloc-fast-class-above-1k", file="src/alloc.c",
         find="""            c = pm_size_class(size);""",
         replace="""            c = pm_size_class(size) - 1;""",
         what="malloc's fast path, which serves every class since 2026-12-04, hands out a block of the class below for sizes above 1 KiB"),
    dict(id="tx-alloc-fast-class-above-1k", file="src/tx.c",
         find="""    struct pm_tcache *t = size - 1 < PM_MAX_SMALL ? &rec->cls[pm_size_class(size)] : NULL;""",
         replace="""    struct pm_tcache *t = size - 1 < PM_MAX_SMALL ? &rec->cls[pm_size_class(size) - (size > 1024)] : NULL;""",
         what="persistent_tx_alloc's short way, which serves every class since 2026-12-04, hands out a block of the class below for sizes above 1 KiB"),
    dict(id="alloc-aligned-class", file="src/alloc.c",
         find="""            if (rt->cls[c].align >= align)
                return small_alloc(rt, rec, c, align);""",
         replace="""            if (rt->cls[c].align >= 16)
                return small_alloc(rt, rec, c, align);""",
         what="aligned allocation picks a class whose blocks are not aligned enough"),
    dict(id="alloc-fallback-unaligned", file="src/alloc.c",
         find="""        p = large_alloc(rt, rec, pm_class_size(c), align > 16 ? align : 0);""",
         replace="""        p = large_alloc(rt, rec, pm_class_size(c), 0);""",
         what="G5b fallback to a page run drops the requested alignment",
         equivalent=(
             "small_alloc_slow only gets align <= page size (pm_alloc sends "
             "larger alignments straight to large_alloc), and lg_reserve rounds "
             "any align up to a page (align_pages = 1 for align <= page): a page"
             " run is page aligned either way, so align and 0 ask for the same "
             "run")),
    dict(id="alloc-realloc-root-moves", file="src/alloc.c",
         find="""    if (held != 0) {
        /* moving it would free a root's block, or an open transaction's */""",
         replace="""    if ((void)held, false) {
        /* moving it would free a root's block, or an open transaction's */""",
         what="realloc moves (and frees) a root's block"),
    dict(id="realloc-small-ignores-remote", file="src/alloc.c",
         find="""    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit) ||
        (pm_load_relaxed(&h->bits[((nb + 63) >> 6) + (idx >> 6)]) & bit)) {""",
         replace="""    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit)) {""",
         what="realloc of a small block another thread has freed (a pending remote free) "
              "moves it: the block is freed twice and its copy handed out"),
    dict(id="realloc-small-ignores-freed", file="src/alloc.c",
         find="""    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit) ||
        (pm_load_relaxed(&h->bits[((nb + 63) >> 6) + (idx >> 6)]) & bit)) {""",
         replace="""    if ((pm_load_relaxed(&h->bits[((nb + 63) >> 6) + (idx >> 6)]) & bit)) {""",
         what="realloc of a freed small block answers with it or a copy instead of a report"),
    dict(id="realloc-small-ignores-marks", file="src/alloc.c",
         find="""            PM_LIKELY(pm_load_relaxed(&rt->ctl[s].marks) == 0))
            return realloc_small(""",
         replace="""            true)
            return realloc_small(""",
         what="realloc moves a small block that is a root's (or an open transaction's) "
              "instead of refusing: the caller gets a copy, the root keeps the old block"),
    dict(id="realloc-small-frees-stale", file="src/alloc.c",
         find="""    void *q = realloc_move(rt, rec, p, n, us);  /* not at h: see realloc_move */""",
         replace="""    void *q = pm_alloc(rt, rec, n, 0);
    if (q == NULL)
        return NULL;
    memcpy(q, p, n < us ? n : us);
    pm_free_small(rt, rec, (uint32_t)(((char *)h - rt->data) >> rt->page_shift), h, idx);
    return q;""",
         what="a realloc's move frees the old block where it found it before its malloc, "
              "which may have waited out another thread's automatic transaction: after "
              "that one's abort the block is a root's again, and the move frees it"),
    dict(id="alloc-usable-ignores-remote", file="src/alloc.c",
         find="""    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit) ||
        (pm_load_relaxed(&h->bits[h->n_words + (idx >> 6)]) & bit))
        return 0;
    if (PM_UNLIKELY(pm_load_relaxed(&rt->ctl[s].marks) != 0) &&""",
         replace="""    if (!(pm_load_relaxed(&h->bits[idx >> 6]) & bit))
        return 0;
    if (PM_UNLIKELY(pm_load_relaxed(&rt->ctl[s].marks) != 0) &&""",
         what="usable size (and realloc's liveness check) ignores a pending remote free"),

    # ------------------------------------------------------------ free.c
    dict(id="free-fast-nopersist", file="src/free.c",
         find="""    pm_persist(rt, aw, sizeof *aw);
    pm_op_end(rec);""",
         replace="""    pm_op_end(rec);""",
         what="the owner's fast free is not persisted"),
    dict(id="free-fast-no-marks", file="src/free.c",
         find="""        if (PM_UNLIKELY(marks != 0) && (marks != PM_MARKS_HOLD || held_here(rt, ptr)))""",
         replace="""        if (PM_UNLIKELY(false))""",
         what="free's fast path frees a root's (or an open transaction's) block"),
    dict(id="free-fast-not-owner", file="src/free.c",
         find="""        if (PM_LIKELY(((uint32_t)a == rec->owned_low) | current)) {""",
         replace="""        if (PM_LIKELY((pm_anchor_state(a) == PM_SB_OWNED) | current)) {""",
         what="free's fast path clears a bit of another thread's superblock with a plain store"),
    dict(id="tls-forget-space-only", file="src/thread.c",
         find="""    pm_tls.space = NULL;
    pm_tls.epoch = 0;""",
         replace="""    pm_tls.space = NULL;""",
         what="a thread's forgotten space cache still matches a NULL space: after a "
              "lookup of an unknown space, malloc(NULL) serves the last space and "
              "free(NULL, block) frees its block without a report"),
    dict(id="close-epoch-from-zero", file="src/space.c",
         find="""pm_atomic_u64 pm_close_epoch = 1;""",
         replace="""pm_atomic_u64 pm_close_epoch = 0;""",
         what="a new thread's empty space cache matches a NULL space until the first "
              "close: malloc(NULL) dereferences no record"),
    dict(id="free-fast-no-bound", file="src/internal.h",
         find="""    if (PM_UNLIKELY(off >= rt->max_bytes))
        return false;""",
         replace="""    (void)0;""",
         what="free's lookup reads the page map at any pointer's page, past its end for a "
              "pointer outside the space"),
    dict(id="free-fast-no-revokes", file="src/free.c",
         find="""    if (PM_UNLIKELY(pm_load_relaxed(&rec->revokes) != rec->seen_revokes ||
                    !(word & bit) ||""",
         replace="""    if (PM_UNLIKELY(!(word & bit) ||""",
         what="free's fast path writes a superblock a thief is revoking"),
    dict(id="free-fast-keeps-emptied", file="src/free.c",
         find="""                    ((word & ~bit) == 0 && hint == 0))) {""",
         replace="""                    false)) {""",
         what="free's fast path empties a word of a set-aside superblock without the general path's check for an empty superblock (it stays owned, neither counted as a spare nor given back before growth)"),
    dict(id="free-fast-current-not-noted", file="src/free.c",
         find="""    t->freemap |= hint;""",
         replace="""    (void)hint;""",
         what="free's fast path does not note a freed block's word in the current superblock's free-word hint: the thread's own frees into it are not found again, and a new superblock is carved while it has room"),
    dict(id="free-root-check-small", file="src/free.c",
         find="""        int held = pm_block_held(rt, s, (uint64_t)((char *)ptr - rt->base));""",
         replace="""        int held = 0;""",
         what="free of a root's small block is not refused"),
    dict(id="free-root-check-large", file="src/free.c",
         find="""        r = pm_block_held(rt, page < rt->max_pages ? (uint32_t)page : UINT32_MAX, off);
        if (r == 0) {""",
         replace="""        r = (int)(page & 0);
        if (r == 0) {""",
         what="free of a root's large block is not refused"),
    dict(id="free-fast-no-remote-check", file="src/free.c",
         find="""                    !(word & bit) || (pm_load_relaxed(aw + n_words) & bit) ||""",
         replace="""                    !(word & bit) ||""",
         what="the owner's fast free misses a double free that is a pending remote free"),
    dict(id="free-fast-remote-by-summary", file="src/free.c",
         find="""                    !(word & bit) || (pm_load_relaxed(aw + n_words) & bit) ||""",
         replace="""                    !(word & bit) ||
                    ((pm_load_relaxed(&ctl->summary) >> (idx >> 6) & 1) &&
                     (pm_load_relaxed(aw + n_words) & bit)) ||""",
         what="the owner's fast free reads the remote word only when its summary bit is set, so it misses a remote free of the same block between its remote bit and its summary bit (and hands the block out twice)"),
    dict(id="free-large-outside-op", file="src/free.c",
         find="""            pm_op_enter_as(rt, rec, PM_BUSY_NONE);
            r = lg_free(rt, rec, ptr);
            pm_op_end(rec);""",
         replace="""            r = lg_free(rt, rec, ptr);""",
         what="a large free runs outside an operation, so an automatic transaction's abort rebuilds the page state under it"),
    dict(id="free-fast-remote-words", file="src/free.c",
         find="""    struct pm_sb_header *h = sb_header(rt, s);
    sb_free_remote(rt, rec, s, h, idx, (n + 63) >> 6, ptr);""",
         replace="""    struct pm_sb_header *h = sb_header(rt, s);
    sb_free_remote(rt, rec, s, h, idx, n >> 6, ptr);""",
         what="the remote free's fast path sets its remote bit in the wrong word (bitmap length from the page map miscounted)"),
    dict(id="pagemap-rebuilt-no-geometry", file="src/superblock.c",
         find="""    uint64_t e = pm_pagemap_entry(s, pm_geom_make(h->cls, h->n_blocks, h->data_start));""",
         replace="""    uint64_t e = pm_pagemap_entry(s, 0);""",
         what="an open rebuilds the page map without the superblocks' geometry (every free then takes the slow path)"),
    dict(id="pagemap-carve-wrong-count", file="src/superblock.c",
         find="""    uint64_t e = pm_pagemap_entry(first, pm_geom_make(c, n_blocks, data_start));""",
         replace="""    uint64_t e = pm_pagemap_entry(first, pm_geom_make(c, n_blocks + 64, data_start));""",
         what="a carved superblock's page map entries overstate its block count (a pointer past its last block passes as a block)"),

    # ------------------------------------------------------------ pages.c
    dict(id="pages-bit-set-nopersist", file="src/pages.c",
         find="""    pm_fetch_or_acq_rel(w, UINT64_C(1) << (page & 63));
    pm_persist(rt, w, sizeof *w);""",
         replace="""    pm_fetch_or_acq_rel(w, UINT64_C(1) << (page & 63));""",
         what="run bits set (END, KIND, START) are not persisted"),
    dict(id="pages-bit-clear-nofence", file="src/pages.c",
         find="""    pm_fetch_and_acq_rel(w, ~(UINT64_C(1) << (page & 63)));
    pm_persist(rt, w, sizeof *w);""",
         replace="""    pm_fetch_and_acq_rel(w, ~(UINT64_C(1) << (page & 63)));
    if (rt->flush) rt->flush->flush(w, sizeof *w);""",
         what="run bits cleared are flushed, not fenced: the next clear can land first"),
    dict(id="pages-one-pass", file="src/pages.c",
         find="""    for (int pass = 0; pass < 2; pass++) {""",
         replace="""    for (int pass = 0; pass < 1; pass++) {""",
         what="G5b: a failed hinted search is not followed by a full scan"),
    dict(id="pages-claim-no-rollback", file="src/pages.c",
         find="""                clear_range(rt, first, p);
                if (p > first)""",
         replace="""                if (p > first)""",
         what="a claim that loses a race keeps the pages it got (they leak)"),
    dict(id="pages-bucket-hint-not-lowered", file="src/pages.c",
         find="""    for (uint32_t i = 0, top = hint_of(n); i <= top; i++)""",
         replace="""    for (uint32_t i = 0, top = hint_of(n); i < top; i++)""",
         what="a free does not lower the hint of its own length's bucket: a request "
              "of that bucket skips the freed run for a higher one"),
    dict(id="pages-no-carry", file="src/pages.c",
         find="""        carry = (x >> 63) ? pm_clz64(~x) : 0;       /* free pages at the top */""",
         replace="""        carry = 0;""",
         what="runs across bitmap words are never found"),

    dict(id="pages-kept-no-reclaim", file="src/pages.c",
         find="""    bool any = false;
    uint32_t n = pm_load_acquire(&rt->n_recs);""",
         replace="""    bool any = false;
    return any;
    uint32_t n = pm_load_acquire(&rt->n_recs);""",
         what="runs kept by an idle thread are never given back: another thread "
              "reports ENOMEM with those pages free (G5b)"),
    dict(id="pages-kept-merge-unbounded", file="src/pages.c",
         find="""                RUN_LEN(v) + n > rt->run_max ||
""",
         replace="",
         what="kept runs are joined past the longest a slot holds: the length "
              "overflows into the first page"),
    dict(id="pages-kept-take-no-cas", file="src/pages.c",
         find="""    if (!pm_cas_strong_acq_rel(&rec->runs[best], &bv, rest))
        return PG_NONE;""",
         replace="""    pm_store_relaxed(&rec->runs[best], rest);""",
         what="a thread takes a kept run back with a plain store: a reclaim that "
              "gave the same run back meanwhile hands it out twice"),
    dict(id="lg-grow-fail-keeps-pages", file="src/large.c",
         find="""            if (p > last + 1)
                pg_release(rt, last + 1, p - (last + 1));
""",
         replace="",
         what="an in-place growth that fails keeps the pages it took from kept runs "
              "and claimed: lost until the next open"),
    dict(id="tx-commit-flush-alloc-len", file="src/tx.c",
         find="""        if (len > rt->max_small && (len = lg_usable(rt, b)) == 0)
            len = tx->allocs.v[i].len;""",
         replace="""        (void)b;""",
         what="G7 (PMEM): a commit writes back a block it allocated over its size at tx_alloc, not where it ends now"),
    dict(id="tx-begin-no-gate", file="src/tx.c",
         find="""    pm_op_enter(rt, rec);
    tx_start(rt, tx);
    tx->automatic = false;
    depth_set(tx, 1);
    pm_op_end(rec);""",
         replace="""    tx_start(rt, tx);
    tx->automatic = false;
    depth_set(tx, 1);""",
         what="a transaction begins during another thread's automatic one; its log writes are caught and its abort ends the process"),
    dict(id="root-slot-no-op", file="src/roots.c",
         find="""    pm_op_enter(rt, rec);
    pm_atomic_u64 *val = val_find(rt, rec, tag, true);
    pm_op_end(rec);
    return val;""",
         replace="""    pm_atomic_u64 *val = val_find(rt, rec, tag, true);
    return val;""",
         what="a root's slot is written during another thread's automatic transaction; its abort ends the process"),
    dict(id="exit-waits-for-auto", file="src/thread.c",
         find="""            if (pm_tx_auto_other(rt, rec)) {""",
         replace="""            if (false) {""",
         what="a thread exit waits for another thread's automatic transaction, which joins it: for ever"),
    dict(id="own-held-ignored", file="src/roots.c",
         find="""    if (pm_marked(rt, rt->ownmark, off))
        return PERSISTENT_E_BAD_POINTER;        /* not the program's */""",
         replace="",
         what="G5: a free of a stale pointer to the library's own block (a log, a table) goes through"),
    dict(id="own-marks-not-rebuilt", file="src/roots.c",
         find="""    pub_own_marks(rt);
}""",
         replace="""}""",
         what="G5: after a reopen the logs and lane tables are not marked the library's"),
    dict(id="txlog-not-marked", file="src/publish.c",
         find="""    lane_clear(rt, l);
    pm_own_mark(rt, boff);""",
         replace="""    lane_clear(rt, l);""",
         what="G5: a new transaction log is not marked the library's until the next open"),
    dict(id="lane-table-not-marked", file="src/publish.c",
         find="""            pub_commit(rt, &rv);
            pm_own_mark(rt, off);""",
         replace="""            pub_commit(rt, &rv);""",
         what="G5: a new lane overflow table is not marked the library's until the next open"),
    dict(id="tx-add-own-accepted", file="src/tx.c",
         find="""    if (PM_UNLIKELY(pm_load_relaxed(&rt->ctl[*run].marks) != 0) && pm_own_block(rt, *start))
        return false;""",
         replace="",
         what="G7: a snapshot of the library's own block (the log: put back over itself) is accepted"),
    dict(id="private-no-view-lock", file="src/space.c",
         find="""            r = os_lock_view(fd);""",
         replace="""            r = 0;""",
         what="G6: a private open allocates beside a live writer, whose changes show through its copy"),
    dict(id="open-waits-on-fifo", file="src/os_posix.c",
         find="""    int f = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);""",
         replace="""    int f = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);""",
         what="G8: a read-only or private open of a FIFO waits for ever for a writer of it"),
    dict(id="fixed-unknown-flags-accepted", file="src/space.c",
         find="""    if (f->flags & ~PM_FLAG_GROWABLE)
        return pm_err(""",
         replace="""    if (false)
        return pm_err(""",
         what="G5: a header flag this version does not know (a feature the file needs) is ignored"),
    dict(id="view-rereads-fixed", file="src/verify.c",
         find="""    const struct pm_fixed *f = &rt->fixed;
    const struct pm_lane *meta = (const struct pm_lane *)(rt->base + f->lanes_off);""",
         replace="""    const struct pm_fixed *f = &rt->hdr->fixed;
    const struct pm_lane *meta = (const struct pm_lane *)(rt->base + f->lanes_off);""",
         what="G8: a view reads the fixed header from the mapping, which another process changed after the open"),
    dict(id="view-rereads-sb-header", file="src/verify.c",
         find="""        if (x < hc->data_start || (x - hc->data_start) % hc->block_size != 0 ||
            (x - hc->data_start) / hc->block_size >= hc->n_blocks)
            return false;
        *h = sh;
        *idx = (uint32_t)((x - hc->data_start) / hc->block_size);""",
         replace="""        if (x < sh->data_start || (x - sh->data_start) % sh->block_size != 0 ||
            (x - sh->data_start) / sh->block_size >= sh->n_blocks)
            return false;
        *h = sh;
        *idx = (uint32_t)((x - sh->data_start) / sh->block_size);""",
         what="G8: a view divides by a superblock header's block size read again after it was validated"),
    dict(id="fork-child-keeps-view-lock", file="src/space.c",
         find="""        if (rt != NULL && (rt->mode == PM_MODE_WRITER || rt->view_locked)) {""",
         replace="""        if (rt != NULL && rt->mode == PM_MODE_WRITER) {""",
         what="G6: a child forked beside a private open that allocates keeps its shared lock: writers kept out"),
    dict(id="tx-auto-ignores-held", file="src/tx.c",
         find="""        if (pm_load_acquire(&o->tx_held))
""",
         replace="""        if (pm_load_acquire(&o->tx_held) && 0)
""",
         what="an automatic transaction begins beside another thread's held frees: "
              "its abort makes them reusable while that thread's log still says "
              "COMMITTED"),
    dict(id="hold-shared-not-counted", file="src/internal.h",
         find="""    if ((pm_fetch_or_seq_cst(&rt->snapmark[g >> 6], bit) & bit) && !pm_cohold_add(rt, off) &&
        (pm_fetch_or_seq_cst(&rt->snapmark[g >> 6], bit) & bit))
        return false;""",
         replace="""    (void)pm_fetch_or_seq_cst(&rt->snapmark[g >> 6], bit);""",
         what="a block a second open transaction snapshots is held by the first alone: "
              "once that one ends, a plain free of it is accepted while the second is open"),
    dict(id="hold-bit-alone", file="src/internal.h",
         find="""    return pm_snap_bit(rt, off) || pm_cohold_count(rt, off) != 0 || pm_snap_bit(rt, off);""",
         replace="""    return pm_snap_bit(rt, off);""",
         what="\"held\" is the bit alone: a hold counted while the bit's holder lets go "
              "(it found no count, then cleared the bit) leaves a held block that frees take"),
    dict(id="holders-count-ignored", file="src/internal.h",
         find="""    return c + (pm_snap_bit(rt, off) | b);""",
         replace="""    return (pm_snap_bit(rt, off) | b);""",
         what="a transaction's free counts the holds of a block by the bit alone: it frees a "
              "block it snapshotted that another open transaction snapshotted too"),
    dict(id="tx-unhold-ignores-counts", file="src/tx.c",
         find="""        if (PM_UNLIKELY(pm_load_seq_cst(&rt->n_cohold) != 0))
            tx_unhold_counted(rt, &tx->holds);""",
         replace="""        if (0)
            tx_unhold_counted(rt, &tx->holds);""",
         what="a transaction's end clears the bits of its holds whatever the counts say: "
              "the first of several holders to end lets the block go, and the counts "
              "of the others hold it for good"),
    dict(id="free-fast-hold-bit-alone", file="src/free.c",
         find="""    if (pm_load_seq_cst(&rt->n_cohold) != 0)
        return true;
    uint64_t g = (uint64_t)((const char *)ptr - rt->base - rt->data_off) >> 4;""",
         replace="""    uint64_t g = (uint64_t)((const char *)ptr - rt->base - rt->data_off) >> 4;""",
         what="the free fast path takes a block whose bit is clear as not held, though "
              "its holds may be counted past the bit (a hold that came while the bit's "
              "holder let go)"),
    dict(id="cohold-key-keeps-count", file="src/roots.c",
         find="""    return (w >> PM_COHOLD_BITS) << PM_COHOLD_BITS;""",
         replace="""    return w;""",
         what="a table word's key is read with its count in it: no later hold finds the "
              "block's entry, each takes a slot of its own, and no count is ever found "
              "again (the block's holds beyond the bit are forgotten)"),
    dict(id="cohold-count-one", file="src/roots.c",
         find="""    return w & ((UINT64_C(1) << PM_COHOLD_BITS) - 1);""",
         replace="""    return w != 0;""",
         what="a table word counts one hold whatever its count: a release empties an "
              "entry that held two, and the block goes free while a transaction "
              "still snapshots it"),
    dict(id="tx-open-not-published", file="src/tx.c",
         find="""    tx->depth = d;
    pm_store_release(&tx->rec->tx_open, d != 0 ? 1u : 0u);""",
         replace="""    tx->depth = d;""",
         what="an automatic transaction begins beside another thread's open manual one (its record "
              "does not say so): the abort's rebuild undoes that thread's allocations"),
    dict(id="tx-held-not-published", file="src/tx.c",
         find="""        pm_store_release(&rec->tx_held, tx->n_held != 0 ? 1u : 0u);
""",
         replace="""""",
         what="an automatic transaction begins beside another thread's held frees (its record "
              "does not say so): its abort makes them reusable while that thread's log still "
              "says COMMITTED"),
    dict(id="free-fast-interior", file="src/internal.h",
         find="""    uint64_t idx = pm_block_index(x, k->inv, k->bshift);""",
         replace="""    uint64_t idx = (x * k->inv) >> k->bshift;""",
         what="G5: free's fast path takes a pointer inside a block for the block's start "
              "(the exact division without its rotation, which puts a remainder out of reach)"),
    dict(id="locate-interior", file="src/superblock.c",
         find="""    uint64_t i = pm_block_index(p - b0, k->inv, k->bshift);""",
         replace="""    uint64_t i = ((p - b0) * k->inv) >> k->bshift;""",
         what="G5: the general lookup (free's slow path, usable size, realloc) takes a "
              "pointer inside a block for the block's start"),
    dict(id="pages-kept-not-forgotten", file="src/recover.c",
         find="""    pg_cache_forget(rt);
""",
         replace="",
         what="after an automatic transaction's abort, runs kept from frees it "
              "undid are handed out again while their blocks are live"),
    # ------------------------------------------------------------ large.c
    dict(id="lg-commit-start-first", file="src/large.c",
         find="""    pg_bit_set(rt, rt->end_bits, first + n - 1);
    pg_bit_set(rt, rt->start_bits, first);      /* commit */""",
         replace="""    pg_bit_set(rt, rt->start_bits, first);      /* commit */
    pg_bit_set(rt, rt->end_bits, first + n - 1);""",
         what="a large block's START (the commit) is set before its END"),
    dict(id="lg-free-nopersist", file="src/large.c",
         find="""    pm_persist(rt, w, sizeof *w);                   /* commit */""",
         replace="""    (void)0;""",
         what="a large free's START clear (the commit) is not persisted before END is cleared"),
    dict(id="lg-shrink-order", file="src/large.c",
         find="""        pg_bit_set(rt, rt->end_bits, first + n_new - 1);  /* commit */
        pg_bit_clear(rt, rt->end_bits, last);""",
         replace="""        pg_bit_clear(rt, rt->end_bits, last);
        pg_bit_set(rt, rt->end_bits, first + n_new - 1);  /* commit */""",
         what="shrink in place clears the old END before the new one is set"),
    dict(id="lg-grow-order", file="src/large.c",
         find="""    pg_bit_set(rt, rt->end_bits, first + n_new - 1);
    pg_bit_clear(rt, rt->end_bits, last);                 /* commit */""",
         replace="""    pg_bit_clear(rt, rt->end_bits, last);                 /* commit */
    pg_bit_set(rt, rt->end_bits, first + n_new - 1);""",
         what="grow in place clears the old END before the new one is set"),
    dict(id="lg-grow-no-claim", file="src/large.c",
         find="""        if (pg_claim_at(rt, p, stop - p)) {""",
         replace="""        if (stop <= pm_load_acquire(&rt->n_pages)) {""",
         what="grow in place takes the following pages without claiming them"),
    dict(id="lg-grow-no-space-growth", file="src/large.c",
         find="""            pm_space_grow(rt, n, stop - n) != 0) {""",
         replace="""            true) {""",
         what="a block at the end of the space is copied to a new run instead of "
              "growing the space under it (realloc by 1.5 leaves a file twice its size)"),
    dict(id="lg-spare-kept-at-growth", file="src/large.c",
         find="""            if (sb_release_spares(rt, rec) || runs)""",
         replace="""            if (runs)""",
         what="a thread grows the space for a large block while its spare superblocks "
              "hold free pages"),

    # ------------------------------------------------------------ automatic transactions' gate
    dict(id="auto-no-gate", file="src/internal.h",
         find="""    if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt))
        pm_auto_wait(rt, rec);""",
         replace="""    (void)rt, (void)rec;""",
         what="another thread's calls during an automatic transaction do not wait: "
              "where the transaction already wrote the page, an abort undoes them"),
    dict(id="auto-fast-remote-no-gate", file="src/free.c",
         find="""            if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt)) {
                pm_op_end(rec);
                goto here;
            }""",
         replace="""                (void)0;""",
         what="the free fast path's remote free does not look for an automatic "
              "transaction on the space"),
    dict(id="auto-abort-counts-gate", file="src/tx.c",
         find="""    for (uint32_t id = 1; !tx->fenced && id <= nr && id < PM_MAX_RECS; id++)""",
         replace="""    for (uint32_t id = 1; id <= nr && id < PM_MAX_RECS; id++)""",
         what="an automatic transaction's abort counts a call at its gate (busy, "
              "nothing changed) as one inside the space and stops the process"),
    dict(id="realloc-lookup-unguarded", file="src/alloc.c",
         find="""        if (us != 0 || !pm_auto_moved(rt, seen))
            break;""",
         replace="""        if (true)
            break;""",
         what="realloc's lookup of a live block in an automatic transaction's rebuild "
              "misses and is not made again: NULL, EINVAL and a BAD_POINTER report"),
    dict(id="realloc-into-lookup-unguarded", file="src/publish.c",
         find="""    size_t us = pm_usable_settled(rt, old);""",
         replace="""    size_t us = pm_usable(rt, old);""",
         what="realloc_into's lookup of the located block neither waits for another "
              "thread's automatic transaction nor looks again after its abort's rebuild"),
    dict(id="free-block-no-look-again", file="src/free.c",
         find="""    while ((r = free_block_quiet(rt, rec, ptr)) != 0 && pm_auto_moved(rt, seen))""",
         replace="""    while ((r = free_block_quiet(rt, rec, ptr)) != 0 && false)""",
         what="a realloc's move frees the old block with a lookup that an automatic "
              "transaction's rebuild makes miss: the block reported and leaked"),
    dict(id="fill-outside-op", file="src/internal.h",
         find="""    pm_op_begin_as(rec, PM_BUSY_NONE);
    pm_auto_gate(rt, rec);
    pm_hook(PM_HOOK_FILL_PIECE);
    if (src != NULL)
        memcpy(dst, src, n);
    else
        memset(dst, 0, n);
    pm_op_end(rec);""",
         replace="""    if (src != NULL)
        memcpy(dst, src, n);
    else
        memset(dst, 0, n);""",
         what="realloc's copy and calloc's zeros (one piece or several) written outside an operation: another "
              "thread's automatic transaction that began meanwhile takes them for the "
              "program's plain writes, and its abort stops the process"),
    dict(id="txlog-upgrade-outside-op", file="src/tx.c",
         find="""            pm_op_enter(rt, rec);
            salts_draw(tx->log);
            pm_persist(rt, tx->log->salt, sizeof tx->log->salt);    /* before the magic */
            tx->log->magic = PM_TXLOG_MAGIC;
            pm_persist(rt, &tx->log->magic, sizeof tx->log->magic);
            pm_op_end(rec);""",
         replace="""            salts_draw(tx->log);
            pm_persist(rt, tx->log->salt, sizeof tx->log->salt);    /* before the magic */
            tx->log->magic = PM_TXLOG_MAGIC;
            pm_persist(rt, &tx->log->magic, sizeof tx->log->magic);""",
         what="a first transaction's upgrade of an earlier format's log written outside "
              "an operation: another thread's automatic transaction takes it for a plain "
              "write, and its abort stops the process"),
    dict(id="auto-begin-no-busy-check", file="src/tx.c",
         find="""            r = -EBUSY;
    }
    /* and every other thread outside a call owns no superblock: one that""",
         replace="""            r = 0;
    }
    /* and every other thread outside a call owns no superblock: one that""",
         what="an automatic transaction begins while another thread is inside a call "
              "(one that owns no superblock)"),

    # ------------------------------------------------------------ memcheck (ASan build)
    dict(id="mc-abort-unpoison-late", file="src/tx.c", build="asan",
         find="""    pm_vg_reset(rt);
    pm_engine_reset(rt, rec);""",
         replace="""    pm_engine_reset(rt, rec);
    pm_vg_reset(rt);""",
         what="an automatic transaction's abort unpoisons the space after the rebuild: "
              "a restored header whose bitmap words a superblock carved meanwhile had "
              "poisoned is an ASan report (the fuzzer, 2026-12-07)"),
    dict(id="vg-abort-known-kept", file="src/memcheck.c", build="valgrind",
         find="""        for (; k != 0; k &= k - 1)
            VALGRIND_FREELIKE_BLOCK(rt->data + ((w * 64 + pm_ctz64(k)) << 4), 0);""",
         replace="",
         what="an automatic transaction's abort leaves valgrind's books as the "
              "transaction's calls left them: blocks it allocated, gone with the "
              "rollback, are definitely lost at exit"),
    dict(id="vg-log-head-undefined", file="src/tx.c", build="valgrind",
         find="""    pm_vg_internal(lg, LOG_BYTES);
    pm_vg_defined(lg, LOG_BYTES);""",
         replace="""    pm_vg_internal(lg, LOG_BYTES);""",
         what="a transaction log's bytes are undefined to valgrind: the iterator's "
              "read past the last entry is an uninitialised-value report"),
    dict(id="vg-log-segment-undefined", file="src/tx.c", build="valgrind",
         find="""        pm_vg_defined(rt->base + seg, n << rt->page_shift);    /* as log_init */
""",
         replace="",
         what="a log segment's bytes are undefined to valgrind: the iterator's read "
              "past the last entry is an uninitialised-value report"),
    dict(id="mc-shrink-poison-late", file="src/large.c", build="asan",
         find="""        pm_vg_resized(rt, ptr, n_old << rt->page_shift, n_new << rt->page_shift);
        pg_bit_set(rt, rt->end_bits, first + n_new - 1);  /* commit */
        pg_bit_clear(rt, rt->end_bits, last);
        pg_release_large(rt, first + n_new, n_old - n_new);
        pm_hook(PM_HOOK_LARGE_SHRUNK);""",
         replace="""        pg_bit_set(rt, rt->end_bits, first + n_new - 1);  /* commit */
        pg_bit_clear(rt, rt->end_bits, last);
        pg_release_large(rt, first + n_new, n_old - n_new);
        pm_hook(PM_HOOK_LARGE_SHRUNK);
        pm_vg_resized(rt, ptr, n_old << rt->page_shift, n_new << rt->page_shift);""",
         what="a shrink in place poisons its tail after releasing it: another "
              "thread's new block there is left poisoned (CI, 2026-12-02)"),
    dict(id="mc-alloc-into-user-late", file="src/publish.c", build="asan",
         find="""    pm_vg_user(rt, rv.blk, rv.usable, false);
    uint64_t boff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, boff);                 /* before *dest names it */
    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);
    pub_commit(rt, &rv);
    pm_store_release(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);
    lane_clear(rt, l);
    pin_drop(rt, rec, boff);
    pm_op_end(rec);
    return 0;""",
         replace="""    uint64_t boff = (uint64_t)((char *)rv.blk - rt->base);
    pin_new(rec, boff);                 /* before *dest names it */
    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);
    pub_commit(rt, &rv);
    pm_store_release(dest_word(dest), boff);
    pm_persist(rt, dest, sizeof *dest);
    pm_hook(PM_HOOK_PUB_PUBLISHED);
    lane_clear(rt, l);
    pin_drop(rt, rec, boff);
    pm_op_end(rec);
    pm_vg_user(rt, rv.blk, rv.usable, false);
    return 0;""",
         what="alloc_into unpoisons its block after *dest names it: another thread "
              "may have freed it from there already (review, 2026-12-02)"),
    dict(id="mc-grow-no-unpoison", file="src/large.c", build="asan",
         find="""    pg_bit_clear(rt, rt->end_bits, last);                 /* commit */
    pm_vg_resized(rt, ptr, n_old << rt->page_shift, n_new << rt->page_shift);""",
         replace="""    pg_bit_clear(rt, rt->end_bits, last);                 /* commit */""",
         what="a growth in place leaves the new pages poisoned"),
    dict(id="mc-free-no-poison", file="src/free.c", build="asan",
         find="""    pm_vg_unuser(rt, ptr);
    uint64_t seen = pm_auto_settle(rt);""",
         replace="""    uint64_t seen = pm_auto_settle(rt);""",
         what="a freed block is not poisoned: a use after free goes unreported"),

    # ------------------------------------------------------------ space.c (open)
    dict(id="open-size-before-header", file="src/space.c",
         find="""    r = os_file_size(fd, &fsize);
    if (r < 0)
        return pm_err(r, "%s: %s", path, persistent_strerror(r));
    if (interrupted_create""",
         replace="""    if (interrupted_create""",
         what="an open judges the header against the file size read before it: a reader "
              "opening beside a growing writer is refused as truncated"),

    dict(id="close-no-pin-drain", file="src/space.c",
         find="""    while (pm_load_seq_cst(&exit_pins) != 0)
        sched_yield();""",
         replace="""    (void)exit_pins;""",
         what="close frees a space while an exiting thread still hands back its record"),
    # ------------------------------------------------------------ thread.c
    dict(id="thr-orphan-kept", file="src/thread.c",
         find="""            if (tid != 0 && os_thread_gone(tid) &&""",
         replace="""            if (tid != 0 && false &&""",
         what="a record taken after its thread's exit destructor is never handed back "
              "(after 4,095 such threads a new thread cannot allocate)"),

    # ------------------------------------------------------------ lazy backing
    dict(id="lazy-grow-no-announce", file="src/space.c",
         find="""        pm_holes_announce(rt, PM_HOLES_LAZY);
        r = os_allocate(rt->fd, pages_bytes(rt, t) - rt->page_size, rt->page_size);""",
         replace="""        r = os_allocate(rt->fd, pages_bytes(rt, t) - rt->page_size, rt->page_size);""",
         what="lazy growth does not record that the file now has holes: the next "
              "eager open leaves them (a store there can SIGBUS on a full disk)"),
    dict(id="lazy-open-fills", file="src/recover.c",
         find="""    if (rt->mode == PM_MODE_WRITER && !(rt->open_flags & PERSISTENT_OPEN_LAZY) &&""",
         replace="""    if (rt->mode == PM_MODE_WRITER &&""",
         what="a lazy writer's open backs every hole (the disk a lazy space saves is taken anyway)"),
    # ------------------------------------------------------------ the bitmaps' tail
    dict(id="create-backs-bitmap-tail", file="src/space.c",
         find="""                 : pm_back_file(fd, f, s->n_pages, false);""",
         replace="""                 : os_allocate(fd, 0, s->file_size);""",
         what="an eager create allocates the run bitmaps for the whole maximum "
              "(a 1 TiB maximum takes 100 MB of disk at once)"),
    dict(id="back-file-words-not-bytes", file="src/space.c",
         find="""    uint64_t used = (n_pages + 63) / 64 * 8, g = pm_back_unit(fd);""",
         replace="""    uint64_t used = (n_pages + 63) / 64, g = pm_back_unit(fd);""",
         what="the bitmaps' words of the space's pages counted in words, not "
              "bytes: an eighth of them backed, the rest a SIGBUS on a full disk"),
    dict(id="grow-reads-unbacked-bits", file="src/space.c",
         find="""        r = os_allocate_live(rt->fd, a, (b < end ? b : end) - a);""",
         replace="""        (void)a, (void)b, (void)end;""",
         what="growth reads (and later writes) its pages' run bits in holes: on "
              "a full file system a SIGBUS where the malloc should fail"),
    dict(id="finish-create-unbacked", file="src/space.c",
         find="""    int r = back_new(path, fd, &f, &st, holes == PM_HOLES_LAZY);
    if (r == 0)
        r = os_fsync(fd);               /* the blocks before the magic */""",
         replace="""    int r = 0;
    (void)holes;""",
         what="an interrupted create killed before its blocks were allocated is "
              "finished with the magic alone: a file of its header, truncated"),
    dict(id="restore-image-tail-alone", file="src/tx.c",
         find="""    if (pm_image_sets_tail(rt, off, src, len) ||
        pm_in_bits_tail(&rt->fixed, pm_load_acquire(&rt->n_pages), off, len)) {""",
         replace="""    if (pm_image_sets_tail(rt, off, src, len)) {""",
         what="a forged page image of the run bitmaps' tail alone is put back: "
              "a store into the file's hole there (a SIGBUS on a full disk)"),
    dict(id="ver-tail-read-mapped", file="src/verify.c",
         find="""    uint64_t lim = rt->max_pages, words = (lim + 63) / 64;
    if (!pm_fd_ours(rt))""",
         replace="""    uint64_t lim = rt->max_pages, words = (lim + 63) / 64;
    if (true || !pm_fd_ours(rt))""",
         what="where the file cannot be opened again, a check reads the bitmaps' "
              "tail through the mapping: on a full tmpfs a SIGBUS (G8)"),
    dict(id="fill-backs-bitmap-tail", file="src/recover.c",
         find="""        int r = pm_back_file(rt->fd, &rt->fixed, pm_load_acquire(&rt->n_pages),
                             holes != PM_HOLES_LAZY);""",
         replace="""        uint64_t size = rt->data_off + (pm_load_acquire(&rt->n_pages) << rt->page_shift);
        int r = holes == PM_HOLES_LAZY ? os_allocate(rt->fd, 0, size)
                                       : os_fill_holes(rt->fd, 0, size);""",
         what="the open that fills holes (after punches, or a lazy writer) backs "
              "the run bitmaps for the whole maximum"),
    dict(id="lazy-reuse-backs", file="src/pages.c",
         find="""    if (!rt->can_punch || (rt->open_flags & PERSISTENT_OPEN_LAZY) ||""",
         replace="""    if (!rt->can_punch ||""",
         what="a lazy space backs a punched run again before handing it out"),

    # ------------------------------------------------------------ recover.c
    dict(id="rec-no-remote-drain", file="src/recover.c",
         find="""            if (r != 0 && repair) {""",
         replace="""            if (r != 0 && false) {""",
         what="recovery does not apply pending remote frees (alloc &= ~remote)"),
    dict(id="rec-gap-end-kept", file="src/recover.c",
         find="""            clear_bits_in(rt, rt->end_bits, p, gap_end);""",
         replace="""            (void)0;""",
         what="recovery leaves stray END bits in the gaps between runs"),
    dict(id="rec-gap-end-offbyone", file="src/recover.c",
         find="""            clear_bits_in(rt, rt->end_bits, p, gap_end);""",
         replace="""            clear_bits_in(rt, rt->end_bits, p + 1, gap_end);""",
         what="off by one: a stray END on the first page of a gap is kept"),
    dict(id="rec-gap-kind-kept", file="src/recover.c",
         find="""            clear_bits_in(rt, rt->kind_bits, p, gap_end);""",
         replace="""            (void)0;""",
         what="recovery leaves stray KIND bits in the gaps between runs"),
    dict(id="rec-empty-sb-kept", file="src/recover.c",
         find="""        if (used == 0 && repair) {""",
         replace="""        if (used == 0 && false) {""",
         what="recovery keeps superblocks with no live block"),
    dict(id="snap-forget-none-ensure", file="src/publish.c",
         find="""            pm_snap_forget(rt, aw, sizeof *aw);     /* the open's copy of them */
            pm_snap_forget(rt, rw, sizeof *rw);""",
         replace="""            (void)0;""",
         what="recovery's rollbacks of transactions and publishing calls change a "
              "superblock's bits and leave the open's copy of them as it was: the trial's "
              "verification and the rebuild see the file before them"),
    dict(id="snap-forget-starts-only", file="src/recover.c",
         find="""        if (lo < start + SNAP_MAX)""",
         replace="""        if (lo <= start)""",
         what="a write forgets only the copies that start inside it, not one whose "
              "header it writes past the first bytes (a superblock's bits)"),
    dict(id="snap-forget-mark-ignored", file="src/recover.c",
         find="""    if (k == sn->n || sn->idx[k] >> 32 != first || (sn->idx[k] & SNAP_GONE) == SNAP_GONE)""",
         replace="""    if (k == sn->n || sn->idx[k] >> 32 != first)""",
         what="a forgotten copy is still handed out"),
    dict(id="snap-back-not-moved", file="src/recover.c",
         find="""            if (keep < SNAP_MAX)
                memmove(sn->arena + cur, dst, keep);""",
         replace="""            (void)dst;""",
         what="a lane's back reader leaves each copy where it read it, below where its "
              "index entry says it is"),
    dict(id="snap-back-run-short", file="src/recover.c",
         find="""        *lo = back ? b - k : f;""",
         replace="""        *lo = back ? b - k + 1 : f;""",
         what="a run taken from a lane's back leaves its first superblock unread: the "
              "open reads that header through the mapping"),
    dict(id="snap-front-overlap", file="src/recover.c",
         find="""                cur += keep;
                if (bad) {""",
         replace="""                cur += sizeof(struct pm_sb_header);
                if (bad) {""",
         what="a lane's front reader packs each copy over the last one's bitmaps"),
    dict(id="snap-tail-past-back", file="src/recover.c",
         find="""        while (sn->n < max_n && used + SNAP_MAX <= lane[j].back &&""",
         replace="""        while (sn->n < max_n && used + SNAP_MAX <= lane[j].end &&""",
         what="where the arena's bound cut the list short, the copies past it fill a "
              "lane up to its end, over its back reader's copies"),
    dict(id="snap-tail-none", file="src/recover.c",
         find="""    bool bad = first_bad != UINT64_MAX;
    for (unsigned j = 0;""",
         replace="""    bool bad = true;
    for (unsigned j = 0;""",
         what="where the arena's bound cut the list short, nothing past it is copied: "
              "those headers are read through the mapping"),
    dict(id="snap-trial-drops-copy", file="src/recover.c",
         find="""    if (r != 1)
        pm_snap_drop(rt);""",
         replace="""    pm_snap_drop(rt);""",
         what="the rollback's trial drops the open's copy: the open that recovers for "
              "real reads every header again (an open of 1 GiB that rolls back: 25 -> "
              "50 ms)"),
    dict(id="snap-dropped-at-rollback", file="src/tx.c",
         find="""        uint32_t phase = (uint32_t)(state & PM_TX_PHASE);
""",
         replace="""        uint32_t phase = (uint32_t)(state & PM_TX_PHASE);
        if (phase == PM_TX_COMMITTED || phase == PM_TX_ACTIVE)
            pm_snap_drop(rt);
""",
         what="transaction recovery drops the open's copy before it writes (as before "
              "2026-12-05): the trial verifies every header through its mapping and the "
              "open reads them all again (25 -> 150 ms for 1 GiB)"),
    dict(id="snap-forget-none-snapshot", file="src/tx.c",
         find="""                pm_snap_forget(rt, rt->base + at, len);""",
         replace="""                (void)0;""",
         what="a snapshot put back by recovery does not forget the open's copies it overlaps",
         equivalent=(
             "a snapshot put back lies in a block verify.c found live, and no block "
             "overlaps a superblock's header or bitmaps, which is all a copy holds")),
    dict(id="snap-forget-none-lane", file="src/publish.c",
         find="""    pm_snap_forget(rt, l, sizeof *l);
    lane_clear(rt, l);
    return 0;
}""",
         replace="""    lane_clear(rt, l);
    return 0;
}""",
         what="lanes recovery clears a lane record without forgetting the open's copies it overlaps",
         equivalent=(
             "a lane record is in the space's header or in a lane table, a block: "
             "never in a superblock's header or bitmaps")),
    dict(id="snap-page-restore-keeps", file="src/tx.c",
         find="""    pm_snap_drop(rt);
    if (off != 0) {""",
         replace="""    if (off != 0) {""",
         what="a page image put back by recovery leaves the open's copy whole",
         equivalent=(
             "no copy is live when a page image is put back: the trial makes one only "
             "when pm_tx_restore_pages wrote no page, and then neither its rollback "
             "nor the real open's (the same file, the same log) writes one; the drop "
             "guards a copy made earlier on some later path")),
    dict(id="snap-repair-to-copy", file="src/recover.c",
         find="""        struct pm_sb_header *wh = sb_header(rt, (uint32_t)s);""",
         replace="""        struct pm_sb_header *wh = h;""",
         what="the open applies pending remote frees to its copy of the headers, "
              "not to the file"),
    dict(id="open-huge-count-all", file="src/recover.c",
         find="""            if (t_ctl >= half && rt->max_pages >= per_ctl)""",
         replace="""            if (t_ctl + half >= half && rt->max_pages >= per_ctl)""",
         what="an open asks for huge pages for every control word huge page of the "
              "file's pages, however few superblocks write it (memory, not speed)"),
    dict(id="open-huge-none", file="src/recover.c",
         find="""    rt->ctl = (struct pm_sbctl *)(v + ctl_at);
    runtime_hugepages(rt);""",
         replace="""    rt->ctl = (struct pm_sbctl *)(v + ctl_at);""",
         what="an open asks for no huge pages: a dense space's rebuild takes a page "
              "fault for each 4 KiB of control words (speed)"),
    dict(id="vol-alloc-tail-off-page", file="src/os_posix.c",
         find="""        (void)munmap(p + head + whole, extra - head);""",
         replace="""        (void)munmap(p + head + size, extra - head);""",
         what="an aligned volatile reservation unmaps its tail from an address off a page "
              "boundary: the unmap fails and up to 2 MiB stay mapped at each open"),
    dict(id="rec-write-no-remote", file="src/recover.c",
         find="""    if (by_write && write_words(rt, &h->bits[lo], &wh->bits[lo], len) == 0 &&
        write_words(rt, &h->bits[nw + lo], &wh->bits[nw + lo], len) == 0)""",
         replace="""    if (by_write && write_words(rt, &h->bits[lo], &wh->bits[lo], len) == 0)""",
         what="the open's repair by pwrite writes the allocation words and not the "
              "remote ones: the file keeps the frees pending"),
    dict(id="rec-write-alloc-kept", file="src/recover.c",
         find="""                pm_store_relaxed(&al[w], a & ~r);""",
         replace="""                pm_store_relaxed(&al[w], a);""",
         what="the open's repair by pwrite clears the remote bits and keeps the "
              "allocation bits: the freed blocks stay allocated on file"),
    dict(id="rec-write-range-short", file="src/recover.c",
         find="""    size_t len = (size_t)(hi - lo + 1) * sizeof(uint64_t);""",
         replace="""    size_t len = (size_t)(hi - lo) * sizeof(uint64_t);""",
         what="off by one: the open's repair by pwrite leaves out the last word it changed"),
    dict(id="rec-write-past-fsize-limit", file="src/recover.c",
         find="""                     os_write_fits(rt->data_off + (n << rt->page_shift)) &&""",
         replace="""                     true &&""",
         what="the open repairs by pwrite under a file size limit below the file's end: "
              "SIGXFSZ ends the process at every open"),
    dict(id="rec-write-remote-first", file="src/recover.c",
         find="""    if (by_write && write_words(rt, &h->bits[lo], &wh->bits[lo], len) == 0 &&
        write_words(rt, &h->bits[nw + lo], &wh->bits[nw + lo], len) == 0)""",
         replace="""    if (by_write && write_words(rt, &h->bits[nw + lo], &wh->bits[nw + lo], len) == 0 &&
        write_words(rt, &h->bits[lo], &wh->bits[lo], len) == 0)""",
         what="the open's repair by pwrite clears the remote words before it writes the "
              "allocation words: a crash between the two leaves the freed blocks "
              "allocated with nothing left to free them"),
    dict(id="rec-pmem-by-map", file="src/recover.c",
         find="""                     rt->map_mode == PM_MODE_WRITER && rt->fd >= 0 && !rt->flush_sim &&""",
         replace="""                     rt->map_mode == PM_MODE_WRITER && rt->fd >= 0 && rt->flush == NULL &&""",
         what="an open in PMEM durability repairs the remote frees through the mapping "
              "(as before 2026-12-05): a page fault for each superblock repaired, 42 "
              "instead of 23 ms for 1 GiB after a SIGKILL"),
    dict(id="rec-pmem-write-plain", file="src/recover.c",
         find="""    int r = rt->flush != NULL ? os_pwrite_durable(rt->fd, (const void *)from, len, at)""",
         replace="""    int r = false ? os_pwrite_durable(rt->fd, (const void *)from, len, at)""",
         what="an open in PMEM durability repairs with plain pwrite: the words are in the "
              "page cache, not durable, when the remote words are cleared after them"),
    dict(id="rec-durable-no-sync", file="src/os_posix.c",
         find="""        ssize_t n = pwritev2(fd, &iov, 1, (off_t)off, RWF_DSYNC);""",
         replace="""        ssize_t n = pwritev2(fd, &iov, 1, (off_t)off, 0);""",
         what="a durable write is written without RWF_DSYNC"),
    dict(id="rec-map-no-persist-alloc", file="src/recover.c",
         find="""    pm_persist(rt, &wh->bits[lo], len);
    for (uint32_t w = lo; w <= hi; w++)""",
         replace="""    for (uint32_t w = lo; w <= hi; w++)""",
         what="a repair through the mapping clears the remote words before the "
              "allocation words are durable: a power failure between them keeps the "
              "freed blocks allocated with nothing left to free them"),
    dict(id="rec-map-no-persist-remote", file="src/recover.c",
         find="""        pm_store_relaxed(&wh->bits[nw + w], 0);
    pm_persist(rt, &wh->bits[nw + lo], len);""",
         replace="""        pm_store_relaxed(&wh->bits[nw + w], 0);""",
         what="a repair through the mapping never writes back the remote words it clears"),
    dict(id="snap-short-bitmaps", file="src/recover.c",
         find="""    return sizeof *h + (*bad ? 0 : 2 * sizeof(uint64_t) * h->n_words);""",
         replace="""    return sizeof *h + (*bad ? 0 : sizeof(uint64_t) * h->n_words);""",
         what="an open's copy keeps a superblock's header and allocation bitmap and "
              "not its remote bitmap, which the next superblock's copy overwrites"),
    dict(id="rec-no-lanes", file="src/recover.c",
         find="""            r = pm_lanes_recover(rt);""",
         replace="""            r = 0;""",
         what="recovery skips the publish lanes"),
    dict(id="rec-lanes-after-rebuild", file="src/recover.c",
         find="""        int r = pm_tx_recover(rt);
        if (r == 0)
            r = pm_lanes_recover(rt);
        if (r < 0)
            return r;
        pm_tx_salt_logs(rt);
    }
    /* a restored page image dropped the copy, or none was made (a trial
     * that restored pages builds none): read now, the file is what the
     * rebuild must see (docs/design.md, "Reopen of a space with many
     * superblocks") */
    if (rt->snap == NULL)
        snap_build(rt);
    rebuild(rt, repair);""",
         replace="""        int r = pm_tx_recover(rt);
        if (r < 0)
            return r;
        pm_tx_salt_logs(rt);
    }
    /* a restored page image dropped the copy, or none was made (a trial
     * that restored pages builds none): read now, the file is what the
     * rebuild must see (docs/design.md, "Reopen of a space with many
     * superblocks") */
    if (rt->snap == NULL)
        snap_build(rt);
    rebuild(rt, repair);
    if (repair) {
        int r = pm_lanes_recover(rt);
        if (r < 0)
            return r;
    }""",
         what="lanes are recovered after the rebuild walk (its volatile state goes stale)"),
    dict(id="rec-no-root-marks", file="src/recover.c",
         find="""    if (repair)
        pm_root_marks_rebuild(rt);""",
         replace="""    (void)pm_root_marks_rebuild;""",
         what="root marks are not rebuilt at open: a root's block can be freed after a reopen"),

    # ------------------------------------------------------------ verify.c
    dict(id="ver-no-overlap", file="src/verify.c",
         find="""        if (pg_next_set(rt->start_bits, s + 1, r.last + 1) != PG_NONE) {""",
         replace="""        if (false) {""",
         what="validation: overlapping runs accepted"),
    dict(id="ver-sb-length", file="src/verify.c",
         find="""            if (!sb_header_valid(rt, &copy.h, s) || s + copy.h.n_pages - 1 != r.last) {""",
         replace="""            if (!sb_header_valid(rt, &copy.h, s)) {""",
         what="validation: a superblock shorter or longer than its run accepted"),
    dict(id="ver-bits-past-end", file="src/verify.c",
         find="""            if ((pm_load_relaxed(&copy.h.bits[nw - 1]) & ~sb_last_mask(r.h)) ||
                (pm_load_relaxed(&copy.h.bits[2 * nw - 1]) & ~sb_last_mask(r.h))) {""",
         replace="""            if (false) {""",
         what="validation: bitmap bits past a superblock's last block accepted"),
    dict(id="ver-no-tail", file="src/verify.c",
         find="""        uint64_t p = tail_set(rt, pfd, foff[i], tail[i], n);""",
         replace="""        uint64_t p = PG_NONE;""",
         what="validation: run bits past the committed page count accepted"),
    dict(id="ver-tail-check-reads-holes", file="src/verify.c",
         find="""    int pfd = pm_fd_again(rt);""",
         replace="""    int pfd = counts ? -1 : pm_fd_again(rt);""",
         what="a check reads the run bitmaps' tail through the mapping, holes and all: "
              "on tmpfs each hole becomes a page of the file, and on a full file "
              "system the check of a lazy space dies of SIGBUS (G8)"),
    dict(id="ver-lane-place", file="src/verify.c",
         find="""    if (op > PM_LANE_REALLOC || !pm_lane_dest_ok(rt, l, op) ||
        !place_ok(rt, l->block_off) ||""",
         replace="""    if (op > PM_LANE_REALLOC || !pm_lane_dest_ok(rt, l, op) ||""",
         what="validation: a lane naming a place no block can start accepted"),
    dict(id="ver-root-live", file="src/verify.c",
         find="""    if (!live) {
        bad(rs->rep, "root %#llx names %#llx, which is not a live block",""",
         replace="""    if (!live && false) {
        bad(rs->rep, "root %#llx names %#llx, which is not a live block",""",
         what="validation: a root naming a block that is not live accepted"),
    dict(id="ver-root-twice", file="src/verify.c",
         find="""            if (rs.vals[i] == rs.vals[i - 1]) {""",
         replace="""            if (false) {""",
         what="validation: one block as the root of two tags accepted"),
    dict(id="ver-root-table-cap", file="src/verify.c",
         find="""    if (t->magic != PM_ROOT_TABLE_MAGIC || t->cap != cap ||""",
         replace="""    if (t->magic != PM_ROOT_TABLE_MAGIC ||""",
         what="validation: an overflow root table's capacity is trusted"),
    dict(id="ver-lane-table-live", file="src/verify.c",
         find="""    if (!free_place && pm_block_live(rt, off) < size)
        return NULL;""",
         replace="",
         what="validation: an overflow lane table that is neither a live block nor in a "
              "free place accepted"),

    # ------------------------------------------------------------ space.c
    dict(id="space-grow-publish-early", file="src/space.c",
         find="""    pm_hook(PM_HOOK_GROW_ALLOCATED);
    uint64_t expect = n;""",
         replace="""    publish_pages(rt, t);
    pm_hook(PM_HOOK_GROW_ALLOCATED);
    uint64_t expect = n;""",
         what="growth publishes the new pages before the header commit"),
    dict(id="space-grow-handout-first", file="src/space.c",
         find="""        int r = grow_step(rt, n, t);""",
         replace="""        publish_pages(rt, t);
        int r = grow_step(rt, n, t);""",
         what="growth hands pages out before the file is extended and the count committed"),
    dict(id="space-grow-commit-before-extend", file="src/space.c",
         find="""    r = os_allocate(rt->fd, pages_bytes(rt, n), (t - n) << rt->page_shift);""",
         replace="""    {
        uint64_t early = n;
        if (pm_cas_strong_acq_rel(&rt->hdr->live.n_pages, &early, t))
            persist_header(rt, &rt->hdr->live.n_pages, sizeof rt->hdr->live.n_pages);
    }
    r = os_allocate(rt->fd, pages_bytes(rt, n), (t - n) << rt->page_shift);""",
         what="growth commits the page count before the file is extended"),
    dict(id="space-grow-no-sync", file="src/space.c",
         find="""    if (r == 0 && rt->durability != PM_DUR_PROCESS) {
        r = os_fdatasync(rt->fd);""",
         replace="""    if (r == 0 && false) {
        r = os_fdatasync(rt->fd);""",
         what="growth commits before the new file size is synced"),
    dict(id="space-grow-commit-nopersist", file="src/space.c",
         find="""    if (pm_cas_strong_acq_rel(&rt->hdr->live.n_pages, &expect, t)) {
        persist_header(rt, &rt->hdr->live.n_pages, sizeof rt->hdr->live.n_pages);""",
         replace="""    if (pm_cas_strong_acq_rel(&rt->hdr->live.n_pages, &expect, t)) {""",
         what="the grower does not persist its commit of the page count",
         equivalent=(
             "the count the grower commits is made durable before any page of "
             "the growth is handed out either way: pm_space_grow's next pass "
             "(and any helper) calls publish_pages, which persists "
             "hdr->live.n_pages before it raises rt->n_pages; the persist in "
             "grow_step only makes that durable earlier (race-grow in "
             "test_crashpoints stops the grower there and finds the space "
             "consistent)")),
    dict(id="space-publish-nopersist", file="src/space.c",
         find="""    /* the commit may be another thread's, not yet written back */
    persist_header(rt, &rt->hdr->live.n_pages, sizeof rt->hdr->live.n_pages);""",
         replace="""    /* the commit may be another thread's, not yet written back */""",
         what="a helper publishes another thread's commit before it is durable"),
    dict(id="space-grow-no-bits-check", file="src/space.c",
         find="""        uint64_t p = pg_next_set(bits[i], n, t);
        if (p != PG_NONE)""",
         replace="""        uint64_t p = pg_next_set(bits[i], n, t);
        if (p != PG_NONE && false)""",
         what="growth adopts pages whose run bits are set (damaged tail)"),
    # ------------------------------------------------------------ tx.c
    dict(id="tx-add-nofence", file="src/tx.c",
         find="""    pm_persist(rt, e, ENT + round8(len));   /* before the caller's change */""",
         replace="""    pm_flush(rt, e, ENT + round8(len));""",
         what="a snapshot flushed but not fenced: the caller's change can be durable first"),
    dict(id="tx-alloc-entry-nofence", file="src/tx.c",
         find="""    pm_persist(rt, e, ENT);                 /* before the block is live */""",
         replace="""    pm_flush(rt, e, ENT);""",
         what="an allocation's entry not durable before its bit: a crash leaks the block"),
    dict(id="tx-commit-data-nofence", file="src/tx.c",
         find="""    /* data, entries, allocation bits, the last commit's frees */
    pm_drain(rt);""",
         replace="""    /* no fence */""",
         what="the commit point can be durable before the transaction's data"),
    dict(id="tx-commit-state-nofence", file="src/tx.c",
         find="""    set_state(rt, tx, tx->frees.n ? PM_TX_COMMITTED : PM_TX_IDLE, true);  /* the commit point */""",
         replace="""    set_state(rt, tx, tx->frees.n ? PM_TX_COMMITTED : PM_TX_IDLE, false);""",
         what="a committed transaction can be rolled back by a crash after commit returned"),
    dict(id="tx-recover-no-restore", file="src/tx.c",
         find="""                memcpy(rt->base + at, sn + 1, len);
                pm_flush(rt, rt->base + at, len);""",
         replace="""                (void)len;""",
         what="recovery does not restore snapshots"),
    dict(id="tx-recover-order", file="src/tx.c",
         find="""            while (n-- > 0) {
                const struct pm_txent *sn = snaps[n];""",
         replace="""            for (size_t m = 0; m < n; m++) {
                const struct pm_txent *sn = snaps[m];""",
         what="snapshots restored oldest first: a range snapshotted twice ends half new"),
    dict(id="tx-recover-alloc-kept", file="src/tx.c",
         find="""                if (kind == PM_TXE_ALLOC) {
                    pub_ensure(rt, e->off, false);""",
         replace="""                if (kind == PM_TXE_ALLOC) {""",
         what="rolling back does not free the transaction's allocations"),
    dict(id="tx-recover-frees-skipped", file="src/tx.c",
         find="""        if ((e->kind_len & 0xff) == PM_TXE_FREE)
            pub_ensure(rt, e->off, false);""",
         replace="""        (void)e;""",
         what="a committed transaction's frees are not finished by recovery"),
    dict(id="tx-abort-order", file="src/tx.c",
         find="""    for (size_t i = tx->snaps.n; i-- > 0;) {
        const struct range *r = &tx->snaps.v[i];""",
         replace="""    for (size_t i = 0; i < tx->snaps.n; i++) {
        const struct range *r = &tx->snaps.v[i];""",
         what="abort restores snapshots oldest first"),
    dict(id="tx-free-no-mark", file="src/tx.c",
         find="""    bool marked = pm_mark_at(rt, rt->txmark, off, run);""",
         replace="""    bool marked = true;""",
         what="a transaction's allocation is not held: another thread's free goes through"),
    dict(id="tx-mark-run-of-page", file="src/tx.c",
         find="""        run = t->sb;""",
         replace="""        run = (uint32_t)(((char *)rv.blk - rt->data) >> rt->page_shift);""",
         what="a transaction's allocation is counted at its own page, not at its superblock's "
              "first page: that run's count no longer says its blocks are marked"),
    dict(id="tx-log-no-scavenge", file="src/tx.c",
         find="""            pm_op_enter(rt, tx->rec);
            first = lg_reserve(rt, tx->rec, n << rt->page_shift,
                               unit > 1 ? unit << rt->page_shift : 0, &got);
            pm_op_end(tx->rec);""",
         replace="""            (void)got;
            if ((first = pg_alloc(rt, n, unit)) == PG_NONE && pg_cache_reclaim(rt))
                first = pg_alloc(rt, n, unit);""",
         what="a transaction's log claims its next segment from free pages and kept "
              "runs only: ENOMEM while the thread's spare superblocks, or an idle "
              "thread's empty ones, hold the pages a malloc would find"),
    dict(id="tx-room-not-taken", file="src/tx.c",
         find="""        tx->roomy--;
        return true;""",
         replace="""        return true;""",
         what="calls are taken to have room in the transaction's lists without being "
              "counted: a list fills past its mapping"),
    dict(id="tx-free-live-unchecked", file="src/tx.c",
         find="""        if (!(pm_load_relaxed(&loc->h->bits[w]) & bit) ||
            (pm_load_relaxed(&loc->h->bits[((n + 63) >> 6) + w]) & bit))
            return false;""",
         replace="""        (void)bit, (void)w;""",
         what="persistent_tx_free takes a free small block for a live one (G5: a double free "
              "accepted)"),
    dict(id="tx-free-remote-unchecked", file="src/tx.c",
         find="""        if (!(pm_load_relaxed(&loc->h->bits[w]) & bit) ||
            (pm_load_relaxed(&loc->h->bits[((n + 63) >> 6) + w]) & bit))
            return false;""",
         replace="""        if (!(pm_load_relaxed(&loc->h->bits[w]) & bit))
            return false;""",
         what="persistent_tx_free takes a block another thread freed (its remote bit set, "
              "not yet collected) for a live one"),
    dict(id="tx-free-marks-gate-inverted", file="src/tx.c",
         find="""    if (pm_load_relaxed(&rt->ctl[run].marks) != 0) {""",
         replace="""    if (pm_load_relaxed(&rt->ctl[run].marks) == 0) {""",
         what="tx_free looks for marks only where there are none: a root's block, "
              "another transaction's block or a second free of one block goes through"),
    dict(id="tx-free-own-alloc-refused", file="src/tx.c",
         find="""                   : f & OSET_MARKED ? (mine = true, 0)""",
         replace="""                   : f & OSET_MARKED ? PERSISTENT_E_TX_BLOCK""",
         what="a transaction cannot free a block it allocated itself"),
    dict(id="tx-oset-kept", file="src/tx.c",
         find="""    if (tx->indexed) {
        oset_clear(&tx->mset);
        tx->indexed = false;
    }""",
         replace="""    (void)0;""",
         what="a transaction's table of its blocks outlives it: a later transaction "
              "takes another's block, once its own, for its own"),
    dict(id="tx-oset-clear-skipped", file="src/tx.c",
         find="""        oset_clear(&tx->mset);
        tx->indexed = false;""",
         replace="""        tx->indexed = false;""",
         what="a transaction's table is not emptied: the next one to build its table "
              "finds the old blocks in it"),
    dict(id="tx-commit-first-location", file="src/tx.c",
         find="""            *pf = tx->floc[i];                      /* located by tx_free */""",
         replace="""            *pf = tx->floc[0];""",
         what="the commit frees the first freed block's location for every free"),
    dict(id="tx-commit-stale-large", file="src/tx.c",
         find="""            if (pf->large && pub_free_locate(rt, rt->base + tx->frees.v[i].off, pf) != 0)
                continue;""",
         replace="""            (void)0;""",
         what="a PMEM commit holds the free of a large block where it ended when tx_free "
              "saw it: a run shrunk in place since gives its old tail, now another "
              "block's, back too"),
    dict(id="tx-frees-now-stale-large", file="src/tx.c",
         find="""        if (pf->large && pub_free_locate(rt, rt->base + tx->frees.v[i].off, pf) != 0)
            continue;""",
         replace="""        (void)0;""",
         what="a PROCESS commit frees a large block where it ended when tx_free saw it: "
              "a run shrunk in place since gives its old tail, now another block's, back too"),
    dict(id="tx-add-own-alloc-windowed", file="src/tx.c",
         find="""    if (covered(&tx->snaps, off, len) || tx_allocated(tx, start))""",
         replace="""    if (covered(&tx->snaps, off, len) || covered(&tx->allocs, off, len))""",
         what="a snapshot inside a block the transaction made, past the newest 64, is "
              "logged: an abort or recovery cut short after freeing the block leaves a "
              "log naming a range in no live block, and the space no longer opens"),
    dict(id="tx-snap-no-hold", file="src/tx.c",
         find="""    bool own = tx_held(tx, start), hold = !own;
    if (hold && !pm_hold_at(rt, start, run))""",
         replace="""    bool own = tx_held(tx, start), hold = false;
    if (hold && !pm_hold_at(rt, start, run))""",
         what="a snapshotted block is not held: a plain free or resize of it goes "
              "through and the rollback writes where the block no longer is"),
    dict(id="tx-snap-hold-kept", file="src/tx.c",
         find="""            for (size_t i = 0; i < tx->holds.n; i++)
                pm_unhold_bit(rt, tx->holds.v[i].off);""",
         replace="""            (void)0;""",
         what="a transaction's snapshot holds outlive it: the block can never be "
              "freed by a plain call again"),
    dict(id="hold-run-not-flagged", file="src/internal.h",
         find="""    if (!(pm_load_seq_cst(m) & PM_MARKS_HOLD))
        pm_fetch_or_seq_cst(m, (uint16_t)PM_MARKS_HOLD);""",
         replace="""    (void)m;""",
         what="a hold leaves its run unflagged: the free fast path never looks at "
              "the block's hold and frees it"),
    dict(id="unhold-clears-word", file="src/internal.h",
         find="""    pm_fetch_and_seq_cst(&rt->snapmark[g >> 6], ~(UINT64_C(1) << (g & 63)));""",
         replace="""    pm_store_release(&rt->snapmark[g >> 6], (uint64_t)0);""",
         what="a transaction's end gives back the holds of the blocks beside its "
              "own (one bitmap word), which other threads' transactions still hold"),
    dict(id="free-fast-ignores-hold", file="src/free.c",
         find="""(marks != PM_MARKS_HOLD || held_here(rt, ptr))""",
         replace="""marks != PM_MARKS_HOLD""",
         what="the free fast path takes a flagged run as unmarked, so a held block "
              "is freed"),
    dict(id="held-slow-ignores-snapmark", file="src/roots.c",
         find="""    if (pm_marked(rt, rt->txmark, off) || pm_snap_held(rt, off))""",
         replace="""    if (pm_marked(rt, rt->txmark, off))""",
         what="plain frees do not look at snapshot holds"),
    dict(id="realloc-ignores-snapmark", file="src/alloc.c",
         find="""    } else if (pm_snap_held(rt, (uint64_t)((char *)p - rt->base))) {""",
         replace="""    } else if (false) {""",
         what="a realloc shrinks in place a block an open transaction snapshotted"),
    dict(id="realloc-into-ignores-snapmark", file="src/publish.c",
         find="""    if (lg_usable(rt, old) != 0 && pm_snap_held(rt, ooff)) {""",
         replace="""    if (false) {""",
         what="realloc-into resizes in place a block an open transaction snapshotted"),
    dict(id="root-remove-ignores-snapmark", file="src/publish.c",
         find="""    if (pm_snap_held(rt, v)) {""",
         replace="""    if (false) {""",
         what="a root's removal frees its block under an open transaction's snapshot"),
    dict(id="tx-add-ignores-other-marks", file="src/tx.c",
         find="""    if (!own && tx_marked_by_other(rt, tx, run, start)) {""",
         replace="""    if (false) {""",
         what="a snapshot is taken in a block another open transaction frees or "
              "made: that transaction's end leaves it in a free block"),
    dict(id="tx-free-ignores-snapmark", file="src/tx.c",
         find="""    if (!mine && tx_held_by_other(rt, tx, run, off)) {""",
         replace="""    if (false) {""",
         what="a transaction frees a block another transaction snapshotted"),
    dict(id="tx-auto-log-in-freed-pages", file="src/tx.c",
         find="""static uint64_t seg_claim(struct pm_rt *rt, struct pm_tx *tx, uint64_t n, uint64_t unit)
{
""",
         replace="""static uint64_t seg_claim(struct pm_rt *rt, struct pm_tx *tx, uint64_t n, uint64_t unit)
{
    if (true)
        return pg_alloc(rt, n, unit);
""",
         what="an automatic transaction's log goes on in pages freed since it began: "
              "its entries overwrite blocks the rollback makes live again"),
    dict(id="tx-auto-log-no-growth", file="src/tx.c",
         find="""            for (int grown = 0; first == PG_NONE && grown < 4; grown++) {""",
         replace="""            for (int grown = 0; first == PG_NONE && false && grown < 4; grown++) {""",
         what="an automatic transaction's log does not grow the space: the process "
              "ends when the pages run out"),
    dict(id="tx-auto-grown-not-flushed", file="src/tx.c",
         find="""        for (uint64_t p = tx->n0; p < n; p++)
            if (pg_bit(rt->used, p))""",
         replace="""        for (uint64_t p = tx->n0; p < n && false; p++)
            if (pg_bit(rt->used, p))""",
         what="an automatic transaction's commit does not write back the pages the "
              "space grew by: a block it filled there is lost to a power failure"),
    dict(id="tx-auto-huge-free-punched", file="src/pages.c",
         find="""        pm_load_acquire(&pm_auto_rt) != rt && pm_fd_check(rt, "punching a hole") == 0) {""",
         replace="""        pm_fd_check(rt, "punching a hole") == 0) {""",
         what="a huge block freed inside an automatic transaction is punched out of "
              "the file: the abort makes it live again with its bytes zeroed"),
    dict(id="recover-auto-pages-after-verify", file="src/tx.c",
         find="""    struct pm_lane *l;
    size_t restored = 0;""",
         replace="""    return 0;
    struct pm_lane *l;
    size_t restored = 0;""",
         what="an automatic transaction's page images are put back only after the "
              "open's verification: a crash that cut its rollback short leaves a "
              "space no writer can open"),
    dict(id="tx-restore-walk-strict", file="src/tx.c",
         find="""        it.loose = true;""",
         replace="""        it.loose = false;""",
         what="the walk that puts an automatic transaction's pages back judges its "
              "segments by run bits half put back: a torn restore of a run's bits cuts "
              "it short and the space is refused"),
    dict(id="tx-restore-over-log", file="src/tx.c",
         find="""    if (it->oom || overlaps(off, len, it->log_off, it->log_size))
        return false;""",
         replace="""    if (it->oom)
        return false;
    (void)overlaps;""",
         what="a rollback may put a page image or snapshot back over its own log's "
              "entries not yet restored: they are read rewritten"),
    dict(id="writer-busy-on-judges", file="src/os_posix.c",
         find="""        if (waited_ms >= 2000 || !held_shared(fd)) {""",
         replace="""        if (true || waited_ms >= 2000 || !held_shared(fd)) {""",
         what="a writer's open calls the space busy while a view's check holds the "
              "shared lock of a rollback's trial, instead of waiting for it"),
    dict(id="recover-rollback-untried", file="src/recover.c",
         find="""    if (!pm_tx_rollback_pending(rt))
        return 2;""",
         replace="""    return 2;""",
         what="an open rolls a transaction back without trying it first in a private "
              "mapping: a log whose bytes would damage the heap is written, then the "
              "space refused (the file changed) or recovered into damage"),
    dict(id="check-view-rollback-unjudged", file="src/check.c",
         find="""    if (why == NULL) {
        /* a view of a space in which""",
         replace="""    if (false) {
        /* a view of a space in which""",
         what="persistent_check of a view judges the heap as it is, not after the "
              "rollback a writer's open would do: it calls clean a space the writer "
              "refuses"),
    dict(id="tx-auto-no-snapshot", file="src/tx.c",
         find="""    pm_vg_quiet(true);                  /* a whole page: free blocks too */
    entry_fill(e, tx->gen, tx->key, PM_TXE_PAGE, off, page_of_os(), rt->base + off);
    pm_vg_quiet(false);
    pm_persist(rt, e, ENT + page_of_os());       /* before the write goes ahead */""",
         replace="""    (void)e;""",
         what="automatic mode lets a page be written without its snapshot"),
    dict(id="tx-close-leaves-auto", file="src/space.c",
         find="""        pm_tx_auto_close(live); /* an automatic transaction open on it: aborted */""",
         replace="""        (void)live;""",
         what="a close leaves an automatic transaction open on its space as it is: the "
              "next automatic transaction in the process is refused, and calls on the "
              "space opened again wait for ever"),
    dict(id="tx-auto-owner-by-pointer", file="src/tx.c",
         find="""    return auto_tx != NULL && auto_tx_gen == pm_load_acquire(&auto_gen) ? auto_tx : NULL;""",
         replace="""    return auto_tx;""",
         build="asan",
         what="a thread whose automatic transaction was closed under it takes the next "
              "one, another thread's, for its own (it reads its freed transaction)"),
    dict(id="fork-child-keeps-lock", file="src/space.c",
         find="""            os_release_after_fork(ours ? rt->fd : -1, rt->base, rt->reserve_size, used);""",
         replace="""            (void)ours, (void)used;""",
         what="a forked child keeps the parent's writer description (descriptor and "
              "mapping): nobody can open the space for writing while it lives, and what "
              "it writes reaches the parent's file"),
    dict(id="fork-private-heap-remapped", file="src/space.c",
         find="""            if (rt->own_copy) {""",
         replace="""            if (false) {""",
         what="a child forked beside a private open that recovered maps the file again "
              "over the private heap: the parent's private writes and blocks are gone "
              "in the child (the header promises its pages)"),
    dict(id="fork-private-heap-keeps-fd", file="src/space.c",
         find="""                if (ours)
                    os_close(rt->fd);""",
         replace="""                (void)ours;""",
         what="a child forked beside a private open that recovered keeps its descriptor, "
              "and with it the shared lock: writers kept out while the child lives (G6)"),
    dict(id="open-limit-checked-last", file="src/space.c",
         find="""    bool full = registry_used >= PM_MAX_OPEN;""",
         replace="""    bool full = false;""",
         what="G8: an open past the 256-space limit is refused only when it registers: "
              "the file is marked in use (or recovered) first, and a create leaves its "
              "file behind"),
    dict(id="open-limit-place-kept", file="src/space.c",
         find="""        if (r < 0)
            registry_unreserve();""",
         replace="""        if (r < 0)
            (void)registry_unreserve;""",
         what="an open that fails keeps its place among the 256: every failed open "
              "lowers the limit for good"),
    dict(id="space-of-reads-rt", file="src/space.c",
         find="""        pm_hook(PM_HOOK_REGISTRY_SCAN);
        uint64_t size = pm_load_acquire(&registry[i].size);""",
         replace="""        struct pm_rt *rt = pm_load_acquire(&registry[i].rt);
        if (rt == NULL)
            continue;
        pm_hook(PM_HOOK_REGISTRY_SCAN);
        uint64_t size = rt->reserve_size;""",
         build="asan",
         what="persistent_space_of reads each slot's runtime, which a close of that "
              "space frees meanwhile (use after free)"),
    dict(id="instance-open-reads-rt", file="src/space.c",
         find="""        pm_hook(PM_HOOK_REGISTRY_SCAN);
        if (pm_load_acquire(&registry[i].instance) == instance)""",
         replace="""        struct pm_rt *rt = pm_load_acquire(&registry[i].rt);
        if (rt == NULL)
            continue;
        pm_hook(PM_HOOK_REGISTRY_SCAN);
        if (rt->instance == instance)""",
         build="asan",
         what="a thread's look for a free entry of its table reads each slot's "
              "runtime, which a close of that space frees meanwhile (use after free)"),
    dict(id="fork-lost-fd-keeps-mapping", file="src/space.c",
         find="""            os_release_after_fork(ours ? rt->fd : -1, rt->base, rt->reserve_size, used);""",
         replace="""            if (ours)
                os_release_after_fork(rt->fd, rt->base, rt->reserve_size, used);""",
         what="a child forked after the program closed the space's descriptor keeps "
              "the mapping: the lock stays with it, and its writes reach the file"),
    dict(id="fork-child-keeps-auto", file="src/space.c",
         find="""    pm_tx_forget_after_fork();""",
         replace="""    (void)0;""",
         what="a child forked inside an automatic transaction keeps the parent's as "
              "open: every automatic transaction in the child is refused"),
    dict(id="fork-prepare-no-wait", file="src/space.c",
         find="""    while (pm_load_seq_cst(&fork_opening) > own)
        os_sleep_us(100);""",
         replace="""    (void)own;""",
         what="a fork does not wait for another thread's open: a child forked between "
              "the open's writer lock and its registry entry keeps the lock for its life"),
    dict(id="judge-close-without-unlock", file="src/recover.c",
         find="""        os_unlock(fd);
    } else {""",
         replace="""    } else {""",
         what="a view's judge closes its description without unlocking it: a child "
              "forked meanwhile keeps the shared lock and every writer is turned away"),
    dict(id="check-ten-passes", file="src/check.c",
         find="""    for (int pass = 0; pass < 64; pass++) {""",
         replace="""    for (int pass = 0; pass < 10; pass++) {""",
         what="a check gives up after ten passes: a writer growing the space during "
              "each of them has a healthy space called busy (corrupt, before)"),
    dict(id="check-still-ignored", file="src/check.c",
         find="""        if (still && !refused && holds_still(rt, &seq1) && seq1 == seq0)""",
         replace="""        if (false && !refused && holds_still(rt, &seq1) && seq1 == seq0)""",
         what="a check of a file nobody writes does not take its first pass as the "
              "verdict: damage costs three passes and their pauses"),
    dict(id="check-still-unverified", file="src/check.c",
         find="""        if (still && !refused && holds_still(rt, &seq1) && seq1 == seq0)""",
         replace="""        if (still && !refused)""",
         what="a check that found no writer before its pass takes the pass as the "
              "verdict without looking again: a writer that came meanwhile tore it"),
    dict(id="check-same-not-required", file="src/check.c",
         find="""        if (same == 3 || ++failed == 6)
            return pm_err""",
         replace="""        if (++failed == 3)
            return pm_err""",
         what="a check of a live space calls it damaged after any three failing "
              "passes, whatever they found"),
    dict(id="check-lane-in-flight-is-damage", file="src/verify.c",
         find="""    ls->rep->in_flight_lanes++;
    if (op > PM_LANE_REALLOC""",
         replace="""    ls->rep->in_flight_lanes++;
    if (true || op > PM_LANE_REALLOC""",
         what="a check calls a publishing call in flight damage: a writer's thread "
              "stopped inside one has a healthy space called corrupt"),
    dict(id="txlog-unpublished", file="src/publish.c",
         find="""    lane_set(rt, l, PM_LANE_ALLOC, (uint64_t)((char *)&l->tx_off - rt->base), boff, 0, size);
    lg_commit(rt, first, n);
    pm_store_release(&l->tx_off, boff);
    pm_persist(rt, &l->tx_off, sizeof l->tx_off);
    lane_clear(rt, l);""",
         replace="""    lg_commit(rt, first, n);
    pm_store_release(&l->tx_off, boff);
    pm_persist(rt, &l->tx_off, sizeof l->tx_off);""",
         what="a thread's transaction log allocated and then named by its lane, with "
              "no record: a crash in between leaks the log's 64 KiB"),
    dict(id="lane-dest-txoff-any-op", file="src/verify.c",
         find="""    if (op == PM_LANE_ALLOC && d == (uint64_t)((const char *)&l->tx_off - rt->base))""",
         replace="""    if (d == (uint64_t)((const char *)&l->tx_off - rt->base))""",
         what="a lane record that frees its own lane's transaction log is accepted: "
              "recovery drops a log it needs",
         equivalent=(
             "a free of the log its own lane names is refused anyway by the rule "
             "that a transaction log must outlive what recovery frees (verify.c, "
             "the same records; test_lane_txlog sees it refused), and a free or "
             "realloc there of any other block does what it would do from any "
             "other location")),
    dict(id="lane-dest-txoff-refused", file="src/verify.c",
         find="""    if (op == PM_LANE_ALLOC && d == (uint64_t)((const char *)&l->tx_off - rt->base))
        return true;""",
         replace="""    if (op == PM_LANE_ALLOC && d == (uint64_t)((const char *)&l->tx_off - rt->base))
        return pm_dest_ok(rt, d);""",
         what="a crash while a thread's log is being made leaves a record every open "
              "refuses as damage"),
    dict(id="check-still-private-view", file="src/check.c",
         find="""    return rt->mode != PM_MODE_WRITER && !rt->can_alloc && rt->fd >= 0 &&""",
         replace="""    return rt->mode != PM_MODE_WRITER && rt->fd >= 0 &&""",
         what="a private view that recovered (a heap its own threads change) is taken "
              "to hold still when no writer has the file: one torn pass is the verdict"),
    dict(id="lane-dest-overflow-txoff", file="src/verify.c",
         find="""        if (d >= first && d < end &&""",
         replace="""        if (false && d >= first && d < end &&""",
         what="a lane record naming the transaction log word of a lane in an "
              "overflow lane table is accepted"),
    dict(id="check-unjudged-counted", file="src/check.c",
         find="""        unjudged = j == PM_JUDGE_REFUSED;""",
         replace="""        unjudged = false;""",
         what="a view's pass that could not try the rollback a writer's open will do "
              "(a writer waits) judges the heap as it is: a crash image whole after "
              "the rollback is called corrupt"),
    dict(id="tx-auto-snapshot-nofence", file="src/tx.c",
         find="""    pm_persist(rt, e, ENT + page_of_os());       /* before the write goes ahead */""",
         replace="""    if (rt->flush) rt->flush->flush(e, ENT + page_of_os());""",
         what="a page's snapshot in automatic mode flushed but not fenced: the write "
              "it covers can be durable first, and a rollback has nothing to put back"),
    dict(id="tx-auto-commit-pages-unflushed", file="src/tx.c",
         find="""        if ((e->kind_len & 0xff) == PM_TXE_PAGE)
            pm_flush(rt, rt->base + e->off, e->kind_len >> 8);""",
         replace="""        if ((e->kind_len & 0xff) == PM_TXE_PAGE && false)
            pm_flush(rt, rt->base + e->off, e->kind_len >> 8);""",
         what="an automatic transaction's commit does not write back the pages it "
              "wrote: a power failure after the commit returned loses them"),
    dict(id="tx-auto-commit-nofence", file="src/tx.c",
         find="""    pm_drain(rt);
    set_state(rt, tx, PM_TX_IDLE, true);    /* the commit point */""",
         replace="""    set_state(rt, tx, PM_TX_IDLE, true);    /* the commit point */""",
         what="an automatic transaction's commit point can be durable before the "
              "pages it wrote"),
    dict(id="tx-auto-abort-nofence", file="src/tx.c",
         find="""    os_vol_free(pages, cap * sizeof *pages);
    pm_drain(rt);
    set_state(rt, tx, PM_TX_IDLE, true);""",
         replace="""    os_vol_free(pages, cap * sizeof *pages);
    set_state(rt, tx, PM_TX_IDLE, true);""",
         what="an automatic transaction's abort marks the log idle before the pages "
              "it put back are durable: a crash leaves them half restored"),
    dict(id="tx-auto-abort-oldest-first", file="src/tx.c",
         find="""    while (n-- > 0) {
        /* a page the log went on in since: what came before is durable""",
         replace="""    for (size_t i = 0; i < n / 2; i++) {
        const struct pm_txent *x = pages[i];
        pages[i] = pages[n - 1 - i];
        pages[n - 1 - i] = x;
    }
    while (n-- > 0) {
        /* a page the log went on in since: what came before is durable""",
         what="an automatic transaction's abort puts its page images back oldest "
              "first"),
    dict(id="tx-auto-page0-state", file="src/tx.c",
         find="""        pm_copy_raw(rt->base + live, src + live, keep);""",
         replace="""        pm_copy_raw(rt->base, src, PM_HEADER_SIZE);""",
         what="restoring the header page clobbers the state slots the open wrote"),
    dict(id="tx-verify-snapshot-range", file="src/verify.c",
         find="""            if (undo && kind == PM_TXE_SNAPSHOT && !range_in_live_block(rt, e->off, len)) {""",
         replace="""        if (false) {""",
         what="a snapshot that would be restored into allocator metadata is accepted"),
    dict(id="restore-image-tail-unchecked", file="src/tx.c",
         find="""    if (pm_image_sets_tail(rt, off, src, len) ||""",
         replace="""    if ((false && pm_image_sets_tail(rt, off, src, len)) ||""",
         what="a rollback puts back a page image that sets run bits past the committed "
              "page count: where the file holds a hole there (a lazy space on ext4) the "
              "views call the rolled back heap clean and a writer puts the bits in the file; "
              "in a page the file holds (test_damage's, since images of the tail alone are "
              "refused by their place) the check after the rollback finds the bit, and "
              "only the verdict's cause tells"),
    dict(id="tx-verify-page-shape", file="src/verify.c",
         find="""            if (undo && kind == PM_TXE_PAGE &&
                (len < 4096""",
         replace="""            if (false && undo && kind == PM_TXE_PAGE &&
                (len < 4096""",
         what="a page snapshot that is not a page of the file is accepted (restored anywhere)"),
    dict(id="tx-verify-alloc-place", file="src/verify.c",
         find="""            if ((kind == PM_TXE_ALLOC || kind == PM_TXE_FREE) && !place_ok(rt, e->off)) {""",
         replace="""        if (false) {""",
         what="a log's allocation or free naming a place no block starts is accepted"),
    dict(id="tx-verify-state", file="src/verify.c",
         find="""    if (phase > PM_TX_COMMITTED ||""",
         replace="""    if (phase > 200 ||""",
         what="a transaction log in an unknown state is accepted"),
    dict(id="tx-held-reusable", file="src/publish.c",
         find="""    return prepare_located(rt, rec, pf, false);""",
         replace="""    return prepare_located(rt, rec, pf, true);""",
         what="a committed transaction's freed block can be reused before the state "
              "word moves on: recovery may then free it under its new owner"),
    dict(id="tx-held-finish-early", file="src/tx.c",
         find="""    /* data, entries, allocation bits, the last commit's frees */
    pm_drain(rt);
    pm_hook(PM_HOOK_TX_COMMIT_POINT);
    set_state(rt, tx, tx->frees.n ? PM_TX_COMMITTED : PM_TX_IDLE, true);  /* the commit point */
    if (tx->frees.n && rt->durability != PM_DUR_PMEM) {
        commit_frees_now(rt, rec, tx);  /* unmarked there */
        tx_reset(rt, tx);
        return 0;
    }
    if (tx->n_held || tx->frees.n) {
        op_enter(rt, rec);
        held_finish(rt, rec, tx);""",
         replace="""    op_enter(rt, rec);
    held_finish(rt, rec, tx);
    pm_op_end(rec);
    pm_drain(rt);
    pm_hook(PM_HOOK_TX_COMMIT_POINT);
    set_state(rt, tx, tx->frees.n ? PM_TX_COMMITTED : PM_TX_IDLE, true);
    if (tx->frees.n && rt->durability != PM_DUR_PMEM) {
        commit_frees_now(rt, rec, tx);
        tx_reset(rt, tx);
        return 0;
    }
    if (tx->n_held || tx->frees.n) {
        op_enter(rt, rec);""",
         what="the last commit's freed blocks reusable before this commit point (PMEM)"),
    dict(id="tx-frees-now-reusable-early", file="src/tx.c",
         find="""    set_state(rt, tx, PM_TX_IDLE, true);
    tx_unmark(rt, tx);                  /* after the frees, before any reuse */
    for (size_t i = 0; i < n; i++)
        pub_free_finish(rt, rec, &tx->held[i]);""",
         replace="""    tx_unmark(rt, tx);
    for (size_t i = 0; i < n; i++)
        pub_free_finish(rt, rec, &tx->held[i]);
    set_state(rt, tx, PM_TX_IDLE, true);""",
         what="PROCESS: a commit's freed blocks reusable before the state word leaves "
              "COMMITTED: recovery may then free them under their new owner"),
    dict(id="tx-frees-now-idle-first", file="src/tx.c",
         find="""    op_enter(rt, rec);
    held_finish(rt, rec, tx);           /* none in these modes; for safety */""",
         replace="""    set_state(rt, tx, PM_TX_IDLE, true);
    op_enter(rt, rec);
    held_finish(rt, rec, tx);""",
         what="PROCESS: the state word IDLE before a commit's frees are done: a crash "
              "between loses them (the blocks leak)"),
    dict(id="tx-frees-now-not-sync", file="src/tx.c",
         find="""    if (tx->frees.n && rt->durability != PM_DUR_PMEM) {""",
         replace="""    if (tx->frees.n && rt->durability == PM_DUR_PROCESS) {""",
         what="SYNC durability holds a commit's frees for the next commit as PMEM "
              "does (documented as reusable at once)"),
    dict(id="tx-frees-now-in-pmem", file="src/tx.c",
         find="""    if (tx->frees.n && rt->durability != PM_DUR_PMEM) {""",
         replace="""    if (tx->frees.n) {""",
         what="PMEM: a commit's frees done and the state word IDLE with their bits "
              "written back but not fenced: a power failure may keep IDLE and lose "
              "the bits"),
    dict(id="tx-prev-flag-lost", file="src/tx.c",
         find="""        set_state(rt, tx, PM_TX_ACTIVE | (tx->n_held ? PM_TX_PREV : 0), false);""",
         replace="""        set_state(rt, tx, PM_TX_ACTIVE, false);""",
         what="a transaction's state word forgets the frees of the one before"),
    dict(id="tx-recover-prev-skipped", file="src/tx.c",
         find="""            if (state & PM_TX_PREV) {
                int r = redo_frees(rt, lg, (gen - 1) & PM_TX_GEN_MASK);    /* the other stream */""",
         replace="""            if (0) {
                int r = redo_frees(rt, lg, (gen - 1) & PM_TX_GEN_MASK);""",
         what="recovery does not finish the previous transaction's frees"),
    dict(id="tx-settle-nofence", file="src/tx.c",
         find="""static void settle_state(struct pm_rt *rt, struct pm_tx *tx)
{
    pm_drain(rt);""",
         replace="""static void settle_state(struct pm_rt *rt, struct pm_tx *tx)
{""",
         what="settling the last frees: the state word can be durable before their bits"),
    dict(id="tx-held-segs-released", file="src/tx.c",
         find="""            struct vec v = tx->pend_segs;       /* empty */
            tx->pend_segs = tx->segs;
            tx->segs = v;""",
         replace="""            (void)0;""",
         what="the pages holding a committed transaction's FREE entries are released "
              "while recovery may still read them"),
    dict(id="tx-verify-prev-frees", file="src/verify.c",
         find="""    for (int pass = prev ? 0 : 1; pass < 2; pass++) {""",
         replace="""    for (int pass = 1; pass < 2; pass++) {""",
         what="check ignores the previous transaction's frees (the other stream)"),
    dict(id="pages-punch-unannounced", file="src/pages.c",
         find="""        pm_holes_announce(rt, PM_HOLES_PUNCHED);
        if (os_punch(""",
         replace="""        if (os_punch(""",
         what="a hole punched while the header says the file has none: the open after a "
              "crash does not back it again (SIGBUS on a full disk)"),
    dict(id="ver-tail-first-data-only", file="src/verify.c",
         find="""        if (p != PG_NONE)
            return p;
        b = to;
    }
    return PG_NONE;""",
         replace="""        if (p != PG_NONE)
            return p;
        return PG_NONE;
    }
    return PG_NONE;""",
         what="an open's tail scan stops at the first stretch of data: a run bit far "
              "out in the bitmaps, past holes, goes unseen"),
# ------------------------------------------------------------ pins (publish.c), G5b fixes
    dict(id="pin-ignored", file="src/publish.c",
         find="""    bool pinned = pinned_by_other(rt, rec, off);""",
         replace="""    bool pinned = false;""",
         what="a publishing free ignores other threads' pins: the block another thread's "
              "live lane names is reusable at once, and a kill before that lane is idle "
              "has recovery free it where it was allocated again"),
    dict(id="pin-finish-not-handed", file="src/publish.c",
         find="""    if (!pinned || !pin_hand_on(rt, rec, off, pf->large ? pf->last - pf->first + 1 : 0))""",
         replace="""    if (true)""",
         what="a publishing free that sees a pin frees the block as held but finishes it "
              "itself: reusable while the pinning thread's lane still names it"),
    dict(id="alloc-into-no-pin", file="src/publish.c",
         find="""    pin_new(rec, boff);                 /* before *dest names it */
    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);""",
         replace="""    lane_set(rt, l, PM_LANE_ALLOC, doff, boff, 0, size);""",
         what="alloc_into does not pin its block: freed from *dest by another thread and "
              "allocated again before the lane is idle, it is freed by recovery after a kill"),
    dict(id="grow-useless", file="src/large.c",
         find="""    return lo <= rt->max_pages && rt->max_pages - lo >= n;""",
         replace="""    return true;""",
         what="a large request no growth can make room for grows the space to its maximum, "
              "then fails"),
    dict(id="alloc-unbacked-gives-up", file="src/pages.c",
         find="""                    pg_release(rt, p, n);
                    unbacked = true;
                    from = past_punched(rt, p, n, limit);""",
         replace="""                    pg_release(rt, p, n);
                    errno = ENOSPC;
                    return PG_NONE;
                    from = past_punched(rt, p, n, limit);""",
         what="a run search gives up at the first run whose punched pages a full file "
              "system cannot back, with backed free pages above it"),
    dict(id="carve-unbacked-gives-up", file="src/pages.c",
         find="""            unbacked = true;
            uint64_t q = pg_next_set(rt->punched, p, p + len);""",
         replace="""            pg_release(rt, p, len);
            errno = ENOSPC;
            return PG_NONE;
            uint64_t q = pg_next_set(rt->punched, p, p + len);""",
         what="a superblock's carve gives up at the first run it cannot back, with backed "
              "free pages above it"),
    dict(id="realloc-shrink-full-fails", file="src/alloc.c",
         find="""    if (q == NULL && n <= us) {
        errno = e;
        return p;   /* a shrink with no room for the smaller block: it stays */""",
         replace="""    if (q == NULL && n <= us && 0) {
        errno = e;
        return p;   /* a shrink with no room for the smaller block: it stays */""",
         what="a shrinking realloc of a small block fails with ENOMEM in a full space"),
    dict(id="realloc-large-shrink-full-fails", file="src/alloc.c",
         find="""    if (q == NULL && n <= us) {
        /* a shrink with no room""",
         replace="""    if (q == NULL && n <= us && 0) {
        /* a shrink with no room""",
         what="a shrinking realloc of a large block fails with ENOMEM in a full space "
              "instead of cutting it in place"),
dict(id="root-probe-claim-not-durable", file="src/roots.c",
         find="""            if (create)
                pm_persist(rt, &s->key, sizeof s->key);
            if (k == tag)""",
         replace="""            if (k == tag)""",
         what="a root's creation probes past another thread's claim of a slot that is not "
              "yet durable: a power failure loses that claim, and the new root is not "
              "found after the restart"),
dict(id="root-publish-claims-first", file="src/roots.c",
         find="""    if (pm_marked(rt, rt->txmark, off) || pm_marked(rt, rt->rootmark, off)) {""",
         replace="""    if (0) {""",
         what="root_publish claims the tag's slot before it looks at the block: a call "
              "refused (another tag's root, an open transaction's block) changes the file"),
    dict(id="dest-any-word", file="src/publish.c",
         find="""    while (!dest_in_block(rt, d - b)) {""",
         replace="""    while (0) {""",
         what="a publishing call takes any aligned word of the pages as its location: "
              "through a stale one it writes a superblock's header or a free block"),
dict(id="fd-kept-low", file="src/space.c",
         find="""    fd = os_fd_move_high(fd);
    rt->fd = fd;""",
         replace="""    rt->fd = fd;""",
         what="the space's descriptor stays at the lowest free number, where a shell's "
              "`exec 3>file` replaces it"),
dict(id="pin-drop-loses-finish", file="src/publish.c",
         find="""    pm_store_seq_cst(&rec->pin, (uint64_t)0);
    finish_handed(rt, rec, off, v >> 1);""",
         replace="""    pm_store_seq_cst(&rec->pin, (uint64_t)0);
    (void)finish_handed;""",
         what="a free handed to a pinning thread is never finished: the block stays "
              "held (its superblock's remote frees never collected, a run's pages "
              "claimed) until the space is opened again"),
    dict(id="realloc-into-shrink-full-fails", file="src/publish.c",
         find="""        if (size <= us) {
            /* a shrink with no room""",
         replace="""        if (0) {
            /* a shrink with no room""",
         what="a shrinking realloc_into fails with ENOMEM in a full space"),
    dict(id="flex-unbacked-counted", file="src/pages.c",
         find="""                floor = past_punched(rt, p, len, limit);
                if (floor == PG_NONE)
                    break;
                continue;""",
         replace="""                floor = past_punched(rt, p, len, limit);
                if (floor == PG_NONE)
                    break;
                tries++;
                continue;""",
         what="a superblock's carve counts each punched run it cannot back (a full file "
              "system) as one of its 64 tries: with more holes below, it gives up with "
              "backed pages above them"),
    dict(id="tx-held-not-settled", file="src/tx.c",
         find="""    if (tx == NULL || tx->n_held == 0 || tx->depth > 0 || tx->written)
        return false;""",
         replace="""    if (1)
        return false;""",
         what="PMEM: a malloc that finds no room leaves its own thread's last committed "
              "frees held: NULL with a freed block in the space (G5b)"),
    dict(id="tx-held-settled-in-tx", file="src/tx.c",
         find="""    if (tx == NULL || tx->n_held == 0 || tx->depth > 0 || tx->written)
        return false;""",
         replace="""    if (tx == NULL || tx->n_held == 0)
        return false;""",
         what="PMEM: a malloc that finds no room settles the held frees inside a "
              "transaction, whose log says they are pending (and, once it has written, "
              "overwrites its ACTIVE state word with IDLE)"),
    dict(id="txlog-key-ignored", file="src/layout.h",
         find="""    return magic == PM_TXLOG_MAGIC ? off ^ salt : magic == PM_TXLOG_MAGIC_V3 ? off : 0;""",
         replace="""    (void)magic;
    (void)off;
    (void)salt;
    return 0;""",
         what="a log entry's check is not keyed by its log: another log's leftover "
              "entries of the same generation, in pages a continuation reuses, are "
              "read as the killed transaction's and undo a committed one"),
    dict(id="txlog-salt-ignored", file="src/layout.h",
         find="""    return magic == PM_TXLOG_MAGIC ? off ^ salt : magic == PM_TXLOG_MAGIC_V3 ? off : 0;""",
         replace="""    (void)salt;
    return magic == PM_TXLOG_MAGIC || magic == PM_TXLOG_MAGIC_V3 ? off : 0;""",
         what="a log entry's check is not keyed by its transaction's salt: entries a file "
              "holds for the next generation (a state word rewound) are taken for the next "
              "transaction's, and its abort or recovery puts back their old bytes"),
    dict(id="txlog-salts-not-drawn", file="src/recover.c",
         find="""            return r;
        pm_tx_salt_logs(rt);""",
         replace="""            return r;""",
         what="a writer's open keeps the logs' salts: entries of a transaction cut before "
              "its state word said it was active (or a rewound log's) are taken for the "
              "next transaction of that generation, and its recovery puts back their old "
              "bytes"),
    dict(id="txlog-salt-zero", file="src/tx.c",
         find="""    pm_store_relaxed(&lg->salt[0], r[0] | 1);
    pm_store_relaxed(&lg->salt[1], r[1] | 1);""",
         replace="""    (void)r;
    pm_store_relaxed(&lg->salt[0], 0);
    pm_store_relaxed(&lg->salt[1], 0);""",
         what="salts drawn as 0: the key is the third format's, the log's offset alone, "
              "and a rewound log's entries check out again"),
    dict(id="txlog-v3-salted", file="src/layout.h",
         find="""    return magic == PM_TXLOG_MAGIC ? off ^ salt : magic == PM_TXLOG_MAGIC_V3 ? off : 0;""",
         replace="""    return magic == PM_TXLOG_MAGIC || magic == PM_TXLOG_MAGIC_V3 ? off ^ salt : 0;""",
         what="a third-format log's entries checked with the words the fourth keeps its "
              "salts in: a file killed mid-transaction under the third is not rolled back"),
    dict(id="txlog-v2-kept", file="src/tx.c",
         find="""        if (tx->log->magic != PM_TXLOG_MAGIC &&
            (pm_load_acquire(&tx->log->state) & PM_TX_PHASE) == PM_TX_IDLE) {""",
         replace="""        if (tx->log->magic == PM_TXLOG_MAGIC_V1 &&
            (pm_load_acquire(&tx->log->state) & PM_TX_PHASE) == PM_TX_IDLE) {""",
         what="a second-format log stays one: its checks are never keyed by the log"),
    dict(id="tx-realloc-unreported", file="src/tx.c",
         find="""        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, ptr, "persistent_tx_realloc");""",
         replace="""        (void)0;""",
         what="persistent_tx_realloc of a freed block or of no block says EINVAL and "
              "nothing to the error hook (G5)"),
    dict(id="grow-no-least", file="src/space.c",
         find="""            if (!least_tried && t > least) {""",
         replace="""            if (0) {""",
         what="a growth whose usual step (an eighth more) does not fit fails at once: "
              "ENOMEM with room for the request left under a file size limit or on a "
              "nearly full file system"),
    dict(id="allocate-past-fsize", file="src/os_posix.c",
         find="""int os_allocate(int fd, uint64_t off, uint64_t len)
{
    if (!extend_fits(fd, off + len))
        return -EFBIG;""",
         replace="""int os_allocate(int fd, uint64_t off, uint64_t len)
{""",
         what="a growth past the file size limit (RLIMIT_FSIZE) calls fallocate: SIGXFSZ "
              "ends the process inside malloc"),
    dict(id="open-keeps-long-file", file="src/recover.c",
         find="""        if (os_file_size(rt->fd, &size) == 0 && size > want &&""",
         replace="""        if (0 && os_file_size(rt->fd, &size) == 0 && size > want &&""",
         what="a writer's open keeps the tail a growth killed before its commit left: "
              "the file stays larger than the space says"),
    dict(id="grow-over-cut-file", file="src/space.c",
         find="""    if (os_file_size(rt->fd, &size) == 0 && size < pages_bytes(rt, n))""",
         replace="""    if (0 && os_file_size(rt->fd, &size) == 0 && size < pages_bytes(rt, n))""",
         what="a growth extends a file someone cut short under the space: the lost pages "
              "come back as zeros, live blocks among them, with no fault"),
    dict(id="private-holes-mapped", file="src/space.c",
         find="""    if (r == 0 && mode == PM_MODE_PRIVATE && rt->own_copy)
        private_holes_zero(rt, rt->st.file_size);""",
         replace="""    (void)private_holes_zero;""",
         what="a private open that allocates keeps the file's holes in its copy-on-write "
              "mapping: its first store into one, on a full tmpfs, is a SIGBUS"),
    dict(id="view-bases-stale", file="src/space.c",
         find="""    if (rt->mode == PM_MODE_WRITER)
        return;                         /* its own open wrote the newest */""",
         replace="""    return;""",
         what="a view knows only the mappings of its open: a raw pointer stored by a "
              "writer that opened after it and mapped elsewhere is not rewritten"),
    dict(id="interrupted-any-slot", file="src/space.c",
         find="""           pm_state_checksum(&st[0]) == st[0].checksum && memcmp(&st[1], &none, sizeof none) == 0;""",
         replace="""           pm_state_checksum(&st[0]) == st[0].checksum && &none != NULL;""",
         what="a space whose magic was zeroed after a writer's open is taken for an "
              "interrupted create: the open that may create writes the magic back "
              "before its verification refuses the heap (G8)"),
    dict(id="txwalk-committed-untracked", file="src/verify.c",
         find="""        it.track = true;""",
         replace="""        it.track = pass == 1 && phase == PM_TX_ACTIVE;""",
         what="a check walks a COMMITTED log (and the PREV stream) keeping no segments: "
              "a forged JUMP cycle goes round until the budget, seconds to minutes"),
    dict(id="redo-frees-untracked", file="src/tx.c",
         find="""    it.track = true;                    /* a JUMP cycle ends the walk */""",
         replace="""    it.track = false;""",
         what="recovery's walk of a COMMITTED log's frees keeps no segments: a forged "
              "JUMP cycle makes a writer's open take seconds to minutes"),
    dict(id="verify-log-twice", file="src/verify.c",
         find="""                if (own[k] == own[k - 1]) {""",
         replace="""                if (0) {""",
         what="two lanes naming one transaction log pass the check: a writer's two "
              "threads write one log, and a kill loses one's rollback (G7, G8)"),
    dict(id="verify-root-own-block", file="src/verify.c",
         find="""            if (sorted_has(rs.vals, rs.n, b)) {""",
         replace="""            if (0) {""",
         what="a root naming a transaction log or an overflow root table passes the "
              "check: its removal frees a block the library still uses (G8)"),
    dict(id="fork-copy-skipped", file="src/os_posix.c",
         find="""    if (mapped == 0 && used > 0 && used <= len) {""",
         replace="""    if (0) {""",
         what="a fork child that cannot map the space's file again (descriptor closed, "
              "no /proc) gets its range unreadable, not a copy: a program on the "
              "interposer dies copying its heap"),
    dict(id="fd-base-64", file="src/os_posix.c",
         find="""    int bases[3] = {(int)(lim > 128 ? lim - 64 : lim - lim / 4), 64, 10};""",
         replace="""    int bases[3] = {64, 64, 64};""",
         what="the space's descriptor goes to 64, or stays at the lowest free number "
              "under a limit of 64 or less (`ulimit -n 20`: 3, where `exec 3>` takes it)"),
    dict(id="strerror-locale", file="src/error.c",
         find="""            return errno_text(-code);""",
         replace="""            return (void)errno_text, strerror(-code);""",
         what="the library's words for a system error come from strerror, which "
              "translates under the locale lock: an interposed bash whose space cannot "
              "be opened inside setlocale hangs"),
    dict(id="pub-ensure-alloc-nopersist", file="src/publish.c",
         find="""            pm_store_relaxed(aw, live ? a | bit : a & ~bit);
            pm_persist(rt, aw, sizeof *aw);""",
         replace="""            pm_store_relaxed(aw, live ? a | bit : a & ~bit);""",
         what="recovery's rollback of a lane's small block not written back before the "
              "lane is retired: a power failure after the open leaks the block (hidden in "
              "small spaces, where the remote word's write-back takes the line too)"),
    dict(id="pub-ensure-remote-nopersist", file="src/publish.c",
         find="""            pm_store_relaxed(rw, pm_load_relaxed(rw) & ~bit);
            pm_persist(rt, rw, sizeof *rw);
            return;""",
         replace="""            pm_store_relaxed(rw, pm_load_relaxed(rw) & ~bit);
            return;""",
         what="recovery clears a lane's block's remote bit without writing it back: the "
              "block reused and published, a power failure, and the next open frees it"),
    dict(id="lane-link-found-nopersist", file="src/publish.c",
         find="""        if (rt->mode == PM_MODE_WRITER)
            pm_persist(rt, link, sizeof *link);
        struct pm_lane_table *t = pm_lane_table_at(rt, off, NULL);""",
         replace="""        if (rt->mode == PM_MODE_WRITER && 0)
            pm_persist(rt, link, sizeof *link);
        struct pm_lane_table *t = pm_lane_table_at(rt, off, NULL);""",
         what="a thread uses an overflow lane table whose link another thread has not "
              "written back yet: a power failure loses the tables and the records in flight "
              "in them"),
    dict(id="root-link-found-nopersist", file="src/roots.c",
         find="""        if (off != 0 && create)
            pm_persist(rt, t.next, sizeof *t.next);     /* the same for a link */""",
         replace="""        if (off != 0 && create && 0)
            pm_persist(rt, t.next, sizeof *t.next);     /* the same for a link */""",
         what="a root made in an overflow root table whose link its creator has not "
              "written back: a power failure loses the root (G3)"),
    dict(id="lg-free-start-nofence", file="src/large.c",
         find="""    pm_persist(rt, w, sizeof *w);                   /* commit */
    pg_bit_clear(rt, rt->end_bits, last);""",
         replace="""    pm_flush(rt, w, sizeof *w);                     /* commit */
    pg_bit_clear(rt, rt->end_bits, last);""",
         what="a large free's START clear flushed but not fenced before its END clear: "
              "a power failure can keep START and lose END (runs overlap)"),
    dict(id="pub-ensure-large-end-first", file="src/publish.c",
         find="""    uint64_t e = pg_next_set(rt->end_bits, page, n);
    pg_bit_clear(rt, rt->start_bits, page);            /* commit */
    if (e != PG_NONE)
        pg_bit_clear(rt, rt->end_bits, e);
}""",
         replace="""    uint64_t e = pg_next_set(rt->end_bits, page, n);
    if (e != PG_NONE)
        pg_bit_clear(rt, rt->end_bits, e);
    pg_bit_clear(rt, rt->start_bits, page);            /* commit */
}""",
         what="recovery's rollback of a lane's large block clears END before the START "
              "commit: a power failure in the open leaves a run with no end"),
    dict(id="tx-abort-restore-unflushed", file="src/tx.c",
         find="""        memcpy(rt->base + r->off, r->ent + 1, r->len);
        pm_flush(rt, rt->base + r->off, r->len);
    }
    size_t n = 0;""",
         replace="""        memcpy(rt->base + r->off, r->ent + 1, r->len);
    }
    size_t n = 0;""",
         what="an abort puts the snapshots back without writing them back: a change the "
              "program had written back survives the abort on file (G7)"),
    dict(id="sync-no-drain", file="src/space.c",
         find="""        return 0;       /* a private or read-only mapping never writes */
    if (rt->flush)
        rt->flush->drain();""",
         replace="""        return 0;       /* a private or read-only mapping never writes */""",
         what="persistent_sync does not drain what persistent_flush wrote back: a "
              "flush and a sync are not durable in PMEM mode"),
    dict(id="private-holes-once", file="src/space.c",
         find="""    if (r == 0 && mode == PM_MODE_PRIVATE && rt->own_copy)""",
         replace="""    if (r == 0 && mode == PM_MODE_PRIVATE && rt->own_copy && rt->hdr == NULL)""",
         what="a private open's holes are zeroed at its first mapping only: a rollback "
              "trial maps the file again and the holes are back (SIGBUS on a full tmpfs)"),
    dict(id="tx-restore-pages-no-drain", file="src/tx.c",
         find="""        while (n-- > 0) {
            pm_drain(rt);               /* a page the log goes on in: see above */
            page_restore(rt, pages[n]);""",
         replace="""        while (n-- > 0) {
            page_restore(rt, pages[n]);""",
         what="an open puts an automatic transaction's page images back with no drain "
              "between them: a page the log goes on in can land rewritten before the "
              "images logged in it, and a power failure then loses those restores (G3, G7)"),
    dict(id="auto-abort-log-page-no-drain", file="src/tx.c",
         find="""        if (holds_log(tx, rt, pages[n]->off, pages[n]->kind_len >> 8))
            pm_drain(rt);""",
         replace="""        if (holds_log(tx, rt, pages[n]->off, pages[n]->kind_len >> 8))
            (void)0;""",
         what="an automatic transaction's abort puts back a page its log goes on in "
              "before the restores logged there are durable (G3, G7)"),
    dict(id="tx-recover-page-no-drain", file="src/tx.c",
         find="""                if ((kind_len & 0xff) == PM_TXE_PAGE) {
                    pm_drain(rt);
                    page_restore(rt, sn);""",
         replace="""                if ((kind_len & 0xff) == PM_TXE_PAGE) {
                    page_restore(rt, sn);""",
         what="pm_tx_recover puts page images back with no drain between them",
         equivalent=(
             "a writer's open runs pm_tx_restore_pages first, which puts every image back "
             "and drains; that rewrote any page the log went on in and cut the log at the "
             "JUMP into it, so pm_tx_recover walks no entry in a page it puts back and its "
             "images are on file already (test_recpower auto-log: 0 failures without this "
             "drain, 8 when the open skips pm_tx_restore_pages too)")),
    dict(id="claim-after-two-growths", file="src/large.c",
         find="""    uint64_t p = last + 1, end = last + 1 + add;
    while (p < end) {
        uint64_t k = pg_cache_take_at(rec, p, end - p);
        if (k != 0) {
            p += k;
            continue;
        }
        uint64_t stop = pg_cache_next(rec, p, end);
        if (pg_claim_at(rt, p, stop - p)) {
            p = stop;
            continue;
        }
        /* as often as growth succeeds, as lg_reserve: each success raised
         * the page count (up to the maximum), perhaps only to another
         * thread's smaller target, which this call finished (a helper's
         * hunt: two of those, and a cap of two growths, failed a realloc
         * that fitted in place at the maximum) */
        uint64_t n = pm_load_acquire(&rt->n_pages);
        if (stop <= n || pg_next_set(rt->used, p, n) != PG_NONE ||
            pm_space_grow(rt, n, stop - n) != 0) {""",
         replace="""    uint64_t p = last + 1, end = last + 1 + add;
    for (int grown = 0; p < end;) {
        uint64_t k = pg_cache_take_at(rec, p, end - p);
        if (k != 0) {
            p += k;
            continue;
        }
        uint64_t stop = pg_cache_next(rec, p, end);
        if (pg_claim_at(rt, p, stop - p)) {
            p = stop;
            continue;
        }
        /* as often as growth succeeds, as lg_reserve: each success raised
         * the page count (up to the maximum), perhaps only to another
         * thread's smaller target, which this call finished (a helper's
         * hunt: two of those, and a cap of two growths, failed a realloc
         * that fitted in place at the maximum) */
        uint64_t n = pm_load_acquire(&rt->n_pages);
        if (grown++ == 2 || stop <= n || pg_next_set(rt->used, p, n) != PG_NONE ||
            pm_space_grow(rt, n, stop - n) != 0) {""",
         what="an in-place resize at the space's end gives up after two growths, which "
              "may have been other threads' smaller targets it finished: ENOMEM with the "
              "room there (G5b)"),
    dict(id="auto-begin-held-first-look-only", file="src/tx.c",
         find="""             (pm_load_acquire(&o->tx_open) || pm_load_acquire(&o->tx_held))))""",
         replace="""             pm_load_acquire(&o->tx_open)))""",
         what="an automatic transaction's begin looks for other threads' held frees "
              "only before it takes the space: a transaction committed between the two "
              "looks leaves frees the abort makes reusable and recovery frees again (G2)"),
    dict(id="chunk-add-no-lane", file="src/publish.c",
         find="""    if (chunk_lane_take(rt)) {
        bool ok = chunk_add_laned(rt, rec, size);""",
         replace="""    if (false) {
        bool ok = chunk_add_laned(rt, rec, size);""",
         what="an overflow lane table is always added the way without a lane",
         equivalent=(
              "since 2026-12-07 the way without a lane links the table before it "
              "commits it, and recovery commits a linked table whose place is free: "
              "crash-safe as the laned way is (test_crashpoints lanes-busy, "
              "lanes-busy-run); the two differ only in what a lost link CAS does "
              "(the laned way frees its table under the lane and looks for a lane "
              "again, the other links it at the new end), neither of which a test "
              "can tell from outside")),
    dict(id="chunk-link-unflushed", file="src/publish.c",
         find="""            pm_persist(rt, link, sizeof *link);
            pm_hook(PM_HOOK_CHUNK_LINKED);""",
         replace="""            pm_hook(PM_HOOK_CHUNK_LINKED);""",
         what="a lane table added without a lane: its link not written back before "
              "the table's commit (a power failure after the commit leaves the table "
              "allocated and reachable from nowhere: 4 KiB leaked)"),
    dict(id="auto-lookup-unguarded", file="src/tx.c",
         find="""void pm_auto_wait_outside(struct pm_rt *rt)
{
    while (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) {
        auto_report(rt, NULL, "a call on the space during another thread's automatic "
                              "transaction (it waits for the end)");
        pm_hook(PM_HOOK_AUTO_WAIT);
        while (pm_load_acquire(&pm_auto_rt) == rt)
            os_sleep_us(200);
    }
}

/* The same inside an operation: the wait is outside it (the begin looks
 * at busy flags), and a transaction begun meanwhile is waited for too. */
void pm_auto_wait(struct pm_rt *rt, struct pm_trec *rec)
{
    /* the operation's flag again after the wait (PM_BUSY_NONE for a fill:
     * still nothing of the thread's superblocks; a class's slow path:
     * still that class's, its caller reading the revocation counter
     * after the gate) */
    uintptr_t b = pm_load_relaxed(&rec->busy);
    uintptr_t what = b == PM_BUSY_NONE || pm_busy_is_class(b) ? b : PM_BUSY_ANY;
    while (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) {
        pm_hook(PM_HOOK_AUTO_GATE);
        pm_op_end(rec);
        pm_auto_wait_outside(rt);
        pm_op_begin_as(rec, what);
    }
}

bool pm_auto_moved(struct pm_rt *rt, uint64_t seen)
{
    return (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) ||
           pm_load_acquire(&rt->auto_resets) != seen;
}""",
         replace="""void pm_auto_wait_outside(struct pm_rt *rt)
{
    (void)rt;
}

void pm_auto_wait(struct pm_rt *rt, struct pm_trec *rec)
{
    uintptr_t b = pm_load_relaxed(&rec->busy);
    uintptr_t what = b == PM_BUSY_NONE || pm_busy_is_class(b) ? b : PM_BUSY_ANY;
    while (pm_load_acquire(&pm_auto_rt) == rt && auto_mine() == NULL) {
        pm_hook(PM_HOOK_AUTO_GATE);
        pm_op_end(rec);
        auto_report(rt, NULL, "a call on the space during another thread's automatic "
                              "transaction (it waits for the end)");
        pm_hook(PM_HOOK_AUTO_WAIT);
        while (pm_load_acquire(&pm_auto_rt) == rt)
            os_sleep_us(200);
        pm_op_begin_as(rec, what);
    }
}

bool pm_auto_moved(struct pm_rt *rt, uint64_t seen)
{
    (void)rt, (void)seen;
    return false;
}""",
         what="calls that look a pointer up before their operation neither wait for "
              "another thread's automatic transaction nor look again after its abort's "
              "rebuild: a live block's free refused and leaked, usable size 0, a "
              "location refused"),
# ------------------------------------------------------------ write-backs no mutant touched
# (a helper's sweep of every pm_persist / pm_flush / pm_drain call, 2026-12-06)
    dict(id="pub-free-local-nofence", file="src/publish.c",
         find="""        if (fence)
            pm_persist(rt, aw, sizeof *aw);""",
         replace="""        if (false)
            pm_persist(rt, aw, sizeof *aw);""",
         what="a published free of an owner's block: its cleared bit not fenced before"
              " the lane is retired"),
    dict(id="pub-free-remote-nofence", file="src/publish.c",
         find="""        if (fence)
            pm_persist(rt, rw, sizeof *rw);""",
         replace="""        if (false)
            pm_persist(rt, rw, sizeof *rw);""",
         what="a published free of another thread's block: its remote bit not fenced "
              "before the lane is retired"),
    dict(id="pub-free-end-bit-nofence", file="src/publish.c",
         find="""    pm_fetch_and_acq_rel(w, ~bit);
    if (fence)""",
         replace="""    pm_fetch_and_acq_rel(w, ~bit);
    if (false)""",
         what="a published free of a run: its bits not fenced before the lane is "
              "retired",
         equivalent=(
              "the run's start bit, its commit, is fenced first all the same; the end "
              "bit's write-back is then fenced by lane_clear's persist right after.  A "
              "power failure in between can leave the start bit clear and the end bit "
              "set, the state a crash after the start bit's fence leaves without the "
              "mutant (the lane's recovery finds the start bit clear and does nothing, "
              "pub_ensure); either way the stray end bit lies in a gap and the "
              "recovering open clears it (recover.c, clear_bits_in on the gaps)")),
    dict(id="pub-free-flush-local-dropped", file="src/publish.c",
         find="""        else
            pm_flush(rt, aw, sizeof *aw);""",
         replace="""        else
            (void)0;""",
         what="a transaction's free of an owner's block: its cleared bit never written "
              "back (the commit's fence has nothing to make durable)"),
    dict(id="pub-free-flush-remote-dropped", file="src/publish.c",
         find="""        else
            pm_flush(rt, rw, sizeof *rw);""",
         replace="""        else
            (void)0;""",
         what="a transaction's free of another thread's block: its remote bit never "
              "written back"),
    dict(id="chunk-lane-not-recovered", file="src/publish.c",
         find="""    return lane_recover(rt, &rt->hdr->chunk_lane, total);""",
         replace="""    return 0;""",
         what="recovery skips the header's chunk lane: a lane table committed and not "
              "linked stays allocated for good, one linked keeps a stale record"),
    dict(id="free-under-lane-clear-first", file="src/publish.c",
         find="""        pub_free_do(rt, &pf);
        lane_clear(rt, l);
        pub_free_finish(rt, rec, &pf);""",
         replace="""        lane_clear(rt, l);
        pub_free_do(rt, &pf);
        pub_free_finish(rt, rec, &pf);""",
         what="a table or root that lost the race for its link: the lane retired before "
              "its free is durable (a power failure between leaks it; "
              "test_crashpoints race-rootloser)"),
    dict(id="pin-new-relaxed", file="src/publish.c",
         find="""    pm_store_release(&rec->pin, off);""",
         replace="""    pm_store_relaxed(&rec->pin, off);""",
         what="an allocation's pin published with a relaxed store: a thread that finds "
              "the block in its location may not see the pin",
         equivalent=(
             "on x86-64 both are a plain mov; gcc -O3 emits the same memory accesses in "
             "the same order (objdump: only a register move scheduled differently)")),
    dict(id="lane-chunk-cache-relaxed", file="src/publish.c",
         find="""        pm_store_release(&rt->lane_chunk[k], t);""",
         replace="""        pm_store_relaxed(&rt->lane_chunk[k], t);""",
         what="an overflow lane table's cached address published with a relaxed store",
         equivalent=(
             "on x86-64 both are a plain mov; gcc -O3 emits the same memory accesses in "
             "the same order (objdump: only a register add scheduled differently)")),
    dict(id="chunk-lane-release-relaxed", file="src/publish.c",
         find="""    pm_store_release(&rt->chunk_lane_busy, 0u);""",
         replace="""    pm_store_relaxed(&rt->chunk_lane_busy, 0u);""",
         what="the header's chunk lane handed back with a relaxed store: the next "
              "holder may not see the lane record its predecessor retired",
         equivalent="gcc -O3 emits byte for byte the same object (x86-64)"),
    dict(id="auto-end-relaxed", file="src/tx.c",
         find="""    pm_store_release(&pm_auto_rt, (struct pm_rt *)NULL);   /* waiters go on */""",
         replace="""    pm_store_relaxed(&pm_auto_rt, (struct pm_rt *)NULL);   /* waiters go on */""",
         what="an automatic transaction's commit lets waiting calls go on with a relaxed "
              "store: they may not see its state",
         equivalent="gcc -O3 emits byte for byte the same object (x86-64)"),
    dict(id="verify-chunk-lane-unwalked", file="src/verify.c",
         find="""    else
        fn(rt, i++, cl, arg);""",
         replace="""    else
        (void)cl;""",
         what="the check does not judge the header's chunk lane: a forged record there "
              "is acted on by recovery (test_damage test_chunk_lane_forged)"),
    dict(id="txlog-head-unpersisted", file="src/tx.c",
         find="""    pm_store_relaxed(&lg->state, (uint64_t)PM_TX_IDLE);
    pm_persist(rt, lg, sizeof *lg + ENT);""",
         replace="""    pm_store_relaxed(&lg->state, (uint64_t)PM_TX_IDLE);""",
         what="a new transaction log's head is not written back before the lane names "
              "it"),
    dict(id="txlog-magic-unpersisted", file="src/tx.c",
         find="""            tx->log->magic = PM_TXLOG_MAGIC;
            pm_persist(rt, &tx->log->magic, sizeof tx->log->magic);""",
         replace="""            tx->log->magic = PM_TXLOG_MAGIC;""",
         what="an earlier format's log taken over: its new magic not written back "
              "before entries keyed by it",
         equivalent=(
              "the magic shares the log head's cache line with the state word (layout.h"
              " struct pm_txlog, 64 bytes, page aligned), and no entry keyed by the new"
              " magic is read back before the state word leaves IDLE: its flush "
              "(set_state) writes the line back with the magic, fenced with the first "
              "entry.  A power failure before that leaves an idle log of the earlier "
              "format, which pm_txlog_head_ok accepts and whose takeover the next "
              "attach repeats; one at that fence tears the line, but nothing has been "
              "written under the transaction yet (tx_add returns after the fence), so "
              "an entry its recovery cannot read restores nothing")),
    dict(id="tx-jump-unflushed", file="src/tx.c",
         find="""        pm_flush(rt, j, ENT);         /* fenced with the entry that follows */
""",
         replace="""""",
         what="the jump entry to the log's next segment is never written back: a power"
              " failure leaves the entries after it unreachable (their snapshots not "
              "put back)"),
    dict(id="tx-alloc-bit-unflushed", file="src/tx.c",
         find="""        pm_flush(rt, rv.aword, sizeof *rv.aword);   /* the commit fences it */
""",
         replace="""""",
         what="a block allocated in a transaction: its allocation bit never written "
              "back, a power failure after the commit frees it"),
    dict(id="tx-free-entry-unflushed", file="src/tx.c",
         find="""    pm_flush(rt, e, ENT);                   /* the commit fences it */
""",
         replace="""""",
         what="a transaction's FREE entry is not written back: the recovery of a "
              "COMMITTED log does not free the block"),
    dict(id="tx-commit-snaps-unflushed", file="src/tx.c",
         find="""        pm_flush(rt, rt->base + tx->snaps.v[i].off, tx->snaps.v[i].len);
    for (size_t i = 0; i < tx->allocs.n && rt->flush != NULL; i++) {""",
         replace="""        (void)0;
    for (size_t i = 0; i < tx->allocs.n && rt->flush != NULL; i++) {""",
         what="commit does not write back the snapshotted ranges: a committed "
              "transaction's writes lost to a power failure"),
    dict(id="tx-commit-allocs-unflushed", file="src/tx.c",
         find="""        pm_flush(rt, b, len);
    }""",
         replace="""        (void)b; (void)len;
    }""",
         what="commit does not write back the blocks the transaction allocated"),
    dict(id="tx-abort-nodrain", file="src/tx.c",
         find="""    pm_drain(rt);                           /* restores, bits */
""",
         replace="""""",
         what="abort: state IDLE can be durable before the restores and freed bits"),
    dict(id="tx-settle-nodrain", file="src/tx.c",
         find="""    pm_drain(rt);
    uint64_t gen = pm_load_acquire(&tx->log->state) >> 8;""",
         replace="""    uint64_t gen = pm_load_acquire(&tx->log->state) >> 8;""",
         what="settling a commit's frees: state IDLE can be durable before the freed "
              "bits"),
    dict(id="tx-settle-state-unpersisted", file="src/tx.c",
         find="""    pm_store_release(&tx->log->state, (uint64_t)PM_TX_IDLE | gen << 8);
    pm_persist(rt, &tx->log->state, sizeof tx->log->state);
}""",
         replace="""    pm_store_release(&tx->log->state, (uint64_t)PM_TX_IDLE | gen << 8);
}""",
         what="settling a commit's frees: state IDLE not durable before the blocks are"
              " reusable (a recovery frees them again once reused)"),
    dict(id="tx-page-restore-unflushed", file="src/tx.c",
         find="""    pm_vg_quiet(false);
    pm_flush(rt, rt->base + off, len);
}""",
         replace="""    pm_vg_quiet(false);
}""",
         what="a page put back by an automatic transaction's abort or recovery is not "
              "written back: state IDLE then a power failure keeps the aborted writes"),
    dict(id="tx-restore-pages-final-nodrain", file="src/tx.c",
         find="""            page_restore(rt, pages[n]);
        }
        os_vol_free(pages, cap * sizeof *pages);
        pm_drain(rt);""",
         replace="""            page_restore(rt, pages[n]);
        }
        os_vol_free(pages, cap * sizeof *pages);""",
         what="the open's rollback of an automatic transaction's pages: the last pages "
              "put back not fenced before what follows",
         equivalent=(
             "the log stays ACTIVE on file until pm_tx_recover moves it to IDLE, and "
             "that puts the log's page images back again and drains (tx.c, the drain "
             "before the IDLE state) first; every other write-back in between is by the "
             "same thread, whose next fence makes the restored lines durable with it, "
             "and a power failure before the IDLE state reruns the restore from the "
             "same images (test_recpower auto-log, test_txcrash power and evict "
             "recovery: 0 failures without it)")),
    dict(id="tx-recover-page-nodrain", file="src/tx.c",
         find="""            pm_drain(rt);               /* a page the log goes on in: see above */
""",
         replace="""""",
         what="recovery puts back a page the log goes on in before the restores before"
              " it are durable"),
    dict(id="tx-recover-idle-nodrain", file="src/tx.c",
         find="""        pm_drain(rt);
        pm_snap_forget(rt, &lg->state, sizeof lg->state);""",
         replace="""        pm_snap_forget(rt, &lg->state, sizeof lg->state);""",
         what="recovery marks a log IDLE before its restores are durable"),
    dict(id="tx-recover-idle-unpersisted", file="src/tx.c",
         find="""        pm_store_release(&lg->state, (uint64_t)PM_TX_IDLE | gen << 8);
        pm_persist(rt, &lg->state, sizeof lg->state);""",
         replace="""        pm_store_release(&lg->state, (uint64_t)PM_TX_IDLE | gen << 8);""",
         what="recovery's IDLE state word not written back"),
    dict(id="holes-backed-unpersisted", file="src/recover.c",
         find="""        pm_store_release(&rt->hdr->live.no_holes, pm_backed_word(&rt->fixed));
        pm_persist(rt, &rt->hdr->live.no_holes, sizeof rt->hdr->live.no_holes);""",
         replace="""        pm_store_release(&rt->hdr->live.no_holes, pm_backed_word(&rt->fixed));""",
         what="the open that backed a file's holes: the word that says so not written "
              "back",
         equivalent=(
              "the word only lets a later open skip the backing pass; lost, it keeps "
              "the value it had (holes may be there), and the next writer's open backs "
              "the file again: work done twice, never a hole left unbacked")),
    dict(id="lane-any-no-chunk", file="src/publish.c",
         find="""    if (chunk_lane_take(rt)) {
        *chunk = true;""",
         replace="""    if (false) {
        *chunk = true;""",
         what="a call that can get no lane (every lane held, no room for a lane "
              "table) fails: free_from and root_remove refused with -ENOMEM in a full "
              "space (G5b)"),
    dict(id="lane-any-chunk-kept", file="src/publish.c",
         find="""    if (chunk)
        chunk_lane_give(rt);""",
         replace="""    (void)chunk;""",
         what="the chunk lane is never given back after a lane-less call: the next "
              "lane-less free fails, and lane tables are added the way without a lane"),
    dict(id="lane-table-pending-refused", file="src/verify.c",
         find="""    if (!free_place && pm_block_live(rt, off) < size)
        return NULL;""",
         replace="""    if (free_place || pm_block_live(rt, off) < size)
        return NULL;""",
         what="a lane table linked but not yet committed is refused: the open after a "
              "kill between the link and the commit calls the space damaged, and at run "
              "time the chain walk stops at it and another thread's call fails with "
              "-ENOMEM"),
    dict(id="lane-table-live-asked-first", file="src/verify.c",
         find="""    bool free_place = place_free(rt, off, size);
    if (!free_place && pm_block_live(rt, off) < size)
        return NULL;""",
         replace="""    bool live = pm_block_live(rt, off) >= size;
    bool free_place = !live && place_free(rt, off, size);
    if (!live && !free_place)
        return NULL;""",
         what="a linked lane table is asked whether it is live before whether its place "
              "is free: a commit between the two questions makes it neither, and "
              "another thread's chain walk stops there (-ENOMEM, G5b)"),
    dict(id="lane-tables-overlap-accepted", file="src/verify.c",
         find="""            if (off < tables[q] + tsize && tables[q] < off + tsize) {""",
         replace="""            if (q > PM_LANE_MAX_CHUNKS && off < tables[q] + tsize && tables[q] < off + tsize) {""",
         what="two linked lane tables in free places whose bytes overlap are accepted: "
              "the writer's open commits both, runs over runs, and clears one's magic as "
              "the other's torn lane (G8)"),
    dict(id="lane-dest-ok-judges-tables", file="src/verify.c",
         find="""        uint64_t tsize = PM_LANE_TABLE_BYTES;
        if (off == 0 || off % 64 != 0 || !pm_in_data(rt, off, tsize))
            break;
        const struct pm_lane_table *t = (const struct pm_lane_table *)(rt->base + off);
        if (t->magic != PM_LANE_TABLE_MAGIC || t->n != PM_LANE_CHUNK)
            break;""",
         replace="""        const struct pm_lane_table *t = off != 0 ? pm_lane_table_at(rt, off, NULL) : NULL;
        if (t == NULL)
            break;""",
         what="each lane record's destination check judges every table of the chain "
              "again: a view's check of 64 tables in free places far past the last run, "
              "4096 records in flight, takes seconds to minutes (G8)"),
    dict(id="lane-table-free-first-page-only", file="src/verify.c",
         find="""    uint64_t s = pg_prev_set(rt->start_bits, first + n - 1);""",
         replace="""    uint64_t s = pg_prev_set(rt->start_bits, first);""",
         what="a linked lane table that is a page run counts as in a free place when "
              "its first page is in no run: a forged run inside its pages is accepted, "
              "and the open commits the table over it (G8)"),
    dict(id="pub-lane-no-second-look", file="src/publish.c",
         find="""            chunks_discover(rt);
            if (pm_load_acquire(&rt->n_lane_chunks) != chunks)
                continue;
""",
         replace="",
         what="a thread with no lane that finds no room for a table of its own fails "
              "(-ENOMEM) though other threads added tables with free lanes after it "
              "looked (G5b)"),
    dict(id="chunk-pending-not-committed", file="src/publish.c",
         find="""        chunk_commit_pending(rt, pm_load_acquire(&rt->lane_chunk[k]));""",
         replace="""        (void)chunk_commit_pending;""",
         what="recovery leaves a linked lane table uncommitted: the rebuild takes its "
              "place for free and a later block overwrites the lanes (G2)"),
    dict(id="chunk-pending-end-kept", file="src/publish.c",
         find="""        if (p + 1 < first + n && pg_bit(rt->end_bits, p))""",
         replace="""        if (false)""",
         what="recovery commits a linked lane table's run over an END bit of no run "
              "among its pages: the run ends short of the table"),
    dict(id="chunk-pending-kind-kept", file="src/publish.c",
         find="""        if (pg_bit(rt->kind_bits, p))
            pg_bit_clear(rt, rt->kind_bits, p);""",
         replace="""        if (false)
            pg_bit_clear(rt, rt->kind_bits, p);""",
         what="recovery commits a linked lane table's run over a KIND bit of no run at "
              "its first page: the run reads as a superblock"),
    dict(id="chunk-unlaned-commit-first", file="src/publish.c",
         find="""    uint64_t off = (uint64_t)((char *)rv.blk - rt->base);
    for (;;) {
        pm_atomic_u64 *link = chunks_discover(rt);""",
         replace="""    uint64_t off = (uint64_t)((char *)rv.blk - rt->base);
    pub_commit(rt, &rv);
    for (;;) {
        pm_atomic_u64 *link = chunks_discover(rt);""",
         what="the way without a lane commits the table before it links it (the order "
              "before 2026-12-07): a kill between the two leaks it (G2); the commit "
              "after the link then repeats, harmless"),
]

