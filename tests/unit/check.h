/* check.h - the tiny test harness used by every C unit test.
 *
 * A test file defines functions `static void test_xxx(void)` and lists them in
 * `int main(void) { RUN(test_xxx); ... return check_done(); }`. Each failed CHECK prints
 * file:line and the expression and marks the current test failed; the test continues so one
 * run shows every broken assertion. check_done() prints the plain closing line
 * "N passed, N failed" and returns the process exit code.
 */
#ifndef KMK_TESTS_CHECK_H
#define KMK_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_tests_passed, check_tests_failed, check_cur_failed __attribute__((unused));
static const char *check_cur_name __attribute__((unused)) = "";

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, check_cur_name, \
              #cond);                                                                       \
      check_cur_failed = 1;                                                                 \
    }                                                                                       \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                  \
  do {                                                                                      \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                         \
    if (check_a_ != check_b_) {                                                             \
      fprintf(stderr, "%s:%d: %s: %s == %s failed (%lld != %lld)\n", __FILE__, __LINE__,    \
              check_cur_name, #a, #b, check_a_, check_b_);                                  \
      check_cur_failed = 1;                                                                 \
    }                                                                                       \
  } while (0)

#define CHECK_NEAR(a, b, eps)                                                               \
  do {                                                                                      \
    double check_a_ = (double)(a), check_b_ = (double)(b);                                  \
    if (!(fabs(check_a_ - check_b_) <= (eps))) {                                            \
      fprintf(stderr, "%s:%d: %s: |%s - %s| <= %g failed (%g vs %g)\n", __FILE__, __LINE__, \
              check_cur_name, #a, #b, (double)(eps), check_a_, check_b_);                   \
      check_cur_failed = 1;                                                                 \
    }                                                                                       \
  } while (0)

#define CHECK_STR(a, b)                                                                     \
  do {                                                                                      \
    const char *check_a_ = (a), *check_b_ = (b);                                            \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                        \
      fprintf(stderr, "%s:%d: %s: %s == %s failed (\"%s\" vs \"%s\")\n", __FILE__,          \
              __LINE__, check_cur_name, #a, #b, check_a_ ? check_a_ : "(null)",             \
              check_b_ ? check_b_ : "(null)");                                              \
      check_cur_failed = 1;                                                                 \
    }                                                                                       \
  } while (0)

#define RUN(fn)                                                                             \
  do {                                                                                      \
    check_cur_name = #fn;                                                                   \
    check_cur_failed = 0;                                                                   \
    fn();                                                                                   \
    if (check_cur_failed) {                                                                 \
      check_tests_failed++;                                                                 \
      fprintf(stderr, "FAIL %s\n", #fn);                                                    \
    } else {                                                                                \
      check_tests_passed++;                                                                 \
    }                                                                                       \
  } while (0)

static inline int check_done(void) {
  printf("%d passed, %d failed\n", check_tests_passed, check_tests_failed);
  return check_tests_failed ? 1 : 0;
}

#endif
