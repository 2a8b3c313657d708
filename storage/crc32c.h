/*
 * crc32c.h — CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and SQLite's cksumvfs), the
 * checksum both storage backends put on every stored item. It detects every single-bit error
 * and every burst up to 32 bits, which is what a torn or bit-flipped record looks like.
 * Slicing-by-8 tables, built on first use; crc32c("123456789") = 0xe3069283.
 */
#ifndef P4P_CRC32C_H
#define P4P_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (0 to start) over `len` bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif /* P4P_CRC32C_H */
