"""Draw the portal tiles' pictograms (kiosk/shell/icons/*.png).

The portals' own logos are their owners' trademarks; the bundled tiles use
plain pictograms instead (a drop for water, a bolt for electricity…), which
also speak to residents who read with difficulty. A site may point a portal's
``icon`` at its own picture. Run after changing a drawing; the PNGs are kept
in the repository.
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parent.parent / "kiosk" / "shell" / "icons"


def canvas():
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def water(d):
    d.polygon([(128, 24), (60, 140), (196, 140)], fill=WHITE)
    d.ellipse((56, 96, 200, 236), fill=WHITE)


def electricity(d):
    d.polygon([(150, 16), (56, 144), (120, 144), (96, 240), (200, 104), (134, 104),
               (170, 16)], fill=WHITE)


def health(d):
    d.rectangle((100, 36, 156, 220), fill=WHITE)
    d.rectangle((36, 100, 220, 156), fill=WHITE)


def car(d):
    d.rounded_rectangle((24, 120, 232, 190), 24, fill=WHITE)
    d.polygon([(64, 124), (92, 64), (168, 64), (196, 124)], fill=WHITE)
    for x in (72, 184):
        d.ellipse((x - 28, 166, x + 28, 222), fill=(0, 0, 0, 0), outline=WHITE, width=14)


def work(d):
    d.rounded_rectangle((24, 84, 232, 220), 18, fill=WHITE)
    d.rounded_rectangle((92, 44, 164, 96), 12, outline=WHITE, width=14)


def family(d):
    for x, top, size in ((76, 40, 44), (180, 40, 44), (128, 112, 30)):
        d.ellipse((x - size // 2, top, x + size // 2, top + size), fill=WHITE)
    d.rounded_rectangle((40, 92, 112, 228), 24, fill=WHITE)
    d.rounded_rectangle((144, 92, 216, 228), 24, fill=WHITE)
    d.rounded_rectangle((108, 148, 148, 228), 14, fill=WHITE)


def tax(d):
    d.rounded_rectangle((52, 20, 204, 236), 14, fill=WHITE)
    for y in (60, 92, 124):
        d.rectangle((80, y, 176, y + 12), fill=(0, 0, 0, 0))
    d.ellipse((96, 150, 160, 214), outline=(0, 0, 0, 0), width=12)


def public(d):
    d.polygon([(128, 20), (24, 84), (232, 84)], fill=WHITE)
    for x in (44, 92, 140, 188):
        d.rectangle((x, 96, x + 24, 196), fill=WHITE)
    d.rectangle((24, 204, 232, 232), fill=WHITE)


def mail(d):
    """An envelope: « Ma messagerie »."""
    d.rounded_rectangle((20, 56, 236, 204), 16, fill=WHITE)
    d.line([(34, 70), (128, 146), (222, 70)], fill=(0, 0, 0, 0), width=14)


def help(d):  # noqa: A001 (the icon's name)
    """A person raising a hand: « Besoin d'aide »."""
    d.ellipse((92, 40, 148, 96), fill=WHITE)                      # head
    d.rounded_rectangle((84, 104, 156, 236), 22, fill=WHITE)      # body
    d.line([(150, 120), (206, 60), (206, 20)], fill=WHITE, width=22, joint="curve")  # raised arm
    d.ellipse((188, 4, 224, 40), fill=WHITE)                      # open hand


def face(mouth):
    """The end screen's answers: a face that smiles (yes), is level (partly) or frowns (no)."""
    def draw(d):
        d.ellipse((12, 12, 244, 244), outline=WHITE, width=18)
        d.ellipse((76, 84, 108, 116), fill=WHITE)
        d.ellipse((148, 84, 180, 116), fill=WHITE)
        if mouth == "smile":
            d.arc((68, 100, 188, 200), 20, 160, fill=WHITE, width=18)
        elif mouth == "level":
            d.line([(80, 170), (176, 170)], fill=WHITE, width=18)
        else:
            d.arc((68, 150, 188, 250), 200, 340, fill=WHITE, width=18)
    return draw


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, draw in (("water", water), ("electricity", electricity), ("health", health),
                       ("car", car), ("work", work), ("family", family), ("tax", tax),
                       ("public", public), ("mail", mail),
                       ("help", help), ("face-yes", face("smile")),
                       ("face-partly", face("level")), ("face-no", face("frown"))):
        image, d = canvas()
        draw(d)
        image.save(OUT / f"{name}.png", optimize=True)
        print(OUT / f"{name}.png")


if __name__ == "__main__":
    main()
