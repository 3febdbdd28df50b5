"""Vocabulary of simulated traffic: devices, pages, buttons, forms, failure reasons.

Benign devices and attacker devices are disjoint pools, so an attacker's login is always from a
device the victim never used.
"""

from __future__ import annotations

import random

# "Browser on OS" forms (what most clients send) ...
SHORT_DEVICES: tuple[str, ...] = (
    "Chrome on macOS", "Safari on macOS", "Firefox on macOS", "Chrome on Windows",
    "Edge on Windows", "Firefox on Windows", "Safari on iOS", "Chrome on Android",
    "Samsung Internet on Android", "Chrome on iPadOS", "Safari on iPadOS", "Chrome on ChromeOS",
)  # fmt: skip
# ... and full User-Agent strings (what some clients forward verbatim).
USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
)
BOT_AGENTS: tuple[str, ...] = (
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "UptimeRobot/2.0 (http://www.uptimerobot.com/)",
)
ATTACKER_DEVICES: tuple[str, ...] = (
    "Firefox on Linux", "Chrome on Linux", "Opera on Windows", "Yandex Browser on Windows",
    "python-requests/2.31.0", "curl/8.5.0", "okhttp/4.12.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
)  # fmt: skip

SITE = "https://shop.example.com"
PAGES: tuple[str, ...] = (
    "/", "/home", "/products", "/products/shoes", "/products/jackets", "/products/bags",
    "/products/item/1042", "/products/item/2210", "/products/item/3377", "/search", "/cart",
    "/checkout", "/account", "/account/orders", "/settings", "/help", "/blog", "/blog/spring-sale",
)  # fmt: skip
EXTERNAL_REFERRERS: tuple[str, ...] = (
    "https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/",
    "https://t.co/x8k2LmQ", "https://www.facebook.com/", "https://news.ycombinator.com/",
    "https://mail.example.org/",
)  # fmt: skip
BUTTONS: tuple[str, ...] = (
    "add-to-cart", "buy-now", "nav-menu", "search-submit", "like", "share", "subscribe",
    "apply-coupon", "next-page", "filter-size",
)  # fmt: skip
FIRST_NAMES: tuple[str, ...] = ("Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro")
CITIES: tuple[str, ...] = ("Lisbon", "Berlin", "Austin", "Osaka", "Lyon", "Toronto", "Kraków")
QUERIES: tuple[str, ...] = ("running shoes", "rain jacket", "leather bag", "gift card", "socks")

BENIGN_FAILURE = "invalid_password"
ATTACK_FAILURES: tuple[str, ...] = ("invalid_password", "invalid_password", "account_locked")
STUFFING_FAILURES: tuple[str, ...] = ("invalid_password", "unknown_user")


def form_fields(rng: random.Random, form_id: str, user_id: str) -> dict[str, str]:
    """Plausible string fields of one submitted form."""
    name = rng.choice(FIRST_NAMES)
    if form_id == "search":
        return {"q": rng.choice(QUERIES)}
    if form_id == "newsletter":
        return {"email": f"{user_id}@mail.example.org"}
    if form_id == "checkout":
        return {"name": name, "city": rng.choice(CITIES), "zip": f"{rng.randrange(10000, 99999)}"}
    if form_id == "contact":
        return {"name": name, "message": "Where is my order?", "topic": "orders"}
    return {"display_name": name, "language": rng.choice(("en", "fr", "de", "pt", "ja"))}


FORMS: tuple[str, ...] = ("search", "newsletter", "checkout", "contact", "profile")
