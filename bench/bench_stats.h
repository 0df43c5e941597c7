/* bench_stats.h - percentiles for the bench programs (header only; any thread).
 * pct sorts v in place and returns the nearest-rank p-th percentile of its n values (n >= 1).
 */
#ifndef KMK_BENCH_STATS_H
#define KMK_BENCH_STATS_H

#include <math.h>
#include <stdlib.h>

static inline int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static inline double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  int i = (int)ceil(p / 100.0 * n) - 1;
  return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

#endif
