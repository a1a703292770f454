/*
 * Thread safety: threads share one resolver and the Exim entry points' process resolver, and
 * every answer, every yield and every thread's last error stay consistent.
 *
 * usage: threads CONFIG THREADS ITERATIONS
 *   CONFIG      the fixtures' configuration (also put in $MTA_STS_CONFIG for the Exim entry
 *               points)
 *   THREADS     how many threads run at once
 *   ITERATIONS  how many rounds each thread makes; a round is a policy lookup, an Exim lookup,
 *               and a failing lookup through each interface
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mtasts.h"

struct job {
  const mtasts_resolver *resolver;
  int index;
  long iterations;
  const char *enforce_line; /* the Exim line for enforce.example, as the main thread saw it */
};

static void *run(void *arg) {
  const struct job *job = arg;
  /* Even threads get "no policy" answers, odd ones temporary failures. */
  int odd = job->index % 2;
  const char *failing = odd ? "tempfail.example" : "nopolicy.example";
  mtasts_result failing_code = odd ? MTASTS_TEMPFAIL : MTASTS_NO_POLICY;
  const char *failing_error = odd ? "tempfail.example: temporary failure (dns: "
                                  : "nopolicy.example: no policy";
  int failing_exim = odd ? MTASTS_EXIM_FAIL : MTASTS_EXIM_FAIL_FORCED;
  long i;

  for (i = 0; i < job->iterations; i++) {
    mtasts_policy *p = NULL;
    unsigned char *argv[1];
    unsigned char *yield = NULL;
    unsigned char *failed_yield = NULL;

    CHECK(mtasts_resolver_lookup(job->resolver, "enforce.example", &p) == MTASTS_OK);
    CHECK(mtasts_policy_mode(p) == MTASTS_MODE_ENFORCE);
    CHECK_STR(mtasts_policy_id(p), "20240101");
    CHECK(mtasts_policy_mx_count(p) == 2);
    CHECK_STR(mtasts_policy_mx_at(p, 1), "*.mx.enforce.example");

    CHECK(mtasts_resolver_lookup(job->resolver, failing, &p) == failing_code);
    CHECK_PREFIX(mtasts_last_error(), failing_error);
    mtasts_policy_free(p);

    argv[0] = (unsigned char *)failing;
    CHECK(mta_sts_lookup(&failed_yield, 1, argv) == failing_exim);
    /* Other threads' calls do not touch this thread's yield or last error. */
    CHECK_PREFIX((const char *)failed_yield, "mta-sts: ");
    CHECK_CONTAINS((const char *)failed_yield, failing_error);
    CHECK_PREFIX(mtasts_last_error(), failing_error);

    argv[0] = (unsigned char *)"enforce.example";
    CHECK(mta_sts_lookup(&yield, 1, argv) == MTASTS_EXIM_OK);
    CHECK_STR((const char *)yield, job->enforce_line);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const mtasts_resolver *r = NULL;
  pthread_t threads[64];
  struct job jobs[64];
  unsigned char *args[1] = {(unsigned char *)"enforce.example"};
  unsigned char *yield = NULL;
  char *enforce_line;
  int count, i;
  long iterations;

  if (argc != 4) {
    fprintf(stderr, "usage: %s CONFIG THREADS ITERATIONS\n", argv[0]);
    return 2;
  }
  count = atoi(argv[2]);
  iterations = atol(argv[3]);
  CHECK(count > 0 && count <= 64 && iterations > 0);
  CHECK(setenv("MTA_STS_CONFIG", argv[1], 1) == 0);
  CHECK(mtasts_resolver_new(argv[1], &r) == MTASTS_OK);

  /* The first answer, which every thread must see again and again. */
  CHECK(mta_sts_lookup(&yield, 1, args) == MTASTS_EXIM_OK);
  enforce_line = malloc(strlen((const char *)yield) + 1);
  CHECK(enforce_line != NULL);
  strcpy(enforce_line, (const char *)yield);

  for (i = 0; i < count; i++) {
    jobs[i].resolver = r;
    jobs[i].index = i;
    jobs[i].iterations = iterations;
    jobs[i].enforce_line = enforce_line;
    CHECK(pthread_create(&threads[i], NULL, run, &jobs[i]) == 0);
  }
  for (i = 0; i < count; i++) CHECK(pthread_join(threads[i], NULL) == 0);

  free(enforce_line);
  mtasts_resolver_free(r);
  printf("threads: %d threads x %ld rounds passed\n", count, iterations);
  return 0;
}
