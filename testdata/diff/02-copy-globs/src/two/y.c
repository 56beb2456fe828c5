src/two/y.c
