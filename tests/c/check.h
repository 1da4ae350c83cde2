/* The check macro shared by the C test programs: counts results, reports failures with the
 * library's last error. Each program prints "N passed, N failed" at the end. */
#ifndef PAN_TEST_CHECK_H
#define PAN_TEST_CHECK_H
#include <stdio.h>

#include "pan_offline.h"

static int passed, failed;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__,       \
                    __LINE__, #cond, pan_last_error_message());                          \
        }                                                                                \
    } while (0)

#endif
