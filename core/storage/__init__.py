"""Storage: the registry and blob store backends, and the factories that pick one."""
