"""The one error type the package raises for problems a user can fix."""


class HybridReproError(Exception):
    """A problem with parameters, inputs or the environment, stated so the user can fix it.

    The CLI prints the message and exits with status 2; tracebacks appear only with ``--debug``.
    """
