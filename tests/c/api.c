/*
 * Every function of the C API, on its success and error paths, against the in-process DNS and
 * HTTPS fixtures started by ffi/tests/ffi/c.rs.
 *
 * usage: api CONFIG RECHECK_CONFIG BAD_TOML_CONFIG BAD_CA_CONFIG
 *   CONFIG          the fixtures' configuration
 *   RECHECK_CONFIG  the same with cache.recheck_interval = 0, so every lookup asks DNS again
 *   BAD_TOML_CONFIG a file that is not a valid configuration
 *   BAD_CA_CONFIG   the fixtures' configuration with a fetch.ca_file that does not exist
 *
 * Half-way through, the program prints "READY" and waits for a line on stdin; meanwhile the
 * test makes the DNS of warn.example fail, so that a cached policy outlives a failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mtasts.h"

/* The fixtures, as published by ffi/tests/ffi/net.rs. */
#define ENFORCE_ID "20240101"

static const char *last(void) {
  const char *e = mtasts_last_error();
  return e ? e : "(null)";
}

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  CHECK(s != NULL);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static void version(void) {
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", MTASTS_VERSION_MAJOR, MTASTS_VERSION_MINOR,
           MTASTS_VERSION_PATCH);
  CHECK_STR(MTASTS_VERSION, expected);
  CHECK_STR(mtasts_version(), MTASTS_VERSION);
  CHECK(MTASTS_VERSION_NUMBER ==
        MTASTS_VERSION_MAJOR * 1000000 + MTASTS_VERSION_MINOR * 1000 + MTASTS_VERSION_PATCH);
  CHECK(mtasts_version_number() == MTASTS_VERSION_NUMBER);
}

static void result_codes(void) {
  uint32_t code;
  /* Fixed values: they are ABI. */
  CHECK(MTASTS_OK == 0 && MTASTS_NO_POLICY == 1 && MTASTS_TEMPFAIL == 2 &&
        MTASTS_INVALID_INPUT == 3 && MTASTS_NULL_PARAMETER == 4 && MTASTS_CONFIG == 5 &&
        MTASTS_PANIC == 6);
  CHECK(sizeof(mtasts_result) == 4 && sizeof(mtasts_mode) == 4);
  for (code = MTASTS_OK; code <= MTASTS_PANIC; code++) {
    const char *text = mtasts_strerror(code);
    CHECK(text != NULL && text[0] != '\0');
    CHECK(strcmp(text, "unknown result code") != 0);
  }
  CHECK_STR(mtasts_strerror(MTASTS_OK), "success");
  CHECK_STR(mtasts_strerror(MTASTS_TEMPFAIL), "temporary failure, try again later");
  CHECK_STR(mtasts_strerror(7), "unknown result code");
  CHECK_STR(mtasts_strerror(UINT32_MAX), "unknown result code");
  /* Nothing has failed on this thread yet. */
  CHECK(mtasts_last_error() == NULL);
}

static void resolver_new(const char *config, const char *bad_toml, const char *bad_ca) {
  const mtasts_resolver *r = NULL;
  mtasts_policy *p = NULL;
  char *long_path;

  CHECK(mtasts_resolver_new("/nonexistent/mta-sts.toml", &r) == MTASTS_CONFIG);
  CHECK(r == NULL);
  CHECK_PREFIX(last(), "config: cannot read /nonexistent/mta-sts.toml: ");

  CHECK(mtasts_resolver_new(bad_toml, &r) == MTASTS_CONFIG);
  CHECK(r == NULL);
  CHECK_PREFIX(last(), "config: ");
  CHECK_CONTAINS(last(), bad_toml);

  /* The trust store is read at the first fetch: a missing CA file is that fetch's failure,
   * so the domain has no policy (RFC 8461 §3.3), and the reason says why. */
  CHECK(mtasts_resolver_new(bad_ca, &r) == MTASTS_OK);
  CHECK(mtasts_resolver_lookup(r, "enforce.example", &p) == MTASTS_NO_POLICY);
  CHECK(p == NULL);
  CHECK_PREFIX(last(), "enforce.example: no policy (fetch: ");
  CHECK_CONTAINS(last(), "ca_file /nonexistent/ca.pem");
  mtasts_resolver_free(r);
  r = NULL;

  CHECK(mtasts_resolver_new(config, NULL) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "resolver_out is NULL");

  long_path = repeat('a', 5000);
  CHECK(mtasts_resolver_new(long_path, &r) == MTASTS_INVALID_INPUT);
  CHECK(r == NULL);
  CHECK_STR(last(), "config_path is longer than 4096 bytes");
  free(long_path);

  /* An explicit path. */
  CHECK(mtasts_resolver_new(config, &r) == MTASTS_OK);
  CHECK(r != NULL);
  CHECK(mtasts_last_error() == NULL);
  mtasts_resolver_free(r);

  /* NULL: the default search finds $MTA_STS_CONFIG. */
  r = NULL;
  CHECK(setenv("MTA_STS_CONFIG", "/nonexistent/from-env.toml", 1) == 0);
  CHECK(mtasts_resolver_new(NULL, &r) == MTASTS_CONFIG);
  CHECK_CONTAINS(last(), "/nonexistent/from-env.toml");
  CHECK(setenv("MTA_STS_CONFIG", config, 1) == 0);
  CHECK(mtasts_resolver_new(NULL, &r) == MTASTS_OK);
  CHECK(r != NULL);
  mtasts_resolver_free(r);

  mtasts_resolver_free(NULL);
}

static void enforce_policy(const mtasts_resolver *r) {
  mtasts_policy *p = NULL;
  bool allowed;
  char *long_host;

  CHECK(mtasts_resolver_lookup(r, "enforce.example", &p) == MTASTS_OK);
  CHECK(p != NULL);
  CHECK(mtasts_last_error() == NULL);
  CHECK(mtasts_policy_mode(p) == MTASTS_MODE_ENFORCE);
  CHECK(mtasts_policy_max_age(p) == 86400);
  CHECK_STR(mtasts_policy_id(p), ENFORCE_ID);
  CHECK(mtasts_policy_mx_count(p) == 2);
  CHECK_STR(mtasts_policy_mx_at(p, 0), "mail.enforce.example");
  CHECK_STR(mtasts_policy_mx_at(p, 1), "*.mx.enforce.example");
  CHECK(mtasts_policy_mx_at(p, 2) == NULL);
  CHECK(mtasts_policy_mx_at(p, SIZE_MAX) == NULL);
  CHECK(mtasts_policy_warning(p) == NULL);

  /* RFC 8461 §4.1: exact names, and a wildcard for exactly one label. */
  allowed = false;
  CHECK(mtasts_policy_mx_allowed(p, "mail.enforce.example", &allowed) == MTASTS_OK && allowed);
  CHECK(mtasts_last_error() == NULL);
  allowed = false;
  CHECK(mtasts_policy_mx_allowed(p, " MAIL.Enforce.Example. ", &allowed) == MTASTS_OK && allowed);
  allowed = false;
  CHECK(mtasts_policy_mx_allowed(p, "a.mx.enforce.example", &allowed) == MTASTS_OK && allowed);
  allowed = true;
  CHECK(mtasts_policy_mx_allowed(p, "a.b.mx.enforce.example", &allowed) == MTASTS_OK && !allowed);
  allowed = true;
  CHECK(mtasts_policy_mx_allowed(p, "mx.enforce.example", &allowed) == MTASTS_OK && !allowed);
  allowed = true;
  CHECK(mtasts_policy_mx_allowed(p, "evil.example", &allowed) == MTASTS_OK && !allowed);

  /* Bad hosts leave the out-parameter alone. */
  allowed = true;
  CHECK(mtasts_policy_mx_allowed(p, "a..b", &allowed) == MTASTS_INVALID_INPUT && allowed);
  CHECK_STR(last(), "mx host: domain: empty label");
  CHECK(mtasts_policy_mx_allowed(p, "\xff.example", &allowed) == MTASTS_INVALID_INPUT && allowed);
  CHECK_STR(last(), "host is not UTF-8");
  long_host = repeat('a', 2000);
  CHECK(mtasts_policy_mx_allowed(p, long_host, &allowed) == MTASTS_INVALID_INPUT && allowed);
  CHECK_STR(last(), "host is longer than 1024 bytes");
  free(long_host);
  CHECK(mtasts_policy_mx_allowed(p, NULL, &allowed) == MTASTS_NULL_PARAMETER && allowed);
  CHECK_STR(last(), "host is NULL");
  CHECK(mtasts_policy_mx_allowed(p, "mail.enforce.example", NULL) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "allowed_out is NULL");
  CHECK(mtasts_policy_mx_allowed(NULL, "mail.enforce.example", &allowed) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "policy is NULL");
  mtasts_policy_free(p);

  /* The request is normalised: case, whitespace, trailing dot. */
  p = NULL;
  CHECK(mtasts_resolver_lookup(r, "  Enforce.EXAMPLE.\n", &p) == MTASTS_OK);
  CHECK_STR(mtasts_policy_id(p), ENFORCE_ID);
  mtasts_policy_free(p);
}

static void other_modes(const mtasts_resolver *r) {
  mtasts_policy *p = NULL;
  bool allowed;

  CHECK(mtasts_resolver_lookup(r, "testing.example", &p) == MTASTS_OK);
  CHECK(mtasts_policy_mode(p) == MTASTS_MODE_TESTING);
  CHECK(mtasts_policy_max_age(p) == 604800);
  CHECK_STR(mtasts_policy_id(p), "t1");
  CHECK(mtasts_policy_mx_count(p) == 1);
  CHECK_STR(mtasts_policy_mx_at(p, 0), "mail.testing.example");
  allowed = false;
  CHECK(mtasts_policy_mx_allowed(p, "mail.testing.example", &allowed) == MTASTS_OK && allowed);
  mtasts_policy_free(p);

  /* Mode none applies (MTASTS_OK) but neither allows nor forbids a host. */
  p = NULL;
  CHECK(mtasts_resolver_lookup(r, "none.example", &p) == MTASTS_OK);
  CHECK(mtasts_policy_mode(p) == MTASTS_MODE_NONE);
  CHECK(mtasts_policy_max_age(p) == 86400);
  CHECK_STR(mtasts_policy_id(p), "n1");
  CHECK(mtasts_policy_mx_count(p) == 0);
  CHECK(mtasts_policy_mx_at(p, 0) == NULL);
  allowed = true;
  CHECK(mtasts_policy_mx_allowed(p, "mx.none.example", &allowed) == MTASTS_NO_POLICY && allowed);
  CHECK_STR(last(), "none.example: mode none neither allows nor forbids any mx host");
  mtasts_policy_free(p);
}

static void no_policy_tempfail_invalid(const mtasts_resolver *r) {
  mtasts_policy *p = NULL;
  char *long_domain;
  char long_name[301];

  CHECK(mtasts_resolver_lookup(r, "nopolicy.example", &p) == MTASTS_NO_POLICY);
  CHECK(p == NULL);
  CHECK_STR(last(), "nopolicy.example: no policy");

  /* RFC 8461 §3.3: a record but no policy to fetch is no policy, with a reason. */
  CHECK(mtasts_resolver_lookup(r, "broken.example", &p) == MTASTS_NO_POLICY);
  CHECK(p == NULL);
  CHECK_PREFIX(last(), "broken.example: no policy (fetch: HTTP status 404");

  CHECK(mtasts_resolver_lookup(r, "tempfail.example", &p) == MTASTS_TEMPFAIL);
  CHECK(p == NULL);
  CHECK_PREFIX(last(),
               "tempfail.example: temporary failure (dns: _mta-sts.tempfail.example.: server "
               "answered ");
  /* Remembered: the same answer again, now from the cache. */
  CHECK(mtasts_resolver_lookup(r, "tempfail.example", &p) == MTASTS_TEMPFAIL);
  CHECK_PREFIX(last(), "tempfail.example: temporary failure (dns: ");

  /* U-labels become A-labels. */
  CHECK(mtasts_resolver_lookup(r, "b\xc3\xbc" "cher.example", &p) == MTASTS_NO_POLICY);
  CHECK_STR(last(), "xn--bcher-kva.example: no policy");

  CHECK(mtasts_resolver_lookup(r, "a..b", &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "error: domain: empty label");
  CHECK(mtasts_resolver_lookup(r, "", &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "error: domain: empty");
  CHECK(mtasts_resolver_lookup(r, "192.0.2.1", &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "error: domain: address literals have no MTA-STS policy");
  CHECK(mtasts_resolver_lookup(r, "[192.0.2.1]", &p) == MTASTS_INVALID_INPUT);
  CHECK(mtasts_resolver_lookup(r, "exa mple.com", &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "error: domain: invalid character \" \"");
  CHECK(mtasts_resolver_lookup(r, "\xff\xfe.example", &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "domain is not UTF-8");
  long_domain = repeat('a', 2000);
  CHECK(mtasts_resolver_lookup(r, long_domain, &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "domain is longer than 1024 bytes");
  free(long_domain);
  /* Within the argument limit but too long for DNS: the core says so. */
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  long_name[60] = long_name[120] = long_name[180] = long_name[240] = '.';
  CHECK(mtasts_resolver_lookup(r, long_name, &p) == MTASTS_INVALID_INPUT);
  CHECK_STR(last(), "error: domain: 300 bytes is too long (limit 244)");
  CHECK(p == NULL);

  CHECK(mtasts_resolver_lookup(NULL, "enforce.example", &p) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "resolver is NULL");
  CHECK(mtasts_resolver_lookup(r, NULL, &p) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "domain is NULL");
  CHECK(mtasts_resolver_lookup(r, "enforce.example", NULL) == MTASTS_NULL_PARAMETER);
  CHECK_STR(last(), "policy_out is NULL");
  CHECK(p == NULL);

  /* A success clears the message. */
  CHECK(mtasts_resolver_lookup(r, "enforce.example", &p) == MTASTS_OK);
  CHECK(mtasts_last_error() == NULL);
  mtasts_policy_free(p);
}

static void null_handles(void) {
  CHECK(mtasts_policy_mode(NULL) == MTASTS_MODE_NONE);
  CHECK(mtasts_policy_max_age(NULL) == 0);
  CHECK(mtasts_policy_id(NULL) == NULL);
  CHECK(mtasts_policy_mx_count(NULL) == 0);
  CHECK(mtasts_policy_mx_at(NULL, 0) == NULL);
  CHECK(mtasts_policy_warning(NULL) == NULL);
  mtasts_policy_free(NULL);
  mtasts_resolver_free(NULL);
}

/* A policy does not depend on its resolver. */
static void policy_outlives_resolver(const char *config) {
  const mtasts_resolver *r = NULL;
  mtasts_policy *p = NULL;
  CHECK(mtasts_resolver_new(config, &r) == MTASTS_OK);
  CHECK(mtasts_resolver_lookup(r, "enforce.example", &p) == MTASTS_OK);
  mtasts_resolver_free(r);
  CHECK_STR(mtasts_policy_id(p), ENFORCE_ID);
  CHECK_STR(mtasts_policy_mx_at(p, 1), "*.mx.enforce.example");
  mtasts_policy_free(p);
}

/* RFC 8461 §5.1: a valid cached policy keeps applying through a DNS failure; the failure is
 * the policy's warning. */
static void cached_policy_outlives_failure(const char *recheck_config) {
  const mtasts_resolver *r = NULL;
  mtasts_policy *p = NULL;
  char line[16];

  CHECK(mtasts_resolver_new(recheck_config, &r) == MTASTS_OK);
  CHECK(mtasts_resolver_lookup(r, "warn.example", &p) == MTASTS_OK);
  CHECK(mtasts_policy_warning(p) == NULL);
  mtasts_policy_free(p);

  printf("READY\n");
  fflush(stdout);
  CHECK(fgets(line, sizeof line, stdin) != NULL);

  p = NULL;
  CHECK(mtasts_resolver_lookup(r, "warn.example", &p) == MTASTS_OK);
  CHECK(mtasts_policy_mode(p) == MTASTS_MODE_ENFORCE);
  CHECK_STR(mtasts_policy_id(p), "w1");
  CHECK_PREFIX(mtasts_policy_warning(p), "dns: _mta-sts.warn.example.: server answered ");
  mtasts_policy_free(p);
  mtasts_resolver_free(r);
}

int main(int argc, char **argv) {
  const mtasts_resolver *r = NULL;

  if (argc != 5) {
    fprintf(stderr, "usage: %s CONFIG RECHECK_CONFIG BAD_TOML_CONFIG BAD_CA_CONFIG\n", argv[0]);
    return 2;
  }
  version();
  result_codes();
  resolver_new(argv[1], argv[3], argv[4]);

  CHECK(mtasts_resolver_new(argv[1], &r) == MTASTS_OK);
  enforce_policy(r);
  other_modes(r);
  no_policy_tempfail_invalid(r);
  null_handles();
  mtasts_resolver_free(r);

  policy_outlives_resolver(argv[1]);
  cached_policy_outlives_failure(argv[2]);

  printf("api: all checks passed\n");
  return 0;
}
