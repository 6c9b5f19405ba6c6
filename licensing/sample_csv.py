"""Writes a synthetic licence CSV for benchmarks and trials of ``flask licences import``.

    python -m licensing.sample_csv OUT.csv --rows 1000000 [--seed 1] [--invalid-every 0]

Every row is valid (unique My Numbers with correct check digits, unique registration
numbers per profession in the profession's format, past dates) unless ``--invalid-every
K`` makes every K-th row fail the check digit. Deterministic for a given seed. The My
Numbers are synthetic test data; they belong to nobody.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import date

from core.my_number import check_digit
from licensing.importer import COLUMNS
from licensing.professions import PROFESSION_CODES

_FAMILY = (
    "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上".split()
)
_GIVEN = "太郎 花子 翔 陽菜 蓮 結衣 大翔 美咲 湊 葵 悠真 凛 健 さくら 誠 愛".split()
_MODULUS = 10**11
_STRIDE = 7_919_000_003  # coprime with 10: i -> (offset + i * stride) mod 10^11 is one-to-one


def write_sample_csv(out, rows: int, *, seed: int = 1, invalid_every: int = 0) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not secrets
    offset = rng.randrange(_MODULUS)
    first_day = date(1970, 4, 1).toordinal()
    span = (date(2024, 3, 31) - date(1970, 4, 1)).days
    next_number = dict.fromkeys(PROFESSION_CODES, 1)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    professions = PROFESSION_CODES
    for i in range(rows):
        first = f"{(offset + i * _STRIDE) % _MODULUS:011d}"
        digit = check_digit(first)
        if invalid_every and (i + 1) % invalid_every == 0:
            digit = (digit + 1) % 10
        profession = professions[i % len(professions)]
        number = next_number[profession]
        next_number[profession] = number + 1
        writer.writerow(
            (
                profession,
                f"{first}{digit}",
                f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
                number,
                date.fromordinal(first_day + rng.randrange(span)).isoformat(),
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--invalid-every", type=int, default=0)
    args = parser.parse_args(argv)
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        write_sample_csv(out, args.rows, seed=args.seed, invalid_every=args.invalid_every)
    print(f"wrote {args.rows} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
