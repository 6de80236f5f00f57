class DomainError(Exception):
    """A business rule refused the request; the message is safe to show to the user."""

    def __init__(self, message: str, *, field: str = "", code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def form_add_error(form, error: DomainError) -> None:
    """Show a refused request on a console form: under the field it names, else above the form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)
