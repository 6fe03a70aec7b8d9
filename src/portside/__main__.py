"""Allow ``python -m portside``."""

from portside.cli import main

main()
