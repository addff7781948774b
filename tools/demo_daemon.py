"""`make demo`, second half: one resident's visit through the real daemon.

A private cupsd with a cups-pdf printer, SANE's test scanner and an Xvfb screen
stand in for the bus's devices; everything else is the kiosk as installed.
The visit prints, scans, gets a share link (shown as a QR code), copies a
password, then ends: the wipe report and a look at what is left follow.
"""

from __future__ import annotations

import io
import secrets
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Cupsd, Daemon, Xvfb, wait_for  # noqa: E402

from kiosk.clipboard import Clipboard  # noqa: E402


def say(text: str) -> None:
    print(f"\n\033[1m▶ {text}\033[0m", flush=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="plus-kiosk-demo-"))
    work.chmod(0o755)
    cupsd = xvfb = daemon = None
    try:
        cupsd = Cupsd(work / "cups", f"plusdemo{secrets.token_hex(3)}")
        (work / "cups").mkdir()
        cupsd.start()
        xvfb = Xvfb.start()
        (work / "kiosk").mkdir()
        daemon = Daemon(work / "kiosk", cupsd, xvfb.display).start()
        client = daemon.client()

        say("The daemon is up (after its boot wipe). Status:")
        status = client.status()
        print(f"  state={status['state']}  printer: {status['printer'].get('message')}  "
              f"scanner: {status['scanner']}")

        say("A resident touches the screen: a session starts")
        session = client.start_session()
        print(f"  session {session['id']}, quota {session['page_quota']} pages")
        for name, path in session["dirs"].items():
            print(f"  {name:<10}{path}")

        say("They print their proof of address (a picture)")
        picture = work / "justificatif.png"
        image = Image.new("RGB", (1240, 1754), "white")
        ImageDraw.Draw(image).text((100, 100), "Attestation - Mme Exemple, Le Marin", fill="black")
        image.save(picture)
        job = client.print_file(picture)
        wait_for(lambda: client.print_job(job["id"])["state"] == "completed", timeout=60,
                 what="the print")
        print(f"  job {job['id']}: {job['pages']} page, completed; "
              f"cups-pdf wrote {[p.name for p in cupsd.outputs()]}")

        say("They scan a two-page document and send it to their phone")
        scan = client.scan(resolution=150, mode="gray")
        scan = client.scan(append_to=scan["id"])
        link = client.share(scan["id"])
        print(f"  scan {scan['id']}: {scan['pages']} pages, {scan['size']} bytes")
        print(f"  one-time link (dies at first download, in 10 minutes or at the wipe):\n"
              f"  {link['url']}")
        code = qrcode.QRCode(border=1)
        code.add_data(link["url"])
        text = io.StringIO()
        code.print_ascii(out=text, invert=True)
        print("\n".join("  " + line for line in text.getvalue().splitlines()))

        say("They copy their password, and the browser saves a file")
        Clipboard(xvfb.display).write("clipboard", "MotDePasse-CAF-1234")
        (Path(session["dirs"]["downloads"]) / "attestation-caf.pdf").write_bytes(b"%PDF-1.4 ...")
        print(f"  clipboard holds {Clipboard(xvfb.display).read('clipboard')!r}")

        say("They press « Terminer »: the session is wiped, then verified")
        report = client.end_session("user")
        print(f"  {report}")
        clipboard = Clipboard(xvfb.display).read("clipboard")
        print(f"  session directories still there: "
              f"{any(Path(p).exists() for p in session['dirs'].values())}")
        print(f"  clipboard now: {clipboard!r};  jobs left in CUPS: {len(cupsd.jobs('all'))}")
        print("  the share link now answers: ", end="")
        try:
            urllib.request.urlopen(link["url"], timeout=5)
            print("200 (!)")
        except urllib.error.HTTPError as error:
            print(error.code)
        print(f"  status: {client.status()['state']}, ready for the next resident")
        return 0 if report["wiped"] else 1
    finally:
        for part in (daemon, xvfb, cupsd):
            if part is not None:
                part.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
