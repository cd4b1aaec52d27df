"""Member codes: short, unique in the shop, and not a visible count.

A shop's n-th member gets `encode(scramble(n))`: the number is multiplied by an
odd constant modulo 2**40 (a bijection, so codes never collide) and written in
8 characters of Crockford's base32 (no I, L, O, U: easy to read out and type).
Numbers are handed out by one atomic UPDATE of the shop's sequence row, a whole
block at once for imports and the data generator.
"""

from django.db import transaction
from django.db.models import F

from members.models import MemberCodeSequence
from shops.models import Shop

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BITS = 40
MODULUS = 1 << BITS
MULTIPLIER = 0x9E3779B97F & (MODULUS - 1) | 1  # odd: invertible modulo 2**40
LENGTH = 8


def encode(number: int) -> str:
    scrambled = (number * MULTIPLIER) % MODULUS
    chars = []
    for _ in range(LENGTH):
        scrambled, digit = divmod(scrambled, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def reserve(*, shop: Shop, count: int = 1) -> range:
    """Reserve `count` member numbers of `shop`; returns them as a range."""
    if count < 1:
        raise ValueError("count must be at least 1")
    with transaction.atomic():
        MemberCodeSequence.objects.get_or_create(shop=shop)
        MemberCodeSequence.objects.filter(shop=shop).update(
            last_value=F("last_value") + count
        )
        last = MemberCodeSequence.objects.values_list("last_value", flat=True).get(
            shop=shop
        )
    return range(last - count + 1, last + 1)


def next_codes(*, shop: Shop, count: int = 1) -> list[str]:
    return [encode(number) for number in reserve(shop=shop, count=count)]


def next_code(*, shop: Shop) -> str:
    return next_codes(shop=shop, count=1)[0]
