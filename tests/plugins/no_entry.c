/* no_entry.c - a shared object that is not a plugin: no opsc_plugin_entry. */
__attribute__((visibility("default"))) int not_a_plugin(void);
int not_a_plugin(void)
{
    return 42;
}
