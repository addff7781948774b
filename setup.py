"""PLUS kiosk — public-service kiosk software (Espace Sud, Martinique)."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="plus-kiosk",
    version="0.1.0",
    description="Kiosk for public wifi terminals and the PLUS public-service bus",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["kiosk", "kiosk.*"]) + ["kiosk_provision"],
    package_dir={"kiosk_provision": "provisioning/kiosk_provision"},
    data_files=[("share/plus-kiosk/systemd", [str(p) for p in sorted(Path("systemd").glob("*"))
                                              if p.name != "README.md"])],
    package_data={"kiosk": ["sites/*.toml", "locale/*/LC_MESSAGES/*.po"],
                  "kiosk_provision": ["files/*"],
                  "kiosk.browser": ["*.js", "*.html"], "kiosk.shell": ["*.kv", "icons/*.png"],
                  "kiosk.guides": ["schema/*.json", "content/*/*.yaml", "content/*/*/*.png",
                                   "content/*/*/*.jpg"]},
    install_requires=[
        "ada-url>=1.15",
        "babel>=2.12",
        "pydantic>=2.5",
        "flask>=3.0",
        "waitress>=3.0",
        "pycups>=2.0",
        "pyudev>=0.24",
        "qrcode>=7.4",
        "pillow>=10.0",
        "pypdf>=4.0",
        "pikepdf>=8.0",  # AES-256 (R6) encryption of scans sent to phones (qpdf)
        "img2pdf>=0.5",
        "pywebview[qt]>=5.0",
        "kivy>=2.3",
        "pyyaml>=6.0",
        "jsonschema>=4.20",
        "reportlab>=4.0",
        "matplotlib>=3.6",  # kioskctl stats report: charts, Agg backend (no screen)
        "prometheus_client>=0.16",  # fleet health for node_exporter's textfile collector
    ],
    extras_require={
        "test": ["pytest>=7.4,<9", "hypothesis>=6.90", "schemathesis>=3.30,<5",
                 "ansible-core>=2.15", "ansible-lint>=6.20", "dukpy>=0.3"],
    },
    entry_points={
        "console_scripts": [
            "kioskctl = kiosk.kioskctl:main",
            "kiosk-daemon = kiosk.daemon.server:main",
            "kiosk-browser = kiosk.browser.app:main",
            "kiosk-shell = kiosk.shell.app:main",
            "kiosk-provision = kiosk_provision.cli:main",
        ],
    },
)
