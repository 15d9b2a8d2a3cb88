#include "util/hashpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/sha256.h"

struct hash_job {
    struct hash_job *next;
    char *path, *key;
    char hex[65];
    int result;
    char message[256]; /* the worker's error message (messages are per thread) */
};

struct hash_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct hash_job *head, **tail; /* every job, in queue order */
    struct hash_job *next;         /* the first job no worker took yet */
    bool closing;
    unsigned n_threads;
    pthread_t threads[];
};

static void *hash_worker(void *arg)
{
    struct hash_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->next && !p->closing)
            pthread_cond_wait(&p->wake, &p->lock);
        struct hash_job *j = p->next;
        if (!j)
            break;
        p->next = j->next;
        pthread_mutex_unlock(&p->lock);
        j->result = sha256_file(j->path, j->hex, NULL, NULL);
        if (j->result < 0)
            snprintf(j->message, sizeof j->message, "%s", hvm_error_message());
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct hash_pool *hash_pool_start(unsigned threads)
{
    if (threads == 0)
        threads = 1;
    struct hash_pool *p = calloc(1, sizeof *p + threads * sizeof(pthread_t));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->tail = &p->head;
    for (unsigned i = 0; i < threads; i++)
        if (pthread_create(&p->threads[p->n_threads], NULL, hash_worker, p) == 0)
            p->n_threads++;
    if (p->n_threads == 0) {
        free(p);
        return NULL;
    }
    return p;
}

int hash_pool_add(struct hash_pool *p, const char *path, const char *key)
{
    struct hash_job *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path)) || !(j->key = strdup(key))) {
        if (j)
            free(j->path);
        free(j);
        return hvm_error(ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&p->lock);
    *p->tail = j;
    p->tail = &j->next;
    if (!p->next)
        p->next = j;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int hash_pool_finish(struct hash_pool *p, void (*done)(void *opaque, const char *key, const char *hex),
                     void *opaque)
{
    pthread_mutex_lock(&p->lock);
    p->closing = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    int r = 0;
    for (struct hash_job *j = p->head, *next; j; j = next) {
        next = j->next;
        if (j->result < 0 && r == 0)
            r = hvm_error(j->result, "%s", j->message);
        else if (j->result == 0 && done)
            done(opaque, j->key, j->hex);
        free(j->path);
        free(j->key);
        free(j);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
    return r;
}
