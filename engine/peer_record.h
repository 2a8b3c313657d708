/*
 * peer_record.h — signed, expiring peer records: "this key can be reached here, over these
 * interfaces, and offers these services", for discovery to spread and for QR-code import.
 *
 * Wire form (deterministic CBOR, decoded strictly — shortest heads, exact counts and lengths,
 * no trailing bytes):
 *
 *   record = [1, body: bstr, sig: bstr .size 64]
 *   body   = [pk: bstr .size 32,           the peer's Ed25519 public key
 *             seq: uint (>= 1),            newer replaces older, per key
 *             issued_ns: uint,
 *             expires_ns: uint (> issued_ns),
 *             addrs: [* [kind: uint, addr: bstr]]      at most PEER_RECORD_ADDR_MAX
 *             ifaces: [* [kind: uint, mtu: uint]]      at most PEER_RECORD_IFACE_MAX
 *             caps: uint]                              PEER_CAP_* bits
 *   sig    = Ed25519(pk, "p4p-peer-record-v1" || body)
 *
 * The domain string keeps a record signature from ever verifying as another p4p message.
 * Known address kinds have exact lengths (below); unknown kinds are carried, opaque, with at
 * most PEER_ADDR_LEN_MAX bytes, so that older nodes can still pass newer records on. Unknown
 * interface kinds and capability bits are carried the same way. A whole record is at most
 * PEER_RECORD_MAX bytes.
 *
 * Times are nanoseconds on the clock the network shares (simulated time in the simulator,
 * Unix time in live mode). A record is valid while issued_ns <= now + PEER_RECORD_SKEW_NS and
 * now < expires_ns.
 *
 * Text form, for QR codes and copy-paste: "p4p1:" followed by the record bytes in base32
 * (lower case, no padding; cid.h). The reader also takes the whole string in upper case,
 * which QR alphanumeric mode encodes more compactly.
 *
 * Nothing allocates: struct peer_record has a fixed size, outputs go to caller buffers.
 */
#ifndef P4P_PEER_RECORD_H
#define P4P_PEER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"

#define PEER_RECORD_VERSION   1
#define PEER_RECORD_DOMAIN    "p4p-peer-record-v1"
#define PEER_RECORD_ADDR_MAX  8
#define PEER_ADDR_LEN_MAX     32
#define PEER_RECORD_IFACE_MAX 8
#define PEER_IFACE_MTU_MAX    65535
/* Largest signed record accepted (the worst case of the limits above is 536 bytes). */
#define PEER_RECORD_MAX 600
/* Largest text form, without the NUL. */
#define PEER_RECORD_TEXT_MAX (5 + (PEER_RECORD_MAX / 5) * 8 + (PEER_RECORD_MAX % 5 * 8 + 4) / 5)
/* How far in the future issued_ns may lie: clocks of two live nodes disagree a little. */
#define PEER_RECORD_SKEW_NS (UINT64_C(60) * 1000000000)

enum peer_addr_kind {
    PEER_ADDR_IPV4 = 1, /* 4-byte address, 2-byte port, network byte order: 6 bytes */
    PEER_ADDR_IPV6 = 2, /* 16-byte address, 2-byte port: 18 bytes */
    PEER_ADDR_SIM = 3,  /* simulator node index, 4 bytes big-endian */
    PEER_ADDR_BLE = 4,  /* 6-byte Bluetooth device address */
    PEER_ADDR_LORA = 5, /* 4-byte LoRaWAN DevAddr */
};

enum peer_iface_kind {
    PEER_IFACE_LORA = 1,
    PEER_IFACE_BLE = 2,
    PEER_IFACE_WIFI = 3,
    PEER_IFACE_LAN = 4,
    PEER_IFACE_SIM = 5,
};

/* Capability bits. */
#define PEER_CAP_RELAY      (UINT64_C(1) << 0) /* forwards for others */
#define PEER_CAP_STORE      (UINT64_C(1) << 1) /* keeps updates for repair */
#define PEER_CAP_GATEWAY    (UINT64_C(1) << 2) /* bridges interfaces (e.g. LoRa <-> IP) */
#define PEER_CAP_RENDEZVOUS (UINT64_C(1) << 3) /* introduces peers to each other */

struct peer_addr {
    uint32_t kind;
    uint8_t len;
    uint8_t bytes[PEER_ADDR_LEN_MAX];
};

struct peer_iface {
    uint32_t kind;
    uint32_t mtu; /* 1..PEER_IFACE_MTU_MAX bytes */
};

struct peer_record {
    uint8_t pk[32];
    uint64_t seq;
    uint64_t issued_ns;
    uint64_t expires_ns;
    uint32_t addr_count;
    struct peer_addr addrs[PEER_RECORD_ADDR_MAX];
    uint32_t iface_count;
    struct peer_iface ifaces[PEER_RECORD_IFACE_MAX];
    uint64_t caps;
};

/* Encodes and signs rec with the identity's key into out[0..cap); *out_len is the record's
 * length. rec->pk is ignored: the record carries id->pk. 0; P4P_EINVAL when rec breaks a rule
 * above (seq 0, expires_ns <= issued_ns, counts, lengths, mtu); P4P_ETOOBIG. */
int peer_record_sign(const struct peer_record *rec, const struct identity *id, uint8_t *out,
                     size_t cap, size_t *out_len);

/* Checks and decodes a record from exactly buf[0..len): size, strict CBOR, field rules,
 * signature, then time. 0; P4P_ETOOBIG (more than PEER_RECORD_MAX bytes); P4P_EMALFORMED;
 * P4P_EVERSION (another record version); P4P_EBADSIG; P4P_EINVAL when the record is genuine
 * but not valid at `now` (expired, or issued too far in the future). *out is written only on
 * success. */
int peer_record_open(const uint8_t *buf, size_t len, uint64_t now, struct peer_record *out);

/* 1 when a replaces b: the same key and a higher sequence number; else 0. Two records with
 * the same key and seq are never newer than each other, even if they differ. */
int peer_record_is_newer(const struct peer_record *a, const struct peer_record *b);

/* "p4p1:" + base32 of rec[0..len) and a NUL into out[0..cap). 0, P4P_EINVAL (len 0 or more
 * than PEER_RECORD_MAX), or P4P_ETOOBIG (PEER_RECORD_TEXT_MAX + 1 always fits). */
int peer_record_to_text(const uint8_t *rec, size_t len, char *out, size_t cap);

/* The record bytes of a text form s[0..len), unchecked, into out[0..cap) (PEER_RECORD_MAX
 * always fits). 0, P4P_EMALFORMED or P4P_ETOOBIG. */
int peer_record_text_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* peer_record_text_decode() then peer_record_open(); same results. */
int peer_record_from_text(const char *s, size_t len, uint64_t now, struct peer_record *out);

#endif /* P4P_PEER_RECORD_H */
