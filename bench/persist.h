/* What one store written back and fenced costs on this machine (persist.c),
 * shared by pmbench and txbench. */
#ifndef PMBENCH_PERSIST_H
#define PMBENCH_PERSIST_H

/* Nanoseconds of one store written back and fenced: persistent_persist of
 * the line just stored, in a 4 KiB file made in dir, with the flush method
 * this process chose (PERSISTENT_MEM_FLUSH: pm-pmem's); 16 lines in turn,
 * 100,000 stores.  -1 if the file cannot be made or mapped. */
double persist_ns(const char *dir);

#endif
