/* complete.h - shell completion's candidates (opsctl __complete WORD... CURRENT). */
#ifndef OPSCTL_COMPLETE_H
#define OPSCTL_COMPLETE_H

#include "opsctl.h"

/* argv: the words after "opsctl", the last being the one to complete (may be
 * ""). Prints the candidates that start with it, one per line. */
int complete_words(opsctl *c, int argc, char **argv);

#endif
