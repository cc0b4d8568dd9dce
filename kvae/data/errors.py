"""The one error of data loading."""

from kvae.errors import KvaeError


class DataError(KvaeError):
    """The data cannot be loaded as asked (unknown name, unreadable folder,
    no images, failed download). The message says what to do; the commands
    print it as one line and exit with code 2."""
