/* Placeholder until the service (pipeline.c) lands: keeps the build whole. */
#include <stdio.h>
int main(void) {
  fprintf(stderr, "collector: not built yet\n");
  return 1;
}
