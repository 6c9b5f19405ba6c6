"""API clients (verifiers, regulators, the card authority), their roles and bearer tokens."""

from flask import Flask


def init_app(app: Flask) -> None:
    from clients.cli import clients_cli

    app.cli.add_command(clients_cli)
