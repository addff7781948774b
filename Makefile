# PLUS kiosk — the two commands of the README, and a few helpers.
#   make demo   run the most complete kiosk that exists, on the bundled Espace Sud site
#   make test   install what the tests need, then run the whole suite
# Both work on a fresh Debian 12 machine as root; nothing else needs installing by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SITE   := kiosk/sites/espace-sud.toml
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the kiosk and its suite need (installed only when missing):
# CUPS with the cups-pdf printer, SANE (its "test" scanner), xsel for the clipboard,
# espeak-ng to read aloud, the X libraries Qt WebEngine and Kivy load; for the tests
# Xvfb, xdotool (real clicks), ImageMagick (screenshots), poppler (reading PDFs back)
# and what pycups compiles against; nftables and iproute2 for the firewall's proof in a
# private network namespace; prometheus for promtool (the metrics and the alert rules;
# on a machine where systemd runs, Debian enables and starts its server on :9090 — the
# tests never use it).
RUN_DEBS  := ca-certificates cups printer-driver-cups-pdf sane-utils libsane1 xsel espeak-ng \
             fonts-dejavu-core libmtdev1 libgl1 libegl1 libnss3 libasound2 libxkbfile1 \
             libxcomposite1 libxdamage1 libxrandr2 libxtst6 libxkbcommon-x11-0 libxcb-cursor0 \
             libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 \
             libxcb-image0 libxcb-xkb1 x11-utils poppler-utils
TEST_DEBS := $(RUN_DEBS) xvfb xdotool imagemagick libcups2-dev gcc systemd nftables iproute2 squid \
             prometheus

.PHONY: demo test test-provision bench i18n clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null \
	  || tools/ensure-debs python3 python3-venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.py pyproject.toml
	tools/ensure-debs $(TEST_DEBS)
	@$(BIN)/python -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
	  || tools/ensure-debs python3-dev
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# Today's kiosk: the site configuration, the URL policy and the daemon (a resident's
# session from first touch to the verified wipe, with a real print and scan).
DEMO_URLS := \
  https://www.impots.gouv.fr/ \
  https://cfspart.impots.gouv.fr/LoginMDP \
  https://app.franceconnect.gouv.fr/api/v1/authorize \
  https://immatriculation.ants.gouv.fr/ \
  'https://impots.gouv.fr@evil.example/' \
  'https://impots.gouv.fr.evil.example/' \
  'https://0x7f.0.0.1/' \
  'http://www.impots.gouv.fr/' \
  'https:\\evil.example\impots.gouv.fr' \
  file:///etc/passwd \
  'javascript:alert(1)' \
  'data:text/html,<h1>bonjour</h1>' \
  about:blank

DEMO_LANG ?= fr

demo: $(VENV)/.installed
	$(BIN)/kioskctl --lang $(DEMO_LANG) check-config $(SITE)
	@echo
	@for url in $(DEMO_URLS); do \
	  $(BIN)/kioskctl --lang $(DEMO_LANG) check-url "$$url" --config $(SITE); echo; done
	LANGUAGE=$(DEMO_LANG) $(BIN)/python tools/demo_daemon.py
	@if [ -n "$$DISPLAY" ]; then \
	  echo "Starting the whole kiosk on $$DISPLAY (Ctrl+C to quit)…"; \
	  LANGUAGE=$(DEMO_LANG) $(BIN)/python tools/demo_kiosk.py; \
	else \
	  echo "No screen (DISPLAY unset): the kiosk's own screens are shown by 'make test' screenshots in test-artifacts/."; \
	fi

# Opt-in, slow: kiosk-provision for real in a debootstrap chroot of Debian 12 (downloads
# the packages and the kiosk's Python dependencies; the base system is kept in build/).
test-provision: $(VENV)/.installed
	tools/ensure-debs debootstrap
	KIOSK_DEBOOTSTRAP=1 $(BIN)/python -m pytest tests/test_provision_debootstrap.py -v

bench: $(VENV)/.installed
	$(BIN)/python bench/urlfilter.py
	$(BIN)/python bench/daemon.py
	$(BIN)/python bench/handover.py

# Refresh the catalogues after changing messages in the code.
i18n: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _ -k tr -k N_ --no-location --omit-header -o kiosk/locale/kiosk.pot .
	for lang in fr gcf en; do \
	  $(BIN)/pybabel update -D kiosk -i kiosk/locale/kiosk.pot -d kiosk/locale -l $$lang --omit-header -w 100; \
	done
	rm kiosk/locale/kiosk.pot

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
