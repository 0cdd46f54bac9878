"""One exception type for everything a user can fix: the CLI prints its message without a traceback."""


class EncajesError(Exception):
    """A problem with the user's input or workdir, with a message that says what to do."""
