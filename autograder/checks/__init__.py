"""Hidden checks, one module per exercise notebook (named after its stem), each with ``CHECKS``.

See ``autograder.probes`` for the design. ``kernel`` holds probe-side helpers (shipped into the
student's kernel as source text); ``common`` holds verdict-side helpers (run in the grader only).
Nothing in this package is ever imported by, or shown to, a student's kernel except the probe
functions and ``kernel`` helpers, which hold no expected value."""
