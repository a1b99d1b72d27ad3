/* the one source file of the fake kernel */
int fake;
