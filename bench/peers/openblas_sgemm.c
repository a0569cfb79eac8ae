/* Peer for the gemm bench: times OpenBLAS cblas_sgemm on one shape.
 * Usage: openblas_sgemm M N K transA(0|1) transB(0|1) reps
 * Prints the median seconds per product over `reps` timed runs (after one warm-up).
 * Built by bench/suites/gemm.ts when Debian's libopenblas-dev is installed. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s M N K transA transB reps\n", argv[0]);
    return 2;
  }
  int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), ta = atoi(argv[4]), tb = atoi(argv[5]), reps = atoi(argv[6]);
  float* a = malloc(sizeof(float) * (size_t)m * k);
  float* b = malloc(sizeof(float) * (size_t)k * n);
  float* c = malloc(sizeof(float) * (size_t)m * n);
  double* t = malloc(sizeof(double) * reps);
  for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
  int lda = ta ? m : k, ldb = tb ? k : n;
  for (int r = -1; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b,
                ldb, 0.0f, c, n);
    if (r >= 0) t[r] = now() - t0;
  }
  qsort(t, reps, sizeof(double), cmp);
  printf("%.9f\n", t[reps / 2]);
  free(a);
  free(b);
  free(c);
  free(t);
  return 0;
}
