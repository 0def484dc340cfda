/* Inbound SPI table: open addressing, linear probing, backward-shift removal. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "esp/spi_table.h"

/* SPIs we allocate are random, but mix anyway so sequential SPIs spread out. */
static uint32_t home(const struct spi_table *t, uint32_t spi)
{
	return (spi * 0x9e3779b1u ^ (spi >> 16)) & t->mask;
}

int spi_table_init(struct spi_table *t, uint32_t max_entries)
{
	memset(t, 0, sizeof(*t));
	if (max_entries == 0 || max_entries > (1u << 24))
		return -EINVAL;
	uint32_t slots = 2;
	while (slots / 2 < max_entries)
		slots <<= 1;
	t->slots = calloc(slots, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = slots - 1;
	t->limit = max_entries;
	return 0;
}

void spi_table_free(struct spi_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* The slot holding spi, or the empty slot where the probe stopped. */
static uint32_t probe(const struct spi_table *t, uint32_t spi)
{
	uint32_t i = home(t, spi);

	while (t->slots[i].spi != 0 && t->slots[i].spi != spi)
		i = (i + 1) & t->mask;
	return i;
}

int spi_table_insert(struct spi_table *t, uint32_t spi, struct esp_sa *sa)
{
	if (spi == 0 || !sa || !t->slots)
		return -EINVAL;
	uint32_t i = probe(t, spi);
	if (t->slots[i].spi == spi)
		return -EEXIST;
	if (t->count >= t->limit)
		return -ENOSPC;
	t->slots[i].spi = spi;
	t->slots[i].sa = sa;
	t->count++;
	return 0;
}

struct esp_sa *spi_table_lookup(const struct spi_table *t, uint32_t spi)
{
	if (spi == 0 || !t->slots)
		return NULL;
	const struct spi_slot *s = &t->slots[probe(t, spi)];
	return s->spi == spi ? s->sa : NULL;
}

int spi_table_remove(struct spi_table *t, uint32_t spi)
{
	if (spi == 0 || !t->slots)
		return -ENOENT;
	uint32_t hole = probe(t, spi);
	if (t->slots[hole].spi != spi)
		return -ENOENT;
	/*
	 * Backward shift: move each later entry of the run into the hole when
	 * its home is not cyclically inside (hole, j], so every entry stays
	 * reachable from its home without passing an empty slot.
	 */
	for (uint32_t j = (hole + 1) & t->mask; t->slots[j].spi != 0; j = (j + 1) & t->mask) {
		uint32_t h = home(t, t->slots[j].spi);
		if (((j - h) & t->mask) >= ((j - hole) & t->mask)) {
			t->slots[hole] = t->slots[j];
			hole = j;
		}
	}
	t->slots[hole].spi = 0;
	t->slots[hole].sa = NULL;
	t->count--;
	return 0;
}
