#include "util/hashpool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"
#include "util/sha256.h"

struct hash_job {
    struct hash_job *next;
    char *path, *key;
    char hex[65];
    int result;
    char message[256]; /* the worker's error message (messages are per thread) */
    /* A followed file (hash_pool_follow): under the pool's lock. */
    bool follow, ended;
    int fd;
    uint64_t upto; /* bytes final so far; the file's size once ended */
};

struct hash_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct hash_job *head, **tail; /* every job, in queue order */
    struct hash_job *next;         /* the first job no worker took yet */
    bool closing;
    pthread_cond_t moved; /* a followed file grew or ended */
    unsigned n_threads;
    pthread_t threads[];
};

/* Hashes a followed file as its writer finishes it, waiting (under the
 * pool's lock, which is held on entry and on return) for more. */
static int hash_followed(struct hash_pool *p, struct hash_job *j)
{
    struct sha256_ctx *c = sha256_begin();
    uint64_t at = 0;
    int r = c ? 0 : hvm_error(ENOMEM, "out of memory");
    while (r == 0) {
        while (!j->ended && j->upto == at)
            pthread_cond_wait(&p->moved, &p->lock);
        bool ended = j->ended;
        uint64_t upto = j->upto;
        if (ended && j->result < 0) {
            r = j->result;
            break;
        }
        pthread_mutex_unlock(&p->lock);
        if (at < upto)
            r = sha256_add_range(c, j->fd, j->path, at, upto);
        at = upto;
        pthread_mutex_lock(&p->lock);
        if (ended)
            break;
    }
    if (r == 0)
        sha256_end(c, j->hex);
    else
        sha256_abandon(c);
    return r;
}

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
        if (j->follow) {
            int r = hash_followed(p, j);
            if (r < 0 && j->result == 0)
                snprintf(j->message, sizeof j->message, "%s", hvm_error_message());
            j->result = r;
            continue;
        }
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
    pthread_cond_init(&p->moved, NULL);
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

static void queue(struct hash_pool *p, struct hash_job *j)
{
    pthread_mutex_lock(&p->lock);
    *p->tail = j;
    p->tail = &j->next;
    if (!p->next)
        p->next = j;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
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
    j->fd = -1;
    queue(p, j);
    return 0;
}

/* The pool the job belongs to: followed jobs keep it for their writer. */
struct followed {
    struct hash_job job;
    struct hash_pool *pool;
};

struct hash_job *hash_pool_follow(struct hash_pool *p, const char *key)
{
    struct followed *f = calloc(1, sizeof *f);
    if (!f || !(f->job.key = strdup(key))) {
        free(f);
        hvm_error(ENOMEM, "out of memory");
        return NULL;
    }
    f->pool = p;
    f->job.follow = true;
    f->job.fd = -1;
    queue(p, &f->job);
    return &f->job;
}

void hash_follow_advance(struct hash_job *j, const char *path, uint64_t upto)
{
    struct hash_pool *p = ((struct followed *)j)->pool;
    pthread_mutex_lock(&p->lock);
    if (j->fd < 0 && !j->ended) {
        /* errno is taken at once: strdup may change it on success */
        j->fd = open(path, O_RDONLY | O_CLOEXEC);
        int e = j->fd < 0 ? errno : 0;
        j->path = strdup(path);
        if (!e && !j->path)
            e = ENOMEM;
        if (e) {
            j->ended = true;
            j->result = hvm_error(e, "%s: %s", path, strerror(e));
            snprintf(j->message, sizeof j->message, "%s", hvm_error_message());
        }
    }
    if (!j->ended && upto > j->upto)
        j->upto = upto;
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

void hash_follow_end(struct hash_job *j, uint64_t size, int r)
{
    struct hash_pool *p = ((struct followed *)j)->pool;
    pthread_mutex_lock(&p->lock);
    if (!j->ended) {
        j->ended = true;
        j->upto = size;
        if (r == 0 && j->fd < 0)
            r = hvm_error(EINVAL, "a followed copy ended before it began");
        if (r < 0) {
            j->result = r;
            snprintf(j->message, sizeof j->message, "%s", hvm_error_message());
        }
    }
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
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
        if (j->fd >= 0)
            close(j->fd);
        free(j); /* (a followed job is the first member of its struct followed) */
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->moved);
    free(p);
    return r;
}
