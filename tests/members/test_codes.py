from members.codes import ALPHABET, LENGTH, encode, next_code, next_codes


def test_codes_are_short_readable_and_never_repeat():
    codes = [encode(n) for n in range(1, 200_001)]

    assert len(set(codes)) == len(codes)
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) for c in codes[:1000])


def test_consecutive_members_do_not_get_consecutive_codes():
    assert encode(2)[-3:] != encode(1)[-3:]


def test_each_shop_counts_its_own_members(shop, other_shop):
    first = next_code(shop=shop)
    block = next_codes(shop=shop, count=3)

    assert first == encode(1)
    assert block == [encode(2), encode(3), encode(4)]
    assert next_code(shop=other_shop) == encode(1)
