/*
 * Assertions shared by the C tests of libmtasts. Each failed check prints its location and
 * expression to stderr and exits with status 1.
 */
#ifndef MTASTS_TEST_CHECK_H
#define MTASTS_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* Two strings are equal; NULL is printed as (null) and equals nothing. */
#define CHECK_STR(actual, expected)                                                  \
  do {                                                                               \
    const char *check_a_ = (actual), *check_e_ = (expected);                         \
    if (check_a_ == NULL || strcmp(check_a_, check_e_) != 0) {                       \
      fprintf(stderr, "%s:%d: %s\n  is: %s\n  expected: %s\n", __FILE__, __LINE__,   \
              #actual, check_a_ ? check_a_ : "(null)", check_e_);                    \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* `actual` contains `part`. */
#define CHECK_CONTAINS(actual, part)                                                 \
  do {                                                                               \
    const char *check_a_ = (actual), *check_p_ = (part);                             \
    if (check_a_ == NULL || strstr(check_a_, check_p_) == NULL) {                    \
      fprintf(stderr, "%s:%d: %s\n  is: %s\n  expected to contain: %s\n", __FILE__,  \
              __LINE__, #actual, check_a_ ? check_a_ : "(null)", check_p_);          \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

/* `actual` starts with `prefix`. */
#define CHECK_PREFIX(actual, prefix)                                                 \
  do {                                                                               \
    const char *check_a_ = (actual), *check_p_ = (prefix);                           \
    if (check_a_ == NULL || strncmp(check_a_, check_p_, strlen(check_p_)) != 0) {    \
      fprintf(stderr, "%s:%d: %s\n  is: %s\n  expected to start with: %s\n",         \
              __FILE__, __LINE__, #actual, check_a_ ? check_a_ : "(null)", check_p_); \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

#endif /* MTASTS_TEST_CHECK_H */
