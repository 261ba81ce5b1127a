/* CRC-32C (Castagnoli) for the header and its state slots.  Only open,
 * close and growth compute it, so a bytewise table is fast enough. */
#include <string.h>

#include "internal.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        table[i] = c;
    }
}

uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    pthread_once(&table_once, table_init);
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

uint32_t pm_fixed_checksum(const struct pm_fixed *f)
{
    struct pm_fixed copy;
    memcpy(&copy, f, sizeof copy);
    copy.checksum = 0;
    return pm_crc32c(0, &copy, sizeof copy);
}

uint32_t pm_state_checksum(const struct pm_state *s)
{
    struct pm_state copy;
    memcpy(&copy, s, sizeof copy);
    copy.checksum = 0;
    return pm_crc32c(0, &copy, sizeof copy);
}
