"""Fast CSV population for the bulk import (``flask --app app licences import``).

Faker costs tens of microseconds a row, which is a minute on its own for 1,000,000 rows,
so the benchmark writes its filler population from small name lists. Every row is valid:
a unique My Number with its check digit, a registration number matching the
profession's pattern (read from the database), a name and a registration date.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from core.my_number import check_digit

HEADER = ["profession", "my_number", "name", "registration_number", "registered_on"]
FAMILY = (
    "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 "
    "吉田 山田 佐々木 山口 松本 井上 木村 林 斎藤 清水"
).split()
GIVEN = (
    "翔 蓮 大翔 陽翔 湊 結衣 陽菜 葵 凛 さくら 美咲 健太 直樹 花子 太郎 恵 裕子 大輔 愛 誠"
).split()
PROFESSION_WEIGHTS = {
    "doctor": 3,
    "dentist": 1,
    "pharmacist": 2,
    "nurse": 6,
    "midwife": 1,
    "public_health_nurse": 1,
}


def my_number(index: int, base: int) -> str:
    """The ``index``-th My Number of a sequence (distinct for distinct indexes)."""
    first = f"{(base + index) % 10**11:011d}"
    return first + str(check_digit(first))


@dataclass
class NumberSpace:
    """Sequential registration numbers of one width that the pattern accepts."""

    first: int
    capacity: int
    next_offset: int = 0

    def take(self) -> str:
        if self.next_offset >= self.capacity:
            raise RuntimeError("registration numbers exhausted for a profession")
        value = self.first + self.next_offset
        self.next_offset += 1
        return str(value)


def number_space(pattern: re.Pattern[str] | str) -> NumberSpace:
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    for width in range(8, 0, -1):
        low, high = 10 ** (width - 1), 10**width - 1
        probes = (low, low + 1, (low + high) // 2, high)
        if all(compiled.fullmatch(str(p)) for p in probes):
            return NumberSpace(low, high - low + 1)
    raise RuntimeError(f"no sequential number width fits {compiled.pattern!r}")


class Population:
    """Generates licence rows; card holders come first (their My Numbers are known)."""

    def __init__(self, patterns: dict[str, re.Pattern[str] | str], seed: int = 8) -> None:
        self.random = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.base = self.random.randrange(10**10, 9 * 10**10)
        self.index = 0
        self.spaces = {code: number_space(p) for code, p in patterns.items()}
        codes = [c for c in PROFESSION_WEIGHTS if c in self.spaces] or list(self.spaces)
        self.weighted = [c for c in codes for _ in range(PROFESSION_WEIGHTS.get(c, 1))]

    def row(self, profession: str | None = None) -> list[str]:
        number = my_number(self.index, self.base)
        self.index += 1
        profession = profession or self.random.choice(self.weighted)
        name = f"{self.random.choice(FAMILY)} {self.random.choice(GIVEN)}"
        registered = date(1975, 1, 1) + timedelta(days=self.random.randrange(18000))
        return [
            profession,
            number,
            name,
            self.spaces[profession].take(),
            registered.isoformat(),
        ]

    def rows(self, count: int) -> Iterator[list[str]]:
        for _ in range(count):
            yield self.row()

    def write_csv(self, path: Path, rows: Iterator[list[str]]) -> int:
        written = 0
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for row in rows:
                writer.writerow(row)
                written += 1
        return written
