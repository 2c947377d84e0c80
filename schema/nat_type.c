/* nat_type.c - NAT type names (see nat_type.h). */
#include "schema/nat_type.h"

#include <stddef.h>
#include <string.h>

static const char *const names[RDV_WIRE_NAT__COUNT] = {
    "unknown", "fullCone", "restrictedCone", "portRestricted", "symmetric",
};

const char *rdv_wire_nat_name(int t)
{
    return t >= 0 && t < RDV_WIRE_NAT__COUNT ? names[t] : names[RDV_WIRE_NAT_UNKNOWN];
}

int rdv_wire_nat_parse(const char *s)
{
    for (int i = 0; s && i < RDV_WIRE_NAT__COUNT; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}
