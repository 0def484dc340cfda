/*
 * Rules across keys, checked once the whole file is read: what is required,
 * what needs what, and that phase2 names a phase1. Each message points at the
 * line that would have to change: the set that conflicts, or the edit that
 * lacks a key.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/internal.h"

/* Set on a line (0 if never, or if the set was rejected and already reported). */
static unsigned set_at(const struct conf_lines *l, enum conf_sec sec, size_t idx, const char *key)
{
	unsigned line = conf_line_of(l, sec, idx, key);

	return (line & CONF_LINE_FAILED) ? 0 : line;
}

/* A rejected set already said what was wrong; "missing" would repeat it. */
static bool was_rejected(const struct conf_lines *l, enum conf_sec sec, size_t idx,
			 const char *key)
{
	return conf_line_of(l, sec, idx, key) & CONF_LINE_FAILED;
}

static void check_settings(const struct config *c, const struct conf_lines *l, struct conf_sink *s)
{
	const struct conf_settings *st = &c->settings;
	unsigned cert = set_at(l, SEC_SETTINGS, 0, "ike-tls-certificate");
	unsigned key = set_at(l, SEC_SETTINGS, 0, "ike-tls-private-key");

	if (st->ike_tls_service && !st->ike_tcp_service)
		conf_error(s, set_at(l, SEC_SETTINGS, 0, "ike-tls-service"),
			   "\"ike-tls-service enable\" needs \"set ike-tcp-service enable\" in \"config system settings\"");
	if (st->ike_tls_certificate && !st->ike_tls_private_key &&
	    !was_rejected(l, SEC_SETTINGS, 0, "ike-tls-private-key"))
		conf_error(s, cert,
			   "\"ike-tls-certificate\" is set but \"ike-tls-private-key\" is not: set both or neither");
	if (st->ike_tls_private_key && !st->ike_tls_certificate &&
	    !was_rejected(l, SEC_SETTINGS, 0, "ike-tls-certificate"))
		conf_error(s, key,
			   "\"ike-tls-private-key\" is set but \"ike-tls-certificate\" is not: set both or neither");
	if (st->ike_port == st->ike_natt_port) {
		unsigned at = set_at(l, SEC_SETTINGS, 0, "ike-natt-port");
		conf_error(s, at ? at : set_at(l, SEC_SETTINGS, 0, "ike-port"),
			   "\"ike-port\" and \"ike-natt-port\" are both %u: IKE without the non-ESP marker cannot share "
			   "a UDP port with ESP (RFC 3948)", st->ike_port);
	}
}

static void need(const struct conf_lines *l, enum conf_sec sec, size_t idx, unsigned line,
		 const char *entry, bool present, const char *key, const char *why,
		 struct conf_sink *s)
{
	if (present || was_rejected(l, sec, idx, key))
		return;
	conf_error(s, line, "%s \"%s\": missing \"set %s\"%s",
		   sec == SEC_PHASE1 ? "phase1-interface" : "phase2-interface", entry, key, why);
}

static void check_phase1(const struct config *c, size_t i, const struct conf_lines *l,
			 struct conf_sink *s)
{
	const struct conf_phase1 *p = &c->phase1[i];
	unsigned tline = set_at(l, SEC_PHASE1, i, "transport");

	need(l, SEC_PHASE1, i, p->line, p->name, p->interface, "interface", " (required)", s);
	if (p->type == CONF_P1_STATIC && !p->has_remote_gw && !p->has_remote_gw6 &&
	    !was_rejected(l, SEC_PHASE1, i, "remote-gw") &&
	    !was_rejected(l, SEC_PHASE1, i, "remote-gw6"))
		conf_error(s, p->line,
			   "phase1-interface \"%s\": type static needs \"set remote-gw\" or \"set remote-gw6\"",
			   p->name);
	if (p->authmethod == CONF_AUTH_PSK)
		need(l, SEC_PHASE1, i, p->line, p->name, p->psksecret, "psksecret",
		     " (authmethod psk)", s);
	if (p->authmethod == CONF_AUTH_SIGNATURE) {
		need(l, SEC_PHASE1, i, p->line, p->name, p->certificate, "certificate",
		     " (authmethod signature)", s);
		need(l, SEC_PHASE1, i, p->line, p->name, p->ca, "ca", " (authmethod signature)", s);
	}
	if (p->transport == CONF_TRANSPORT_AUTO && p->type != CONF_P1_STATIC)
		conf_error(s, tline ? tline : p->line,
			   "\"transport auto\" needs \"type static\" (phase1-interface \"%s\" is dynamic)",
			   p->name);
	if (p->transport != CONF_TRANSPORT_UDP && !c->settings.ike_tcp_service)
		conf_error(s, tline ? tline : p->line,
			   "\"transport %s\" needs \"set ike-tcp-service enable\" in \"config system settings\"",
			   p->transport == CONF_TRANSPORT_TCP ? "tcp" : "auto");
	if (p->transport != CONF_TRANSPORT_TCP && p->nattraversal == CONF_NATT_DISABLE) {
		unsigned nline = set_at(l, SEC_PHASE1, i, "nattraversal");
		conf_error(s, nline ? nline : p->line,
			   "phase1-interface \"%s\": \"nattraversal disable\" needs kernel ESP; this gateway's ESP "
			   "over UDP is always UDP-encapsulated (use enable or forced, or \"transport tcp\")",
			   p->name);
	}
}

static void check_phase2(struct config *c, size_t i, const struct conf_lines *l,
			 struct conf_sink *s)
{
	struct conf_phase2 *p = &c->phase2[i];
	unsigned ref_line = set_at(l, SEC_PHASE2, i, "phase1name");
	const char *names[64];
	size_t n = MIN(c->n_phase1, ARRAY_SIZE(names));

	need(l, SEC_PHASE2, i, p->line, p->name, p->phase1name, "phase1name", " (required)", s);
	if (p->phase1name) {
		for (size_t j = 0; j < c->n_phase1; j++) {
			if (strcmp(c->phase1[j].name, p->phase1name) == 0) {
				p->phase1_index = j;
				break;
			}
		}
		if (p->phase1_index == SIZE_MAX && n == 0) {
			conf_error(s, ref_line,
				   "phase1name \"%s\": there is no phase1-interface entry", p->phase1name);
		} else if (p->phase1_index == SIZE_MAX) {
			for (size_t j = 0; j < n; j++)
				names[j] = c->phase1[j].name;
			conf_error(s, ref_line,
				   "phase1name \"%s\" is not a phase1-interface entry (did you mean \"%s\"?)",
				   p->phase1name, conf_closest(p->phase1name, names, n));
		}
	}
	if (p->has_src_subnet6 != p->has_dst_subnet6 &&
	    !was_rejected(l, SEC_PHASE2, i, "src-subnet6") &&
	    !was_rejected(l, SEC_PHASE2, i, "dst-subnet6"))
		conf_error(s, p->line,
			   "phase2-interface \"%s\": set both \"src-subnet6\" and \"dst-subnet6\" or neither",
			   p->name);
}

void conf_check(struct config *conf, const struct conf_lines *lines, struct conf_sink *s)
{
	check_settings(conf, lines, s);
	for (size_t i = 0; i < conf->n_phase1; i++)
		check_phase1(conf, i, lines, s);
	for (size_t i = 0; i < conf->n_phase2; i++)
		check_phase2(conf, i, lines, s);
}
