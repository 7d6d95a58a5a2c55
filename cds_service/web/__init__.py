"""HTTP in and out: routes, authentication, the log line, metrics, the worker."""
