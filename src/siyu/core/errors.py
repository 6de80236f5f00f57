class DomainError(Exception):
    """A business rule refused the request; the message is safe to show to the user."""

    def __init__(self, message: str, *, field: str = "", code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
