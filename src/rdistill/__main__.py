"""`python -m rdistill` is the `rdistill` command."""

from rdistill.cli import main

# Guarded: `rdistill sweep --jobs` spawns workers, which import the main module again under another name.
if __name__ == "__main__":
    main()
