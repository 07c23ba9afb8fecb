"""TOTP codes on the domain's clock: the right one, a wrong one, and the right one misshapen."""

from __future__ import annotations

import pyotp

from mandate.models import clock as domain_clock


def totp_now(secret: str, steps: int = 0) -> str:
    """The code of the current 30 s step (plus `steps`) on the domain's clock."""
    return pyotp.TOTP(secret).at(domain_clock.time() + 30 * steps)


def wrong_code(secret: str) -> str:
    """Six digits that no step within one of now accepts."""
    valid = {totp_now(secret, steps) for steps in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
# The right code, reshaped: each must be refused as malformed before it is checked.
MALFORMED = {
    "full-width": lambda code: code.translate(FULL_WIDTH),
    "superscript": lambda code: code.translate(SUPERSCRIPT),
    "arabic-indic": lambda code: code.translate(ARABIC_INDIC),
    "space": lambda code: f"{code[:3]} {code[3:]}",
    "dash": lambda code: f"{code[:3]}-{code[3:]}",
    "padded": lambda code: f" {code} ",
    "newline": lambda code: code + "\n",
    "five digits": lambda code: code[:5],
    "seven digits": lambda code: code + "0",
}
