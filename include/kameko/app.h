/* app.h - the engine's entry point: parses argv and the config, runs the chosen job. */
#ifndef KAMEKO_APP_H
#define KAMEKO_APP_H

/* Returns the process exit code (0 ok, 1 runtime failure, 2 usage/config error). */
int kmk_app_main(int argc, char **argv);

#endif
