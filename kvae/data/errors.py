"""The one error of data loading."""


class DataError(Exception):
    """The data cannot be loaded as asked (unknown name, unreadable folder,
    no images, failed download). The message says what to do; the training
    command prints it as one line and exits with code 2."""
