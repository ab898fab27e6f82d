"""``python -m mfrec`` is the ``mfrec`` command."""

from mfrec.cli import main

if __name__ == "__main__":
    main()
