"""Fixed facts the platform builds from: the instance catalog, resource names and the monitor kinds."""
