/*
 * Which payloads each exchange may carry, as data (after strongSwan's
 * encoding/message.c tables): for every (exchange, request|response) and
 * payload type, how many and whether inside SK. The second of the three
 * checks: structure (payload.c, message.c), then these rules, then meaning.
 */
#ifndef IKETCP_IKE_RULES_H
#define IKETCP_IKE_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "ike/message.h"

enum { IKE_RULE_MANY = UINT8_MAX };

struct ike_rule {
	uint8_t type;           /* enum ike_payload_type */
	uint8_t min, max;       /* max IKE_RULE_MANY: no limit but the message's */
	bool encrypted;         /* must be inside SK (false: must be outside) */
};

enum ike_rule_why {
	IKE_RULE_OK,
	IKE_RULE_UNKNOWN_EXCHANGE,  /* no rules for this exchange type */
	IKE_RULE_NOT_ALLOWED,       /* payload type not expected in this message */
	IKE_RULE_TOO_FEW,
	IKE_RULE_TOO_MANY,
	IKE_RULE_MUST_BE_ENCRYPTED,
	IKE_RULE_MUST_NOT_BE_ENCRYPTED,
	IKE_RULE_ORDER,             /* e.g. COOKIE not first (2.6) */
	IKE_RULE_NOT_TOGETHER,      /* e.g. TSi without TSr */
	IKE_RULE_MEANING,           /* well-formed but meaningless: see detail */
};

struct ike_rule_error {
	enum ike_rule_why why;
	uint8_t exchange;
	bool response;
	uint8_t payload;        /* the payload type concerned */
	unsigned count;         /* how many of it were seen */
	const struct ike_rule *rule;  /* the rule broken, when there is one */
	const char *detail;     /* IKE_RULE_MEANING: static text */
};

/*
 * Check m's payloads against the rules for its exchange and direction (the R
 * flag). inner = false: right after ike_msg_parse, outer payloads only;
 * inner = true: after ike_msg_parse_inner, everything. A response that holds
 * only Notify (and Vendor ID) payloads is an error or cookie answer and is
 * checked against the notify-only rules. 0 or -EBADMSG with *err filled in.
 */
int ike_rules_check(const struct ike_msg *m, bool inner, struct ike_rule_error *err);

/*
 * The third check, meaning, for what every exchange needs the same way
 * (after ike_rules_check passed, on the same inner flag):
 *  - Nonce 16..256 bytes (3.9); KE data present; AUTH data present;
 *  - SA: protocols fit the exchange (IKE_SA_INIT: IKE with no SPI; IKE_AUTH:
 *    AH/ESP with a 4-byte SPI; CREATE_CHILD_SA: those or IKE with 8);
 *    a request's proposals are numbered from 1 (3.3.1); a response carries
 *    one proposal with at most one transform of each type (2.7);
 *  - ID_IPV4_ADDR / ID_IPV6_ADDR of 4 / 16 bytes, other IDs not empty;
 *  - CP address attributes empty or of their fixed size (3.15.1).
 * Whether a group, algorithm or selector is acceptable is policy, not here.
 * 0 or -EBADMSG with why IKE_RULE_MEANING, the payload and a detail.
 */
int ike_msg_check_meaning(const struct ike_msg *m, bool inner, struct ike_rule_error *err);

const char *ike_rule_why_name(enum ike_rule_why why);

#endif
