src/one/x.c
