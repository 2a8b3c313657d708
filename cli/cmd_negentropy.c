/*
 * cmd_negentropy.c — `p4p negentropy-harness`: engine/negentropy.c behind the line protocol of
 * the negentropy reference test harness (hoytech/negentropy test/cpp/harness.cpp), so that the
 * reference's conformance scripts (test/fuzz.pl, test/test.pl) can drive p4p against the C++ or
 * JS harness, and two p4p harnesses can be driven against each other.
 *
 * stdin, one command per line (empty lines ignored):
 *   item,TIMESTAMP,IDHEX   add an item (before seal)
 *   seal                   sort the items and create the session
 *   initiate               become the initiator; prints msg,HEX
 *   msg,HEX                a message from the peer. The responder prints msg,HEX. The initiator
 *                          prints have,IDHEX and need,IDHEX lines, then msg,HEX or done.
 * The frame size limit comes from the environment variable FRAMESIZELIMIT (0 or unset: none),
 * as in the reference. --nonstandard [--buckets N] [--idlist-threshold N] select the small-frame
 * mode of engine/negentropy.h (not byte-compatible with the reference).
 * Any error prints one line on stderr and exits: 2 for a bad command or message, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "negentropy.h"
#include "p4p/p4p.h"

struct harness {
    struct neg_storage storage;
    struct neg_session session;
    struct neg_options opt;
    int is_sealed;
    unsigned long line_no;
};

static int fail(const struct harness *h, int code, const char *what, const char *detail)
{
    fprintf(stderr, "p4p negentropy-harness: line %lu: %s%s%s\n", h->line_no, what,
            detail != NULL ? ": " : "", detail != NULL ? detail : "");
    return code;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes hex in place into out (which may alias it); returns the byte count or -1. */
static long from_hex(const char *hex, uint8_t *out)
{
    size_t len = strlen(hex);
    if (len % 2 != 0) {
        return -1;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

static void print_hex_line(const char *tag, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    fputs(tag, stdout);
    for (size_t i = 0; i < len; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 15]);
    }
    putchar('\n');
}

static int cmd_item(struct harness *h, char *args)
{
    char *comma = strchr(args, ',');
    uint64_t ts;
    uint8_t id[NEG_ID_LEN];
    if (comma == NULL || strchr(comma + 1, ',') != NULL) {
        return fail(h, CLI_EXIT_USAGE, "wrong num of fields", NULL);
    }
    *comma = '\0';
    if (parse_u64(args, &ts) != 0) {
        return fail(h, CLI_EXIT_USAGE, "bad timestamp", args);
    }
    if (strlen(comma + 1) != 2 * NEG_ID_LEN || from_hex(comma + 1, id) != NEG_ID_LEN) {
        return fail(h, CLI_EXIT_USAGE, "bad id (want 64 hex digits)", comma + 1);
    }
    int rc = neg_storage_add(&h->storage, ts, id);
    if (rc != 0) {
        return fail(h, rc == P4P_ENOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE, "cannot add item",
                    p4p_strerror(rc));
    }
    return 0;
}

static int cmd_seal(struct harness *h)
{
    int rc = neg_storage_seal(&h->storage);
    if (rc == 0) {
        rc = neg_session_init(&h->session, &h->storage, &h->opt);
        h->is_sealed = rc == 0;
    }
    if (rc != 0) {
        return fail(h, rc == P4P_ENOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE, "cannot seal",
                    p4p_strerror(rc));
    }
    return 0;
}

static int check_frame(const struct harness *h, size_t len)
{
    if (h->opt.frame_size_limit != 0 && len > h->opt.frame_size_limit) {
        return fail(h, CLI_EXIT_FAIL, "frameSizeLimit exceeded", NULL);
    }
    return 0;
}

static int cmd_initiate(struct harness *h)
{
    const uint8_t *msg;
    size_t len;
    int rc = neg_initiate(&h->session, &msg, &len);
    if (rc != 0) {
        return fail(h, rc == P4P_ENOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE, "cannot initiate",
                    p4p_strerror(rc));
    }
    if ((rc = check_frame(h, len)) != 0) {
        return rc;
    }
    print_hex_line("msg,", msg, len);
    return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
}

static int cmd_msg(struct harness *h, char *hex)
{
    uint8_t *in = (uint8_t *)hex; /* decoded in place */
    long len = from_hex(hex, in);
    struct neg_result r;
    if (len < 0) {
        return fail(h, CLI_EXIT_USAGE, "bad hex", NULL);
    }
    int rc = neg_reconcile(&h->session, in, (size_t)len, &r);
    if (rc != 0) {
        return fail(h, rc == P4P_ENOMEM ? CLI_EXIT_FAIL : CLI_EXIT_USAGE, "bad message",
                    p4p_strerror(rc));
    }
    for (size_t i = 0; i < r.have_count; i++) {
        print_hex_line("have,", r.have + i * NEG_ID_LEN, NEG_ID_LEN);
    }
    for (size_t i = 0; i < r.need_count; i++) {
        print_hex_line("need,", r.need + i * NEG_ID_LEN, NEG_ID_LEN);
    }
    if (r.is_done) {
        puts("done");
    } else {
        if ((rc = check_frame(h, r.msg_len)) != 0) {
            return rc;
        }
        print_hex_line("msg,", r.msg, r.msg_len);
    }
    return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAIL;
}

static int run_line(struct harness *h, char *line)
{
    char *comma = strchr(line, ',');
    char *args = comma != NULL ? comma + 1 : NULL;
    if (comma != NULL) {
        *comma = '\0';
    }
    if (strcmp(line, "item") == 0) {
        if (h->is_sealed) {
            return fail(h, CLI_EXIT_USAGE, "already sealed", NULL);
        }
        return args != NULL ? cmd_item(h, args)
                            : fail(h, CLI_EXIT_USAGE, "wrong num of fields", NULL);
    }
    if (strcmp(line, "seal") == 0) {
        return h->is_sealed ? fail(h, CLI_EXIT_USAGE, "already sealed", NULL) : cmd_seal(h);
    }
    if (strcmp(line, "initiate") != 0 && strcmp(line, "msg") != 0) {
        return fail(h, CLI_EXIT_USAGE, "unknown cmd", line);
    }
    if (!h->is_sealed) {
        return fail(h, CLI_EXIT_USAGE, "not sealed", NULL);
    }
    if (strcmp(line, "initiate") == 0) {
        return cmd_initiate(h);
    }
    return cmd_msg(h, args != NULL ? args : line + strlen(line)); /* "msg" alone: empty */
}

static int parse_args(struct harness *h, int argc, char **argv)
{
    const char *env = getenv("FRAMESIZELIMIT");
    if (env != NULL && *env != '\0' && parse_u64(env, &h->opt.frame_size_limit) != 0) {
        fprintf(stderr, "p4p negentropy-harness: bad FRAMESIZELIMIT '%s'\n", env);
        return CLI_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        uint64_t v = 0;
        int has_value = i + 1 < argc && parse_u64(argv[i + 1], &v) == 0 && v <= UINT32_MAX;
        if (strcmp(argv[i], "--nonstandard") == 0) {
            h->opt.flags |= NEG_NONSTANDARD;
        } else if (strcmp(argv[i], "--buckets") == 0 && has_value) {
            h->opt.buckets = (uint32_t)v;
            i++;
        } else if (strcmp(argv[i], "--idlist-threshold") == 0 && has_value) {
            h->opt.idlist_threshold = (uint32_t)v;
            i++;
        } else {
            fprintf(stderr, "usage: p4p negentropy-harness [--nonstandard [--buckets N] "
                            "[--idlist-threshold N]] < COMMANDS\n"
                            "  (frame size limit from $FRAMESIZELIMIT)\n");
            return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? CLI_EXIT_OK
                                                                                : CLI_EXIT_USAGE;
        }
    }
    return -1;
}

int cli_negentropy_harness(int argc, char **argv)
{
    struct harness h = {0};
    int status = parse_args(&h, argc, argv);
    if (status >= 0) {
        return status;
    }
    neg_storage_init(&h.storage, 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    status = CLI_EXIT_OK;
    while (status == CLI_EXIT_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        h.line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len > 0) {
            status = run_line(&h, line);
        }
    }
    free(line);
    if (h.is_sealed) {
        neg_session_free(&h.session);
    }
    neg_storage_free(&h.storage);
    return status;
}
