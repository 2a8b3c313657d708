/*
 * envelope.c — encode and strictly decode the wire messages of envelope.h with the CBOR
 * codec (cbor.h).
 */
#include "envelope.h"

#include "cbor.h"
#include "p4p/p4p.h"

static int decode_body(const uint8_t *body, size_t len, struct env_update *u)
{
    struct cbor_reader r;
    uint64_t n = 0;
    size_t origin_len = 0;
    cbor_reader_init(&r, body, len);
    cbor_get_array(&r, &n);
    cbor_get_bstr(&r, &u->origin, &origin_len);
    cbor_get_uint(&r, &u->seq);
    cbor_get_uint(&r, &u->created_ns);
    cbor_get_bstr(&r, &u->payload, &u->payload_len);
    if (!cbor_reader_done(&r) || n != 4 || origin_len != 32 || u->seq == 0) {
        return P4P_EMALFORMED;
    }
    return 0;
}

static int decode_update(struct cbor_reader *r, struct env_update *u)
{
    size_t sig_len = 0;
    cbor_get_uint(r, &u->hops);
    cbor_get_bstr(r, &u->body, &u->body_len);
    cbor_get_bstr(r, &u->sig, &sig_len);
    if (!cbor_reader_done(r) || sig_len != 64) {
        return P4P_EMALFORMED;
    }
    return decode_body(u->body, u->body_len, u);
}

static int decode_ids(struct cbor_reader *r, struct env_ids *ids)
{
    size_t len = 0;
    cbor_get_bstr(r, &ids->ids, &len);
    if (!cbor_reader_done(r) || len % ENV_ID_PREFIX_LEN != 0) {
        return P4P_EMALFORMED;
    }
    ids->count = len / ENV_ID_PREFIX_LEN;
    return 0;
}

int env_decode(const uint8_t *buf, size_t len, struct env_msg *out)
{
    struct cbor_reader r;
    uint64_t n = 0, version = 0, kind = 0;
    cbor_reader_init(&r, buf, len);
    if (cbor_get_array(&r, &n) != 0 || n < 2 || cbor_get_uint(&r, &version) != 0) {
        return P4P_EMALFORMED;
    }
    if (version != ENV_VERSION) {
        return P4P_EVERSION;
    }
    if (cbor_get_uint(&r, &kind) != 0) {
        return P4P_EMALFORMED;
    }
    struct env_msg m = {.kind = (enum env_kind)kind};
    int rc = P4P_EMALFORMED;
    if (kind == ENV_UPDATE && n == 5) {
        rc = decode_update(&r, &m.u.update);
    } else if ((kind == ENV_DIGEST || kind == ENV_WANT || kind == ENV_OFFER) && n == 3) {
        rc = decode_ids(&r, &m.u.ids);
    } else if (kind == ENV_BLOB && n == 3) {
        cbor_get_bstr(&r, &m.u.blob.data, &m.u.blob.len);
        rc = cbor_reader_done(&r) && m.u.blob.len > 0 ? 0 : P4P_EMALFORMED;
    }
    if (rc == 0) {
        *out = m;
    }
    return rc;
}

static size_t finish(const struct cbor_writer *w)
{
    return cbor_writer_ok(w) ? w->len : 0;
}

size_t env_encode_body(uint8_t *out, size_t cap, const uint8_t origin[32], uint64_t seq,
                       uint64_t created_ns, const uint8_t *payload, size_t payload_len)
{
    struct cbor_writer w;
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 4);
    cbor_put_bstr(&w, origin, 32);
    cbor_put_uint(&w, seq);
    cbor_put_uint(&w, created_ns);
    cbor_put_bstr(&w, payload, payload_len);
    return finish(&w);
}

size_t env_encode_update(uint8_t *out, size_t cap, uint64_t hops, const uint8_t *body,
                         size_t body_len, const uint8_t sig[64])
{
    struct cbor_writer w;
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 5);
    cbor_put_uint(&w, ENV_VERSION);
    cbor_put_uint(&w, ENV_UPDATE);
    cbor_put_uint(&w, hops);
    cbor_put_bstr(&w, body, body_len);
    cbor_put_bstr(&w, sig, 64);
    return finish(&w);
}

size_t env_encode_ids(uint8_t *out, size_t cap, enum env_kind kind, const uint8_t *ids,
                      size_t count)
{
    struct cbor_writer w;
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, ENV_VERSION);
    cbor_put_uint(&w, kind);
    cbor_put_bstr(&w, ids, count * ENV_ID_PREFIX_LEN);
    return finish(&w);
}

size_t env_encode_blob(uint8_t *out, size_t cap, const uint8_t *msg, size_t len)
{
    struct cbor_writer w;
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, ENV_VERSION);
    cbor_put_uint(&w, ENV_BLOB);
    cbor_put_bstr(&w, msg, len);
    return finish(&w);
}
