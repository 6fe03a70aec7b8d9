"""Search: the repository index (kept in step with pushes and deletes) and the queries over it."""
