"""The composition root: the one place that reads settings, builds adapters and wires each
role's domain functions to them (and the command line on top). Nothing imports this package
but entry points and tests; the platform (convmem) and the services never do."""
