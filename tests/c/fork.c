/*
 * Fork safety: a parent uses the library (a resolver of its own and the Exim entry points'
 * process resolver), then forks children that go on using both. Exim does exactly this: it
 * loads the library once and forks for each connection and delivery.
 *
 * usage: fork CONFIG CHILDREN DOMAINS
 *   CONFIG    the fixtures' configuration (also put in $MTA_STS_CONFIG for the Exim entry points)
 *   CHILDREN  how many children to fork at once
 *   DOMAINS   how many of the domains d000.fork.example, d001.fork.example, ... (record id
 *             f000, f001, ...) each child looks up, through both interfaces
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mtasts.h"

static void check_domain(const mtasts_resolver *r, int n) {
  char domain[64], id[16], quoted_id[24];
  unsigned char *argv[1];
  unsigned char *yield = NULL;
  mtasts_policy *p = NULL;

  snprintf(domain, sizeof domain, "d%03d.fork.example", n);
  snprintf(id, sizeof id, "f%03d", n);
  snprintf(quoted_id, sizeof quoted_id, " id=\"%s\" ", id);

  if (mtasts_resolver_lookup(r, domain, &p) != MTASTS_OK) {
    fprintf(stderr, "pid %d: %s: %s\n", (int)getpid(), domain, mtasts_last_error());
    exit(1);
  }
  CHECK(mtasts_policy_mode(p) == MTASTS_MODE_ENFORCE);
  CHECK_STR(mtasts_policy_id(p), id);
  mtasts_policy_free(p);

  argv[0] = (unsigned char *)domain;
  if (mta_sts_lookup(&yield, 1, argv) != MTASTS_EXIM_OK) {
    fprintf(stderr, "pid %d: mta_sts_lookup %s: %s\n", (int)getpid(), domain, (char *)yield);
    exit(1);
  }
  CHECK_PREFIX((const char *)yield, "mode=enforce ignore=");
  CHECK_CONTAINS((const char *)yield, quoted_id);
}

int main(int argc, char **argv) {
  const mtasts_resolver *r = NULL;
  pid_t pids[64];
  int children, domains, i, j;

  if (argc != 4) {
    fprintf(stderr, "usage: %s CONFIG CHILDREN DOMAINS\n", argv[0]);
    return 2;
  }
  children = atoi(argv[2]);
  domains = atoi(argv[3]);
  CHECK(children > 0 && children <= 64 && domains > 0 && domains <= 1000);
  CHECK(setenv("MTA_STS_CONFIG", argv[1], 1) == 0);

  /* The parent uses both interfaces first. */
  CHECK(mtasts_resolver_new(argv[1], &r) == MTASTS_OK);
  check_domain(r, 0);

  fflush(NULL);
  for (i = 0; i < children; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) {
      for (j = 0; j < domains; j++) check_domain(r, j);
      mtasts_resolver_free(r);
      exit(0);
    }
  }
  for (i = 0; i < children; i++) {
    int status = 0;
    CHECK(waitpid(pids[i], &status, 0) == pids[i]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "child %d (pid %d) failed: status %d\n", i, (int)pids[i], status);
      return 1;
    }
  }

  /* The parent carries on as before. */
  check_domain(r, 1);
  mtasts_resolver_free(r);
  printf("fork: %d children x %d domains passed\n", children, domains);
  return 0;
}
