/* A one-line progress bar on stderr, drawn only on a terminal. */
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"

void progress_init(struct progress *p, const char *label)
{
    p->label = label;
    p->enabled = isatty(STDERR_FILENO);
    p->last_permille = -1;
}

void progress_update(void *opaque, uint64_t done, uint64_t total)
{
    struct progress *p = opaque;
    if (!p || !p->enabled || total == 0)
        return;
    int permille = (int)(done * 1000 / total);
    if (permille == p->last_permille)
        return;
    p->last_permille = permille;
    int width = 40, filled = permille * width / 1000;
    fprintf(stderr, "\r%-10s [", p->label);
    for (int i = 0; i < width; i++)
        fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %3d.%d%%", permille / 10, permille % 10);
    fflush(stderr);
}

void progress_done(struct progress *p)
{
    if (p->enabled && p->last_permille >= 0)
        fputc('\n', stderr);
}
