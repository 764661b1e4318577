"""Screenshots of the running Dagster UI for the README, taken in a real (headless) browser.

    make dev &                          # the UI on http://127.0.0.1:3000 over the local instance
    python infra/scripts/screenshot_ui.py docs/images/asset_graph.png

Needs Playwright for Python (``pip install playwright==1.65.2``, in any environment: it is a
documentation tool, not a dependency of the project) and a Chromium on the machine (Debian:
``apt-get install chromium``); Playwright's own browser download is not used. A fresh UI shows a
"Join the Dagster community" dialog over every page: the script dismisses it before the shot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:3000/asset-groups", help="the page: the global asset lineage by default")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1700)
    parser.add_argument("--height", type=int, default=1300)
    parser.add_argument("--wait", type=float, default=6.0, help="seconds for the graph to lay itself out")
    parser.add_argument("--collapsed", action="store_true", help="keep the asset groups collapsed (default: expand them all, Alt+E)")
    parser.add_argument("--zoom-out", type=int, default=5, help="clicks on the graph's zoom-out button before the shot")
    args = parser.parse_args()
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("Playwright for Python is needed: pip install playwright==1.65.2 (no browser download: the system chromium is used)") from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.url, wait_until="networkidle")
        for label in ("Skip", "Dismiss", "Close"):
            button = page.get_by_role("button", name=label)
            try:
                button.first.click(timeout=2500)
                break
            except PlaywrightTimeout:
                continue
        if not args.collapsed:
            page.mouse.click(args.width // 2, args.height // 3)  # focus the graph
            page.keyboard.press("Alt+e")  # the graph's "Expand all groups" (kept in the browser's storage)
            page.wait_for_timeout(1500)
            page.reload(wait_until="networkidle")
        page.get_by_role("button", name="Hide navigation").click(timeout=5000)
        page.wait_for_timeout(1000)
        for _ in range(args.zoom_out):  # the graph's own zoom-out button, bottom right
            page.mouse.click(args.width - 27, args.height - 150)
            page.wait_for_timeout(300)
        page.wait_for_timeout(args.wait * 1000)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output), full_page=False)
        browser.close()
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
