"""Bad input that the command line reports in one line (exit code 2), for both packages."""


class InputError(ValueError):
    """Bad input a user can fix: a command prints it on one line and exits with status 2."""


class BuildError(InputError):
    """Bad input or an impossible request to the builder."""
