/* Per-exchange payload rules (RFC 7296 1.2-1.5, 2.6) and their check. */
#include <errno.h>
#include <string.h>

#include "ike/rules.h"

#define MANY IKE_RULE_MANY
#define PLAIN false
#define SEALED true

/* 1.2: HDR, SAi1, KEi, Ni --> ; 2.6: a retried request starts with N(COOKIE). */
static const struct ike_rule init_req[] = {
	{ IKE_PL_SA, 1, 1, PLAIN },
	{ IKE_PL_KE, 1, 1, PLAIN },
	{ IKE_PL_NONCE, 1, 1, PLAIN },
	{ IKE_PL_N, 0, MANY, PLAIN },
	{ IKE_PL_V, 0, MANY, PLAIN },
};

/* 1.2: <-- HDR, SAr1, KEr, Nr, [CERTREQ] */
static const struct ike_rule init_rsp[] = {
	{ IKE_PL_SA, 1, 1, PLAIN },
	{ IKE_PL_KE, 1, 1, PLAIN },
	{ IKE_PL_NONCE, 1, 1, PLAIN },
	{ IKE_PL_CERTREQ, 0, MANY, PLAIN },
	{ IKE_PL_N, 0, MANY, PLAIN },
	{ IKE_PL_V, 0, MANY, PLAIN },
};

/* <-- HDR, N(COOKIE) / N(INVALID_KE_PAYLOAD) / N(NO_PROPOSAL_CHOSEN) ... */
static const struct ike_rule init_rsp_notify[] = {
	{ IKE_PL_N, 1, MANY, PLAIN },
	{ IKE_PL_V, 0, MANY, PLAIN },
};

/* 1.2: HDR, SK {IDi, [CERT,] [CERTREQ,] [IDr,] AUTH, SAi2, TSi, TSr} --> */
static const struct ike_rule auth_req[] = {
	{ IKE_PL_SK, 1, 1, PLAIN },
	{ IKE_PL_IDI, 1, 1, SEALED },
	{ IKE_PL_CERT, 0, MANY, SEALED },
	{ IKE_PL_CERTREQ, 0, MANY, SEALED },
	{ IKE_PL_IDR, 0, 1, SEALED },
	{ IKE_PL_AUTH, 1, 1, SEALED },
	{ IKE_PL_SA, 0, 1, SEALED },
	{ IKE_PL_TSI, 0, 1, SEALED },
	{ IKE_PL_TSR, 0, 1, SEALED },
	{ IKE_PL_CP, 0, 1, SEALED },
	{ IKE_PL_N, 0, MANY, SEALED },
	{ IKE_PL_V, 0, MANY, SEALED },
};

/* 1.2: <-- HDR, SK {IDr, [CERT,] AUTH, SAr2, TSi, TSr}; SA and TS may be
 * missing when only the Child SA failed (1.2, 2.21.2). */
static const struct ike_rule auth_rsp[] = {
	{ IKE_PL_SK, 1, 1, PLAIN },
	{ IKE_PL_IDR, 1, 1, SEALED },
	{ IKE_PL_CERT, 0, MANY, SEALED },
	{ IKE_PL_AUTH, 1, 1, SEALED },
	{ IKE_PL_SA, 0, 1, SEALED },
	{ IKE_PL_TSI, 0, 1, SEALED },
	{ IKE_PL_TSR, 0, 1, SEALED },
	{ IKE_PL_CP, 0, 1, SEALED },
	{ IKE_PL_N, 0, MANY, SEALED },
	{ IKE_PL_V, 0, MANY, SEALED },
};

/* <-- HDR, SK {N(AUTHENTICATION_FAILED)} and other sealed error answers. */
static const struct ike_rule sealed_notify[] = {
	{ IKE_PL_SK, 1, 1, PLAIN },
	{ IKE_PL_N, 1, MANY, SEALED },
	{ IKE_PL_V, 0, MANY, SEALED },
};

/* 1.3: HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], [TSi, TSr]} and the answer;
 * without TS it rekeys the IKE SA (1.3.2). */
static const struct ike_rule child_sa[] = {
	{ IKE_PL_SK, 1, 1, PLAIN },
	{ IKE_PL_SA, 1, 1, SEALED },
	{ IKE_PL_NONCE, 1, 1, SEALED },
	{ IKE_PL_KE, 0, 1, SEALED },
	{ IKE_PL_TSI, 0, 1, SEALED },
	{ IKE_PL_TSR, 0, 1, SEALED },
	{ IKE_PL_N, 0, MANY, SEALED },
	{ IKE_PL_V, 0, MANY, SEALED },
};

/* 1.4: HDR, SK {[N,] [D,] [CP,] ...}; empty is a liveness check (2.4). */
static const struct ike_rule info[] = {
	{ IKE_PL_SK, 1, 1, PLAIN },
	{ IKE_PL_D, 0, MANY, SEALED },
	{ IKE_PL_N, 0, MANY, SEALED },
	{ IKE_PL_CP, 0, 1, SEALED },
	{ IKE_PL_V, 0, MANY, SEALED },
};

struct ike_ruleset {
	uint8_t exchange;
	bool response;
	bool notify_only;       /* used for a response made only of N (and V) */
	bool sealed;            /* the exchange's payloads are inside SK */
	const struct ike_rule *rules;
	uint8_t nrules;
	uint16_t first_notify;  /* when present, this Notify must come first */
	uint8_t together[3];    /* all present or all absent (0: unused) */
};

#define RULES(t) .rules = (t), .nrules = ARRAY_SIZE(t)

static const struct ike_ruleset rulesets[] = {
	{ IKE_SA_INIT, false, false, false, RULES(init_req), .first_notify = COOKIE },
	{ IKE_SA_INIT, true, false, false, RULES(init_rsp) },
	{ IKE_SA_INIT, true, true, false, RULES(init_rsp_notify) },
	{ IKE_AUTH, false, false, true, RULES(auth_req),
	  .together = { IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR } },
	{ IKE_AUTH, true, false, true, RULES(auth_rsp),
	  .together = { IKE_PL_SA, IKE_PL_TSI, IKE_PL_TSR } },
	{ IKE_AUTH, true, true, true, RULES(sealed_notify) },
	{ CREATE_CHILD_SA, false, false, true, RULES(child_sa), .together = { IKE_PL_TSI, IKE_PL_TSR } },
	{ CREATE_CHILD_SA, true, false, true, RULES(child_sa), .together = { IKE_PL_TSI, IKE_PL_TSR } },
	{ CREATE_CHILD_SA, true, true, true, RULES(sealed_notify) },
	{ INFORMATIONAL, false, false, true, RULES(info) },
	{ INFORMATIONAL, true, false, true, RULES(info) },
};

/* Only N and V, at least one N, among the payloads that carry the exchange. */
static bool notify_only(const struct ike_msg *m, bool sealed)
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->npl; i++) {
		const struct ike_pl *p = &m->pl[i];
		if (p->inner != sealed)
			continue;
		if (p->type == IKE_PL_N)
			n++;
		else if (p->type != IKE_PL_V)
			return false;
	}
	return n > 0;
}

static const struct ike_ruleset *select_rules(const struct ike_msg *m, bool inner)
{
	bool response = ike_hdr_is_response(&m->hdr);
	const struct ike_ruleset *normal = NULL, *alt = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(rulesets); i++) {
		const struct ike_ruleset *rs = &rulesets[i];
		if (rs->exchange != m->hdr.exchange || rs->response != response)
			continue;
		if (rs->notify_only)
			alt = rs;
		else
			normal = rs;
	}
	/* Before decryption a sealed response cannot be told apart yet. */
	if (alt && (inner || !alt->sealed) && notify_only(m, alt->sealed))
		return alt;
	return normal;
}

static int broken(struct ike_rule_error *err, enum ike_rule_why why, uint8_t payload,
		  unsigned count, const struct ike_rule *rule)
{
	err->why = why;
	err->payload = payload;
	err->count = count;
	err->rule = rule;
	return -EBADMSG;
}

int ike_rules_check(const struct ike_msg *m, bool inner, struct ike_rule_error *err)
{
	unsigned seen[16] = { 0 };
	const struct ike_ruleset *rs = select_rules(m, inner);

	memset(err, 0, sizeof(*err));
	err->exchange = m->hdr.exchange;
	err->response = ike_hdr_is_response(&m->hdr);
	if (!rs)
		return broken(err, IKE_RULE_UNKNOWN_EXCHANGE, IKE_PL_NONE, 0, NULL);
	_Static_assert(ARRAY_SIZE(seen) >= ARRAY_SIZE(auth_req), "seen[] holds a count per rule");

	for (unsigned i = 0; i < m->npl; i++) {
		const struct ike_pl *p = &m->pl[i];
		const struct ike_rule *r = NULL;
		if (p->inner && !inner)
			continue;
		for (unsigned j = 0; j < rs->nrules; j++)
			if (rs->rules[j].type == p->type)
				r = &rs->rules[j];
		if (!r)
			return broken(err, IKE_RULE_NOT_ALLOWED, p->type, 1, NULL);
		if (r->encrypted && !p->inner)
			return broken(err, IKE_RULE_MUST_BE_ENCRYPTED, p->type, 1, r);
		if (!r->encrypted && p->inner)
			return broken(err, IKE_RULE_MUST_NOT_BE_ENCRYPTED, p->type, 1, r);
		unsigned n = ++seen[r - rs->rules];
		if (n > r->max)
			return broken(err, IKE_RULE_TOO_MANY, p->type, n, r);
	}
	for (unsigned j = 0; j < rs->nrules; j++) {
		const struct ike_rule *r = &rs->rules[j];
		if (r->encrypted && !inner)
			continue;
		if (seen[j] < r->min)
			return broken(err, IKE_RULE_TOO_FEW, r->type, seen[j], r);
	}
	if (rs->first_notify) {
		const struct ike_pl *n = ike_msg_find_notify(m, rs->first_notify);
		if (n && n != &m->pl[0])
			return broken(err, IKE_RULE_ORDER, IKE_PL_N, 1, NULL);
	}
	if (rs->together[0] && (inner || !rs->sealed)) {
		unsigned present = 0, k;
		for (k = 0; k < ARRAY_SIZE(rs->together) && rs->together[k]; k++)
			present += ike_msg_find(m, rs->together[k], NULL) != NULL;
		if (present != 0 && present != k)
			for (unsigned j = 0; j < k; j++)
				if (!ike_msg_find(m, rs->together[j], NULL))
					return broken(err, IKE_RULE_NOT_TOGETHER, rs->together[j], 0, NULL);
	}
	return 0;
}

/* ---- meaning ------------------------------------------------------------------ */

static const char *sa_meaning(const struct ike_sa_pl *sa, uint8_t exchange, bool response)
{
	if (response && sa->nprops != 1)
		return "SA response must carry exactly one proposal";
	if (!response && sa->props[0].num != 1)
		return "first proposal must be number 1";
	for (unsigned i = 0; i < sa->nprops; i++) {
		const struct ike_proposal *p = &sa->props[i];
		bool ike = p->proto == IKE_PROTO_IKE;
		bool child = p->proto == IKE_PROTO_AH || p->proto == IKE_PROTO_ESP;
		switch (exchange) {
		case IKE_SA_INIT:
			if (!ike || p->spi_size != 0)
				return "IKE_SA_INIT proposal must be IKE without SPI";
			break;
		case IKE_AUTH:
			if (!child)
				return "IKE_AUTH proposal must be AH or ESP";
			break;
		default:
			if (!child && !(ike && p->spi_size == IKE_SPI_LEN))
				return "CREATE_CHILD_SA proposal must be AH, ESP or IKE with SPI";
			break;
		}
		if (!response)
			continue;
		unsigned seen = 0;
		for (unsigned j = 0; j < p->nxf; j++) {
			uint8_t t = p->xf[j].type;
			if (t < 32 && (seen & 1u << t))
				return "SA response repeats a transform type";
			if (t < 32)
				seen |= 1u << t;
		}
	}
	return NULL;
}

static const char *id_meaning(const struct ike_id_pl *id)
{
	if (id->id_type == ID_IPV4_ADDR && id->len != 4)
		return "ID_IPV4_ADDR not 4 bytes";
	if (id->id_type == ID_IPV6_ADDR && id->len != 16)
		return "ID_IPV6_ADDR not 16 bytes";
	if (id->id_type != ID_NULL && id->len == 0)
		return "empty identity";
	return NULL;
}

static const char *cp_meaning(const struct ike_cp_pl *cp)
{
	for (unsigned i = 0; i < cp->nattrs; i++) {
		const struct ike_cp_attr *a = &cp->attrs[i];
		unsigned size;
		switch (a->type) {
		case INTERNAL_IP4_ADDRESS:
		case INTERNAL_IP4_NETMASK:
		case INTERNAL_IP4_DNS:
		case INTERNAL_IP4_NBNS:
		case INTERNAL_IP4_DHCP:
			size = 4;
			break;
		case INTERNAL_IP6_ADDRESS:
			size = 17;
			break;
		case INTERNAL_IP6_DNS:
		case INTERNAL_IP6_DHCP:
			size = 16;
			break;
		default:
			continue;
		}
		if (a->len != 0 && a->len != size)
			return "configuration address attribute of the wrong size";
	}
	return NULL;
}

int ike_msg_check_meaning(const struct ike_msg *m, bool inner, struct ike_rule_error *err)
{
	bool response = ike_hdr_is_response(&m->hdr);

	memset(err, 0, sizeof(*err));
	err->exchange = m->hdr.exchange;
	err->response = response;
	for (unsigned i = 0; i < m->npl; i++) {
		const struct ike_pl *p = &m->pl[i];
		const char *bad = NULL;
		if (p->inner && !inner)
			continue;
		switch (p->type) {
		case IKE_PL_NONCE:
			if (p->u.nonce.len < 16 || p->u.nonce.len > 256)
				bad = "nonce not 16..256 bytes";
			break;
		case IKE_PL_KE:
			if (p->u.ke.len == 0)
				bad = "KE without key exchange data";
			break;
		case IKE_PL_AUTH:
			if (p->u.auth.len == 0)
				bad = "AUTH without authentication data";
			break;
		case IKE_PL_SA:
			bad = sa_meaning(&p->u.sa, m->hdr.exchange, response);
			break;
		case IKE_PL_IDI:
		case IKE_PL_IDR:
			bad = id_meaning(&p->u.id);
			break;
		case IKE_PL_CP:
			bad = cp_meaning(&p->u.cp);
			break;
		}
		if (bad) {
			err->detail = bad;
			return broken(err, IKE_RULE_MEANING, p->type, 1, NULL);
		}
	}
	return 0;
}

const char *ike_rule_why_name(enum ike_rule_why why)
{
	switch (why) {
	case IKE_RULE_OK: return "ok";
	case IKE_RULE_UNKNOWN_EXCHANGE: return "no rules for this exchange";
	case IKE_RULE_NOT_ALLOWED: return "payload not allowed here";
	case IKE_RULE_TOO_FEW: return "payload missing";
	case IKE_RULE_TOO_MANY: return "payload repeated";
	case IKE_RULE_MUST_BE_ENCRYPTED: return "payload must be inside SK";
	case IKE_RULE_MUST_NOT_BE_ENCRYPTED: return "payload must be outside SK";
	case IKE_RULE_ORDER: return "payload out of order";
	case IKE_RULE_NOT_TOGETHER: return "payload missing from its group";
	case IKE_RULE_MEANING: return "payload content invalid";
	}
	return "unknown";
}
