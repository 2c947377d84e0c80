/* nat_type.h - the NAT types of the wire protocol (PROTOCOL.md: natType
 * in connectionInfo, presence and welcome) and their names: the one list
 * the codec, the server and the client library use.
 *
 * The numbering is fixed: librendezvous' public enum rdv_nat_type has the
 * same values in the same order.
 */
#ifndef RDV_SCHEMA_NAT_TYPE_H
#define RDV_SCHEMA_NAT_TYPE_H

typedef enum rdv_wire_nat {
    RDV_WIRE_NAT_UNKNOWN = 0,
    RDV_WIRE_NAT_FULL_CONE,
    RDV_WIRE_NAT_RESTRICTED_CONE,
    RDV_WIRE_NAT_PORT_RESTRICTED,
    RDV_WIRE_NAT_SYMMETRIC,
    RDV_WIRE_NAT__COUNT
} rdv_wire_nat;

/* The wire name of t ("fullCone" ...); "unknown" for anything out of range. */
const char *rdv_wire_nat_name(int t);

/* The type named s, or -1 when s (possibly NULL) is no NAT type name. */
int rdv_wire_nat_parse(const char *s);

#endif
