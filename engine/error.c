/*
 * error.c — p4p_strerror(), generated from the P4P_ERRORS table in p4p.h.
 */
#include "p4p/p4p.h"

const char *p4p_strerror(int err)
{
    switch (err) {
#define P4P_ERROR_CASE_(name, code, text)                                                          \
    case (code):                                                                                   \
        return (text);
        P4P_ERRORS(P4P_ERROR_CASE_)
#undef P4P_ERROR_CASE_
    default:
        return "unknown error";
    }
}
