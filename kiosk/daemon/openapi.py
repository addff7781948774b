"""The OpenAPI 3 document of the daemon's API, served at /api/v1/openapi.json.

Written by hand next to the routes it describes; the test suite checks every
route against it with schemathesis (no 5xx, responses conform).
"""

from __future__ import annotations

from typing import Any

from kiosk import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(_ref("Error"), "Error") for status in statuses}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
        **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if body is not None:
        operation["requestBody"] = body
    return operation


NULLABLE_STRING = {"type": "string", "nullable": True}
# What survived a wipe: a count per kind (downloads, print-jobs…), never a name.
_LEFTOVERS = {"type": "object", "additionalProperties": {"type": "integer"}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"],
              "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
    "Session": {"type": "object",
                "required": ["id", "started_at", "pages_printed", "page_quota", "dirs"],
                "properties": {"id": {"type": "string"}, "started_at": {"type": "string"},
                               "pages_printed": {"type": "integer"},
                               "page_quota": {"type": "integer"},
                               "location": {"type": "string"},
                               "dirs": {"type": "object",
                                        "additionalProperties": {"type": "string"}}}},
    "Status": {"type": "object",
               "required": ["state", "session", "printer", "scanner", "devices", "leftovers"],
               "properties": {
                   "state": {"type": "string", "enum": ["idle", "active", "warning", "wiping"]},
                   "session": {"allOf": [_ref("Session")], "nullable": True},
                   "countdown": {"type": "integer", "nullable": True},
                   "help_asked": {"type": "boolean"},
                   "leftovers": _LEFTOVERS,
                   "printer": {"type": "object"}, "scanner": {"type": "object"},
                   "devices": {"type": "array", "items": {"type": "object"}},
                   "device_events": {"type": "array", "items": {"type": "object"}}}},
    "WipeReport": {"type": "object", "required": ["wiped", "duration_ms", "leftovers"],
                   "properties": {"wiped": {"type": "boolean"},
                                  "duration_ms": {"type": "integer"},
                                  "leftovers": _LEFTOVERS,
                                  "reason": {"type": "string"}}},
    "Job": {"type": "object", "required": ["id", "state"],
            "properties": {"id": {"type": "integer"}, "pages": {"type": "integer"},
                           "state": {"type": "string",
                                     "enum": ["pending", "processing", "completed", "aborted"]}}},
    "Scan": {"type": "object", "required": ["id", "pages"],
             "properties": {"id": {"type": "string"}, "pages": {"type": "integer"},
                            "size": {"type": "integer"}, "url": {"type": "string"}}},
}


def _body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _usage_body(vocabulary: dict[str, list[str]] | None) -> dict[str, Any]:
    """A usage report: one kind and a value of its vocabulary (the terminal's own ids)."""
    if not vocabulary:
        return {"type": "object", "required": ["kind", "value"],
                "properties": {"kind": {"type": "string"}, "value": {"type": "string"}}}
    return {"oneOf": [{"type": "object", "required": ["kind", "value"],
                       "additionalProperties": False,
                       "properties": {"kind": {"type": "string", "enum": [kind]},
                                      "value": {"type": "string", "enum": values}}}
                      for kind, values in vocabulary.items() if values]}


def document(usage_vocabulary: dict[str, list[str]] | None = None) -> dict[str, Any]:
    job_submitted = _json({"type": "object", "required": ["job"],
                           "properties": {"job": _ref("Job")}}, "Job submitted")
    session_body = _json({"type": "object", "required": ["session"],
                          "properties": {"session": _ref("Session")}}, "The session")
    paths: dict[str, Any] = {
        "/api/v1/health": {"get": _op("Is the daemon alive?", {
            "200": _json({"type": "object", "required": ["status"],
                          "properties": {"status": {"type": "string", "enum": ["ok"]}}}, "Alive")})},
        "/api/v1/status": {"get": _op("Session state, printer, scanner and plugged devices", {
            "200": _json(_ref("Status"), "Current state")})},
        "/api/v1/session/start": {"post": _op("Start a resident's session", {
            "201": session_body, **_errors(409)})},
        "/api/v1/session/activity": {"post": _op("The resident touched something", {
            "200": _json({"type": "object", "properties": {"state": {"type": "string"}}},
                         "New state"), **_errors(409)})},
        "/api/v1/session/end": {"post": _op(
            "End the session and wipe it", {"200": _json(_ref("WipeReport"), "Wipe report"),
                                             **_errors(400)},
            _body({"type": "object", "properties": {
                "reason": {"type": "string", "enum": ["user", "idle", "agent"]}}}))},
        "/api/v1/session/usage": {"post": _op(
            "What the resident used, for the anonymous record (fixed kinds, known ids)",
            {"200": _json({"type": "object", "properties": {"kind": {"type": "string"},
                                                             "value": {"type": "string"}}},
                          "Counted"), **_errors(400, 409)},
            _body(_usage_body(usage_vocabulary), required=True))},
        "/api/v1/session/feedback": {"post": _op(
            "The end screen's answer, for the session that just ended (once, for minutes)",
            {"200": _json({"type": "object", "properties": {"answer": {"type": "string"}}},
                          "Recorded"), **_errors(400, 409)},
            _body({"type": "object", "required": ["answer"], "properties": {
                "answer": {"type": "string", "enum": ["yes", "partly", "no"]}}},
                required=True))},
        "/api/v1/browser": {"post": _op(
            "Open an allowed page in the session's browser",
            {"201": _json({"type": "object", "properties": {"pid": {"type": "integer"},
                                                             "url": {"type": "string"},
                                                             "slot": {"type": "string"}}},
                          "Browser started"), **_errors(400, 403, 409, 503)},
            _body({"type": "object", "required": ["url"],
                   "properties": {"url": {"type": "string"},
                                  "slot": {"type": "string", "enum": ["portal", "mail"]},
                                  "language": {"type": "string"},
                                  "geometry": {"type": "array", "minItems": 4, "maxItems": 4,
                                               "items": {"type": "integer", "minimum": 0,
                                                         "maximum": 10000}}}}, required=True))},
        "/api/v1/browser/close": {"post": _op("Close the session's browser", {
            "200": _json({"type": "object", "properties": {
                "stopped": {"type": "array", "items": {"type": "integer"}}}}, "Stopped")})},
        "/api/v1/help": {"post": _op(
            "« Besoin d'aide »: the resident asks for an agent (true) or cancels (false)",
            {"200": _json({"type": "object", "required": ["help_asked"],
                           "properties": {"help_asked": {"type": "boolean"}}}, "Recorded"),
             **_errors(400, 409)},
            _body({"type": "object", "required": ["asked"],
                   "properties": {"asked": {"type": "boolean"}}}, required=True))},
        "/api/v1/browser/location": {"post": _op(
            "The browser reports the page it shows (the guide panel follows it)",
            {"200": _json({"type": "object", "properties": {"location": {"type": "string"}}},
                          "Recorded"), **_errors(400, 409)},
            _body({"type": "object", "required": ["url"],
                   "properties": {"url": {"type": "string", "maxLength": 8192}}},
                  required=True))},
        "/api/v1/documents": {"get": _op(
            "The session's downloads and scans, newest first",
            {"200": _json({"type": "object", "required": ["documents"], "properties": {
                "documents": {"type": "array", "items": {"type": "object", "required": [
                    "folder", "name", "size"], "properties": {
                    "folder": {"type": "string", "enum": ["downloads", "scans"]},
                    "name": {"type": "string"}, "size": {"type": "integer"},
                    "saved_at": {"type": "string"}, "type": {"type": "string"},
                    "pages": {"type": "integer"}, "error": {"type": "string"},
                    "message": {"type": "string"}}}}}}, "Documents"), **_errors(409)})},
        "/api/v1/documents/{folder}/{name}/page/{page}.png": {"get": _op(
            "A page of a document as a picture (rendered in memory)",
            {"200": {"description": "PNG", "content": {"image/png": {
                "schema": {"type": "string", "format": "binary"}}}}, **_errors(404, 409, 422)},
            parameters=[{"name": n, "in": "path", "required": True,
                         "schema": {"type": "integer" if n == "page" else "string"}}
                        for n in ("folder", "name", "page")])},
        "/api/v1/documents/{folder}/{name}/print": {"post": _op(
            "Print one of the session's documents",
            {"201": job_submitted,
             **_errors(400, 403, 404, 409, 422, 503)},
            _body({"type": "object", "properties": {"copies": {
                "type": "integer", "minimum": 1, "maximum": 10}}}),
            parameters=[{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                        for n in ("folder", "name")])},
        "/api/v1/guides/{guide_id}/print": {"post": _op(
            "Print a guide (in the resident's language, with a QR code to its public copy)",
            {"201": job_submitted,
             **_errors(400, 403, 404, 409, 422, 503)},
            _body({"type": "object", "properties": {"language": {
                "type": "string", "enum": ["fr", "gcf", "en"]}}}),
            parameters=[{"name": "guide_id", "in": "path", "required": True,
                         "schema": {"type": "string"}}])},
        "/api/v1/print": {"post": _op(
            "Print a PDF, PNG or JPEG file",
            {"201": job_submitted,
             **_errors(400, 403, 409, 413, 422, 503)},
            {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "copies": {"type": "integer", "minimum": 1, "maximum": 10}}}}}})},
        "/api/v1/print/{job_id}": {"get": _op(
            "State of a print job of this session",
            {"200": _json({"type": "object", "required": ["job"],
                           "properties": {"job": _ref("Job")}}, "Job"), **_errors(404, 409)},
            parameters=[{"name": "job_id", "in": "path", "required": True,
                         "schema": {"type": "integer"}}])},
        "/api/v1/scan": {"post": _op(
            "Scan into a PDF (flatbed page or whole feeder; append pages to a scan)",
            {"201": _json({"type": "object", "required": ["scan"],
                           "properties": {"scan": _ref("Scan")}}, "Scanned"),
             **_errors(400, 404, 409, 503)},
            _body({"type": "object", "properties": {
                "resolution": {"type": "integer", "enum": [150, 300]},
                "mode": {"type": "string", "enum": ["color", "gray"]},
                "source": {"type": "string", "enum": ["flatbed", "adf"]},
                "append_to": {"type": "string", "pattern": "^[a-z0-9]+$"}}}))},
        "/api/v1/scan/{scan_id}.pdf": {"get": _op(
            "The scanned PDF",
            {"200": {"description": "PDF", "content": {"application/pdf": {
                "schema": {"type": "string", "format": "binary"}}}}, **_errors(404, 409)},
            parameters=[{"name": "scan_id", "in": "path", "required": True,
                         "schema": {"type": "string"}}])},
        "/api/v1/share": {"post": _op(
            "A one-time link (and its QR code) to get a scan on a phone",
            {"201": _json({"type": "object", "required": ["url", "qr_png", "code", "expires_at"],
                           "properties": {"url": {"type": "string"}, "qr_png": {"type": "string"},
                                          "code": {"type": "string", "pattern": "^[a-z]{10}$",
                                                   "description": "password of the encrypted "
                                                   "PDF: shown beside the QR code, never in "
                                                   "the link"},
                                          "expires_at": {"type": "string"}}}, "Link"),
             **_errors(400, 404, 409, 503)},
            _body({"type": "object", "required": ["scan_id"],
                   "properties": {"scan_id": {"type": "string"}}}, required=True))},
        "/api/v1/agent/reset": {"post": _op(
            "Agent: force the end and wipe of the session",
            {"200": _json(_ref("WipeReport"), "Wipe report"), **_errors(401)},
            security=[{"agentToken": []}])},
        "/api/v1/openapi.json": {"get": _op("This document", {
            "200": _json({"type": "object"}, "OpenAPI document")})},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "PLUS kiosk daemon", "version": __version__,
                 "description": "Local API of a PLUS kiosk terminal, on a Unix socket only."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "agentToken": {"type": "http", "scheme": "bearer"}}},
    }
