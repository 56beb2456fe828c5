src/z.c
