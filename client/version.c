/* version.c - rdv_version(): the version this library was built as. */
#include "rendezvous/rendezvous.h"

const char *rdv_version(void)
{
    return RDV_VERSION_STRING;
}
