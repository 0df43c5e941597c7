/* main.c - argv/config -> app; nothing else. */
#include "kameko/app.h"

int main(int argc, char **argv) { return kmk_app_main(argc, argv); }
