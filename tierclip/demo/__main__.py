"""`python -m tierclip.demo` (what `just demo` runs)."""

from tierclip.demo.cli import main

if __name__ == "__main__":
    main()
