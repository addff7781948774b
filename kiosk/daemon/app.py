"""The daemon's JSON API under /api/v1 (documented at /api/v1/openapi.json)."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_file

from kiosk.browser.control import SLOTS, control_name
from kiosk.daemon import callers, errors, openapi
from kiosk.daemon import documents as resident_documents
from kiosk.daemon.errors import ApiError, request_language, tr
from kiosk.daemon.runtime import Runtime
from kiosk.i18n import N_, translation
from kiosk.printing import guide_pdf
from kiosk.scanning import ScanError
from kiosk.session import SessionError, iso_utc
from kiosk.sharing import ShareUnavailable, qr_png_base64
from kiosk.usage import ANSWERS, CONTRASTS, TEXT_SIZES, check as usage_allowed
from kiosk.weburl import address_only

log = logging.getLogger(__name__)
api = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_COPIES = 10
SESSION_ERRORS = {
    "session_active": (409, N_("A session is already running.")),
    "leftovers": (409, N_("The previous session was not wiped completely. "
                       "Please ask an agent for help.")),
    "no_session": (409, N_("No session is running. Touch the screen to start.")),
}
SCAN_ERRORS = {
    "no_scanner": (503, N_("No scanner is connected. Please ask an agent for help.")),
    "no_document": (409, N_("There is no sheet in the document feeder.")),
    "unknown_scan": (404, N_("This scan does not exist.")),
    "failed": (503, N_("The scan did not work. Please try again or ask an agent for help.")),
}
PRINTER_MESSAGES = {
    None: N_("The printer is ready."),
    "out_of_paper": N_("The printer is out of paper. An agent will add some."),
    "paper_jam": N_("Paper is stuck in the printer. Please ask an agent for help."),
    "out_of_ink": N_("The printer is out of ink. Please ask an agent for help."),
    "door_open": N_("A door of the printer is open."),
    "offline": N_("The printer does not answer. Check that it is switched on."),
    "paused": N_("The printer is paused. Please ask an agent for help."),
    "missing": N_("No printer is installed on this kiosk."),
    "cups_down": N_("The printing service is not running. Please ask an agent for help."),
}


def runtime() -> Runtime:
    return current_app.config["KIOSK_RUNTIME"]


def _session_error(error: SessionError) -> ApiError:
    status, message = SESSION_ERRORS.get(error.code, (409, error.message))
    return ApiError(status, error.code, tr(message))


def _json_body() -> dict[str, Any]:
    if not request.data:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", tr("The request must be a JSON object."))
    return body


def _current_session():
    try:
        return runtime().sessions.require_session()
    except SessionError as error:
        raise _session_error(error) from None


def _still_current(session) -> None:
    """Called under the session lock: the session was not wiped meanwhile."""
    if runtime().sessions.session is not session:
        raise _session_error(SessionError("no_session", "No session is running."))


# -- health and status ------------------------------------------------------------

@api.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@api.get("/status")
def status() -> Response:
    rt = runtime()
    sessions = rt.sessions
    session = sessions.session
    printer = rt.printer_status
    printer_info: dict[str, object] = {"queue": rt.config.printing.queue, "state": "unknown"}
    if printer is not None:
        printer_info = {"queue": printer.queue, "state": printer.state,
                        "problem": printer.problem, "reasons": printer.reasons,
                        "message": tr(PRINTER_MESSAGES.get(printer.problem,
                                                           PRINTER_MESSAGES["paused"]))}
    return jsonify({
        "state": sessions.state,
        "session": session.as_dict() if session else None,
        "countdown": sessions.countdown_left(),
        "help_asked": bool(session and session.help_asked),  # for the agents' view
        "leftovers": sessions.leftover_counts(),  # kinds and counts: names stay out
        "printer": printer_info,
        "scanner": rt.scanner_status,
        "devices": rt.devices.snapshot(),
        "device_events": rt.devices.recent_events(),
    })


# -- session lifecycle ------------------------------------------------------------

@api.post("/session/start")
def session_start() -> tuple[Response, int]:
    try:
        session = runtime().sessions.start()
    except SessionError as error:
        raise _session_error(error) from None
    runtime().records.session_started()  # the previous resident's question is closed
    return jsonify({"session": session.as_dict()}), 201


@api.post("/session/activity")
def session_activity() -> Response:
    try:
        state = runtime().sessions.activity()
    except SessionError as error:
        raise _session_error(error) from None
    return jsonify({"state": state})


@api.post("/session/end")
def session_end() -> Response:
    reason = _json_body().get("reason", "user")
    if reason not in ("user", "idle", "agent"):
        raise ApiError(400, "bad_reason", tr("The reason must be user, idle or agent."))
    report = runtime().sessions.end(reason)
    return jsonify(report.as_dict())


def _usage_vocabulary() -> dict[str, list[str]]:
    """Each usage kind's values on this terminal: its portals, guides and languages."""
    rt = runtime()
    portals, guides = [p.id for p in rt.config.portal], [g.id for g in rt.guides.guides]
    return {"portal_opened": portals, "guide_started": guides, "guide_finished": guides,
            "language": list(rt.config.site.languages), "text_size": list(TEXT_SIZES),
            "contrast": list(CONTRASTS)}


@api.post("/session/usage")
def session_usage() -> Response:
    """The shell says what the resident used, for the anonymous record: a kind and a value
    from fixed vocabularies (ids the site knows, codes); anything else is refused whole."""
    rt = runtime()
    body = _json_body()
    kind, value = body.get("kind"), body.get("value")
    vocabulary = _usage_vocabulary()  # the API document's too
    if set(body) != {"kind", "value"} or not usage_allowed(
            kind, value, portals=vocabulary["portal_opened"],
            guides=vocabulary["guide_started"], languages=vocabulary["language"]):
        raise ApiError(400, "bad_usage", tr("This usage report is not one the kiosk counts."))
    session = _current_session()
    with rt.sessions.lock:
        _still_current(session)
        session.usage.note(kind, value)
    return jsonify({"kind": kind, "value": value})


@api.post("/session/feedback")
def session_feedback() -> Response:
    """« Avez-vous pu faire votre démarche ? », asked after the wipe: the answer joins the
    record of the session that just ended, once, within [records] feedback_seconds."""
    answer = _json_body().get("answer")
    if answer not in ANSWERS:
        raise ApiError(400, "bad_answer", tr("The answer must be yes, partly or no."))
    if not runtime().records.feedback(answer):
        raise ApiError(409, "no_feedback_expected",
                       tr("This answer can no longer be recorded. Thank you all the same."))
    return jsonify({"answer": answer})


# -- browser ---------------------------------------------------------------------

@api.post("/browser")
def browser_open() -> tuple[Response, int]:
    """Open a page in one of the session's browsers: ``slot`` "portal" (default) or "mail",
    the resident's webmail laid over the portal so that a code read there can be typed
    into the portal's page, still as it was. Opening a slot replaces only that slot's
    browser; « Accueil » (close) and the wipe stop both."""
    rt = runtime()
    session = _current_session()
    url = _json_body().get("url")
    if not isinstance(url, str):
        raise ApiError(400, "bad_url", tr("An address is required."))
    verdict = rt.policy.decide(url)
    if not verdict.allowed:
        raise ApiError(403, "url_refused", tr("This site is not reachable from this kiosk."),
                       rule=verdict.rule)
    body = _json_body()
    geometry = body.get("geometry")
    if geometry is not None and not (isinstance(geometry, list) and len(geometry) == 4 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10000 for v in geometry)
            and geometry[2] > 0 and geometry[3] > 0):
        raise ApiError(400, "bad_geometry", tr("The window position is not valid."))
    slot = body.get("slot", "portal")
    if slot not in SLOTS:
        raise ApiError(400, "bad_slot", tr("The browser must be portal or mail."))
    language = body.get("language", rt.config.site.default_language)
    if language not in rt.config.site.languages:
        language = rt.config.site.default_language
    command = list(rt.config.browser.command)
    if not command:
        raise ApiError(409, "no_browser", tr("No browser is configured on this kiosk."))
    for pid in rt.processes.pids(slot):
        rt.processes.stop(pid)
    argv = [*command, "--url", verdict.url]
    if rt.config.source:
        argv += ["--config", rt.config.source]
    if geometry:
        argv += ["--geometry", ",".join(str(v) for v in geometry)]
    env = {**os.environ,
           "KIOSK_LANGUAGE": language,
           "KIOSK_DAEMON_SOCKET": current_app.config.get("KIOSK_SOCKET", ""),
           "KIOSK_DOWNLOADS_DIR": str(session.dir("downloads")),
           "KIOSK_SCANS_DIR": str(session.dir("scans")),
           "KIOSK_BROWSER_DIR": str(session.dir("browser")),
           "KIOSK_BROWSER_CONTROL": control_name(session.id, slot),
           "KIOSK_CONTROL_UIDS": current_app.config["KIOSK_CALLERS"].control_uids(),
           "KIOSK_KEEP_OUT_UIDS": current_app.config["KIOSK_CALLERS"].keep_out_uids()}
    with rt.sessions.lock:  # a wipe that ran meanwhile must not miss this browser
        _still_current(session)
        try:
            pid = rt.processes.spawn(argv, env=env, slot=slot)
        except OSError:
            raise ApiError(503, "browser_failed",
                           tr("The browser could not be started.")) from None
    return jsonify({"pid": pid, "url": verdict.url, "slot": slot}), 201


@api.post("/browser/close")
def browser_close() -> Response:
    """Back to the home screen: the session goes on, its browsers (both slots) do not."""
    rt = runtime()
    stopped = rt.processes.pids()
    for pid in stopped:
        rt.processes.stop(pid)
    return jsonify({"stopped": stopped})


# -- printing --------------------------------------------------------------------

def _copies(raw: object) -> int:
    """The number of copies asked for, checked; 400 otherwise."""
    if not (isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_COPIES):
        raise ApiError(400, "bad_copies",
                       tr("The number of copies must be between 1 and {max}.").format(
                           max=MAX_COPIES))
    return raw


@api.post("/print")
def print_document() -> tuple[Response, int]:
    session = _current_session()
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "no_file", tr("No document was sent."))
    field = request.form.get("copies", "1")
    copies = _copies(int(field) if field.isascii() and field.isdigit() else None)
    target = session.dir("prints") / secrets.token_hex(8)
    upload.save(target)
    return _submit_print(session, target, copies)


def _submit_print(session, target: Path, copies: int) -> tuple[Response, int]:
    """Check the document, the quota, and send it to CUPS; the file stays in the session."""
    rt = runtime()
    try:
        document = resident_documents.inspect_print_file(target)
    except ApiError:
        target.unlink(missing_ok=True)
        raise
    pages = document.pages * copies
    # Under the session lock: concurrent prints cannot overrun the quota together, and
    # a wipe cannot slip between the check and the submission (its purge would miss it).
    with rt.sessions.lock:
        _still_current(session)
        left = session.page_quota - session.pages_printed
        if pages > left:
            target.unlink(missing_ok=True)
            raise ApiError(403, "print_quota_exceeded",
                           tr("This would print {pages} pages, but only {left} of your {quota} "
                              "pages remain for this visit.").format(
                               pages=pages, left=max(0, left), quota=session.page_quota),
                           pages=pages, pages_left=max(0, left))
        try:
            job = rt.printer.submit(target, f"kiosk-{session.id[:6]}", copies)
        except Exception:
            log.exception("print submission failed")
            raise ApiError(503, "printer_unavailable",
                           tr("The printer is not available right now. Please ask an agent "
                              "for help.")) from None
        session.pages_printed += pages
        session.jobs.append(job)
    rt.printer_status = rt.printer.status()
    return jsonify({"job": {"id": job, "pages": pages, "state": rt.printer.job_state(job)}}), 201


@api.get("/print/<int:job_id>")
def print_job(job_id: int) -> Response:
    session = _current_session()
    if job_id not in session.jobs:
        raise ApiError(404, "unknown_job", tr("This print job does not exist."))
    return jsonify({"job": {"id": job_id, "state": runtime().printer.job_state(job_id)}})


# -- scanning and sharing ------------------------------------------------------

@api.post("/scan")
def scan() -> tuple[Response, int]:
    rt = runtime()
    session = _current_session()
    body = _json_body()
    resolution = body.get("resolution", 150)
    mode = body.get("mode", "color")
    source = body.get("source", "flatbed")
    append_to = body.get("append_to")
    if resolution not in (150, 300) or isinstance(resolution, bool) \
            or mode not in ("color", "gray") or source not in ("flatbed", "adf") \
            or not (append_to is None or (isinstance(append_to, str) and append_to.isalnum())):
        raise ApiError(400, "bad_scan_request",
                       tr("Choose a resolution of 150 or 300, and color or gray."))
    try:
        result = rt.scanner.scan(session.dir("scans"), resolution=resolution, mode=mode,
                                 source=source, append_to=append_to)
    except ScanError as error:
        status_code, message = SCAN_ERRORS.get(error.code, SCAN_ERRORS["failed"])
        log.warning("scan failed: %s", error)
        raise ApiError(status_code, f"scan_{error.code}", tr(message)) from None
    if append_to is None:
        session.usage.scans += 1  # a new scanned document (pages added to one are not)
    return jsonify({"scan": result.as_dict()}), 201


def _scan_path(scan_id: str) -> Path:
    session = _current_session()
    path = session.dir("scans") / f"{scan_id}.pdf"
    if not scan_id.isalnum() or not path.is_file():
        raise ApiError(404, "unknown_scan", tr("This scan does not exist."))
    return path


@api.get("/scan/<scan_id>.pdf")
def scan_pdf(scan_id: str) -> Response:
    response = send_file(_scan_path(scan_id), mimetype="application/pdf",
                         download_name="scan.pdf", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


@api.post("/share")
def share() -> tuple[Response, int]:
    rt = runtime()
    scan_id = _json_body().get("scan_id")
    if not isinstance(scan_id, str):
        raise ApiError(400, "bad_scan_id", tr("Which scan should be shared?"))
    path = _scan_path(scan_id)
    if rt.share_server is None:
        raise ApiError(503, "sharing_off", tr("Sending to a phone is not available here."))
    try:
        rt.share_server.ensure_open()  # the wifi may have come up after the daemon
    except ShareUnavailable as error:
        log.error("share listener: %s", error)
        raise ApiError(503, "sharing_unavailable", tr(
            "Sending to a phone is not available right now. Please ask an agent for help.")) \
            from None
    with rt.sessions.lock:
        _still_current(_current_session())
        link = rt.links.create(path)
        _current_session().usage.shares += 1
    url = rt.share_server.url_for(link)
    # The code opens the encrypted PDF: shown beside the QR code, never in the link.
    return jsonify({"url": url, "qr_png": qr_png_base64(url), "code": link.code,
                    "expires_at": iso_utc(link.expires_at)}), 201


# -- the session's documents (downloads and scans): list, look, print ----------------
# Every file access is in kiosk.daemon.documents (opened once, inspected in a child).

@api.get("/documents")
def documents() -> Response:
    """What the resident saved from the portals and scanned, newest first."""
    return jsonify({"documents": resident_documents.listing(_current_session())})


@api.get("/documents/<folder>/<name>/page/<int:page>.png")
def document_page(folder: str, name: str, page: int) -> Response:
    png = resident_documents.page_png(_current_session(), folder, name, page)
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@api.post("/documents/<folder>/<name>/print")
def document_print(folder: str, name: str) -> tuple[Response, int]:
    session = _current_session()
    copies = _copies(_json_body().get("copies", 1))
    target = resident_documents.copy_for_print(session, folder, name)
    return _submit_print(session, target, copies)


# -- guides -----------------------------------------------------------------------

@api.post("/guides/<guide_id>/print")
def print_guide(guide_id: str) -> tuple[Response, int]:
    """The resident takes the guide home: a PDF in their language, through the print path."""
    rt = runtime()
    session = _current_session()
    guide = rt.guides.get(guide_id)
    if guide is None:
        raise ApiError(404, "unknown_guide", tr("This guide does not exist."))
    language = _json_body().get("language", request_language())
    if language not in rt.config.site.languages:
        raise ApiError(400, "bad_language", tr("This language is not offered here."))
    pdf = guide_pdf.render(guide, language, translation(language).gettext,
                           base_url=rt.config.guides.public_base_url,
                           site_name=rt.config.site.name)
    target = session.dir("prints") / secrets.token_hex(8)
    target.write_bytes(pdf)
    return _submit_print(session, target, 1)


@api.post("/browser/location")
def browser_location() -> Response:
    """The browser says which page it shows, so the guide panel can follow the resident."""
    rt = runtime()
    url = _json_body().get("url")
    if not isinstance(url, str) or len(url) > 8192:
        raise ApiError(400, "bad_url", tr("An address is required."))
    url = address_only(url)  # kept in memory for the guide panel: no query, no user-info
    session = _current_session()
    with rt.sessions.lock:
        _still_current(session)
        session.location = url
    return jsonify({"location": url})


@api.post("/help")
def help_asked() -> Response:
    """« Besoin d'aide »: the resident asks for an agent (``asked`` true), or cancels; an
    agent clears it the same way. It lives on the session and dies with it at the wipe."""
    rt = runtime()
    asked = _json_body().get("asked")
    if not isinstance(asked, bool):
        raise ApiError(400, "bad_help", tr("The request must say asked: true or false."))
    session = _current_session()
    with rt.sessions.lock:
        _still_current(session)
        session.help_asked = asked
    log.info("help %s", "asked" if asked else "cleared")
    return jsonify({"help_asked": asked})


# -- agents ------------------------------------------------------------------------

def _agent_token_ok() -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    try:
        expected = Path(runtime().config.daemon.agent_token_file).read_text().strip()
    except OSError:
        log.error("agent token file unreadable: %s", runtime().config.daemon.agent_token_file)
        return False
    given = header[len("Bearer "):].strip()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@api.post("/agent/reset")
def agent_reset() -> Response:
    if not _agent_token_ok():
        log.warning("refused agent reset from a client without a valid token")
        raise ApiError(401, "unauthorized", tr("A valid agent token is required."))
    report = runtime().sessions.end("agent")
    log.warning("agent reset: %s", report.as_dict())
    return jsonify(report.as_dict())


@api.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document(_usage_vocabulary()))


def create_app(rt: Runtime, socket_path: str = "") -> Flask:
    app = Flask("kiosk.daemon")
    app.config.update(KIOSK_RUNTIME=rt, MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES, KIOSK_SOCKET=socket_path,
                      KIOSK_DEFAULT_LANGUAGE=rt.config.site.default_language,
                      JSON_SORT_KEYS=False)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    callers.install(app, callers.Callers.from_config(rt.config))  # first: who is asking
    errors.install(app)
    app.register_blueprint(api)
    return app
