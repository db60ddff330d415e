/* A shared object without rn_plugin_entry: the host must refuse it, naming the file. */
int rn_not_a_plugin(void);
__attribute__((visibility("default"))) int rn_not_a_plugin(void) { return 42; }
