"""mfrec serve in a real browser: Debian's Chromium, driven by Playwright, against a server on 127.0.0.1.

The test starts ``python -m mfrec serve`` on a free loopback port for a run trained on generated data,
then searches a title, rates two films and checks that the list of recommendations appears and
changes, that "similar films" and the genre filter work, and that a phone-width window needs no
sideways scrolling. Where Playwright or Chromium is missing the test is skipped with the reason
(``scripts/test.sh`` installs both), never passed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='mfrec serve needs the serve extra: pip install -e ".[serve]"')
pytest.importorskip("playwright", reason='the browser test needs Playwright: pip install -e ".[serve-test]"')

from playwright.sync_api import expect  # noqa: E402
from test_inference import make_run  # noqa: E402
from test_serve_api import titles  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("MFREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, small_dataset):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (scripts/test.sh does)")
    root = tmp_path_factory.mktemp("Experiments_")
    run = make_run(root, small_dataset, "mf-genre")
    port = free_port()
    log = open(root / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "mfrec", "serve", "--experiment", str(run), "--port", str(port),
                             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/api/v1/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"mfrec serve did not come up: {log.read()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM)
        except Error as e:
            pytest.skip(f"Chromium at {CHROMIUM} would not start: {str(e).splitlines()[0]}")
        yield b
        b.close()


def rate(page, title: str, stars: int) -> None:
    """Type the title into the search box and click the film's `stars`-th star in the results."""
    page.fill("#search", title[:-7])  # without the year, as a person types it
    row = page.locator("#results .result", has_text=title).first
    row.wait_for()
    row.locator(f".star[data-value='{stars}']").click()


def until(check, what: str, seconds: float = 15.0):
    """Poll ``check()`` until it is true (the page's CSP forbids the eval behind wait_for_function)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {seconds:g} s, still not: {what}")
        time.sleep(0.1)


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("#recs .card", "cards => cards.map(c => c.dataset.movieId)")


def test_search_rate_and_watch_the_list_change(server, browser, small_dataset):
    first, second = titles(small_dataset, 2)[0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server)
    page.wait_for_selector("#recs .card")
    assert page.inner_text("#recs-h") == "Popular films to rate"
    assert "mf-genre" in page.inner_text("#run-info")

    rate(page, first, 5)
    expect(page.locator("#recs-h")).to_have_text("Your top 10")
    expect(page.locator("#recs .card .why")).to_have_count(10)
    after_one = card_ids(page)
    assert len(after_one) == 10
    card = page.locator("#recs .card").first
    assert card.locator(".predicted").inner_text().startswith("★ ")
    assert "[5]" in card.locator(".why").inner_text()  # the why line names the rated film with its rating
    assert card.locator(".meta .year").inner_text().isdigit() and card.locator(".chip").count() >= 1

    rate(page, second, 1)
    until(lambda: card_ids(page) != after_one, "the list changed after the second rating")
    after_two = card_ids(page)
    assert after_two != after_one and len(after_two) == 10
    assert page.locator("#rated .rated-item").count() == 2
    assert page.inner_text("#rated-count") == "(2)"
    assert page.locator("#rated .rated-item", has_text=second).locator(".star.on").count() == 1

    # similar films open in a dialog
    page.locator("#recs .card .similar-btn").first.click()
    page.wait_for_selector("#similar[open] #similar-list .card")
    assert page.inner_text("#similar-h").startswith("Similar to ")
    page.click("#similar-close")

    # a genre filter keeps only that genre's films
    genre = page.locator("#recs .card").first.locator(".chip").first.inner_text()
    page.select_option("#genre", genre)
    until(lambda: page.eval_on_selector_all(
        "#recs .card", "(cards, g) => cards.length > 0 && cards.every(c => [...c.querySelectorAll('.chip')]"
        ".some(x => x.textContent === g))", genre), f"every film listed is a {genre} film")
    page.fill("#year-from", "2050")
    page.dispatch_event("#year-from", "change")
    page.wait_for_selector("#recs .empty")
    assert not problems, problems


def test_phone_width_needs_no_sideways_scrolling(server, browser, small_dataset):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(server)
    page.wait_for_selector("#recs .card")
    rate(page, titles(small_dataset, 1)[0][0], 4)
    expect(page.locator("#recs-h")).to_have_text("Your top 10")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide in a 390px window"
    you, recs = page.locator(".panel.you").bounding_box(), page.locator(".panel.recs").bounding_box()
    assert recs["y"] >= you["y"] + you["height"]  # one column: the list below the ratings
