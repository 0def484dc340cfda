/*
 * Inbound SPI -> SA lookup: open addressing with linear probing, sized once
 * at init (at most half full), no allocation on insert, lookup or remove.
 * Removal shifts the following entries back, so there are no tombstones and
 * a lookup stops at the first empty slot. SPI 0 marks an empty slot.
 */
#ifndef IKETCP_ESP_SPI_TABLE_H
#define IKETCP_ESP_SPI_TABLE_H

#include <stdint.h>
#include "iketcp/compiler.h"

struct esp_sa;

struct spi_slot {
	uint32_t spi;
	struct esp_sa *sa;
};

struct spi_table {
	struct spi_slot *slots;
	uint32_t mask;  /* slots - 1, a power of two minus one */
	uint32_t count;
	uint32_t limit; /* entries allowed: half the slots */
};

/* Room for max_entries SAs (1..2^24). 0, -EINVAL or -ENOMEM. */
must_check int spi_table_init(struct spi_table *t, uint32_t max_entries);
void spi_table_free(struct spi_table *t);
/* 0, -EINVAL (SPI 0 or sa NULL), -EEXIST, -ENOSPC (full). */
must_check int spi_table_insert(struct spi_table *t, uint32_t spi, struct esp_sa *sa);
/* 0 or -ENOENT. */
int spi_table_remove(struct spi_table *t, uint32_t spi);
/* The SA for spi, or NULL. */
struct esp_sa *spi_table_lookup(const struct spi_table *t, uint32_t spi);

#endif
