/*
 * peer_record.c — signed peer records (see peer_record.h).
 *
 * Signing writes the body right after the domain string in one stack buffer, so the signed
 * bytes are made without a copy; opening parses the outer array and the body strictly (the
 * body must be parsed first: the key that checks the signature is inside it), then checks the
 * signature over the same concatenation, then the time.
 */
#include "peer_record.h"

#include <string.h>

#include "cbor.h"
#include "cid.h"
#include "p4p/p4p.h"

#define DOMAIN_LEN        (sizeof PEER_RECORD_DOMAIN - 1)
#define TEXT_PREFIX       "p4p1:"
#define TEXT_PREFIX_UPPER "P4P1:"
#define PREFIX_LEN        (sizeof TEXT_PREFIX - 1)
/* The body fits in a record of PEER_RECORD_MAX bytes with its 3-byte head, the version, the
 * array head and the 66-byte signature. */
#define BODY_MAX (PEER_RECORD_MAX - 1 - 1 - 3 - 66)

/* The exact length an address of this kind must have, or -1 for an unknown kind. */
static int addr_len_of(uint64_t kind)
{
    switch (kind) {
    case PEER_ADDR_IPV4:
        return 6;
    case PEER_ADDR_IPV6:
        return 18;
    case PEER_ADDR_SIM:
    case PEER_ADDR_LORA:
        return 4;
    case PEER_ADDR_BLE:
        return 6;
    default:
        return -1;
    }
}

static int addr_ok(uint64_t kind, size_t len)
{
    int want = addr_len_of(kind);

    if (kind == 0 || kind > UINT32_MAX) {
        return 0;
    }
    return want >= 0 ? len == (size_t)want : len >= 1 && len <= PEER_ADDR_LEN_MAX;
}

static int iface_ok(uint64_t kind, uint64_t mtu)
{
    return kind >= 1 && kind <= UINT32_MAX && mtu >= 1 && mtu <= PEER_IFACE_MTU_MAX;
}

static int fields_ok(const struct peer_record *rec)
{
    if (rec->seq == 0 || rec->expires_ns <= rec->issued_ns ||
        rec->addr_count > PEER_RECORD_ADDR_MAX || rec->iface_count > PEER_RECORD_IFACE_MAX) {
        return 0;
    }
    for (uint32_t i = 0; i < rec->addr_count; i++) {
        if (!addr_ok(rec->addrs[i].kind, rec->addrs[i].len)) {
            return 0;
        }
    }
    for (uint32_t i = 0; i < rec->iface_count; i++) {
        if (!iface_ok(rec->ifaces[i].kind, rec->ifaces[i].mtu)) {
            return 0;
        }
    }
    return 1;
}

/* ---- Signing ------------------------------------------------------------------------------- */

static void put_body(struct cbor_writer *w, const struct peer_record *rec, const uint8_t pk[32])
{
    cbor_put_array(w, 7);
    cbor_put_bstr(w, pk, 32);
    cbor_put_uint(w, rec->seq);
    cbor_put_uint(w, rec->issued_ns);
    cbor_put_uint(w, rec->expires_ns);
    cbor_put_array(w, rec->addr_count);
    for (uint32_t i = 0; i < rec->addr_count; i++) {
        cbor_put_array(w, 2);
        cbor_put_uint(w, rec->addrs[i].kind);
        cbor_put_bstr(w, rec->addrs[i].bytes, rec->addrs[i].len);
    }
    cbor_put_array(w, rec->iface_count);
    for (uint32_t i = 0; i < rec->iface_count; i++) {
        cbor_put_array(w, 2);
        cbor_put_uint(w, rec->ifaces[i].kind);
        cbor_put_uint(w, rec->ifaces[i].mtu);
    }
    cbor_put_uint(w, rec->caps);
}

int peer_record_sign(const struct peer_record *rec, const struct identity *id, uint8_t *out,
                     size_t cap, size_t *out_len)
{
    uint8_t msg[DOMAIN_LEN + BODY_MAX];
    uint8_t sig[64];
    struct cbor_writer w;
    size_t body_len;

    if (!fields_ok(rec)) {
        return P4P_EINVAL;
    }
    memcpy(msg, PEER_RECORD_DOMAIN, DOMAIN_LEN);
    cbor_writer_init(&w, msg + DOMAIN_LEN, BODY_MAX);
    put_body(&w, rec, id->pk);
    if (!cbor_writer_ok(&w)) {
        return P4P_EINVAL; /* cannot happen within the limits fields_ok() checks */
    }
    body_len = w.len;
    identity_sign(id, msg, DOMAIN_LEN + body_len, sig);

    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, PEER_RECORD_VERSION);
    cbor_put_bstr(&w, msg + DOMAIN_LEN, body_len);
    cbor_put_bstr(&w, sig, sizeof sig);
    if (!cbor_writer_ok(&w)) {
        return P4P_ETOOBIG;
    }
    *out_len = w.len;
    return 0;
}

/* ---- Opening ------------------------------------------------------------------------------- */

static int get_addrs(struct cbor_reader *r, struct peer_record *rec)
{
    uint64_t n, pair, kind;
    const uint8_t *p;
    size_t len;

    if (cbor_get_array(r, &n) != 0 || n > PEER_RECORD_ADDR_MAX) {
        return P4P_EMALFORMED;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (cbor_get_array(r, &pair) != 0 || pair != 2 || cbor_get_uint(r, &kind) != 0 ||
            cbor_get_bstr(r, &p, &len) != 0 || !addr_ok(kind, len)) {
            return P4P_EMALFORMED;
        }
        rec->addrs[i].kind = (uint32_t)kind;
        rec->addrs[i].len = (uint8_t)len;
        memcpy(rec->addrs[i].bytes, p, len);
    }
    rec->addr_count = (uint32_t)n;
    return 0;
}

static int get_ifaces(struct cbor_reader *r, struct peer_record *rec)
{
    uint64_t n, pair, kind, mtu;

    if (cbor_get_array(r, &n) != 0 || n > PEER_RECORD_IFACE_MAX) {
        return P4P_EMALFORMED;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (cbor_get_array(r, &pair) != 0 || pair != 2 || cbor_get_uint(r, &kind) != 0 ||
            cbor_get_uint(r, &mtu) != 0 || !iface_ok(kind, mtu)) {
            return P4P_EMALFORMED;
        }
        rec->ifaces[i].kind = (uint32_t)kind;
        rec->ifaces[i].mtu = (uint32_t)mtu;
    }
    rec->iface_count = (uint32_t)n;
    return 0;
}

static int get_body(const uint8_t *body, size_t len, struct peer_record *rec)
{
    struct cbor_reader r;
    const uint8_t *pk;
    size_t pk_len;
    uint64_t n;

    memset(rec, 0, sizeof *rec);
    cbor_reader_init(&r, body, len);
    if (cbor_get_array(&r, &n) != 0 || n != 7 || cbor_get_bstr(&r, &pk, &pk_len) != 0 ||
        pk_len != 32 || cbor_get_uint(&r, &rec->seq) != 0 ||
        cbor_get_uint(&r, &rec->issued_ns) != 0 || cbor_get_uint(&r, &rec->expires_ns) != 0) {
        return P4P_EMALFORMED;
    }
    memcpy(rec->pk, pk, 32);
    if (get_addrs(&r, rec) != 0 || get_ifaces(&r, rec) != 0 || cbor_get_uint(&r, &rec->caps) != 0 ||
        !cbor_reader_done(&r) || !fields_ok(rec)) {
        return P4P_EMALFORMED;
    }
    return 0;
}

int peer_record_open(const uint8_t *buf, size_t len, uint64_t now, struct peer_record *out)
{
    uint8_t msg[DOMAIN_LEN + BODY_MAX];
    struct peer_record rec;
    struct cbor_reader r;
    const uint8_t *body, *sig;
    size_t body_len, sig_len;
    uint64_t n, version;

    if (len > PEER_RECORD_MAX) {
        return P4P_ETOOBIG;
    }
    cbor_reader_init(&r, buf, len);
    if (cbor_get_array(&r, &n) != 0 || n != 3 || cbor_get_uint(&r, &version) != 0) {
        return P4P_EMALFORMED;
    }
    if (version != PEER_RECORD_VERSION) {
        return P4P_EVERSION;
    }
    if (cbor_get_bstr(&r, &body, &body_len) != 0 || cbor_get_bstr(&r, &sig, &sig_len) != 0 ||
        sig_len != 64 || !cbor_reader_done(&r) || body_len > BODY_MAX) {
        return P4P_EMALFORMED;
    }
    if (get_body(body, body_len, &rec) != 0) {
        return P4P_EMALFORMED;
    }
    memcpy(msg, PEER_RECORD_DOMAIN, DOMAIN_LEN);
    memcpy(msg + DOMAIN_LEN, body, body_len);
    if (identity_verify(rec.pk, msg, DOMAIN_LEN + body_len, sig) != 0) {
        return P4P_EBADSIG;
    }
    if (now >= rec.expires_ns ||
        (rec.issued_ns > now && rec.issued_ns - now > PEER_RECORD_SKEW_NS)) {
        return P4P_EINVAL;
    }
    *out = rec;
    return 0;
}

int peer_record_is_newer(const struct peer_record *a, const struct peer_record *b)
{
    return memcmp(a->pk, b->pk, 32) == 0 && a->seq > b->seq;
}

/* ---- Text form ----------------------------------------------------------------------------- */

int peer_record_to_text(const uint8_t *rec, size_t len, char *out, size_t cap)
{
    int rc;

    if (len == 0 || len > PEER_RECORD_MAX) {
        return P4P_EINVAL;
    }
    if (cap < PREFIX_LEN) {
        return P4P_ETOOBIG;
    }
    rc = base32_encode(rec, len, out + PREFIX_LEN, cap - PREFIX_LEN);
    if (rc != 0) {
        return rc;
    }
    memcpy(out, TEXT_PREFIX, PREFIX_LEN);
    return 0;
}

int peer_record_text_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    char lower[PEER_RECORD_TEXT_MAX];
    size_t n;

    if (len < PREFIX_LEN || len > PEER_RECORD_TEXT_MAX) {
        return P4P_EMALFORMED;
    }
    n = len - PREFIX_LEN;
    if (memcmp(s, TEXT_PREFIX, PREFIX_LEN) == 0) {
        return base32_decode(s + PREFIX_LEN, n, out, cap, out_len);
    }
    if (memcmp(s, TEXT_PREFIX_UPPER, PREFIX_LEN) != 0) {
        return P4P_EMALFORMED;
    }
    /* The all-upper-case spelling: lower it, refusing lower-case letters (mixed case). */
    for (size_t i = 0; i < n; i++) {
        char c = s[PREFIX_LEN + i];
        if (c >= 'a' && c <= 'z') {
            return P4P_EMALFORMED;
        }
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    return base32_decode(lower, n, out, cap, out_len);
}

int peer_record_from_text(const char *s, size_t len, uint64_t now, struct peer_record *out)
{
    uint8_t bin[PEER_RECORD_MAX];
    size_t n;
    int rc = peer_record_text_decode(s, len, bin, sizeof bin, &n);

    if (rc != 0) {
        return rc == P4P_ETOOBIG ? P4P_EMALFORMED : rc;
    }
    return peer_record_open(bin, n, now, out);
}
