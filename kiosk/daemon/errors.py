"""Every error is JSON ``{"error": code, "message": text}``: never HTML, never a trace.

Messages are for residents, in the language the shell asks for
(``Accept-Language``), else the site's default language.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from kiosk.i18n import LANGUAGES, N_, translation

log = logging.getLogger(__name__)


def request_language() -> str:
    if "language" not in g:
        default = current_app.config.get("KIOSK_DEFAULT_LANGUAGE", "fr")
        chosen = default
        for item in request.headers.get("Accept-Language", "").split(","):
            code = item.split(";")[0].strip().split("-")[0].lower()
            if code in LANGUAGES:
                chosen = code
                break
        g.language = chosen
    return g.language


def tr(message: str) -> str:
    """Translate for the current request."""
    return translation(request_language()).gettext(message)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: object):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _json(status: int, code: str, message: str, **extra: object) -> Response:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


HTTP_MESSAGES = {
    400: N_("The request is not valid."),
    404: N_("This address does not exist in the kiosk's interface."),
    405: N_("This method is not allowed here."),
    413: N_("This file is too large."),
    415: N_("This content type is not accepted here."),
}


def install(app: Flask) -> None:
    @app.before_request
    def refuse_options() -> None:
        # Flask would answer OPTIONS itself with an empty HTML reply; nobody needs it.
        if request.method == "OPTIONS":
            raise MethodNotAllowed()

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _json(error.status, error.code, error.message, **error.extra)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = tr(HTTP_MESSAGES.get(status, "The request is not valid."))
        response = _json(status, code, message)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # The route's rule (/api/v1/documents/<folder>/<name>/print), never the path:
        # paths carry document names, often a resident's own name.
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.exception("unexpected error on %s %s", request.method, rule)
        return _json(500, "internal",
                     tr("Something went wrong in the kiosk. Please ask an agent for help."))
