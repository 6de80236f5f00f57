class ChineseFirstMiddleware:
    """The console speaks Simplified Chinese until the user picks another language.

    Staff in China often run browsers set to English; the language they choose in the console
    (a cookie) counts, the browser's Accept-Language does not. Runs before LocaleMiddleware.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
