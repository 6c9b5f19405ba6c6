"""CLI groups that report service errors as one clear line instead of a traceback."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from core.errors import ServiceError


class ServiceGroup(AppGroup):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ServiceError as error:
            raise click.ClickException(f"{error.code}: {error.detail}") from None
