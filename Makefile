# PLUS kiosk — the two commands of the README, and a few helpers.
#   make demo   run the most complete kiosk that exists, on the bundled Espace Sud site
#   make test   install what the tests need, then run the whole suite
# Both work on a fresh Debian 12 machine as root; nothing else needs installing by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SITE   := kiosk/sites/espace-sud.toml
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages the suite needs (installed only when missing).
TEST_DEBS := ca-certificates

.PHONY: demo test bench i18n clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null \
	  || tools/ensure-debs python3 python3-venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.py pyproject.toml
	tools/ensure-debs $(TEST_DEBS)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# Today's kiosk is its security core: the site configuration and the URL policy.
DEMO_URLS := \
  https://www.impots.gouv.fr/ \
  https://cfspart.impots.gouv.fr/LoginMDP \
  https://app.franceconnect.gouv.fr/api/v1/authorize \
  https://immatriculation.ants.gouv.fr/ \
  'http://impots.gouv.fr@evil.example/' \
  'https://impots.gouv.fr.evil.example/' \
  'http://0x7f.0.0.1/' \
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

bench: $(VENV)/.installed
	$(BIN)/python bench/urlfilter.py

# Refresh the catalogues after changing messages in the code.
i18n: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _ -k tr -k N_ --no-location --omit-header -o kiosk/locale/kiosk.pot .
	for lang in fr gcf en; do \
	  $(BIN)/pybabel update -D kiosk -i kiosk/locale/kiosk.pot -d kiosk/locale -l $$lang --no-location --omit-header -w 100; \
	done
	rm kiosk/locale/kiosk.pot

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
