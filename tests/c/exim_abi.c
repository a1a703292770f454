/*
 * The Exim ${dlfunc} entry points, called the way Exim calls them: looked up with dlopen(3)
 * (RTLD_LAZY) and dlsym(3) by name, through Exim's own function type, with argv built as Exim
 * builds it. See ../shared/reference/mta-integration.md §1.1.
 *
 * usage: exim_abi LIBRARY CONFIG
 *   LIBRARY  path of libmtasts.so
 *   CONFIG   the fixtures' configuration, which this program puts in $MTA_STS_CONFIG (the
 *            entry points use the default configuration search)
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mtasts.h"

/* From Exim's local_scan.h. */
typedef unsigned char uschar;
typedef int exim_dlfunc_t(uschar **yield, int argc, uschar *argv[]);
#define OK 0
#define DEFER 1
#define FAIL 2
#define ERROR 3
#define FAIL_FORCED 4

/* The header's prototypes have Exim's type, and its constants Exim's values. */
static exim_dlfunc_t *const linked_lookup = mta_sts_lookup;
static exim_dlfunc_t *const linked_policy = mta_sts_policy;
static exim_dlfunc_t *const linked_mx_allowed = mta_sts_mx_allowed;

static exim_dlfunc_t *lookup;
static exim_dlfunc_t *policy;
static exim_dlfunc_t *mx_allowed;

#define ENFORCE_LINE                                                                        \
  "mode=enforce ignore=\"!^mail[.]enforce[.]example$ : !^[^.]+[.]mx[.]enforce[.]example$ : " \
  "*\" match=\"^(mail[.]enforce[.]example|[^.]+[.]mx[.]enforce[.]example)$\" max_age=86400 " \
  "id=\"20240101\" mx=\"mail.enforce.example *.mx.enforce.example\""

#define TESTING_LINE                                                                        \
  "mode=testing ignore=\"!^mail[.]testing[.]example$ : *\" "                                \
  "match=\"^(mail[.]testing[.]example)$\" max_age=604800 id=\"t1\" mx=\"mail.testing.example\""

/* Calls `fn` with up to two arguments (NULL ends the list early) and returns its code; the
 * yield goes to *yield. */
static int call(exim_dlfunc_t *fn, const char **yield, const char *a, const char *b) {
  uschar *argv[3] = {(uschar *)a, (uschar *)b, NULL};
  uschar *y = (uschar *)"unchanged";
  int argc = a == NULL ? 0 : b == NULL ? 1 : 2;
  int code = fn(&y, argc, argv);
  *yield = (const char *)y;
  return code;
}

static void codes(void) {
  CHECK(MTASTS_EXIM_OK == OK && MTASTS_EXIM_DEFER == DEFER && MTASTS_EXIM_FAIL == FAIL &&
        MTASTS_EXIM_ERROR == ERROR && MTASTS_EXIM_FAIL_FORCED == FAIL_FORCED);
}

/* The functions as linked answer like the ones found with dlsym. */
static void linked(void) {
  const char *y;
  CHECK(call(linked_lookup, &y, "enforce.example", NULL) == OK);
  CHECK_PREFIX(y, "mode=enforce ");
  CHECK(call(linked_policy, &y, "nopolicy.example", NULL) == OK);
  CHECK_STR(y, "mode=none");
  CHECK(call(linked_mx_allowed, &y, "enforce.example", "mail.enforce.example") == OK);
  CHECK_STR(y, "yes");
}

/* A configuration that cannot be loaded is an ERROR (panic log), tried again on each call. */
static void broken_configuration(const char *config) {
  const char *y;
  CHECK(setenv("MTA_STS_CONFIG", "/nonexistent/mta-sts.toml", 1) == 0);
  CHECK(call(lookup, &y, "enforce.example", NULL) == ERROR);
  CHECK_PREFIX(y, "mta_sts_lookup: config: cannot read /nonexistent/mta-sts.toml: ");
  CHECK(call(policy, &y, "enforce.example", NULL) == ERROR);
  CHECK_PREFIX(y, "mta_sts_policy: config: cannot read /nonexistent/mta-sts.toml: ");
  CHECK(call(mx_allowed, &y, "enforce.example", "mail.enforce.example") == ERROR);
  CHECK_PREFIX(y, "mta_sts_mx_allowed: config: cannot read /nonexistent/mta-sts.toml: ");
  CHECK(setenv("MTA_STS_CONFIG", config, 1) == 0);
}

static void lookups(void) {
  const char *y, *kept;

  CHECK(call(lookup, &y, "enforce.example", NULL) == OK);
  CHECK_STR(y, ENFORCE_LINE);
  /* Again, from the cache, normalised. */
  CHECK(call(lookup, &y, "ENFORCE.example.", NULL) == OK);
  CHECK_STR(y, ENFORCE_LINE);
  CHECK(call(lookup, &y, "testing.example", NULL) == OK);
  CHECK_STR(y, TESTING_LINE);

  /* Mode none and no policy: forced failure, the router declines. */
  CHECK(call(lookup, &y, "none.example", NULL) == FAIL_FORCED);
  CHECK_PREFIX(y, "mta-sts: none.example: none (max_age 86400, id n1, ");
  CHECK(call(lookup, &y, "nopolicy.example", NULL) == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: nopolicy.example: no policy");
  CHECK(call(lookup, &y, "broken.example", NULL) == FAIL_FORCED);
  CHECK_PREFIX(y, "mta-sts: broken.example: no policy (fetch: HTTP status 404");

  /* Temporary failure: FAIL, the address is deferred, no panic-log line. */
  CHECK(call(lookup, &y, "tempfail.example", NULL) == FAIL);
  CHECK_PREFIX(y,
               "mta-sts: tempfail.example: temporary failure (dns: _mta-sts.tempfail.example.: "
               "server answered ");

  /* The yield of a failure stays valid after the call, until the next call on this thread. */
  kept = y;
  CHECK_PREFIX(kept, "mta-sts: tempfail.example: temporary failure");

  /* Input that cannot have a policy: FAIL_FORCED (the router declines), with the reason. */
  CHECK(call(lookup, &y, "a..b", NULL) == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: error: domain: empty label");
  CHECK(call(lookup, &y, "", NULL) == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: error: domain: empty");
  CHECK(call(lookup, &y, "[192.0.2.1]", NULL) == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: error: domain: address literals have no MTA-STS policy");
  CHECK(call(lookup, &y, "a\x01" "b.example", NULL) == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: error: domain: invalid character \"\\x01\"");
}

/* mta_sts_policy: OK with the exim-dialect line for every answer about the domain. */
static void policies(void) {
  const char *y, *kept;

  CHECK(call(policy, &y, "enforce.example", NULL) == OK);
  CHECK_STR(y, ENFORCE_LINE);
  CHECK(call(policy, &y, "ENFORCE.example.", NULL) == OK);
  CHECK_STR(y, ENFORCE_LINE);
  CHECK(call(policy, &y, "testing.example", NULL) == OK);
  CHECK_STR(y, TESTING_LINE);

  /* Mode none, no policy: "mode=none", with the reason when there is one. */
  CHECK(call(policy, &y, "none.example", NULL) == OK);
  CHECK_STR(y, "mode=none max_age=86400 id=\"n1\"");
  CHECK(call(policy, &y, "nopolicy.example", NULL) == OK);
  CHECK_STR(y, "mode=none");
  CHECK(call(policy, &y, "broken.example", NULL) == OK);
  CHECK_STR(y, "mode=none error=\"fetch: HTTP status 404, expected 200\"");

  /* Temporary failure: "mode=defer" and the reason; the routers defer the address. */
  CHECK(call(policy, &y, "tempfail.example", NULL) == OK);
  CHECK_STR(y,
            "mode=defer error=\"dns: _mta-sts.tempfail.example.: server answered Server Failure\"");
  /* Again, the same line. */
  CHECK(call(policy, &y, "tempfail.example", NULL) == OK);
  CHECK_STR(y,
            "mode=defer error=\"dns: _mta-sts.tempfail.example.: server answered Server Failure\"");

  /* Input that cannot have a policy, bad bytes included: "mode=error" and the reason. */
  CHECK(call(policy, &y, "a..b", NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain: empty label\"");
  CHECK(call(policy, &y, "", NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain: empty\"");
  CHECK(call(policy, &y, "[192.0.2.1]", NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain: address literals have no MTA-STS policy\"");
  CHECK(call(policy, &y, "a\x01" "b.example", NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain: invalid character '/x01'\"");

  /* The yield stays valid after the call, until the next call on this thread, whether it is a
   * remembered line or not; the two lookups share the remembered lines. */
  CHECK(call(policy, &y, "enforce.example", NULL) == OK);
  kept = y;
  CHECK(call(lookup, &y, "enforce.example", NULL) == OK);
  CHECK_STR(kept, ENFORCE_LINE);
  CHECK_STR(y, ENFORCE_LINE);
  CHECK(call(policy, &y, "[192.0.2.1]", NULL) == OK);
  kept = y;
  CHECK_STR(kept, "mode=error error=\"domain: address literals have no MTA-STS policy\"");
}

static void mx_checks(void) {
  const char *y;
  CHECK(call(mx_allowed, &y, "enforce.example", "mail.enforce.example") == OK);
  CHECK_STR(y, "yes");
  CHECK(call(mx_allowed, &y, "enforce.example", "X.MX.enforce.example.") == OK);
  CHECK_STR(y, "yes");
  CHECK(call(mx_allowed, &y, "enforce.example", "a.b.mx.enforce.example") == OK);
  CHECK_STR(y, "no");
  CHECK(call(mx_allowed, &y, "enforce.example", "evil.example") == OK);
  CHECK_STR(y, "no");
  CHECK(call(mx_allowed, &y, "testing.example", "mail.testing.example") == OK);
  CHECK_STR(y, "yes");
  CHECK(call(mx_allowed, &y, "none.example", "mx.none.example") == FAIL_FORCED);
  CHECK_PREFIX(y, "mta-sts: none.example: none (");
  CHECK(call(mx_allowed, &y, "nopolicy.example", "mx.nopolicy.example") == FAIL_FORCED);
  CHECK_STR(y, "mta-sts: nopolicy.example: no policy");
  CHECK(call(mx_allowed, &y, "tempfail.example", "mx.tempfail.example") == FAIL);
  CHECK_PREFIX(y, "mta-sts: tempfail.example: temporary failure (dns: ");
  CHECK(call(mx_allowed, &y, "a..b", "mail.enforce.example") == FAIL);
  CHECK_STR(y, "mta-sts: error: domain: empty label");
  CHECK(call(mx_allowed, &y, "enforce.example", "a..b") == FAIL);
  CHECK_STR(y, "mta-sts: error: mx host: domain: empty label");
}

static void bad_arguments(void) {
  const char *y;
  uschar *argv[2] = {NULL, NULL};
  uschar *yield = NULL;
  char *long_arg = malloc(2001);

  /* Wrong argument counts and NULL pointers are configuration faults: ERROR. */
  CHECK(call(lookup, &y, NULL, NULL) == ERROR);
  CHECK_STR(y, "mta_sts_lookup: expected 1 argument(s) (domain), got 0");
  CHECK(call(lookup, &y, "enforce.example", "extra") == ERROR);
  CHECK_STR(y, "mta_sts_lookup: expected 1 argument(s) (domain), got 2");
  CHECK(call(mx_allowed, &y, "enforce.example", NULL) == ERROR);
  CHECK_STR(y, "mta_sts_mx_allowed: expected 2 argument(s) (domain, mx host), got 1");
  CHECK(lookup(&yield, -1, argv) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_lookup: expected 1 argument(s) (domain), got -1");
  CHECK(lookup(&yield, 1, NULL) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_lookup: argv is NULL");
  CHECK(lookup(&yield, 1, argv) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_lookup: domain argument is NULL");
  argv[0] = (uschar *)"enforce.example";
  CHECK(mx_allowed(&yield, 2, argv) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_mx_allowed: mx host argument is NULL");
  CHECK(lookup(NULL, 1, argv) == ERROR);

  /* mta_sts_policy: the same faults are ERROR. */
  argv[0] = NULL;
  CHECK(call(policy, &y, NULL, NULL) == ERROR);
  CHECK_STR(y, "mta_sts_policy: expected 1 argument(s) (domain), got 0");
  CHECK(call(policy, &y, "enforce.example", "extra") == ERROR);
  CHECK_STR(y, "mta_sts_policy: expected 1 argument(s) (domain), got 2");
  CHECK(policy(&yield, 1, NULL) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_policy: argv is NULL");
  CHECK(policy(&yield, 1, argv) == ERROR);
  CHECK_STR((const char *)yield, "mta_sts_policy: domain argument is NULL");
  argv[0] = (uschar *)"enforce.example";
  CHECK(policy(NULL, 1, argv) == ERROR);

  /* Bad bytes are input: FAIL. */
  CHECK(call(lookup, &y, "\xff.example", NULL) == FAIL);
  CHECK_STR(y, "mta_sts_lookup: domain argument is not UTF-8");
  CHECK(call(mx_allowed, &y, "enforce.example", "\xff.example") == FAIL);
  CHECK_STR(y, "mta_sts_mx_allowed: mx host argument is not UTF-8");
  CHECK(long_arg != NULL);
  memset(long_arg, 'a', 2000);
  long_arg[2000] = '\0';
  CHECK(call(lookup, &y, long_arg, NULL) == FAIL);
  CHECK_STR(y, "mta_sts_lookup: domain argument is longer than 1024 bytes");

  /* mta_sts_policy: bad bytes are an invalid name like any other, "mode=error". */
  CHECK(call(policy, &y, "\xff.example", NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain argument is not UTF-8\"");
  CHECK(call(policy, &y, long_arg, NULL) == OK);
  CHECK_STR(y, "mode=error error=\"domain argument is longer than 1024 bytes\"");
  free(long_arg);
}

int main(int argc, char **argv) {
  void *lib;

  if (argc != 3) {
    fprintf(stderr, "usage: %s LIBRARY CONFIG\n", argv[0]);
    return 2;
  }
  lib = dlopen(argv[1], RTLD_LAZY);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  /* POSIX's sanctioned way to turn a dlsym result into a function pointer. */
  *(void **)(&lookup) = dlsym(lib, "mta_sts_lookup");
  *(void **)(&policy) = dlsym(lib, "mta_sts_policy");
  *(void **)(&mx_allowed) = dlsym(lib, "mta_sts_mx_allowed");
  CHECK(lookup != NULL && policy != NULL && mx_allowed != NULL);

  codes();
  broken_configuration(argv[2]);
  lookups();
  policies();
  mx_checks();
  bad_arguments();
  linked();

  /* Exim never calls dlclose; neither do we. */
  printf("exim_abi: all checks passed\n");
  return 0;
}
