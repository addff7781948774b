import sys

from kiosk_provision.cli import main

sys.exit(main())
