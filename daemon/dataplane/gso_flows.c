/* Per-flow coalescing of opened TCP segments (see gso_flows.h). */
#include "dataplane/gso_flows.h"

void gso_flows_init(struct gso_flows *f, uint8_t (*bufs)[GSO_PKT_MAX], gso_write_fn write, void *arg)
{
	for (unsigned i = 0; i < GSO_FLOWS; i++)
		gso_coalesce_init(&f->co[i], bufs[i]);
	f->next = 0;
	f->write = write;
	f->arg = arg;
}

/* Writes the superpacket builder c holds, if any. */
static void flush_one(struct gso_flows *f, struct gso_coalesce *c)
{
	struct gso_hdr h;
	size_t len;
	unsigned segs = c->segs;

	if (gso_coalesce_finish(c, &h, &len))
		f->write(f->arg, &h, c->buf, len, segs);
}

void gso_flows_flush(struct gso_flows *f)
{
	for (unsigned i = 0; i < GSO_FLOWS; i++)
		flush_one(f, &f->co[i]);
}

void gso_flows_input(struct gso_flows *f, uint8_t *pkt, size_t len)
{
	struct gso_coalesce *c, *empty = NULL;

	for (unsigned i = 0; i < GSO_FLOWS; i++) {
		c = &f->co[i];
		if (!c->len) {
			empty = empty ? empty : c;
			continue;
		}
		if (!gso_coalesce_same_flow(c, pkt, len))
			continue;
		switch (gso_coalesce_add(c, pkt, len)) {
		case GSO_ADDED:
			return;
		case GSO_FLUSH: /* a gap, a size change, PSH before: the flow's superpacket goes, this one starts anew */
			flush_one(f, c);
			if (gso_coalesce_add(c, pkt, len) == GSO_ADDED)
				return;
			break;
		case GSO_AS_IS:
			flush_one(f, c);
			break;
		}
		f->write(f->arg, NULL, pkt, len, 1);
		return;
	}
	if (!empty && !gso_coalesce_candidate(pkt, len)) {
		f->write(f->arg, NULL, pkt, len, 1); /* no builder is given up for what cannot be joined */
		return;
	}
	if (!empty) { /* more flows than builders: the next in turn makes room */
		empty = &f->co[f->next];
		f->next = (f->next + 1) % GSO_FLOWS;
		flush_one(f, empty);
	}
	if (gso_coalesce_add(empty, pkt, len) != GSO_ADDED)
		f->write(f->arg, NULL, pkt, len, 1);
}
