"""The progress engine and the search, on the real guide files."""

import pytest

from kiosk import config as site_config
from kiosk.guides import load_library
from kiosk.guides.progress import Progress
from kiosk.guides.search import GuideIndex, fold


@pytest.fixture(scope="module")
def library():
    site = site_config.load(site_config.bundled_config())
    return load_library(portals=[p.id for p in site.portal])


def ids(progress):
    return progress.step.id


def test_every_procedure_of_the_reference_has_a_guide(library):
    assert len(library) >= 20
    portals = {g.portal for g in library.guides}
    assert portals == {"impots", "caf", "france-travail", "ameli", "ants", "edf", "sme",
                       "service-public", "webmail"}
    for guide in library.guides:  # the panel can always show something in each language
        for step in guide.steps:
            assert all(step.title[lang] and step.text[lang] for lang in ("fr", "gcf", "en"))


def test_caf_quarterly_declaration_followed_page_by_page(library):
    progress = Progress(library.get("caf-declaration-trimestrielle"))
    assert (progress.index, progress.total) == (0, 9)
    assert not progress.follow("https://www.caf.fr/")
    assert progress.follow("https://connect.caf.fr/connexionappli/dist/?x=1")
    assert ids(progress) == "credentials"
    # The code is typed on the same page: the resident moves on by hand, and the page
    # (reloaded, or the same address polled again) does not pull them back.
    assert progress.next() and ids(progress) == "code"
    assert not progress.follow("https://connect.caf.fr/connexionappli/dist/?x=2")
    assert ids(progress) == "code"
    # The real account pages (issue #14: 2), as the browser reports them: scheme, host, path.
    assert progress.follow("https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord")
    assert ids(progress) == "resources"
    assert progress.follow("https://wwwd.caf.fr/wps/myportal/caffr/moncompte/mesressources")
    assert ids(progress) == "declare"
    while progress.next():
        assert not progress.follow(
            "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/mesressources/declaration")
    assert progress.is_last and ids(progress) == "finish"
    # Back on the public home page: step 1 again.
    assert progress.follow("https://www.caf.fr/allocataires") and progress.index == 0


def test_a_resident_already_logged_in_jumps_ahead(library):
    progress = Progress(library.get("caf-declaration-trimestrielle"))
    assert progress.follow("https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord")
    assert ids(progress) == "resources"


@pytest.mark.parametrize("guide, address, expected", [
    # Real CAF account addresses, as scheme + host + path (issue #14: 2): the panel
    # follows past the log-in instead of staying on it.
    ("caf-se-connecter", "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord",
     "in-account"),
    ("caf-attestation-paiement",
     "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord", "certificates"),
    ("caf-attestation-paiement",
     "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/mesattestations", "payment-certificate"),
    ("caf-declaration-trimestrielle",
     "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/mesressources", "declare"),
    ("caf-aide-logement", "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord",
     "new-request"),
    ("caf-aide-logement", "https://connect.caf.fr/connexionappli/dist/", "credentials"),
    # no account yet: the public site's menus, then the request pages (account created there)
    ("caf-aide-logement-premiere-demande", "https://www.caf.fr/allocataires/mes-demarches",
     "procedures"),
    ("caf-aide-logement-premiere-demande",
     "https://wwwd.caf.fr/wps/myportal/caffr/moncompte/tableaudebord", "create-account"),
])
def test_caf_account_pages_show_the_right_step(library, guide, address, expected):
    progress = Progress(library.get(guide))
    progress.follow("https://www.caf.fr/")
    progress.follow(address)
    assert ids(progress) == expected


def test_old_caf_portal_path_is_no_longer_taken_for_the_account(library):
    progress = Progress(library.get("caf-attestation-paiement"))
    assert not progress.follow("https://wwwd.caf.fr/wps/portal/caffr/aidesetservices")
    assert progress.index == 0


def test_both_housing_aid_guides_are_found(library):
    results = [g.id for g in GuideIndex(library).search("APL")]
    assert {"caf-aide-logement", "caf-aide-logement-premiere-demande"} <= set(results[:3])


def test_pages_outside_the_guide_leave_the_step_alone(library):
    progress = Progress(library.get("ants-changement-adresse-carte-grise"))
    assert progress.follow("https://moncompte.ants.gouv.fr/connexion") and progress.index == 1
    for elsewhere in ("https://app.franceconnect.gouv.fr/api/v1/authorize",
                      "https://www.impots.gouv.fr/", "https://evil.example/ants.gouv.fr"):
        assert not progress.follow(elsewhere)
        assert progress.index == 1
    assert progress.follow("https://immatriculation.ants.gouv.fr/demarches-en-ligne")
    assert ids(progress) == "choose"


def test_france_travail_login_host_is_not_taken_for_the_candidate_space(library):
    progress = Progress(library.get("france-travail-actualisation"))
    assert progress.follow("https://authentification-candidat.francetravail.fr/connexion/")
    assert ids(progress) == "log-in"  # not "update", though the host ends in candidat…
    assert progress.follow("https://candidat.francetravail.fr/actualisation")
    assert ids(progress) == "update"


def test_ameli_account_home_does_not_jump_past_my_procedures(library):
    # The account home is …/PortailAS/appmanager/PortailAS/assure?_pageLabel=as_accueil_page;
    # the browser reports it without its query, like every page of the account (issue #14: 7).
    progress = Progress(library.get("ameli-attestation-droits"))
    assert progress.follow("https://ameliconnect.ameli.fr/oauth2/authorize")
    assert ids(progress) == "log-in"
    assert progress.follow("https://assure.ameli.fr/PortailAS/appmanager/PortailAS/assure")
    assert ids(progress) == "my-procedures"
    assert progress.next() and ids(progress) == "ask-certificate"
    assert not progress.follow("https://assure.ameli.fr/PortailAS/appmanager/PortailAS/assure")
    assert ids(progress) == "ask-certificate"  # the resident's own move is kept


def test_service_public_guides_follow_the_gouv_fr_host(library):
    # service-public.fr moved to service-public.gouv.fr on 1 October 2025 (issue #14: 1).
    guide = library.get("service-public-changement-adresse")
    assert guide.start_url == "https://www.service-public.gouv.fr/"
    progress = Progress(guide)
    assert not progress.follow("https://www.service-public.gouv.fr/")  # already on step 1
    assert progress.next() and ids(progress) == "log-in"
    assert not progress.follow("https://www.service-public.gouv.fr/particuliers/vosdroits/R11193")
    assert ids(progress) == "log-in"
    assert Progress(guide).matching("https://www.service-public.gouv.fr/compte/se-connecter")


def test_manual_moves_stop_at_the_ends(library):
    progress = Progress(library.get("ameli-attestation-droits"))
    assert not progress.previous()
    for _ in range(progress.total - 1):
        assert progress.next()
    assert not progress.next() and progress.is_last


def test_fold_removes_accents_and_case():
    assert fold("Déclaration ÉLECTRICITÉ Kréyòl") == "declaration electricite kreyol"


@pytest.mark.parametrize("query, expected", [
    ("declaration", "caf-declaration-trimestrielle"),
    ("DÉCLARER revenus", "impots-declarer-revenus"),
    ("actualisation", "france-travail-actualisation"),
    ("attestation droits", "ameli-attestation-droits"),
    ("carte grise adresse", "ants-changement-adresse-carte-grise"),
    ("cheque energie", "service-public-cheque-energie"),
    ("dlo", "sme-facture-eau"),          # Kréyòl: water
    ("tax notice", "impots-avis-impot"),  # English
])
def test_search_in_three_languages(library, query, expected):
    results = [g.id for g in GuideIndex(library).search(query)]
    assert expected in results[:3], results


def test_search_by_portal_and_nothing_found(library):
    index = GuideIndex(library)
    assert {g.portal for g in index.search("attestation", portal="caf")} == {"caf"}
    assert index.search("zzzz introuvable") == []
    assert index.search("   ") == []


def test_the_webmail_code_guide_never_jumps_ahead_whatever_the_webmail(library):
    """Its steps share one pattern (the resident's webmail may be any of the list): the
    panel stays where the resident is and « Suivant » moves on."""
    progress = Progress(library.get("webmail-lire-code"))
    assert (progress.index, progress.total) == (0, 9)
    for address in ("https://messagerie.orange.fr/", "https://accounts.google.com/v3/signin",
                    "https://mail.google.com/mail/u/0/", "https://outlook.live.com/mail/0/"):
        progress.follow(address)
        assert progress.index == 0, address
    assert progress.next() and progress.next() and ids(progress) == "sign-in"
    progress.follow("https://accounts.google.com/v3/signin/challenge/pwd")
    assert ids(progress) == "sign-in"
