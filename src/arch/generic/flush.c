/* CPUs without a cache-line write-back instruction we know of: no
 * variants, so persist.c uses msync. */
#include "../../persist.h"

uint32_t arch_cpu_features(void)
{
    return 0;
}

int arch_flush_variants(uint32_t features, const struct pm_flush_ops **ops,
                        int max)
{
    (void)features;
    (void)ops;
    (void)max;
    return 0;
}
