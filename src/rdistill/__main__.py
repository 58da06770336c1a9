"""`python -m rdistill` is the `rdistill` command."""

from rdistill.cli import main

main()
