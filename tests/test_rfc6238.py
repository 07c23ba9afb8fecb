"""Standards (issue 3): RFC 6238 appendix B's SHA-1 vectors through Mandate's own code matcher,
and tokens of at least 256 random bits. (Secrets of at least 160 bits: test_totp.py's
test_enrolment_gives_a_base32_secret_of_at_least_160_bits.)"""

from __future__ import annotations

import base64

import pytest

from mandate.models.totp import STEP_SECONDS, matching_step
from tests.support.worlds import MEMBER, seed_clinic

# RFC 6238 appendix B: the SHA-1 seed (ASCII "12345678901234567890"), 8 digits, 30 s steps.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = {
    59: "94287082",
    1111111109: "07081804",
    1111111111: "14050471",
    1234567890: "89005924",
    2000000000: "69279037",
    20000000000: "65353130",
}


@pytest.mark.parametrize("at", sorted(RFC_VECTORS))
def test_rfc6238_vectors_match_their_step(at):
    assert matching_step(RFC_SECRET, RFC_VECTORS[at], digits=8, at=at) == at // STEP_SECONDS


@pytest.mark.parametrize("at", sorted(RFC_VECTORS))
def test_rfc6238_six_digit_codes_are_the_vectors_last_six_digits(at):
    """The API's 6-digit codes are the same HOTP values truncated further (RFC 4226 5.3)."""
    assert matching_step(RFC_SECRET, RFC_VECTORS[at][-6:], at=at) == at // STEP_SECONDS


@pytest.mark.parametrize("at", sorted(RFC_VECTORS))
def test_rfc6238_vectors_hold_one_step_either_side_and_no_further(at):
    code, step = RFC_VECTORS[at], at // STEP_SECONDS
    assert matching_step(RFC_SECRET, code, digits=8, at=at + STEP_SECONDS) == step
    assert matching_step(RFC_SECRET, code, digits=8, at=at + 2 * STEP_SECONDS) is None
    if at >= 3 * STEP_SECONDS:  # (no steps before the epoch for t = 59)
        assert matching_step(RFC_SECRET, code, digits=8, at=at - STEP_SECONDS) == step
        assert matching_step(RFC_SECRET, code, digits=8, at=at - 2 * STEP_SECONDS) is None


def test_a_wrong_code_matches_no_step():
    assert all(
        matching_step(RFC_SECRET, f"{(int(code) + 1) % 10**8:08d}", digits=8, at=at) is None
        for at, code in RFC_VECTORS.items()
    )


async def test_login_tokens_carry_at_least_256_random_bits(api, seed):
    """A token is a short fixed prefix and a base64url body; the body decodes to 32 or more
    bytes, and differs between logins."""
    await seed_clinic(api, seed)
    bodies = []
    for _ in range(3):
        _, token = await api.login_token(MEMBER)
        prefix, _, body = token.partition("_")
        assert prefix.isalpha() and len(prefix) <= 8, token
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) >= 32, token
        bodies.append(raw)
    assert len(set(bodies)) == len(bodies)
