/* The daemon-wide counters and their JSON rendering, both generated from stats.h. */
#include "iketcp/json.h"
#include "iketcp/stats.h"

struct stats stats;

void stats_write_json(const struct stats *s, struct jw *w)
{
#define STATS_JSON_FIELD(name) jw_u64(w, #name, sec_->name);
#define STATS_JSON_SECTION(sec, LIST)                                                \
	{                                                                            \
		const __typeof__(s->sec) *sec_ = &s->sec;                            \
		jw_obj_open(w, #sec);                                                \
		LIST(STATS_JSON_FIELD)                                               \
		jw_obj_close(w);                                                     \
	}
	STATS_SECTIONS(STATS_JSON_SECTION)
#undef STATS_JSON_SECTION
#undef STATS_JSON_FIELD
}
