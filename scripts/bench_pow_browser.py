#!/usr/bin/env python3
"""Benchmark the widget's proof-of-work mining (web/pow.js) in Chromium, per difficulty.

    scripts/bench_pow_browser.py [--difficulties 8,12,16] [--samples 4]

The reference, measured in the same run and page: one `await crypto.subtle.digest("SHA-256")`
of a comment's unsigned form (what each attempt would cost with WebCrypto). For each difficulty
d, `samples` prefixes (different bodies, so different nonces) are mined with pow.js's `mine`
(midstate of the prefix's whole blocks, then one block per attempt, in chunks between which the
page runs): the mean time, the mean attempts (expected 2^d), the time per attempt and the ratio
of an attempt to the WebCrypto reference. Needs Debian's /usr/bin/chromium and Playwright.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, PAGES, static_server  # noqa: E402

RUN = """async ({ difficulties, samples }) => {
  const { mine } = await import("/web/pow.js");
  // A comment-sized unsigned form up to its nonce: it ends in the bin 8 header c4 08.
  const prefix = (i) =>
    Uint8Array.from([...new TextEncoder().encode("x".repeat(170) + i), 0xc4, 0x08]);
  const reference = new Uint8Array(188);
  let t = performance.now();
  for (let i = 0; i < 3000; i++) await crypto.subtle.digest("SHA-256", reference);
  const webcrypto = (performance.now() - t) / 3000;
  const rows = [];
  for (const d of difficulties) {
    let ms = 0, attempts = 0;
    for (let s = 0; s < samples; s++) {
      t = performance.now();
      attempts += (await mine(prefix(`${d}-${s}`), d)).attempts;
      ms += performance.now() - t;
    }
    rows.push({ d, ms: ms / samples, attempts: attempts / samples, per: ms / attempts });
  }
  return { webcrypto, rows };
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulties", default="8,12,16")
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    difficulties = [int(d) for d in args.difficulties.split(",")]
    from playwright.sync_api import sync_playwright

    with static_server(PAGES) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/blank.html")
            out = page.evaluate(RUN, {"difficulties": difficulties, "samples": args.samples})
        finally:
            browser.close()
    reference = out["webcrypto"]
    print(f"reference: one awaited WebCrypto SHA-256 = {reference * 1000:.2f} us")
    print(f"{'bits':>4} {'mean ms':>9} {'attempts':>10} {'us/attempt':>11} {'vs WebCrypto':>13}")
    for row in out["rows"]:
        per = row["per"]
        print(
            f"{row['d']:>4} {row['ms']:9.1f} {row['attempts']:10.0f} {per * 1000:11.2f}"
            f" {per / reference:12.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
