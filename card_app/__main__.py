"""``python -m card_app``: the same as the ``licence-card`` console script."""

from card_app.cli import main

main(prog_name="licence-card")
