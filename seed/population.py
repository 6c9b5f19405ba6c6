"""A realistic, deterministic population of licensed health professionals.

Pure data: ``generate_people(count, seed=...)`` yields ``Person`` records (My Number,
ja_JP name from faker's provider, one or more planned licences); nothing touches the
database or the identity platform. The same seed always gives the same people.

Realism, roughly after Japan's registers:
- professions weighted towards doctors and nurses; midwives and public health nurses
  also hold a nurse licence (as the law requires), registered a little earlier;
- registration numbers are unique per profession, 6 digits (7 for nurses), widening
  only if a profession runs out;
- registration dates fall mostly in spring after the national examinations, spread
  over the last ~45 years with more recent registrations;
- most licences are active, some suspended (with an ``until`` date), a few revoked.

My Numbers and registration numbers are drawn from affine permutations
(``i -> (a*i + b) mod m`` with ``gcd(a, m) = 1``), so they are unique without keeping
a set, which keeps ``write_licence_csv`` fast and flat in memory for a million rows.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from faker.providers.person.ja_JP import Provider as JapanesePersonProvider

from core.my_number import check_digit

PROFESSIONS = ("doctor", "dentist", "pharmacist", "nurse", "midwife", "public_health_nurse")
#: Share of people whose main profession this is (mostly doctors and nurses).
PROFESSION_WEIGHTS = {
    "doctor": 0.36,
    "nurse": 0.38,
    "pharmacist": 0.10,
    "dentist": 0.07,
    "midwife": 0.04,
    "public_health_nurse": 0.05,
}
#: Professions that require a nurse licence as well.
NEEDS_NURSE_LICENCE = frozenset({"midwife", "public_health_nurse"})
REGISTRATION_DIGITS = {
    "doctor": 6,
    "dentist": 6,
    "pharmacist": 6,
    "nurse": 7,
    "midwife": 6,
    "public_health_nurse": 6,
}
MAX_REGISTRATION_DIGITS = 8

STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"
STATUS_REVOKED = "revoked"
STATUS_WEIGHTS = {STATUS_ACTIVE: 0.93, STATUS_SUSPENDED: 0.05, STATUS_REVOKED: 0.02}
SUSPENSION_REASONS = (
    "Suspended by the Medical Ethics Council (demo)",
    "Suspended pending a disciplinary hearing (demo)",
    "Suspended after a criminal conviction (demo)",
)
REVOCATION_REASONS = (
    "Revoked by the Minister of Health, Labour and Welfare (demo)",
    "Revoked after a fraudulent registration was found (demo)",
)
CSV_HEADER = ("profession", "my_number", "name", "registration_number", "registered_on")

_LAST_NAMES = JapanesePersonProvider.last_names
_FIRST_NAMES_MALE = JapanesePersonProvider.first_names_male
_FIRST_NAMES_FEMALE = JapanesePersonProvider.first_names_female
_MY_NUMBER_SPACE = 10**11


@dataclass(frozen=True)
class PlannedLicence:
    profession: str
    registration_number: str  # 1 to 8 digits, unique per profession
    registered_on: date
    status: str  # active | suspended | revoked (what the seeder should make it)
    suspended_until: date | None = None
    status_reason: str | None = None

    @property
    def registered_year(self) -> int:
        return self.registered_on.year


@dataclass(frozen=True)
class Person:
    my_number: str  # valid check digit; never log or print it
    name: str  # family name, a space, given name (ja_JP)
    licences: tuple[PlannedLicence, ...]  # main profession first

    @property
    def profession(self) -> str:
        return self.licences[0].profession

    def __repr__(self) -> str:  # keep My Numbers out of logs and assertion messages
        return f"Person(name={self.name!r}, licences={self.licences!r})"


class _AffinePermutation:
    """A bijection of range(modulus) that looks random: i -> (a*i + b) mod modulus."""

    def __init__(self, rng: random.Random, modulus: int) -> None:
        self.modulus = modulus
        while True:
            a = rng.randrange(modulus // 3, 2 * modulus // 3)
            if math.gcd(a, modulus) == 1:
                break
        self.a, self.b = a, rng.randrange(modulus)

    def __call__(self, index: int) -> int:
        return (self.a * index + self.b) % self.modulus


class _RegistrationNumbers:
    """Unique registration numbers for one profession: ``digits``-digit numbers first,
    then wider ones up to 8 digits if that many are needed."""

    def __init__(self, rng: random.Random, digits: int) -> None:
        self._blocks: list[tuple[int, int, _AffinePermutation]] = []
        low = 1
        for width in range(digits, MAX_REGISTRATION_DIGITS + 1):
            high = 10**width  # numbers in [low, high)
            self._blocks.append((low, high - low, _AffinePermutation(rng, high - low)))
            low = high
        self._issued = 0

    def next(self) -> str:
        index = self._issued
        self._issued += 1
        for low, size, permutation in self._blocks:
            if index < size:
                return str(low + permutation(index))
            index -= size
        raise ValueError("registration numbers exhausted (8 digits)")


class PopulationGenerator:
    """Deterministic for a given ``seed`` and ``today``."""

    def __init__(self, seed: int = 0, *, today: date | None = None) -> None:
        # Deterministic demo data, not secrets.
        self.rng = random.Random(seed)  # noqa: S311  # nosec B311
        self.today = today or date.today()
        self._my_numbers = _AffinePermutation(self.rng, _MY_NUMBER_SPACE)
        self._registration = {
            profession: _RegistrationNumbers(self.rng, REGISTRATION_DIGITS[profession])
            for profession in PROFESSIONS
        }
        self._people = 0
        self._professions = list(PROFESSION_WEIGHTS)
        self._profession_cum = _cumulative(PROFESSION_WEIGHTS.values())
        self._statuses = list(STATUS_WEIGHTS)
        self._status_cum = _cumulative(STATUS_WEIGHTS.values())

    def my_number(self) -> str:
        first_eleven = f"{self._my_numbers(self._people):011d}"
        return first_eleven + str(check_digit(first_eleven))

    def name(self) -> str:
        rng = self.rng
        first_names = _FIRST_NAMES_FEMALE if rng.random() < 0.5 else _FIRST_NAMES_MALE
        return f"{rng.choice(_LAST_NAMES)} {rng.choice(first_names)}"

    def registered_on(self) -> date:
        """Mostly late March to June (after the national examinations), never today or
        later; more recent years are more likely."""
        rng = self.rng
        year = self.today.year - int(rng.triangular(0, 45, 3))
        if rng.random() < 0.8:
            ordinal = date(year, 3, 25).toordinal() + int(rng.random() * 90)
        else:
            ordinal = date(year, 1, 1).toordinal() + int(rng.random() * 365)
        while ordinal >= self.today.toordinal():
            ordinal -= 365
        return date.fromordinal(ordinal)

    def status(self) -> tuple[str, date | None, str | None]:
        rng = self.rng
        status = self._statuses[
            bisect.bisect(self._status_cum, rng.random() * self._status_cum[-1])
        ]
        if status == STATUS_SUSPENDED:
            until = self.today + timedelta(days=rng.randrange(30, 3 * 365))
            return status, until, rng.choice(SUSPENSION_REASONS)
        if status == STATUS_REVOKED:
            return status, None, rng.choice(REVOCATION_REASONS)
        return status, None, None

    def licence(self, profession: str, *, registered_on: date | None = None) -> PlannedLicence:
        status, until, reason = self.status()
        return PlannedLicence(
            profession=profession,
            registration_number=self._registration[profession].next(),
            registered_on=registered_on or self.registered_on(),
            status=status,
            suspended_until=until,
            status_reason=reason,
        )

    def person(self) -> Person:
        rng = self.rng
        profession = self._professions[
            bisect.bisect(self._profession_cum, rng.random() * self._profession_cum[-1])
        ]
        my_number = self.my_number()
        self._people += 1
        main = self.licence(profession)
        if profession in NEEDS_NURSE_LICENCE:
            # Nurse first (same year after a four-year course, or some years before).
            nurse_on = main.registered_on - timedelta(days=int(rng.random() * 4 * 365))
            licences = (main, self.licence("nurse", registered_on=nurse_on))
        else:
            licences = (main,)
        return Person(my_number=my_number, name=self.name(), licences=licences)

    def people(self, count: int) -> Iterator[Person]:
        for _ in range(count):
            yield self.person()


def generate_people(count: int, *, seed: int = 0, today: date | None = None) -> Iterator[Person]:
    """``count`` people with unique, valid My Numbers (deterministic for a seed)."""
    return PopulationGenerator(seed, today=today).people(count)


def iter_licence_rows(
    rows: int, *, seed: int = 0, today: date | None = None
) -> Iterator[tuple[str, str, str, str, str]]:
    """Exactly ``rows`` bulk-import rows in ``CSV_HEADER`` order (a person's licences
    are consecutive; the last person may be cut short)."""
    generator = PopulationGenerator(seed, today=today)
    written = 0
    while written < rows:
        person = generator.person()
        for licence in person.licences:
            if written == rows:
                return
            yield (
                licence.profession,
                person.my_number,
                person.name,
                licence.registration_number,
                licence.registered_on.isoformat(),
            )
            written += 1


def write_licence_csv(
    path: Path, rows: int, *, seed: int = 0, today: date | None = None, chunk: int = 10_000
) -> int:
    """Streams ``rows`` licence rows (plus the header) to ``path``; returns ``rows``."""
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        batch: list[tuple[str, ...]] = []
        for row in iter_licence_rows(rows, seed=seed, today=today):
            batch.append(row)
            if len(batch) >= chunk:
                writer.writerows(batch)
                written += len(batch)
                batch.clear()
        writer.writerows(batch)
        written += len(batch)
    return written


def _cumulative(weights) -> list[float]:
    total, result = 0.0, []
    for weight in weights:
        total += weight
        result.append(total)
    return result
