"""seed domain: stand-ins for the outside world (card authority, virtual cards,
embedded identity platform, population generator)."""

import functools

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
    from seed.cli import card_authority_cli, card_cli, demo_crl_advice, seed_cli
    from seed.demo import demo_command
    from verification.revocation import add_stale_crl_advice

    seed_cli.add_command(demo_command)

    app.cli.add_command(card_authority_cli)
    app.cli.add_command(card_cli)
    app.cli.add_command(seed_cli)
    add_stale_crl_advice(app, functools.partial(demo_crl_advice, app))
