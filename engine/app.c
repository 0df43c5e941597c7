/* app.c - owns the loop; wires modules; ordered shutdown. (Skeleton; filled in as modules land.) */
#include "kameko/app.h"

#include <stdio.h>

int kmk_app_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "kameko: skeleton\n");
  return 0;
}
