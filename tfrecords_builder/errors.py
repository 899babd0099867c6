"""The one exception of the builder: bad input that the command line reports in one line."""


class BuildError(ValueError):
    """Bad input or an impossible request; `build.main` prints it and exits with status 2."""
