"""`python -m shortlist` runs the CLI."""

from shortlist.cli import main

if __name__ == "__main__":
    main()
