"""Masking of personal identifiers for roles that may not see them in full."""


def mask_phone(value: str) -> str:
    """`+8613812341234` → `138****1234`; other numbers keep their last four digits."""
    digits = value[3:] if value.startswith("+86") else value.lstrip("+")
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "****"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not domain:
        return mask_text(value)
    return f"{local[:1]}***@{domain}"


def mask_text(value: str) -> str:
    if len(value) <= 4:
        return "****"
    return f"{value[:2]}****{value[-2:]}"


def mask_identity(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return mask_text(value)


def mask_name(value: str) -> str:
    """`王小明` → `王**`, `Alice Wong` → `A*********`: the first character, for published text
    such as a case story, where the customer may be recognised but not named."""
    value = value.strip()
    if not value:
        return ""
    return value[0] + "*" * max(len(value) - 1, 1)
