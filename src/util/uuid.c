#include "util/uuid.h"

#include <string.h>
#include <uuid.h>

void uuid_generate_bytes(uint8_t out[16])
{
    uuid_t u;
    uuid_generate_random(u);
    memcpy(out, u, 16);
}

void uuid_format(const uint8_t id[16], char out[37])
{
    uuid_unparse_lower(id, out);
}

int uuid_parse_text(const char *text, uint8_t out[16])
{
    return uuid_parse(text, out) == 0 ? 0 : -1;
}

bool uuid_is_null_bytes(const uint8_t id[16])
{
    static const uint8_t zero[16];
    return memcmp(id, zero, 16) == 0;
}
