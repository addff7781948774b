"""Guides in the shell, for real: picker, search, detail, the panel beside the live portal
following the browser, by hand, aloud, in three languages, and printed out of cupsd.

Screenshots go to test-artifacts/guides-*.png.
"""

import subprocess
import textwrap
import time

import portals
import pytest
from harness import Stack, click, screenshot, start_session, wait_for

GUIDE = textwrap.dedent("""\
    format: 1
    id: test-demarche
    portal: test
    title: {fr: Déclarer mon numéro fiscal, gcf: Déklaré nimewo fiskal mwen, en: Declare my tax number}
    summary: {fr: Un exemple de démarche., gcf: An egzanp démach., en: An example procedure.}
    minutes: 5
    difficulty: 1
    needs_review: [gcf]
    start_url: %(start)s
    have_at_hand:
      - {fr: Votre numéro fiscal, gcf: Nimewo fiskal ou, en: Your tax number}
    steps:
      - id: form
        title: {fr: Remplir le formulaire, gcf: Ranpli fòmilè-a, en: Fill in the form}
        text: {fr: Tapez votre numéro fiscal puis touchez « Entrée »., gcf: "Tapé nimewo fiskal ou, apré sa touché « Entrée ».", en: Type your tax number then touch « Entrée ».}
        button: Entrée
        url: portal.test/
      - id: thanks
        title: {fr: C'est envoyé, gcf: I voyé, en: It is sent}
        text: {fr: La page dit « Merci »., gcf: Paj-la ka di « Merci »., en: The page says « Merci ».}
        url: portal.test/merci
      - id: write-down
        title: {fr: Noter le numéro, gcf: Maké nimewo-a, en: Write the number down}
        text: {fr: Notez le numéro affiché sur un papier., gcf: Maké nimewo-a asou an papyé., en: Write the number shown on paper.}
        url: portal.test/merci
        warning: {fr: Ne le donnez à personne., gcf: Pa bay pèsonn li., en: Give it to nobody.}
      - id: upload
        title: {fr: Envoyer un justificatif, gcf: Voyé an jistifikatif, en: Send a proof}
        text: {fr: Touchez le bouton pour choisir votre scan., gcf: Touché bouton-an pou chwazi scan ou., en: Touch the button to choose your scan.}
        url: portal.test/upload
        image: pictures/upload.png
    end_state:
      kind: confirmation
      text: {fr: Un message « Merci »., gcf: An mésaj « Merci »., en: A « Merci » message.}
    source: https://www.service-public.fr/
    last_checked: "2026-11-01"
    """)


@pytest.fixture
def stack(tmp_path, xvfb, cupsd, fake_portals):
    guides = tmp_path / "guides" / "test"
    guides.mkdir(parents=True)
    (guides / "demarche.yaml").write_text(GUIDE % {"start": fake_portals.url("/")},
                                          encoding="utf-8")
    from PIL import Image, ImageDraw
    (guides / "pictures").mkdir()
    picture = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(picture).rectangle((40, 60, 360, 140), fill=(200, 30, 30))
    picture.save(guides / "pictures" / "upload.png")
    extra = (f'\n[guides]\nextra_dir = "{tmp_path / "guides"}"\n'
             'public_base_url = "https://guides.espace-sud.test/"\n')
    instance = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"), extra_site=extra,
                     idle_warning_seconds=300).start()
    yield instance
    instance.stop()


def layout(stack, screen, since):
    return stack.wait(lambda e: e["event"] == "layout" and e["screen"] == screen, screen,
                      since=since)


def step_shown(stack, index, since, by=None):
    return stack.wait(lambda e: e["event"] == "guide_step" and e["index"] == index
                      and (by is None or e.get("by") == by), f"step {index + 1}", since=since)


def test_picker_detail_panel_follows_the_portal_and_prints(stack, fake_portals, cupsd):
    start_session(stack)
    # The portal tile says how many guides it has, and opens them.
    mark = len(stack.events())
    stack.tap("tile_guides_0", "home")
    layout(stack, "guides", mark)
    time.sleep(0.5)
    screenshot(stack.display, "guides-1-picker-fr")
    mark = len(stack.events())
    stack.tap("guide_0", "guides")
    layout(stack, "guide", mark)
    time.sleep(0.8)
    screenshot(stack.display, "guides-2-detail-fr")

    # « Commencer »: the portal opens with the panel on its right, at step 1.
    mark = len(stack.events())
    stack.tap("guide_start", "guide")
    layout(stack, "portal", mark)
    from harness import read_log as read  # [] until the browser has written
    wait_for(lambda: any(e.get("event") == "loaded" and e.get("ok")
                         for e in read(stack.browser_audit)), timeout=30, what="portal loaded")
    targets = layout(stack, "portal", mark)["targets"]
    assert "step_counter" in targets and "guide_next" in targets
    assert targets["step_counter"][0] > 1280 - 380  # the panel is right of the browser
    time.sleep(1)
    screenshot(stack.display, "guides-3-panel-step1-fr")

    # The resident fills the form with the on-page keyboard: the page changes, and
    # the panel jumps to the step of that page by itself.
    browser_width = 1280 - 260 - 380
    click(stack.display, 260 + 100, portals.FORM_FIELD[1])
    time.sleep(0.8)
    for key in "972↵":
        x, y = portals.keyboard_key(key, screen=(browser_width, 800))
        click(stack.display, x + 260, y)
    wait_for(lambda: ("portal.test", "/merci?fiscal=972") in fake_portals.hits, what="form sent")
    step_shown(stack, 1, mark, by="page")
    time.sleep(0.8)
    screenshot(stack.display, "guides-4-panel-step2-fr")

    # Steps 2 and 3 happen on the same page: « Suivant » by hand, and the page does not
    # pull the resident back.
    mark = len(stack.events())
    stack.tap("guide_next", "portal")
    step_shown(stack, 2, mark, by="hand")
    time.sleep(2.5)  # a few status polls with the same page
    assert not [e for e in stack.events()[mark:] if e["event"] == "guide_step"
                and e["index"] != 2]
    time.sleep(0.5)
    screenshot(stack.display, "guides-5-panel-warning-fr")
    # The last step has the guide's own illustration.
    stack.tap("guide_next", "portal")
    step_shown(stack, 3, mark, by="hand")
    time.sleep(0.8)
    from PIL import Image
    shot = Image.open(screenshot(stack.display, "guides-5b-panel-illustration")).convert("RGB")
    image_at = stack.target("step_image", "portal")
    assert shot.getpixel(tuple(image_at))[0] > 150 > shot.getpixel(tuple(image_at))[1]
    for back in (2, 1):
        stack.tap("guide_prev", "portal")
        step_shown(stack, back, mark, by="hand")

    # Read aloud, then print the guide: it comes out of the test cupsd with its title.
    time.sleep(0.5)
    mark = len(stack.events())
    stack.tap("guide_listen", "portal")
    spoken = stack.wait(lambda e: e["event"] == "speak", "step read aloud", since=mark)
    assert "Étape 2 sur 4" in spoken["text"] and "Merci" in spoken["text"]
    before = set(cupsd.outputs())
    stack.tap("guide_print", "portal")
    stack.wait(lambda e: e["event"] == "message" and "impression" in e["text"],
               "guide printing", since=mark)
    produced = wait_for(lambda: set(cupsd.outputs()) - before, timeout=60, what="printed guide")

    def printed_text() -> str:  # cups-pdf writes the file progressively
        return subprocess.run(["pdftotext", str(next(iter(produced))), "-"],
                              capture_output=True, text=True).stdout
    # "Déclarer mon numéro fiscal": cups-pdf's Ghostscript drops the accented letters' text.
    wait_for(lambda: "fiscal" in printed_text() and "Merci" in printed_text(), timeout=30,
             what="the guide's words in the printed PDF")

    # Closing the panel gives the page its width back.
    mark = len(stack.events())
    stack.tap("guide_close", "portal")
    stack.wait(lambda e: e["event"] == "panel" and not e["open"], "panel closed", since=mark)
    time.sleep(1)
    screenshot(stack.display, "guides-6-panel-closed")
    from PIL import Image
    shot = Image.open(screenshot(stack.display, "guides-6-panel-closed")).convert("RGB")
    assert sum(shot.getpixel((1200, 60))) > 600  # the white page where the panel was


@pytest.mark.parametrize("lang, counter", [("gcf", "Étap 1 asou 4"), ("en", "Step 1 of 4")])
def test_panel_in_creole_and_english(stack, lang, counter):
    start_session(stack)
    mark = len(stack.events())
    stack.tap(f"lang_{lang}", "home")
    stack.wait(lambda e: e["event"] == "lang", "language", since=mark)
    time.sleep(0.5)
    mark = len(stack.events())
    stack.tap("help", "home")
    layout(stack, "guides", mark)
    mark = len(stack.events())
    stack.tap("guide_0", "guides")
    layout(stack, "guide", mark)
    time.sleep(0.6)
    screenshot(stack.display, f"guides-2-detail-{lang}")
    mark = len(stack.events())
    stack.tap("guide_start", "guide")
    layout(stack, "portal", mark)
    time.sleep(2)
    screenshot(stack.display, f"guides-3-panel-step1-{lang}")
    stack.tap("guide_listen", "portal")
    spoken = stack.wait(lambda e: e["event"] == "speak", "read aloud", since=mark)
    assert spoken["lang"] == lang and spoken["text"].startswith(counter)


def test_search_box_finds_guides_without_accents(stack):
    start_session(stack)
    mark = len(stack.events())
    stack.tap("help", "home")
    layout(stack, "guides", mark)
    mark = len(stack.events())
    stack.tap("guide_search", "guides")
    time.sleep(1)  # the docked touch keyboard slides in
    # Typed on the shell's own touch keyboard, no accent: "declarer" finds "Déclarer".
    keyboard = wait_for(lambda: next((e["targets"] for e in reversed(stack.events())
                                      if e["event"] == "layout" and "vkey_d" in e["targets"]),
                                     None), what="the touch keyboard on screen")
    screenshot(stack.display, "guides-7-search-keyboard")
    for letter in "declarer":
        click(stack.display, *keyboard[f"vkey_{letter}"])
        time.sleep(0.15)
    found = stack.wait(lambda e: e["event"] == "guide_search" and e["query"] == "declarer",
                       "search", since=mark)
    assert found["results"] == ["test-demarche"]
    for letter in "zz":
        click(stack.display, *keyboard[f"vkey_{letter}"])
        time.sleep(0.15)
    empty = stack.wait(lambda e: e["event"] == "guide_search" and e["query"] == "declarerzz",
                       "no result", since=mark)
    assert empty["results"] == []
    time.sleep(0.5)
    screenshot(stack.display, "guides-8-search-nothing")


REAL_PORTALS = "".join(
    f'\n[[portal]]\nid = "{pid}"\nname = {{ fr = "{fr}", gcf = "{fr}", en = "{fr}" }}\n'
    f'start_url = "https://www.{host}/"\nallow = ["{host}"]\nicon = "{icon}"\n'
    for pid, fr, host, icon in (("ameli", "Assurance maladie", "ameli.fr", "health"),
                                ("sme", "Eau — SME", "smeaux.fr", "water"),
                                ("caf", "CAF", "caf.fr", "family")))


def test_home_tiles_have_pictograms_and_their_guides(tmp_path, xvfb, cupsd, fake_portals):
    from PIL import Image

    from kiosk.guides import load_library
    stack = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"),
                  extra_site=REAL_PORTALS, idle_warning_seconds=300).start()
    try:
        start_session(stack)
        time.sleep(1)
        shot = Image.open(screenshot(stack.display, "guides-0-home-tiles")).convert("RGB")
        targets = layout(stack, "home", 0)["targets"]
        library = load_library()
        for index, portal in enumerate(("ameli", "sme", "caf"), start=1):
            assert f"tile_guides_{index}" in targets  # the bundled guides of that portal
            x, y = targets[f"tile_{index}"]
            # the white pictogram in the upper half of the blue tile
            column = [shot.getpixel((x + dx, y - dy)) for dx in range(-40, 41, 4)
                      for dy in range(20, 70, 4)]
            assert any(sum(p) > 700 for p in column), portal
        assert "tile_guides_0" not in targets or library.for_portal("test") == []
        mark = len(stack.events())
        stack.tap("tile_guides_2", "home")  # the water company's guides
        layout(stack, "guides", mark)
        time.sleep(0.5)
        screenshot(stack.display, "guides-1-picker-sme")
    finally:
        stack.stop()
