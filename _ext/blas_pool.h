/* Run OpenBLAS's parallel jobs on the OpenMP threads of the compiled core.
 *
 * numpy's OpenBLAS (pthreads build) keeps its own worker threads, which spin for a
 * while after every GEMM.  Our kernels' OpenMP threads then find the second core
 * taken, and a hierarchical-softmax kernel run between two GEMMs gets no more
 * from two threads than from one.  OpenBLAS >= 0.3.27 lets the caller manage its
 * threads (openblas_set_threads_callback_function): with this callback installed,
 * its jobs run on the same OpenMP team as our kernels, so one pool serves both.
 * The split of a GEMM into jobs is OpenBLAS's own, so results are unchanged.
 *
 * Two rules the callback must keep:
 * - The jobs of one level-3 call wait for each other, so they must all run at
 *   once: when OpenMP cannot give a full team (called inside a parallel region,
 *   or a thread limit below the job count), they run on short-lived pthreads.
 * - OpenBLAS gives job i the static scratch buffer blas_thread_buffer[..][i],
 *   whoever calls; its own pool keeps concurrent callers apart through its
 *   queue.  The callback bypasses the queue, so a mutex runs one call at a time
 *   (OpenBLAS never calls exec_blas from inside a job, so it cannot deadlock).
 */
#ifndef VAEAS_BLAS_POOL_H
#define VAEAS_BLAS_POOL_H
#include <stddef.h>

typedef void (*blas_set_callback_t)(void *);
typedef void (*blas_dojob_t)(int thread_num, void *jobdata, int dojob_data);

#ifdef _WIN32
/* No pthreads for the fallback: the hook is not offered here (has_openmp() is false,
 * and vaeas_np._threads never installs it on Windows); it stops the process if it ever is. */
#include <stdlib.h>
static void blas_pool_callback(int sync, blas_dojob_t dojob, int numjobs, size_t elsize,
                               void *jobdata, int data) {
    (void)sync; (void)dojob; (void)numjobs; (void)elsize; (void)jobdata; (void)data;
    abort();
}
static long blas_pool_get_calls(void) { return 0; }
static int blas_pool_has_openmp(void) { return 0; }
#else
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct { blas_dojob_t dojob; int i; void *job; int data; } blas_job_arg;

static void *blas_pool_run_one(void *p) {
    blas_job_arg *a = (blas_job_arg *)p;
    a->dojob(a->i, a->job, a->data);
    return NULL;
}

/* Fallback: one pthread per job but the first, which the caller runs.  The jobs
 * wait for each other, so one whose thread cannot start can neither be skipped
 * nor run after the others: the process stops with a message instead of hanging. */
static void blas_pool_pthreads(blas_dojob_t dojob, int numjobs, size_t elsize,
                               void *jobdata, int data) {
    pthread_t *th = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)numjobs);
    blas_job_arg *arg = (blas_job_arg *)malloc(sizeof(blas_job_arg) * (size_t)numjobs);
    if (!th || !arg) {
        fprintf(stderr, "vaeas_np: out of memory starting %d BLAS jobs\n", numjobs);
        abort();                                    /* jobs cannot be skipped or serialised */
    }
    for (int i = 0; i < numjobs; i++) {
        arg[i].dojob = dojob; arg[i].i = i; arg[i].data = data;
        arg[i].job = (char *)jobdata + (size_t)i * elsize;
    }
    for (int i = 1; i < numjobs; i++)
        if (pthread_create(&th[i], NULL, blas_pool_run_one, &arg[i]) != 0) {
            fprintf(stderr, "vaeas_np: cannot start a thread for BLAS job %d of %d; "
                    "set VAEAS_NP_SHARED_BLAS_POOL=0 or lower n_threads\n", i, numjobs);
            abort();
        }
    blas_pool_run_one(&arg[0]);
    for (int i = 1; i < numjobs; i++)
        pthread_join(th[i], NULL);
    free(th); free(arg);
}

static pthread_mutex_t blas_pool_one_call = PTHREAD_MUTEX_INITIALIZER;
static long blas_pool_calls = 0;                    /* calls served (under the mutex), for tests */

static void blas_pool_run_all(blas_dojob_t dojob, int numjobs, size_t elsize,
                              void *jobdata, int data);

static void blas_pool_callback(int sync, blas_dojob_t dojob, int numjobs, size_t elsize,
                               void *jobdata, int data) {
    (void)sync;                                     /* we always return when all are done */
    if (numjobs <= 0) return;
    pthread_mutex_lock(&blas_pool_one_call);
    blas_pool_calls++;
    if (numjobs == 1) dojob(0, jobdata, data);
    else blas_pool_run_all(dojob, numjobs, elsize, jobdata, data);
    pthread_mutex_unlock(&blas_pool_one_call);
}

static void blas_pool_run_all(blas_dojob_t dojob, int numjobs, size_t elsize,
                              void *jobdata, int data) {
#ifdef _OPENMP
    if (!omp_in_parallel() && omp_get_thread_limit() >= numjobs) {
        int short_team = 0;
        #pragma omp parallel num_threads(numjobs)
        {
            if (omp_get_num_threads() < numjobs) {
                #pragma omp atomic write
                short_team = 1;
            } else {
                int i = omp_get_thread_num();
                dojob(i, (char *)jobdata + (size_t)i * elsize, data);
            }
        }
        if (!short_team) return;
    }
#endif
    blas_pool_pthreads(dojob, numjobs, elsize, jobdata, data);
}

static long blas_pool_get_calls(void) {
    pthread_mutex_lock(&blas_pool_one_call);
    long n = blas_pool_calls;
    pthread_mutex_unlock(&blas_pool_one_call);
    return n;
}

static int blas_pool_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
#endif  /* _WIN32 */
#endif
