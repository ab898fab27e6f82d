"""Screenshots of the ``mfrec serve`` page, as a person uses it: desktop and phone width.

    .venv/bin/python benchmarks/serve_page.py --run /tmp/serve-runs/<ml-100k mf-genre run>

Starts ``python -m mfrec serve`` on a free 127.0.0.1 port, opens the page in Debian's Chromium
(Playwright, ``executable_path``), rates films through the search box and its stars the way a person
does, and saves ``benchmarks/results/serve_page_desktop.png`` (1280 x 900) and
``serve_page_phone.png`` (390 wide, the top of the page), and a third shot of the similar-films
dialog. ``--prefix NAME --only desktop`` writes ``NAME_desktop.png`` alone, e.g. of a bayes run (each
rating "4.3 ± 0.4") or of a run whose lists an ials run ranks (``--serve-option --runs-root=DIR``)::

    .venv/bin/python benchmarks/serve_page.py --run BAYES_RUN --prefix serve_page_bayes --only desktop
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import serve  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RATINGS = (("Star Wars", 5), ("Fargo", 5), ("Pulp Fiction", 4), ("Toy Story", 4), ("Titanic", 1))


def main() -> int:
    from playwright.sync_api import expect, sync_playwright

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--rate", nargs="*", default=[f"{t}={r}" for t, r in RATINGS], metavar="TITLE=STARS")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--prefix", default="serve_page", help="file names: PREFIX_desktop.png, PREFIX_phone.png, ...")
    p.add_argument("--only", choices=["desktop", "phone"], default=None, help="one window size only (no similar shot)")
    p.add_argument("--serve-option", action="append", default=[], metavar="--OPTION=VALUE",
                   help="passed to mfrec serve (repeatable), e.g. --serve-option=--runs-root=/tmp/runs")
    a = p.parse_args()
    proc, port = serve(a.run, None, extra=a.serve_option)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium)
            for name, size, mobile in (("desktop", (1280, 900), False), ("phone", (390, 1400), True)):
                if a.only not in (None, name):
                    continue
                page = browser.new_page(viewport={"width": size[0], "height": size[1]}, is_mobile=mobile,
                                        device_scale_factor=1)
                page.goto(url)
                page.wait_for_selector("#recs .card")
                for item in a.rate:
                    title, _, stars = item.rpartition("=")
                    page.fill("#search", title)
                    row = page.locator("#results .result", has_text=title).first
                    row.wait_for()
                    row.locator(f".star[data-value='{stars}']").click()
                expect(page.locator("#rated .rated-item")).to_have_count(len(a.rate))
                if name == "desktop":  # show the search results too
                    page.fill("#search", a.rate[0].rpartition("=")[0].split()[0])
                    page.locator("#results .result").first.wait_for()
                else:
                    page.fill("#search", "")
                page.mouse.move(size[0] - 5, 5)  # no hover highlight on the stars
                page.wait_for_timeout(800)
                shot = a.out / f"{a.prefix}_{name}.png"
                page.screenshot(path=str(shot))
                print(f"wrote {shot}")
                if name == "desktop" and a.only is None:
                    page.locator("#recs .card .similar-btn").first.click()
                    page.wait_for_selector("#similar[open] #similar-list .card")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(a.out / f"{a.prefix}_similar.png"))
                    print(f"wrote {a.out / f'{a.prefix}_similar.png'}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
