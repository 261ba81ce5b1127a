/* The seed's lifecycle entry points, on top of persistent_space_open. */
#include <errno.h>
#include <string.h>

#include "internal.h"

allocator_space_t *create_persistent_allocator(const char *filename,
                                               size_t requested_size)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = requested_size;
    allocator_space_t *s;
    int r = persistent_space_open(filename, &o, &s);
    if (r < 0) {
        errno = pm_code_to_errno(r);
        return NULL;
    }
    return s;
}

allocator_space_t *load_private_persistent_allocator(const char *filename)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    o.flags = PERSISTENT_OPEN_PRIVATE;
    allocator_space_t *s;
    int r = persistent_space_open(filename, &o, &s);
    if (r < 0) {
        errno = pm_code_to_errno(r);
        return NULL;
    }
    return s;
}

void destroy_persistent_allocator(allocator_space_t *space)
{
    if (space != NULL)
        (void)persistent_space_close(space);
}
